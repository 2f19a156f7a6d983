// Version vectors of ops: which ids an op or a batch uses, for acks, the
// durable version of a room and snapshot compaction.
#pragma once

#include <vector>

#include "weft/operation.h"
#include "weft/types.h"

namespace weft::server {

/// Raises `v` so that it covers every id `op` uses (counters up to its last).
inline void cover_op(version_vector& v, const operation& op) {
  const std::uint64_t last = op.id.counter + op.length() - 1;
  if (last > v.get(op.id.replica)) v.set(op.id.replica, last);
}

/// The smallest version vector covering every id of `ops` (per replica, its
/// newest counter among them).
inline version_vector ids_of(const std::vector<operation>& ops) {
  version_vector v;
  for (const auto& op : ops) cover_op(v, op);
  return v;
}

}  // namespace weft::server
