// The snapshot's column coding (src/core/entropy_coder.h): every column
// comes back byte for byte, the coding that pays is chosen, and corrupt or
// lying input is refused without crashing or allocating what it claims.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/byte_io.h"
#include "core/entropy_coder.h"

namespace weft::detail {
namespace {

std::string framed(std::string_view column) {
  byte_writer w;
  put_column(w, column);
  return w.str();
}

// The method byte follows the size varint.
int method_of(const std::string& frame) {
  byte_reader r(frame);
  (void)r.varint();
  return r.u8();
}

std::string round_trip(std::string_view column) {
  const std::string frame = framed(column);
  byte_reader r(frame);
  std::string out = "stale";
  EXPECT_TRUE(get_column(r, &out, SIZE_MAX)) << "column of " << column.size() << " bytes";
  EXPECT_TRUE(r.ok() && r.at_end());
  return out;
}

std::string prose(std::size_t bytes) {
  static const char* words[] = {"the", "replica", "sends", "its", "ops", "and", "every", "peer", "merges",
                                "them", "in", "any", "order,", "so", "text", "converges.\n", "Edits", "of"};
  std::mt19937 rng(7);
  std::string s;
  while (s.size() < bytes) {
    s += words[rng() % std::size(words)];
    s += ' ';
  }
  s.resize(bytes);
  return s;
}

TEST(EntropyCoder, EveryColumnComesBackExactly) {
  std::mt19937 rng(1);
  std::string random_bytes(5000, '\0');
  for (char& c : random_bytes) c = static_cast<char>(rng());
  std::string skewed(20000, '\0');  // like a flags column: few values, uneven
  for (char& c : skewed) c = static_cast<char>(rng() % 16 == 0 ? rng() % 64 : 5);
  const std::string cases[] = {"",
                               "x",
                               std::string(31, 'a'),
                               std::string(32, 'a'),
                               std::string(100000, ' '),
                               random_bytes,
                               skewed,
                               prose(50000),
                               "na\xC3\xAFve \xF0\x9F\x98\x80 " + prose(3000)};
  for (const std::string& c : cases) EXPECT_EQ(round_trip(c), c);
}

TEST(EntropyCoder, ChoosesTheCodingThatPays) {
  EXPECT_EQ(method_of(framed("short")), 0);  // raw: a table would cost more
  std::mt19937 rng(2);
  std::string random_bytes(5000, '\0');
  for (char& c : random_bytes) c = static_cast<char>(rng());
  EXPECT_EQ(method_of(framed(random_bytes)), 0);
  EXPECT_LE(framed(random_bytes).size(), random_bytes.size() + 4);
  std::string skewed(20000, '\0');
  for (char& c : skewed) c = static_cast<char>(rng() % 16 == 0 ? rng() % 64 : 5);
  EXPECT_LT(framed(skewed).size(), skewed.size() / 3);
  // Prose repeats words: matches win over the byte code alone.
  const std::string text = prose(50000);
  EXPECT_EQ(method_of(framed(text)), 2);
  EXPECT_LT(framed(text).size(), text.size() / 3);
  // A megabyte of one character costs under a hundredth of itself.
  EXPECT_LT(framed(std::string(1 << 20, ' ')).size(), 10000u);
}

// Damage is caught by the snapshot's CRC (Snapshot.RejectsEveryBitFlip); a
// column only has to survive it: no read past its input, no output of
// another size than it states, and most damage still refused by structure.
TEST(EntropyCoder, RefusesEveryTruncationAndSurvivesDamage) {
  std::mt19937 rng(3);
  std::string skewed(3000, '\0');
  for (char& c : skewed) c = static_cast<char>(rng() % 8 == 0 ? rng() % 64 : 5);
  for (const std::string& column : {prose(4000), std::string(3000, 'q') + prose(500), skewed}) {
    const std::string frame = framed(column);
    ASSERT_NE(method_of(frame), 0);
    for (std::size_t n = 0; n < frame.size(); ++n) {
      byte_reader r(std::string_view(frame).substr(0, n));
      std::string out;
      EXPECT_FALSE(get_column(r, &out, SIZE_MAX)) << "truncated to " << n;
    }
    std::size_t refused = 0, flips = frame.size() * 8;
    for (std::size_t bit = 0; bit < flips; ++bit) {
      std::string bad = frame;
      bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
      byte_reader r(bad);
      std::string out;
      if (!get_column(r, &out, SIZE_MAX)) {
        ++refused;
        continue;
      }
      byte_reader size(bad);
      EXPECT_EQ(out.size(), size.varint()) << "bit " << bit;
    }
    EXPECT_GT(refused, flips / 3) << "method " << method_of(frame);
  }
}

TEST(EntropyCoder, RefusesSizesItsCodingCannotJustify) {
  // 2^40 bytes claimed from a handful: refused before any allocation.
  for (std::uint8_t method : {1, 2}) {
    byte_writer w;
    w.varint(std::uint64_t{1} << 40);
    w.u8(method);
    w.varint(1);  // one symbol
    w.u8(1);      // of length 1
    if (method == 2) w.varint(0);  // no distance codes
    w.varint(4);
    w.bytes(std::string_view("\0\0\0\0", 4));
    byte_reader r(w.str());
    std::string out;
    EXPECT_FALSE(get_column(r, &out, SIZE_MAX)) << "method " << int{method};
    EXPECT_LT(out.capacity(), 1u << 20);
  }
  // And a caller's own bound holds for every method.
  const std::string frame = framed(prose(10000));
  byte_reader r(frame);
  std::string out;
  EXPECT_FALSE(get_column(r, &out, 9999));
}

// The farthest match the format allows (2^22 bytes back) with the longest
// distance code (12 bits) needs 33 bits after its length: the decoder must
// have them at every bit alignment. Hand-made streams: P + 2^22 literal
// "a"s (code 0, one bit), then a 4-byte match (length code 1, one bit) at
// distance 2^22 (bucket 43: code 0 of 12 bits, 21 zero extra bits), then
// 128 more "a"s, so that the reader is not at the stream's end.
TEST(EntropyCoder, TheFarthestMatchDecodesAtEveryAlignment) {
  constexpr std::size_t far = std::size_t{1} << 22, tail = 128;
  for (std::size_t prefix = 0; prefix < 64; ++prefix) {
    byte_writer w;
    w.varint(prefix + far + 4 + tail);
    w.u8(2);
    w.varint(257);  // literal/length code lengths: 'a' and symbol 256 one bit each
    for (int sym = 0; sym < 257; sym += 2) {
      auto len = [](int k) { return k == 'a' || k == 256 ? 1 : 0; };
      w.u8(static_cast<std::uint8_t>(len(sym) | (sym + 1 < 257 ? len(sym + 1) << 4 : 0)));
    }
    w.varint(44);  // distance code lengths: symbol 43 twelve bits
    for (int sym = 0; sym < 44; sym += 2) w.u8(sym + 1 == 43 ? 12 << 4 : 0);
    const std::size_t bits = prefix + far + 1 + 12 + 21 + tail;
    std::string stream((bits + 7) / 8, '\0');
    const std::size_t one = prefix + far;
    stream[one / 8] = static_cast<char>(1 << (one % 8));
    w.varint(stream.size());
    w.bytes(stream);
    byte_reader r(w.str());
    std::string out;
    ASSERT_TRUE(get_column(r, &out, SIZE_MAX)) << "prefix " << prefix;
    ASSERT_EQ(out.size(), prefix + far + 4 + tail);
    ASSERT_EQ(out.find_first_not_of('a'), std::string::npos);
  }
}

TEST(EntropyCoder, Crc32IsZlibs) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);  // the standard check value
  EXPECT_EQ(crc32(""), 0u);
  // Lengths around the eight-byte fast path agree with a byte-wise CRC.
  std::string s = prose(100);
  for (std::size_t n = 0; n <= s.size(); ++n) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) {
      c ^= static_cast<std::uint8_t>(s[i]);
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    EXPECT_EQ(crc32(std::string_view(s).substr(0, n)), c ^ 0xFFFFFFFFu) << n;
  }
}

}  // namespace
}  // namespace weft::detail
