// Internal UTF-8 primitives shared by the core's hot paths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace weft::detail {

/// Code points in valid UTF-8: every byte that is not a continuation byte.
inline std::uint64_t count_cp(std::string_view s) noexcept {
  std::uint64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
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
