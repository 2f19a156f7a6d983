#include <gtest/gtest.h>

#include <random>

#include "test_util.h"
#include "weft/encoding.h"

namespace weft::test {
namespace {

document sample() {
  document a(11), b(22);
  std::vector<operation> ops;
  ops.push_back(must_insert(a, 0, "Hello, wörld! 😀"));
  must_apply(b, ops.back());
  ops.push_back(must_insert(b, 5, " there"));
  ops.push_back(must_erase(a, 0, 1));
  ops.push_back(must_insert(a, 0, "J"));
  for (int i = 0; i < 5; ++i) ops.push_back(must_erase(a, a.length() - 1, 1));  // backspaces
  for (const auto& op : ops) (void)b.apply(op);
  for (const auto& op : a.ops_since(version_vector{})) (void)b.apply(op);
  for (const auto& op : b.ops_since(a.version())) must_apply(a, op);
  return a;
}

TEST(Snapshot, RoundTrip) {
  document a = sample();
  std::string bytes = a.encode_snapshot();
  auto r = document::decode_snapshot(bytes, a.replica());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  document& b = r.value();
  EXPECT_EQ(b.text(), a.text());
  EXPECT_EQ(b.version(), a.version());
  EXPECT_EQ(b.check_invariants(), "");
  // Encoding is deterministic, and the decoded replica keeps editing.
  EXPECT_EQ(b.encode_snapshot(), bytes);
  auto op = must_insert(b, 0, ">");
  EXPECT_EQ(op.id.counter, a.version().get(a.replica()) + 1);
  must_apply(a, op);
  EXPECT_EQ(a.text(), b.text());
}

TEST(Snapshot, RestoredReplicaServesSync) {
  document a = sample();
  auto b = document::decode_snapshot(a.encode_snapshot(), 99).value();
  document fresh(5);
  for (const auto& op : b.ops_since(version_vector{})) must_apply(fresh, op);
  EXPECT_EQ(fresh.text(), a.text());
  EXPECT_EQ(fresh.version(), a.version());
}

TEST(Snapshot, EmptyDocument) {
  document a(1);
  auto b = document::decode_snapshot(a.encode_snapshot(), 1);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.value().text(), "");
}

TEST(Snapshot, RejectsEveryTruncation) {
  std::string bytes = sample().encode_snapshot();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = document::decode_snapshot(std::string_view(bytes).substr(0, n), 1);
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
  }
}

TEST(Snapshot, RejectsEveryBitFlip) {
  std::string bytes = sample().encode_snapshot();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string c = bytes;
      c[i] = static_cast<char>(c[i] ^ (1 << bit));
      auto r = document::decode_snapshot(c, 1);
      EXPECT_FALSE(r.ok()) << "flip at " << i << ":" << bit;
    }
  }
}

// A snapshot stays small however many ids it holds, so the decoder checks
// the id count against the caller's limit before allocating the id index
// (the fuzz target found a few bytes that made it allocate 16 GB).
TEST(Snapshot, RefusesMoreIdsThanTheLimitBeforeAllocating) {
  document a(4);
  must_insert(a, 0, std::string(1000, 'x'));
  must_erase(a, 0, 1000);
  const std::string bytes = a.encode_snapshot();
  ASSERT_LT(bytes.size(), 100u);
  document_options options;
  options.max_snapshot_ids = 1999;
  auto refused = document::decode_snapshot(bytes, 4, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), error_code::limit_exceeded) << refused.error().to_string();
  options.max_snapshot_ids = 2000;
  auto loaded = document::decode_snapshot(bytes, 4, options);
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  EXPECT_EQ(loaded.value().version().get(4), 2000u);
}

TEST(Snapshot, RejectsWrongVersionAndKind) {
  std::string bytes = sample().encode_snapshot();
  std::string v = bytes;
  v[4] = 9;
  EXPECT_EQ(document::decode_snapshot(v, 1).code(), error_code::unsupported_version);
  std::vector<operation> none;
  EXPECT_EQ(document::decode_snapshot(encode_ops(none), 1).code(), error_code::corrupt_data);
  EXPECT_EQ(document::decode_snapshot("garbage!garbage!", 1).code(), error_code::corrupt_data);
}

TEST(OpBatch, RoundTrip) {
  document a = sample();
  auto ops = a.ops_since(version_vector{});
  std::string bytes = encode_ops(ops);
  auto r = decode_ops(bytes);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), ops);
  bool has_tombstone = false;
  for (const auto& op : ops) has_tombstone |= op.kind == op_kind::tombstone;
  EXPECT_TRUE(has_tombstone);
  document b(3);
  for (const auto& op : r.value()) must_apply(b, op);
  EXPECT_EQ(b.text(), a.text());
}

TEST(OpBatch, RejectsCorruption) {
  auto ops = sample().ops_since(version_vector{});
  std::string bytes = encode_ops(ops);
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_ops(bytes.substr(0, n)).ok());
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string c = bytes;
    c[rng() % c.size()] ^= static_cast<char>(1 + rng() % 255);
    EXPECT_FALSE(decode_ops(c).ok());
  }
}

}  // namespace
}  // namespace weft::test
