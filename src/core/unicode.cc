#include "weft/unicode.h"

#include "core/utf8.h"

namespace weft {

bool is_valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned c = *p;
    if (c < 0x80) { ++p; continue; }
    std::size_t n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (static_cast<std::size_t>(end - p) <= n) return false;
    for (std::size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

std::uint64_t count_code_points(std::string_view s) noexcept { return detail::count_cp(s); }

std::size_t utf8_offset_of_code_point(std::string_view s, std::uint64_t cp) noexcept {
  return detail::byte_offset(s, cp);
}

std::uint64_t utf16_offset_of_code_point(std::string_view s, std::uint64_t cp) noexcept {
  std::uint64_t units = 0;
  for (std::size_t i = 0; i < s.size() && cp > 0; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) == 0x80) continue;
    units += (c >= 0xF0) ? 2 : 1;
    --cp;
  }
  return units;
}

std::uint64_t code_point_of_utf16_offset(std::string_view s, std::uint64_t u16) noexcept {
  std::uint64_t cps = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) == 0x80) continue;
    std::uint64_t w = (c >= 0xF0) ? 2 : 1;
    if (u16 < w) break;
    u16 -= w;
    ++cps;
  }
  return cps;
}

std::uint64_t utf16_length(std::string_view s) noexcept {
  std::uint64_t units = 0;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c & 0xC0) == 0x80) continue;
    units += (c >= 0xF0) ? 2 : 1;
  }
  return units;
}

}  // namespace weft
