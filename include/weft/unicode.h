// weft — text offset helpers.
//
// Document positions count Unicode code points. Browser editors count UTF-16
// code units and native editors often count UTF-8 bytes; these pure helpers
// convert between the three on a UTF-8 string. All are O(length of the prefix
// they walk) and thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace weft {

/// True when `text` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

/// Code points in valid UTF-8 `text`.
std::uint64_t count_code_points(std::string_view text) noexcept;

/// Byte offset of code point `cp` in valid UTF-8 `text` (text.size() when cp
/// is at or past the end).
std::size_t utf8_offset_of_code_point(std::string_view text, std::uint64_t cp) noexcept;

/// UTF-16 code units before code point `cp` of valid UTF-8 `text` (astral
/// characters count two). Clamped to the end of the text.
std::uint64_t utf16_offset_of_code_point(std::string_view text, std::uint64_t cp) noexcept;

/// Code point index of UTF-16 offset `u16` in valid UTF-8 `text`. An offset
/// that falls between the two halves of a surrogate pair rounds down to the
/// start of that character. Clamped to the end of the text.
std::uint64_t code_point_of_utf16_offset(std::string_view text, std::uint64_t u16) noexcept;

/// UTF-16 length of valid UTF-8 `text`.
std::uint64_t utf16_length(std::string_view text) noexcept;

}  // namespace weft
