#include <algorithm>

#include "weft/types.h"

namespace weft {

namespace {
auto find(const std::vector<std::pair<replica_id, std::uint64_t>>& v, replica_id r) {
  return std::lower_bound(v.begin(), v.end(), r, [](const auto& e, replica_id x) { return e.first < x; });
}
}  // namespace

std::uint64_t version_vector::get(replica_id replica) const noexcept {
  auto it = find(entries_, replica);
  return (it != entries_.end() && it->first == replica) ? it->second : 0;
}

void version_vector::set(replica_id replica, std::uint64_t counter) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), replica,
                             [](const auto& e, replica_id x) { return e.first < x; });
  if (it != entries_.end() && it->first == replica) {
    if (counter == 0)
      entries_.erase(it);
    else
      it->second = counter;
  } else if (counter != 0) {
    entries_.insert(it, {replica, counter});
  }
}

void version_vector::merge(const version_vector& other) {
  for (const auto& [r, c] : other.entries_)
    if (c > get(r)) set(r, c);
}

bool version_vector::includes(const version_vector& other) const noexcept {
  for (const auto& [r, c] : other.entries_)
    if (get(r) < c) return false;
  return true;
}

std::uint64_t version_vector::total() const noexcept {
  std::uint64_t t = 0;
  for (const auto& e : entries_) t += e.second;
  return t;
}

}  // namespace weft
