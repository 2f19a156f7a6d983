#include "core/causal_buffer.h"

#include <algorithm>

namespace weft::detail {

namespace {
std::size_t op_bytes(const operation& op) {
  return sizeof(operation) + op.text.capacity() + op.targets.capacity() * sizeof(id_span) + 64;
}
}  // namespace

void causal_buffer::add(op_id dep, operation op) {
  ids_.insert(key{op.id, op.kind, op.length()});
  ++count_;
  id_total_ += op.length();
  bytes_ += op_bytes(op);
  waiting_[dep.replica].emplace(dep.counter, std::move(op));
}

void causal_buffer::take_ready(replica_id replica, std::uint64_t upto, std::vector<operation>* out) {
  auto it = waiting_.find(replica);
  if (it == waiting_.end()) return;
  auto& m = it->second;
  auto end = m.upper_bound(upto);
  for (auto j = m.begin(); j != end; ++j) {
    ids_.erase(ids_.find(key{j->second.id, j->second.kind, j->second.length()}));
    --count_;
    id_total_ -= j->second.length();
    bytes_ -= op_bytes(j->second);
    out->push_back(std::move(j->second));
  }
  m.erase(m.begin(), end);
  if (m.empty()) waiting_.erase(it);
}

}  // namespace weft::detail
