// weft — identifiers and version vectors.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace weft {

/// A replica id: a random integer below 2^53 so that it is exact in JSON and
/// JavaScript numbers. Every replica (browser tab, editor, bot, server) has
/// its own and never shares it with a concurrently live replica.
using replica_id = std::uint64_t;

/// Largest valid replica id (2^53 - 1).
inline constexpr replica_id max_replica_id = (std::uint64_t{1} << 53) - 1;

/// Largest counter a replica may use. Counters start at 1 and advance by one
/// per inserted or deleted character.
inline constexpr std::uint64_t max_counter = 0xFFFFFFFEull;

/// The id of one character insertion or one character deletion.
struct op_id {
  replica_id replica = 0;
  std::uint64_t counter = 0;
  friend auto operator<=>(const op_id&, const op_id&) = default;
};

/// A run of consecutive ids of one replica: counters [counter, counter+length).
struct id_span {
  replica_id replica = 0;
  std::uint64_t counter = 0;
  std::uint64_t length = 0;
  friend bool operator==(const id_span&, const id_span&) = default;
};

/// Per replica, the highest counter applied (0 = nothing from that replica).
/// Because a replica's ops are applied in counter order, `get(r) == n` means
/// every id (r, 1..n) is known. Entries are kept sorted by replica id.
///
/// Thread-safety: a value type; const methods may be called concurrently.
class version_vector {
 public:
  /// Highest counter applied from `replica`, 0 if none.
  std::uint64_t get(replica_id replica) const noexcept;
  /// Sets the entry for `replica` (0 removes it).
  void set(replica_id replica, std::uint64_t counter);
  /// True when `id` is covered, i.e. counter <= get(replica).
  bool covers(op_id id) const noexcept { return id.counter != 0 && id.counter <= get(id.replica); }
  /// Raises every entry to at least `other`'s.
  void merge(const version_vector& other);
  /// True when every entry of `other` is <= this one's.
  bool includes(const version_vector& other) const noexcept;
  /// Sum of all entries: the number of ids covered.
  std::uint64_t total() const noexcept;

  const std::vector<std::pair<replica_id, std::uint64_t>>& entries() const noexcept { return entries_; }
  bool empty() const noexcept { return entries_.empty(); }
  friend bool operator==(const version_vector&, const version_vector&) = default;

 private:
  std::vector<std::pair<replica_id, std::uint64_t>> entries_;
};

}  // namespace weft
