// Internal: everything a document owns. Split from document.cc so that the
// snapshot codec can build one directly.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/causal_buffer.h"
#include "core/content_tree.h"
#include "core/op_log.h"
#include "weft/document.h"

namespace weft {

class sequence_state {
 public:
  sequence_state(replica_id self, document_options options);
  sequence_state(const sequence_state& other);
  sequence_state& operator=(const sequence_state&) = delete;

  /// Local index of replica `g`, registering it if new.
  std::uint32_t intern(replica_id g);
  /// Local index of a known replica, or detail::no_replica.
  std::uint32_t local_of(replica_id g) const;
  detail::ref to_ref(op_id id) const;
  op_id to_id(detail::ref r) const { return op_id{globals_[r.replica], r.counter}; }

  replica_id self_;
  document_options options_;
  std::vector<replica_id> globals_;
  std::unordered_map<replica_id, std::uint32_t> locals_;
  // The last replica looked up: an op, its origins and the next op mostly
  // name one replica, so most lookups skip the hash. Valid whenever
  // globals_[last_local_] == the id asked for (no invalidation needed).
  mutable std::uint32_t last_local_ = 0;
  version_vector vv_;
  detail::content_tree tree_;
  detail::op_log log_;
  detail::causal_buffer pending_;
  // Reused by each local erase (no allocation per keystroke); holds nothing
  // between calls.
  std::vector<detail::content_tree::span_ref> scratch_spans_;
};

}  // namespace weft
