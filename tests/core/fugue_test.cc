// The interleaving examples of "The Art of the Fugue" (Weidner & Kleppmann)
// and the related puzzles from Gentle's reference-crdts test-suite, expressed
// as remote inserts with explicit origins and applied in many random orders:
// FugueMax must give the same, non-interleaved result every time.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "test_util.h"

namespace weft::test {
namespace {

// Replica ids are the ASCII codes of one-letter agent names, so numeric
// order equals the name order the expected results assume.
constexpr replica_id agent(char c) { return static_cast<replica_id>(c); }

struct item {
  std::string text;
  op_id id;
  std::optional<op_id> left, right;
};

op_id id(char a, std::uint64_t c) { return op_id{agent(a), c + 1}; }

operation to_op(const item& it) {
  operation op;
  op.kind = op_kind::insert;
  op.id = it.id;
  op.origin_left = it.left;
  op.origin_right = it.right;
  op.text = it.text;
  return op;
}

// Applies the items in 200 random orders (the causal buffer accepts any
// order) and checks every result.
void expect_order(const std::vector<item>& items, const std::string& expected) {
  std::mt19937_64 rng(42);
  std::vector<std::size_t> order(items.size());
  for (int round = 0; round < 200; ++round) {
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    document d(999);
    for (std::size_t i : order) must_apply(d, to_op(items[i]));
    ASSERT_EQ(d.pending_ops(), 0u);
    ASSERT_EQ(d.text(), expected) << "round " << round;
    ASSERT_EQ(d.check_invariants(), "");
  }
}

TEST(Fugue, ConcurrentInsertsAtStartOrderByReplica) {
  expect_order({{"a", id('A', 0), {}, {}}, {"b", id('B', 0), {}, {}}}, "ab");
}

TEST(Fugue, ForwardTypingDoesNotInterleave) {
  expect_order({{"a", id('A', 0), {}, {}},
                {"a", id('A', 1), id('A', 0), {}},
                {"a", id('A', 2), id('A', 1), {}},
                {"b", id('B', 0), {}, {}},
                {"b", id('B', 1), id('B', 0), {}},
                {"b", id('B', 2), id('B', 1), {}}},
               "aaabbb");
}

TEST(Fugue, ForwardTypingDoesNotInterleaveWhateverTheIds) {
  expect_order({{"a", id('A', 0), {}, {}},
                {"a", id('X', 0), id('A', 0), {}},
                {"a", id('Y', 0), id('X', 0), {}},
                {"b", id('B', 0), {}, {}},
                {"b", id('C', 0), id('B', 0), {}},
                {"b", id('D', 0), id('C', 0), {}}},
               "aaabbb");
}

TEST(Fugue, BackwardTypingDoesNotInterleave) {
  expect_order({{"a", id('A', 0), {}, {}},
                {"a", id('A', 1), {}, id('A', 0)},
                {"a", id('A', 2), {}, id('A', 1)},
                {"b", id('B', 0), {}, {}},
                {"b", id('B', 1), {}, id('B', 0)},
                {"b", id('B', 2), {}, id('B', 1)}},
               "aaabbb");
}

TEST(Fugue, BackwardTypingByDifferentReplicas) {
  expect_order({{"a", id('A', 0), {}, {}},
                {"a", id('X', 0), {}, id('A', 0)},
                {"b", id('B', 0), {}, {}},
                {"b", id('B', 1), {}, id('B', 0)}},
               "aabb");
}

TEST(Fugue, WordsWithTailsStayTogether) {
  expect_order({{"a", id('A', 0), {}, {}},
                {"<", id('A', 1), {}, id('A', 0)},
                {">", id('A', 2), id('A', 0), {}},
                {"b", id('B', 0), {}, {}},
                {"[", id('B', 1), {}, id('B', 0)},
                {"]", id('B', 2), id('B', 0), {}}},
               "<a>[b]");
}

TEST(Fugue, WordsWithTailsByOtherReplicas) {
  expect_order({{"a", id('A', 0), {}, {}},
                {"<", id('A', 1), {}, id('A', 0)},
                {">", id('A', 2), id('A', 0), {}},
                {"b", id('B', 0), {}, {}},
                {"[", id('1', 0), {}, id('B', 0)},
                {"]", id('B', 1), id('B', 0), {}}},
               "<a>[b]");
}

TEST(Fugue, LocalChangeBetweenConcurrentOnes) {
  expect_order({{"a", id('A', 0), {}, {}},
                {"b", id('B', 0), {}, {}},
                {"c", id('C', 0), {}, {}},
                {"d", id('D', 0), id('A', 0), id('C', 0)}},
               "adbc");
}

// The paper's motivating example, through the document API: two users type a
// word at the same place while offline, forwards and backwards.
TEST(Fugue, ConcurrentWordsThroughTheApi) {
  for (bool backwards : {false, true}) {
    document base(1);
    must_insert(base, 0, "Shopping: ");
    document alice = base, bob = base;
    alice = document::decode_snapshot(base.encode_snapshot(), 2).value();
    bob = document::decode_snapshot(base.encode_snapshot(), 3).value();
    std::vector<operation> from_alice, from_bob;
    const std::string w1 = "milk", w2 = "eggs";
    for (std::size_t i = 0; i < 4; ++i) {
      if (backwards) {
        from_alice.push_back(must_insert(alice, 10, w1.substr(3 - i, 1)));
        from_bob.push_back(must_insert(bob, 10, w2.substr(3 - i, 1)));
      } else {
        from_alice.push_back(must_insert(alice, 10 + i, w1.substr(i, 1)));
        from_bob.push_back(must_insert(bob, 10 + i, w2.substr(i, 1)));
      }
    }
    for (const auto& op : from_bob) must_apply(alice, op);
    for (const auto& op : from_alice) must_apply(bob, op);
    EXPECT_EQ(alice.text(), bob.text());
    EXPECT_TRUE(alice.text() == "Shopping: milkeggs" || alice.text() == "Shopping: eggsmilk") << alice.text();
  }
}

}  // namespace
}  // namespace weft::test
