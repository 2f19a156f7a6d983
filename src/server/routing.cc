#include "server/routing.h"

#include <algorithm>
#include <limits>
#include <vector>

namespace weft::server {

topology_kind parse_topology(const std::string& name) noexcept {
  if (name == "ring") return topology_kind::ring;
  if (name == "star") return topology_kind::star;
  return topology_kind::all;
}

namespace {
constexpr unsigned preferred = 1, standby = 16;
}

unsigned link_weight(topology_kind kind, const std::string& hub, const std::set<std::string>& nodes,
                     const std::string& a, const std::string& b) {
  switch (kind) {
    case topology_kind::all:
      return preferred;
    case topology_kind::star:
      return a == hub || b == hub ? preferred : standby;
    case topology_kind::ring: {
      if (nodes.size() <= 3) return preferred;  // every pair is adjacent
      std::vector<std::string> order(nodes.begin(), nodes.end());
      auto ia = std::find(order.begin(), order.end(), a) - order.begin();
      auto ib = std::find(order.begin(), order.end(), b) - order.begin();
      const auto n = static_cast<std::ptrdiff_t>(order.size());
      auto d = (ia - ib + n) % n;
      return d == 1 || d == n - 1 ? preferred : standby;
    }
  }
  return preferred;
}

std::map<std::string, std::string> upstream_by_origin(const reported_links& links, const std::string& self,
                                                      topology_kind kind, const std::string& hub) {
  // The graph: nodes anyone mentions; an edge where both ends report it.
  std::set<std::string> nodes;
  for (const auto& [n, ns] : links) {
    nodes.insert(n);
    nodes.insert(ns.begin(), ns.end());
  }
  nodes.insert(self);
  std::map<std::string, std::vector<std::pair<std::string, unsigned>>> adj;
  for (const auto& [a, ns] : links)
    for (const auto& b : ns) {
      auto back = links.find(b);
      if (a < b && back != links.end() && back->second.count(a)) {
        unsigned w = link_weight(kind, hub, nodes, a, b);
        adj[a].emplace_back(b, w);
        adj[b].emplace_back(a, w);
      }
    }
  std::map<std::string, std::string> out;
  const auto& mine = adj[self];
  if (mine.empty()) return out;
  constexpr unsigned inf = std::numeric_limits<unsigned>::max();
  for (const auto& origin : nodes) {
    if (origin == self || !adj.count(origin)) continue;
    // Dijkstra from the origin (a handful of nodes: a set as the queue).
    std::map<std::string, unsigned> dist;
    for (const auto& n : nodes) dist[n] = inf;
    dist[origin] = 0;
    std::set<std::pair<unsigned, std::string>> queue{{0, origin}};
    while (!queue.empty()) {
      auto [d, u] = *queue.begin();
      queue.erase(queue.begin());
      if (d != dist[u]) continue;
      for (const auto& [v, w] : adj[u])
        if (d + w < dist[v]) {
          queue.erase({dist[v], v});
          dist[v] = d + w;
          queue.insert({dist[v], v});
        }
    }
    if (dist[self] == inf) continue;  // cut off: nothing to subscribe to
    // The parent: the smallest neighbour on a shortest path.
    std::string parent;
    for (const auto& [v, w] : mine)
      if (dist[v] != inf && dist[v] + w == dist[self] && (parent.empty() || v < parent)) parent = v;
    if (!parent.empty()) out[origin] = parent;
  }
  return out;
}

}  // namespace weft::server
