// Internal: operations waiting for their causal dependencies.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "weft/operation.h"

namespace weft::detail {

/// Ops are filed under the one id they wait for (replica, counter): they are
/// taken out when that replica's version reaches the counter, and re-checked
/// (they may then wait for something else).
class causal_buffer {
 public:
  /// True when an op of the same kind, starting at the same id and at least
  /// as long, is already waiting (ops with one start id may differ in length:
  /// merged runs; and a tombstone carries more than the insert it stands for).
  bool contains(const operation& op) const {
    auto it = ids_.lower_bound(key{op.id, op.kind, op.length()});
    return it != ids_.end() && it->id == op.id && it->kind == op.kind;
  }
  /// Files `op` until version[dep.replica] >= dep.counter.
  void add(op_id dep, operation op);
  /// Moves every op waiting for `replica` at a counter <= `upto` into `out`.
  void take_ready(replica_id replica, std::uint64_t upto, std::vector<operation>* out);

  std::size_t size() const noexcept { return count_; }
  std::uint64_t ids() const noexcept { return id_total_; }
  std::size_t memory_usage() const noexcept { return bytes_; }

 private:
  std::map<replica_id, std::multimap<std::uint64_t, operation>> waiting_;
  struct key {
    op_id id;
    op_kind kind;
    std::uint64_t length;
    friend auto operator<=>(const key&, const key&) = default;
  };
  std::multiset<key> ids_;  // every waiting op
  std::size_t count_ = 0;
  std::uint64_t id_total_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace weft::detail
