// Replaying editing traces through weft documents (tests and benchmarks).
#pragma once

#include <vector>

#include "traces/trace.h"
#include "weft/document.h"

namespace weft::traces {

/// Applies every patch of a sequential trace as local edits of `doc`, each
/// position shifted by `offset` (replaying a trace again after the text a
/// first replay left). When `ops` is non-null, the operations made are
/// appended to it. Returns the first error (a patch out of range).
status replay_local(const trace& t, document& doc, std::vector<operation>* ops = nullptr, std::uint64_t offset = 0);

/// Replays a concurrent trace with one replica per agent: before an agent's
/// txn its replica receives the ops of the txn's causal history that it lacks
/// (agent by agent, so they often arrive out of causal order and exercise the
/// causal buffer), then applies the txn's patches locally. `txn_ops[i]` gets
/// the ops of txn i; `replicas[a]` is agent a's replica at the end (not yet
/// synced with the others).
struct concurrent_replay {
  std::vector<document> replicas;
  std::vector<std::vector<operation>> txn_ops;
};
result<concurrent_replay> replay_concurrent(const trace& t);

}  // namespace weft::traces
