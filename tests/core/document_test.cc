#include <gtest/gtest.h>

#include <random>

#include "test_util.h"
#include "weft/document.h"
#include "weft/unicode.h"

namespace weft::test {

std::string apply_changes(std::string text, const std::vector<text_change>& changes) {
  for (const auto& c : changes) {
    std::size_t b = utf8_offset_of_code_point(text, c.position);
    if (c.type == text_change::kind::insert) {
      text.insert(b, c.text);
    } else {
      std::size_t e = utf8_offset_of_code_point(text, c.position + c.length);
      text.erase(b, e - b);
    }
  }
  return text;
}

namespace {

TEST(Document, EmptyDocument) {
  document d(1);
  EXPECT_EQ(d.text(), "");
  EXPECT_EQ(d.length(), 0u);
  EXPECT_TRUE(d.version().empty());
  EXPECT_EQ(d.check_invariants(), "");
}

TEST(Document, LocalInsertAndErase) {
  document d(7);
  auto op = must_insert(d, 0, "hello");
  EXPECT_EQ(op.kind, op_kind::insert);
  EXPECT_EQ(op.id, (op_id{7, 1}));
  EXPECT_FALSE(op.origin_left);
  EXPECT_FALSE(op.origin_right);
  must_insert(d, 5, " world");
  must_insert(d, 5, ",");
  EXPECT_EQ(d.text(), "hello, world");
  auto del = must_erase(d, 0, 7);
  EXPECT_EQ(del.kind, op_kind::erase);
  EXPECT_EQ(del.length(), 7u);
  EXPECT_EQ(d.text(), "world");
  EXPECT_EQ(d.version().get(7), 5u + 6u + 1u + 7u);
  EXPECT_EQ(d.check_invariants(), "");
}

TEST(Document, IdsMapToPositionsAndBack) {
  document a(3), b(9);
  const operation hello = must_insert(a, 0, "héllo");  // ids (3,1)..(3,5)
  must_apply(b, hello);
  const operation x = must_insert(b, 2, "XY");  // between 'é' and 'l'
  must_apply(a, x);
  const operation del = must_erase(a, 0, 1);  // 'h', id (3,6) is the erase's
  EXPECT_EQ(a.text(), "éXYllo");
  EXPECT_EQ(a.position_of(op_id{3, 2}), 0u);
  EXPECT_EQ(a.position_of(x.id), 1u);
  EXPECT_EQ(a.position_of(op_id{9, 2}), 2u);
  EXPECT_EQ(a.position_of(op_id{3, 5}), 5u);
  EXPECT_FALSE(a.position_of(op_id{3, 1})) << "deleted";
  EXPECT_FALSE(a.position_of(del.id)) << "an erase's id is no character";
  EXPECT_FALSE(a.position_of(op_id{3, 7})) << "not yet used";
  EXPECT_FALSE(a.position_of(op_id{42, 1})) << "unknown replica";
  auto id = a.id_at(3);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id.value(), (op_id{3, 3}));
  EXPECT_FALSE(a.id_at(a.length()).ok());
}

TEST(Document, EveryVisibleCharacterRoundTripsThroughItsId) {
  // Random edits by three replicas, delivered to one; every position maps to
  // an id that maps back to it, and only visible characters have positions.
  std::mt19937_64 rng(5);
  document replicas[3] = {document(1), document(2), document(3)};
  std::vector<operation> all;
  for (int step = 0; step < 600; ++step) {
    document& d = replicas[rng() % 3];
    for (const auto& op : all) (void)d.apply(op);
    if (d.length() > 0 && rng() % 3 == 0) {
      const std::uint64_t at = rng() % d.length();
      all.push_back(must_erase(d, at, 1 + rng() % std::min<std::uint64_t>(4, d.length() - at)));
    } else {
      all.push_back(must_insert(d, rng() % (d.length() + 1), step % 7 == 0 ? "😀ab" : "xyz"));
    }
  }
  document& d = replicas[0];
  for (const auto& op : all) (void)d.apply(op);
  std::vector<bool> seen(d.length(), false);
  std::uint64_t characters = 0;
  for (replica_id r = 1; r <= 3; ++r) {
    for (std::uint64_t c = 1; c <= d.version().get(r); ++c) {
      auto pos = d.position_of(op_id{r, c});
      if (!pos) continue;
      ++characters;
      ASSERT_LT(*pos, d.length());
      EXPECT_FALSE(seen[*pos]) << "two ids at one position";
      seen[*pos] = true;
      EXPECT_EQ(d.id_at(*pos).value(), (op_id{r, c}));
    }
  }
  EXPECT_EQ(characters, d.length());
  for (std::uint64_t p = 0; p < d.length(); p += 7) EXPECT_EQ(d.position_of(d.id_at(p).value()), p);
}

TEST(Document, CountersAdvancePerCharacter) {
  document d(3);
  auto a = must_insert(d, 0, "abc");
  auto b = must_erase(d, 1, 2);
  auto c = must_insert(d, 1, "x");
  EXPECT_EQ(a.id.counter, 1u);
  EXPECT_EQ(b.id.counter, 4u);
  EXPECT_EQ(c.id.counter, 6u);
  EXPECT_EQ(d.text(), "ax");
}

TEST(Document, RejectsOutOfRangeEdits) {
  document d(1);
  must_insert(d, 0, "abc");
  EXPECT_EQ(d.insert(4, "x").code(), error_code::invalid_argument);
  EXPECT_EQ(d.insert(0, "").code(), error_code::invalid_argument);
  EXPECT_EQ(d.insert(0, "\xff").code(), error_code::invalid_argument);
  EXPECT_EQ(d.erase(2, 2).code(), error_code::invalid_argument);
  EXPECT_EQ(d.erase(0, 0).code(), error_code::invalid_argument);
  EXPECT_EQ(d.erase(UINT64_MAX, 2).code(), error_code::invalid_argument);
  EXPECT_EQ(d.text(), "abc");
  EXPECT_EQ(d.version().get(1), 3u);
}

TEST(Document, RemoteOpsReproduceLocalText) {
  document a(1), b(2);
  std::vector<operation> ops;
  ops.push_back(must_insert(a, 0, "The quick fox"));
  ops.push_back(must_insert(a, 10, "brown "));
  ops.push_back(must_erase(a, 4, 6));
  ops.push_back(must_insert(a, 4, "slow "));
  for (const auto& op : ops) must_apply(b, op);
  EXPECT_EQ(b.text(), a.text());
  EXPECT_EQ(b.version(), a.version());
  EXPECT_EQ(b.check_invariants(), "");
}

TEST(Document, ChangeEventsPatchAView) {
  document a(1), b(2);
  std::string view;
  std::vector<operation> ops;
  ops.push_back(must_insert(a, 0, "hello world"));
  ops.push_back(must_insert(a, 5, " big"));
  ops.push_back(must_erase(a, 0, 2));
  ops.push_back(must_erase(a, 3, 5));
  ops.push_back(must_insert(a, 0, "¡"));
  for (const auto& op : ops) {
    std::vector<text_change> ch;
    must_apply(b, op, &ch);
    view = apply_changes(view, ch);
    EXPECT_EQ(view, b.text());
  }
  EXPECT_EQ(view, a.text());
}

TEST(Document, ChangeEventsForNonContiguousErase) {
  document a(1), b(2);
  auto i1 = must_insert(a, 0, "abcdef");
  must_apply(b, i1);
  // b inserts in the middle; a (not knowing it) deletes across that point.
  auto i2 = must_insert(b, 3, "XYZ");
  auto e = must_erase(a, 1, 4);  // deletes bcde
  std::vector<text_change> ch;
  must_apply(b, e, &ch);
  EXPECT_EQ(b.text(), "aXYZf");
  EXPECT_EQ(apply_changes("abcXYZdef", ch), "aXYZf");
  must_apply(a, i2);
  EXPECT_EQ(a.text(), "aXYZf");
}

TEST(Document, OpsSinceGivesExactlyWhatAPeerLacks) {
  document a(1), b(2);
  std::vector<operation> ops;
  for (int i = 0; i < 50; ++i) ops.push_back(must_insert(a, static_cast<std::uint64_t>(i), "x"));
  for (int i = 0; i < 10; ++i) ops.push_back(must_erase(a, 5, 1));
  for (std::size_t i = 0; i < 30; ++i) must_apply(b, ops[i]);
  auto missing = a.ops_since(b.version());
  std::uint64_t ids = 0;
  for (const auto& op : missing) {
    EXPECT_FALSE(b.knows(op.id));
    ids += op.length();
  }
  EXPECT_EQ(ids, a.version().get(1) - b.version().get(1));
  for (const auto& op : missing) {
    auto r = b.apply(op);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value().result, apply_outcome::state::applied);
  }
  EXPECT_EQ(b.text(), a.text());
  EXPECT_TRUE(a.ops_since(a.version()).empty());
  // From nothing, everything.
  document c(3);
  for (const auto& op : a.ops_since(version_vector{})) must_apply(c, op);
  EXPECT_EQ(c.text(), a.text());
  EXPECT_EQ(c.version(), a.version());
}

