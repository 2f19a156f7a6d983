#include <gtest/gtest.h>

#include "test_util.h"

namespace weft::test {
namespace {

using state = apply_outcome::state;

TEST(Causal, OutOfOrderOpIsBufferedThenApplied) {
  document a(1), b(2);
  auto o1 = must_insert(a, 0, "ab");
  auto o2 = must_insert(a, 2, "cd");
  auto o3 = must_erase(a, 1, 2);
  EXPECT_EQ(must_apply(b, o3).result, state::buffered);
  EXPECT_EQ(must_apply(b, o2).result, state::buffered);
  EXPECT_EQ(b.pending_ops(), 2u);
  EXPECT_EQ(b.text(), "");
  std::vector<text_change> ch;
  std::vector<operation> applied;
  auto r = b.apply(o1, &ch, &applied);
  ASSERT_TRUE(r.ok());
  auto out = r.value();
  ASSERT_EQ(applied.size(), 3u);  // in causal order, for rebroadcast
  EXPECT_EQ(applied[0], o1);
  EXPECT_EQ(applied[1], o2);
  EXPECT_EQ(applied[2], o3);
  EXPECT_EQ(out.result, state::applied);
  EXPECT_EQ(out.ops_applied, 3u);
  EXPECT_EQ(b.pending_ops(), 0u);
  EXPECT_EQ(b.text(), "ad");
  EXPECT_EQ(apply_changes("", ch), "ad");
}

TEST(Causal, WaitsForOtherReplicasCharacters) {
  document a(1), b(2), c(3);
  auto oa = must_insert(a, 0, "hello");
  must_apply(b, oa);
  auto ob = must_insert(b, 5, "!");  // depends on a's text
  EXPECT_EQ(must_apply(c, ob).result, state::buffered);
  EXPECT_FALSE(c.knows(ob.id));
  must_apply(c, oa);
  EXPECT_TRUE(c.knows(ob.id));
  EXPECT_EQ(c.text(), "hello!");
}

TEST(Causal, DuplicatesAreIgnored) {
  document a(1), b(2);
  auto o1 = must_insert(a, 0, "abc");
  auto o2 = must_erase(a, 0, 1);
  must_apply(b, o1);
  must_apply(b, o2);
  EXPECT_EQ(must_apply(b, o1).result, state::duplicate);
  EXPECT_EQ(must_apply(b, o2).result, state::duplicate);
  EXPECT_EQ(b.text(), "bc");
  // A duplicate while buffered is stored once.
  document c(3);
  EXPECT_EQ(must_apply(c, o2).result, state::buffered);
  EXPECT_EQ(must_apply(c, o2).result, state::buffered);
  EXPECT_EQ(c.pending_ops(), 1u);
  must_apply(c, o1);
  EXPECT_EQ(c.text(), "bc");
  EXPECT_EQ(c.pending_ops(), 0u);
}

TEST(Causal, PartlyKnownOpsApplyTheirUnknownPart) {
  document a(1), b(2);
  auto o1 = must_insert(a, 0, "abc");
  must_apply(b, o1);
  // A merged op covering ids 1..6 (as a server might send after merging runs).
  operation merged = o1;
  merged.text = "abcdef";
  must_insert(a, 3, "def");
  EXPECT_EQ(must_apply(b, merged).result, state::applied);
  EXPECT_EQ(b.text(), "abcdef");
  EXPECT_EQ(b.version(), a.version());
}

TEST(Causal, OwnOpsEchoedBackAreDuplicates) {
  document a(1);
  auto o = must_insert(a, 0, "x");
  EXPECT_EQ(must_apply(a, o).result, state::duplicate);
  EXPECT_EQ(a.text(), "x");
}

TEST(Causal, PendingBufferIsBounded) {
  document_options opt;
  opt.max_pending_ops = 4;
  document a(1), b(2, opt);
  std::vector<operation> ops;
  for (int i = 0; i < 7; ++i) ops.push_back(must_insert(a, 0, "x"));
  for (int i = 1; i <= 4; ++i) EXPECT_EQ(must_apply(b, ops[static_cast<std::size_t>(i)]).result, state::buffered);
  auto r = b.apply(ops[5]);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), error_code::pending_buffer_full);
  EXPECT_EQ(b.pending_ops(), 4u);
  must_apply(b, ops[0]);
  EXPECT_EQ(b.pending_ops(), 0u);
  must_apply(b, ops[5]);
  must_apply(b, ops[6]);
  EXPECT_EQ(b.text(), a.text());
}

TEST(Causal, SyncSendsDeletedCharactersAsTombstones) {
  document a(1), b(2);
  must_insert(a, 0, "hello world");
  must_erase(a, 0, 6);
  auto ops = a.ops_since(version_vector{});
  bool saw_tombstone = false;
  for (const auto& op : ops) {
    if (op.kind == op_kind::tombstone) {
      saw_tombstone = true;
      EXPECT_TRUE(op.text.empty());
      EXPECT_EQ(op.count, 6u);
    }
    EXPECT_NE(op.text.find("hello"), 0u) << "deleted text must not travel";
  }
  EXPECT_TRUE(saw_tombstone);
  for (const auto& op : ops) must_apply(b, op);
  EXPECT_EQ(b.text(), "world");
  EXPECT_EQ(b.version(), a.version());
}

