// Internal: bounds-checked binary writing and reading (LEB128 varints,
// zigzag, CRC-32) for the snapshot and op-batch formats.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace weft::detail {

/// CRC-32 (IEEE 802.3, reflected, as zlib's crc32) of `data`.
std::uint32_t crc32(std::string_view data) noexcept;

class byte_writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void zigzag(std::int64_t v) { varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63)); }
  void bytes(std::string_view b) { out_.append(b); }
  void fixed32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  std::string& str() { return out_; }

 private:
  std::string out_;
};

/// Reads from a buffer; every read checks bounds and sets a sticky failure
/// flag instead of reading past the end.
class byte_reader {
 public:
  explicit byte_reader(std::string_view in) : in_(in) {}
  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return pos_ == in_.size(); }
  std::size_t remaining() const noexcept { return in_.size() - pos_; }
  bool overflowed() const noexcept { return overflow_; }

  std::uint8_t u8() {
    if (pos_ >= in_.size()) return fail();
    return static_cast<std::uint8_t>(in_[pos_++]);
  }
  std::uint64_t varint() {
    // Most values are small: one byte, one branch.
    if (pos_ < in_.size() && static_cast<std::uint8_t>(in_[pos_]) < 0x80) return static_cast<std::uint8_t>(in_[pos_++]);
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return fail();
      auto b = static_cast<std::uint8_t>(in_[pos_++]);
      if (shift == 63 && b > 1) {
        overflow_ = true;
        return fail();
      }
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    overflow_ = true;
    return fail();
  }
  std::int64_t zigzag() {
    std::uint64_t v = varint();
    return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  /// `base` plus a zigzag delta; fails (and returns 0) when the sum leaves
  /// the range of counters, so corrupt input cannot overflow anything.
  std::int64_t offset(std::int64_t base) {
    std::int64_t d = zigzag(), out = 0;
    if (__builtin_add_overflow(base, d, &out) || out < 0 || out > (std::int64_t{1} << 40)) {
      fail();
      return 0;
    }
    return out;
  }
  std::string_view bytes(std::uint64_t n) {
    if (n > remaining()) {
      fail();
      return {};
    }
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::uint32_t fixed32() {
    if (remaining() < 4) return static_cast<std::uint32_t>(fail());
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(in_[pos_++])) << (8 * i);
    return v;
  }

 private:
  std::uint8_t fail() {
    ok_ = false;
    pos_ = in_.size();
    return 0;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
  bool overflow_ = false;
};

}  // namespace weft::detail
