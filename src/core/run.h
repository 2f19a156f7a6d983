// Internal: the unit the content tree stores.
#pragma once

#include <cstdint>

namespace weft::detail {

/// Local replica index meaning "no character" (start or end of document).
inline constexpr std::uint32_t no_replica = 0xFFFFFFFFu;

/// A character id with the replica as a local index (see replica_table).
struct ref {
  std::uint32_t replica = no_replica;
  std::uint32_t counter = 0;
  bool none() const noexcept { return replica == no_replica; }
  friend bool operator==(ref, ref) = default;
};

/// A run of characters inserted consecutively by one replica, with
/// consecutive counters, adjacent in the sequence, all deleted or all
/// visible. Character k > 0 of a run has origin_left = character k-1 and the
/// run's origin_right, so a run splits anywhere without losing information.
struct run {
  std::uint32_t replica;      // local index
  std::uint32_t counter;      // counter of the first character
  std::uint32_t length;       // characters (code points)
  std::uint32_t deleted;      // 0 or 1
  std::uint32_t text_offset;  // bytes into the text arena
  std::uint32_t text_bytes;   // UTF-8 bytes
  ref left;                   // origin_left of the first character
  ref right;                  // origin_right of every character

  ref id_at(std::uint32_t off) const noexcept { return ref{replica, counter + off}; }
  ref left_of(std::uint32_t off) const noexcept { return off == 0 ? left : ref{replica, counter + off - 1}; }
  bool contains(ref id) const noexcept { return id.replica == replica && id.counter - counter < length; }
};

}  // namespace weft::detail
