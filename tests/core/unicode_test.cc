#include <gtest/gtest.h>

#include "test_util.h"
#include "weft/unicode.h"

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
