// Snapshots written by hand, CRC and all, as an attacker or a bug would:
// the decoder must refuse what no replica could have written, and must not
// allocate what the bytes cannot justify.
#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "core/byte_io.h"
#include "core/entropy_coder.h"
#include "test_util.h"

// The largest single allocation while `tracking` is on: the unaligned forms
// of operator new and delete are replaced for this test binary, all of them
// (a library that allocates with one form and frees with another must meet
// the same allocator), and the replacement only records sizes.
namespace {
bool tracking = false;
std::size_t largest_allocation = 0;
void* tracked_malloc(std::size_t n) noexcept {
  if (tracking && n > largest_allocation) largest_allocation = n;
  return std::malloc(n ? n : 1);
}
}  // namespace
void* operator new(std::size_t n) {
  if (void* p = tracked_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = tracked_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return tracked_malloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return tracked_malloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace weft::test {
namespace {

using detail::byte_writer;

std::string with_header_and_crc(std::uint8_t version, const std::string& body) {
  byte_writer w;
  w.bytes("WEFT");
  w.u8(version);
  w.u8('S');
  w.bytes(body);
  w.fixed32(detail::crc32(w.str()));
  return w.str();
}

// A version-1 snapshot of one replica (id 7): runs "abcd" (ids 1-4, visible)
// and id 5 (deleted, left origin 4), highest `highest`, and the history as
// written by `history` (entry count first).
std::string v1_snapshot(std::uint64_t highest, void (*history)(byte_writer&)) {
  byte_writer b;
  b.varint(1);  // replicas
  b.varint(7);
  b.varint(highest);
  b.varint(2);  // runs
  b.u8(0);      // visible, new replica, no origins
  b.varint(0);
  b.zigzag(0);  // counter 1
  b.varint(4);
  b.u8(1 | 2 | (1 << 2));  // deleted, same replica, left origin adjacent
  b.zigzag(0);             // counter 5
  b.varint(1);
  b.varint(4);
  b.bytes("abcd");
  history(b);
  return with_header_and_crc(1, b.str());
}

// History entries: (replica << 1 | erase), zigzag (counter - end of the
// replica's previous entry), length; an erase's targets follow.
void insert_entry(byte_writer& b, std::int64_t counter_delta, std::uint64_t length) {
  b.varint(0);
  b.zigzag(counter_delta);
  b.varint(length);
}
void erase_entry(byte_writer& b, std::uint64_t target, std::int64_t entry_counter) {
  b.varint(1);
  b.zigzag(0);
  b.varint(1);
  b.varint(1);  // one target span
  b.varint(0);
  b.zigzag(static_cast<std::int64_t>(target) - entry_counter);
  b.varint(1 << 1);  // length 1, forward
}

TEST(ForgedSnapshot, TheHandWrittenBaselineLoads) {
  // Insert 1-5, then the erase (id 6) of character 5.
  auto d = document::decode_snapshot(v1_snapshot(6, [](byte_writer& b) {
                                       b.varint(2);
                                       insert_entry(b, 0, 5);
                                       erase_entry(b, 5, 6);
                                     }),
                                     1);
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d.value().text(), "abcd");
  EXPECT_EQ(d.value().check_invariants(), "");
}

TEST(ForgedSnapshot, OverlappingHistoryIsRefused) {
  // Inserts 1-3 and again 1-2, the erase twice: the totals match the
  // version, the ids do not (a fresh peer replaying it would get "abc").
  auto d = document::decode_snapshot(v1_snapshot(7, [](byte_writer& b) {
                                       b.varint(4);
                                       insert_entry(b, 0, 3);
                                       insert_entry(b, -3, 2);
                                       b.varint(1);  // erase id 6 of character 5 (counter delta from 3)
                                       b.zigzag(3);
                                       b.varint(1);
                                       b.varint(1);
                                       b.varint(0);
                                       b.zigzag(-1);
                                       b.varint(2);
                                       erase_entry(b, 5, 7);
                                     }),
                                     1);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), error_code::corrupt_data) << d.error().to_string();
}

TEST(ForgedSnapshot, AnEraseOfAVisibleCharacterIsRefused) {
  auto d = document::decode_snapshot(v1_snapshot(6, [](byte_writer& b) {
                                       b.varint(2);
                                       insert_entry(b, 0, 5);
                                       erase_entry(b, 4, 6);  // "d" is visible
                                     }),
                                     1);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), error_code::corrupt_data) << d.error().to_string();
}

// A version-2 snapshot whose run-flag column claims 30 MB while its header
// claims one run: a few kB of matches can say that, and the decoder must
// refuse before allocating for it.
TEST(ForgedSnapshot, AColumnLongerThanItsCountsIsRefusedBeforeAllocating) {
  byte_writer b;
  b.varint(1);
  b.varint(7);
  b.varint(1);  // highest 1
  b.varint(1);  // runs
  b.varint(1);  // entries
  b.varint(0);  // target spans
  detail::put_column(b, std::string(30u << 20, '\0'));
  for (int c = 1; c < 13; ++c) detail::put_column(b, {});
  const std::string bytes = with_header_and_crc(2, b.str());
  ASSERT_LT(bytes.size(), 200000u);
  largest_allocation = 0;
  tracking = true;
  auto d = document::decode_snapshot(bytes, 1);
  tracking = false;
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), error_code::corrupt_data) << d.error().to_string();
  EXPECT_LT(largest_allocation, 1u << 20) << "the decoder allocated for what the header ruled out";
}

TEST(ForgedSnapshot, CountsBeyondTheIdsAreRefused) {
  byte_writer b;
  b.varint(1);
  b.varint(7);
  b.varint(3);                   // highest 3: at most 3 runs, entries, spans
  b.varint(std::uint64_t{1} << 40);  // runs
  b.varint(1);
  b.varint(0);
  largest_allocation = 0;
  tracking = true;
  auto d = document::decode_snapshot(with_header_and_crc(2, b.str()), 1);
  tracking = false;
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), error_code::corrupt_data) << d.error().to_string();
  EXPECT_LT(largest_allocation, 1u << 20);
}

}  // namespace
}  // namespace weft::test
