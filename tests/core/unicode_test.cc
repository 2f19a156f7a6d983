#include <gtest/gtest.h>

#include <random>
#include <string>

#include "test_util.h"
#include "weft/unicode.h"
#include "core/utf8.h"

namespace weft::test {
namespace {

TEST(Unicode, Validation) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("é中😀"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));  // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\x80"));
}

TEST(Unicode, Offsets) {
  const std::string s = "a😀é中b";  // code points: a 😀 é 中 b
  EXPECT_EQ(count_code_points(s), 5u);
  EXPECT_EQ(utf16_length(s), 6u);
  EXPECT_EQ(utf8_offset_of_code_point(s, 2), 5u);
  EXPECT_EQ(utf16_offset_of_code_point(s, 2), 3u);
  EXPECT_EQ(utf16_offset_of_code_point(s, 5), 6u);
  EXPECT_EQ(code_point_of_utf16_offset(s, 3), 2u);
  EXPECT_EQ(code_point_of_utf16_offset(s, 2), 1u);  // inside the surrogate pair: rounds down
  EXPECT_EQ(code_point_of_utf16_offset(s, 99), 5u);
}

TEST(Unicode, DocumentCountsCodePoints) {
  document d(1);
  must_insert(d, 0, "😀😀");
  must_insert(d, 1, "é");
  EXPECT_EQ(d.length(), 3u);
  EXPECT_EQ(d.text(), "😀é😀");
  must_erase(d, 0, 1);
  EXPECT_EQ(d.text(), "é😀");
}

}  // namespace
}  // namespace weft::test

namespace weft::test {
namespace {

// count_cp counts eight bytes at a time: every length, alignment and mix of
// one- to four-byte characters must give what a byte-by-byte count gives.
TEST(Unicode, CountingCodePointsMatchesAByteByByteCount) {
  const char* pieces[] = {"a", "é", "日", "😀", " ", "ß"};
  std::mt19937 rng(5);
  for (int round = 0; round < 300; ++round) {
    std::string s;
    std::uint64_t want = 0;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) {
      s += pieces[rng() % std::size(pieces)];
      ++want;
    }
    for (std::size_t skip = 0; skip <= s.size(); ++skip) {
      std::string_view v = std::string_view(s).substr(skip);
      std::uint64_t naive = 0;
      for (char c : v) naive += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
      ASSERT_EQ(detail::count_cp(v), naive) << "round " << round << " skip " << skip;
    }
    ASSERT_EQ(detail::count_cp(s), want);
  }
}

}  // namespace
}  // namespace weft::test
