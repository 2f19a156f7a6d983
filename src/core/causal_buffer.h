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
  /// True when an op starting at `id` and at least `length` ids long is
  /// already waiting (ops with one start id may differ in length: merged runs).
  bool contains(op_id id, std::uint64_t length) const {
    auto it = ids_.lower_bound({id, length});
    return it != ids_.end() && it->first == id;
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
  std::multiset<std::pair<op_id, std::uint64_t>> ids_;  // (start id, length) of every waiting op
  std::size_t count_ = 0;
  std::uint64_t id_total_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace weft::detail