TEST(Causal, TombstoneForKnownCharactersDeletesThemEarly) {
  document a(1), b(2), c(3);
  auto ins = must_insert(a, 0, "abc");
  must_apply(c, ins);
  must_erase(a, 1, 1);
  // c knows "abc"; a tombstone for 'b' (from a's sync answer to someone who
  // lacked it) arriving before the erase itself removes 'b' already.
  operation t;
  t.kind = op_kind::tombstone;
  t.id = op_id{1, 2};
  t.origin_left = op_id{1, 1};
  t.count = 1;
  std::vector<text_change> ch;
  EXPECT_EQ(must_apply(c, t, &ch).result, apply_outcome::state::duplicate);
  EXPECT_EQ(c.text(), "ac");
  EXPECT_EQ(apply_changes("abc", ch), "ac");
  for (const auto& op : a.ops_since(c.version())) must_apply(c, op);
  EXPECT_EQ(c.text(), a.text());
  (void)b;
}

// A refused op changes nothing: not even the known prefix of a tombstone
// (which marks characters deleted) when the rest of it is refused.
TEST(Causal, ARefusedTombstoneDeletesNothing) {
  document a(1), b(2), c(3);
  must_apply(c, must_insert(a, 0, "abc"));
  must_apply(c, must_insert(b, 0, "x"));
  must_apply(c, must_erase(b, 0, 1));  // (2,2) is an erase: known, but not a character
  ASSERT_EQ(c.text(), "abc");
  operation t;
  t.kind = op_kind::tombstone;
  t.id = op_id{1, 2};  // ids 2..5: 2 and 3 known ('b', 'c'), 4 and 5 new
  t.origin_left = op_id{1, 1};
  t.origin_right = op_id{2, 2};  // not a character: the new part cannot be placed
  t.count = 4;
  std::vector<text_change> ch;
  auto r = c.apply(t, &ch);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(c.text(), "abc");
  EXPECT_TRUE(ch.empty());
  EXPECT_EQ(c.version().get(1), 3u);
  EXPECT_TRUE(c.check_invariants().empty()) << c.check_invariants();
}

TEST(Causal, HugeOpsAreRefusedNotAllocated) {
  document d(1);
  operation t;
  t.kind = op_kind::tombstone;
  t.id = op_id{5, 1};
  t.count = 4000000000ull;  // would need a 16 GB id index
  EXPECT_EQ(d.apply(t).code(), error_code::limit_exceeded);
  operation e;
  e.kind = op_kind::erase;
  e.id = op_id{5, 1};
  e.targets = {id_span{1, 1, 3000000000ull}};  // would loop for billions of ids
  EXPECT_EQ(d.apply(e).code(), error_code::limit_exceeded);
  document_options small;
  small.max_op_ids = 4;
  document s(2, small);
  EXPECT_EQ(s.insert(0, "hello").code(), error_code::limit_exceeded);
  EXPECT_EQ(s.text(), "");
}

TEST(Causal, SyncSplitsLargeRunsIntoBoundedOps) {
  document a(1);
  must_insert(a, 0, std::string(200000, 'x'));
  for (int i = 0; i < 3; ++i) must_insert(a, a.length(), std::string(100000, 'y'));  // one run, 500k long
  must_erase(a, 1000, 150000);
  auto ops = a.ops_since(version_vector{});
  for (const auto& op : ops) EXPECT_LE(op.length(), 65536u);
  document_options strict;
  strict.max_op_ids = 65536;
  document b(2, strict);
  for (const auto& op : ops) must_apply(b, op);
  EXPECT_EQ(b.text(), a.text());
  EXPECT_EQ(b.version(), a.version());
}

TEST(Causal, RejectsMalformedOps) {
  document a(1), b(2);
  auto ok = must_insert(a, 0, "abc");
  must_apply(b, ok);
  std::string expected = "abc";
  auto expect_invalid = [&](operation op, const char* why) {
    auto r = b.apply(op);
    EXPECT_FALSE(r.ok()) << why;
    EXPECT_EQ(b.text(), expected) << why;
    EXPECT_EQ(b.check_invariants(), "") << why;
  };
  operation op;
  op.kind = op_kind::insert;
  op.id = op_id{5, 0};
  op.text = "x";
  expect_invalid(op, "counter 0");
  op.id = op_id{max_replica_id + 1, 1};
  expect_invalid(op, "replica too large");
  op.id = op_id{5, 1};
  op.text = "";
  expect_invalid(op, "empty text");
  op.text = "\xc3";
  expect_invalid(op, "bad utf-8");
  op.text = "x";
  op.origin_left = op_id{5, 1};
  expect_invalid(op, "self origin");
  // Origin that is a deletion id, not a character.
  auto del = must_erase(a, 0, 1);
  must_apply(b, del);
  expected = "bc";
  op.origin_left = del.id;
  expect_invalid(op, "origin is a deletion");
  // Right origin before left origin.
  op.origin_left = op_id{1, 3};
  op.origin_right = op_id{1, 1};
  expect_invalid(op, "origins out of order");
  operation e;
  e.kind = op_kind::erase;
  e.id = op_id{5, 1};
  expect_invalid(e, "erase without targets");
  e.targets = {id_span{1, 2, 0}};
  expect_invalid(e, "zero-length target");
  e.targets = {id_span{1, 4, 1}};  // a deletion id
  expect_invalid(e, "target is a deletion");
  // The valid version of the same replica's first op still applies afterwards;
  // concurrent with replica 1's text at the start, it sorts after it (1 < 5).
  operation good;
  good.kind = op_kind::insert;
  good.id = op_id{5, 1};
  good.text = "z";
  must_apply(b, good);
  EXPECT_EQ(b.text(), "bcz");
}

}  // namespace
}  // namespace weft::test
