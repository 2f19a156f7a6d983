// Which neighbour a node receives each origin's batches from: the routing of
// the replication links (docs/replication.md, "Topologies"). Pure functions
// of the cluster's link state, so every node computes the same trees.
//
// Every origin's batches travel down one shortest-path tree rooted at the
// origin, over the links that are up; a node subscribes to an origin at its
// parent in that tree, so in a steady state each batch reaches each node
// exactly once. The topology gives the links weights: preferred links cost 1,
// the others (standby) 16, so standby links carry batches only while a
// preferred route is down, and the configured shape returns by itself.
#pragma once

#include <map>
#include <set>
#include <string>

namespace weft::server {

enum class topology_kind { all, ring, star };

/// Parses "all", "ring" or "star" (anything else: all).
topology_kind parse_topology(const std::string& name) noexcept;

/// Per node, the neighbours it reports as linked (up). A link counts only
/// when both ends report it.
using reported_links = std::map<std::string, std::set<std::string>>;

/// The weight of the link a-b under `kind` among `nodes` (ring order: node
/// ids sorted; star: links touching `hub` are preferred).
unsigned link_weight(topology_kind kind, const std::string& hub, const std::set<std::string>& nodes,
                     const std::string& a, const std::string& b);

/// For node `self`: per origin node it can reach (self excluded), the
/// neighbour to receive that origin's batches from. Deterministic: ties go to
/// the smaller node id.
std::map<std::string, std::string> upstream_by_origin(const reported_links& links, const std::string& self,
                                                      topology_kind kind, const std::string& hub);

}  // namespace weft::server
