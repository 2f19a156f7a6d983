#include "weft/operation.h"

#include "core/utf8.h"

namespace weft {

std::uint64_t operation::length() const noexcept {
  if (kind == op_kind::insert) return detail::count_cp(text);
  if (kind == op_kind::tombstone) return count;
  std::uint64_t n = 0;
  for (const auto& t : targets) n += t.length;
  return n;
}

}  // namespace weft