TEST(Document, CopyIsIndependent) {
  document a(1);
  must_insert(a, 0, "abc");
  document b = a;
  must_insert(b, 3, "d");
  EXPECT_EQ(a.text(), "abc");
  EXPECT_EQ(b.text(), "abcd");
  EXPECT_EQ(b.check_invariants(), "");
}

TEST(Document, ManyEditsKeepInvariants) {
  document d(9);
  std::string model;
  std::uint64_t state = 12345;
  auto rnd = [&](std::uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  for (int i = 0; i < 20000; ++i) {
    if (model.empty() || rnd(3) != 0) {
      std::uint64_t pos = rnd(model.size() + 1);
      std::string s(1 + rnd(4), static_cast<char>('a' + rnd(26)));
      must_insert(d, pos, s);
      model.insert(pos, s);
    } else {
      std::uint64_t pos = rnd(model.size());
      std::uint64_t n = 1 + rnd(std::min<std::uint64_t>(8, model.size() - pos));
      must_erase(d, pos, n);
      model.erase(pos, n);
    }
    if (i % 2000 == 0) {
      ASSERT_EQ(d.check_invariants(), "") << "after edit " << i;
    }
  }
  EXPECT_EQ(d.text(), model);
  EXPECT_EQ(d.check_invariants(), "");
}

// An id used twice with different content (a forging or buggy replica) is
// refused, never taken for a duplicate of what the document holds, and the
// refusal changes nothing.
TEST(Document, ReusedIdWithOtherContentIsAConflict) {
  document alice(1), bob(2), server(9);
  operation hello = must_insert(alice, 0, "hello");
  must_apply(server, hello);
  operation x = must_insert(bob, 0, "X");
  must_apply(server, x);
  must_apply(alice, x);
  const std::string before = server.text();

  operation forged = hello;
  forged.text = "HELLO";
  auto r = server.apply(forged);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), error_code::id_conflict);
  EXPECT_EQ(server.text(), before);

  operation moved = hello;  // same text, another place
  moved.origin_right = x.id;
  EXPECT_EQ(server.apply(moved).code(), error_code::id_conflict);

  // A forged op that overlaps the known ids and goes beyond them changes nothing.
  operation longer = hello;
  longer.text = "help!!";
  EXPECT_EQ(server.apply(longer).code(), error_code::id_conflict);
  EXPECT_EQ(server.version().get(1), 5u);

  operation erase_e = must_erase(alice, 1, 1);
  must_apply(server, erase_e);
  operation forged_erase = erase_e;
  forged_erase.targets = {id_span{2, 1, 1}};  // bob's X, not what alice erased
  EXPECT_EQ(server.apply(forged_erase).code(), error_code::id_conflict);
  const std::string after_erase = server.text();
  EXPECT_EQ(after_erase, alice.text());

  // An insert under ids that are an erase's, and an erase under an insert's ids.
  operation insert_on_erase_id = hello;
  insert_on_erase_id.id = erase_e.id;
  insert_on_erase_id.text = "x";
  EXPECT_EQ(server.apply(insert_on_erase_id).code(), error_code::id_conflict);
  operation erase_on_insert_id = erase_e;
  erase_on_insert_id.id = hello.id;
  erase_on_insert_id.targets = {id_span{2, 1, 1}};
  EXPECT_EQ(server.apply(erase_on_insert_id).code(), error_code::id_conflict);
  EXPECT_EQ(server.text(), after_erase);
  EXPECT_EQ(server.check_invariants(), "");

  // The genuine ops, sent again, are duplicates.
  EXPECT_EQ(must_apply(server, hello).result, apply_outcome::state::duplicate);
  EXPECT_EQ(must_apply(server, erase_e).result, apply_outcome::state::duplicate);
}

