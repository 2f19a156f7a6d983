// Internal UTF-8 primitives shared by the core's hot paths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace weft::detail {

/// Code points in valid UTF-8: every byte that is not a continuation byte
/// (10xxxxxx). Eight bytes at a time: a byte's top bit set and the next bit
/// clear marks a continuation byte.
inline std::uint64_t count_cp(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t size = s.size();
  std::uint64_t continuation = 0;
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    // Each continuation byte leaves a 1 in its low bit; the multiply sums the
    // eight bytes into the top one (no popcount instruction is assumed).
    const std::uint64_t ones = (w & ~(w << 1) & 0x8080808080808080ull) >> 7;
    continuation += (ones * 0x0101010101010101ull) >> 56;
  }
  for (; i < size; ++i) continuation += (p[i] & 0xC0) == 0x80;
  return size - continuation;
}

/// Byte offset of code point `cp` in valid UTF-8 (s.size() if past the end).
inline std::size_t byte_offset(std::string_view s, std::uint64_t cp) noexcept {
  if (cp == 0) return 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (cp == 0) return i;
      --cp;
    }
  }
  return s.size();
}

}  // namespace weft::detail