// Honest resends are never conflicts: every op a replica made, and every op
// ops_since() rebuilds (split runs, tombstones, trimmed prefixes), applied
// again after concurrent edits and deletions, is a duplicate.
TEST(Document, HonestResendsAreDuplicates) {
  document a(1), b(2), c(3);
  std::vector<operation> made;
  std::uint64_t x = 12345;
  auto pick = [&](std::uint64_t n) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return (x >> 33) % n;
  };
  for (int i = 0; i < 400; ++i) {
    document& d = i % 2 ? a : b;
    document& other = i % 2 ? b : a;
    std::uint64_t len = d.length();
    operation op = (len == 0 || pick(3) != 0) ? must_insert(d, pick(len + 1), pick(2) ? "ab" : "\xc3\xa9z")
                                              : must_erase(d, pick(len), 1);
    made.push_back(op);
    if (pick(4) == 0)
      for (const auto& o : d.ops_since(other.version())) must_apply(other, o);
  }
  for (const auto& o : a.ops_since(b.version())) must_apply(b, o);
  for (const auto& o : b.ops_since(a.version())) must_apply(a, o);
  ASSERT_EQ(a.text(), b.text());
  for (const auto& o : a.ops_since(version_vector{})) must_apply(c, o);
  ASSERT_EQ(c.text(), a.text());
  for (document* d : {&a, &b, &c}) {
    for (const auto& o : made) {
      auto r = d->apply(o);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      EXPECT_EQ(r.value().result, apply_outcome::state::duplicate);
    }
    for (const auto& o : a.ops_since(version_vector{})) {
      auto r = d->apply(o);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      EXPECT_EQ(r.value().result, apply_outcome::state::duplicate);
    }
  }
  auto re = document::decode_snapshot(a.encode_snapshot(), 4);
  ASSERT_TRUE(re.ok());
  for (const auto& o : made) {
    auto r = re.value().apply(o);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
  }
}

}  // namespace
}  // namespace weft::test
