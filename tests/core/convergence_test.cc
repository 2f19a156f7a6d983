// Seeded randomized convergence: 3-8 replicas edit concurrently while a
// simulated network delivers their ops in random order, with duplicates,
// drops (repaired later by version-vector sync), and snapshot reloads. At the
// end every replica must have the same text and version vector, and every
// editor view patched only from change events must equal the text. After
// every delivery each replica is compared with a naive per-character
// reference implementation fed the same ops (reference_model.h).
//
// WEFT_FUZZ_ROUNDS (default 1500) sets the number of rounds; WEFT_FUZZ_SEED
// the first seed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "reference_model.h"
#include "test_util.h"
#include "weft/unicode.h"

namespace weft::test {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t dflt) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : dflt;
}

struct replica {
  document doc;
  std::string view;  // maintained from change events only
  std::vector<operation> inbox;
  reference_model model;  // the same deliveries, through the naive reference
};

const char* const alphabet[] = {"a", "b", "c", " ", "\n", "é", "中", "😀"};

void run_round(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](std::uint64_t n) { return n == 0 ? 0 : rng() % n; };
  const std::size_t n = 3 + pick(6);
  std::vector<replica> rs;
  for (std::size_t i = 0; i < n; ++i) rs.push_back(replica{document(rng() & max_replica_id), {}, {}, {}});
  auto apply_to = [&](replica& r, const operation& op) {
    std::vector<text_change> ch;
    auto res = r.doc.apply(op, &ch);
    ASSERT_TRUE(res.ok()) << "seed " << seed << ": " << res.error().to_string();
    r.view = apply_changes(r.view, ch);
    r.model.deliver(op);
    ASSERT_EQ(r.doc.text(), r.model.text()) << "seed " << seed << " replica " << r.doc.replica() << " after op kind "
                                            << int(op.kind) << " id " << op.id.replica << "," << op.id.counter;
  };
  reference_model model;  // fed every op in creation order, which is causal
  const std::size_t steps = 20 + pick(80);
  for (std::size_t step = 0; step < steps; ++step) {
    std::uint64_t action = pick(100);
    replica& r = rs[pick(n)];
    if (action < 45) {
      std::uint64_t len = r.doc.length();
      result<operation> op = status(error_code::ok, "");
      if (len == 0 || pick(3) != 0) {
        std::string text;
        for (std::uint64_t k = 0, m = 1 + pick(4); k < m; ++k) text += alphabet[pick(8)];
        std::uint64_t pos = pick(len + 1);
        op = r.doc.insert(pos, text);
        ASSERT_TRUE(op.ok());
        r.view.insert(utf8_offset_of_code_point(r.view, pos), text);
      } else {
        std::uint64_t pos = pick(len);
        std::uint64_t cnt = 1 + pick(std::min<std::uint64_t>(5, len - pos));
        op = r.doc.erase(pos, cnt);
        ASSERT_TRUE(op.ok());
        std::size_t b = utf8_offset_of_code_point(r.view, pos), e = utf8_offset_of_code_point(r.view, pos + cnt);
        r.view.erase(b, e - b);
      }
      model.apply(op.value());
      r.model.deliver(op.value());
      for (replica& other : rs) {
        if (&other == &r) continue;
        std::uint64_t fate = pick(10);
        if (fate == 0) continue;                                 // dropped
        other.inbox.push_back(op.value());
        if (fate == 1) other.inbox.push_back(op.value());        // duplicated
      }
    } else if (action < 85) {
      if (r.inbox.empty()) continue;
      std::size_t k = pick(r.inbox.size());
      operation op = std::move(r.inbox[k]);
      r.inbox.erase(r.inbox.begin() + static_cast<std::ptrdiff_t>(k));
      apply_to(r, op);
    } else if (action < 95) {
      // Sync from a random peer by version vector, delivered shuffled.
      replica& peer = rs[pick(n)];
      auto ops = peer.doc.ops_since(r.doc.version());
      std::shuffle(ops.begin(), ops.end(), rng);
      for (const auto& op : ops) apply_to(r, op);
    } else {
      // Reload from a snapshot (as after a restart); buffered ops are lost
      // and come back through sync.
      auto re = document::decode_snapshot(r.doc.encode_snapshot(), r.doc.replica());
      ASSERT_TRUE(re.ok()) << re.error().to_string();
      ASSERT_EQ(re.value().text(), r.doc.text());
      r.doc = std::move(re.value());
      r.model.drop_pending();
    }
    if (testing::Test::HasFatalFailure()) return;
  }
  // Quiesce: deliver everything in flight, then sync all pairs twice.
  for (replica& r : rs) {
    std::shuffle(r.inbox.begin(), r.inbox.end(), rng);
    for (const auto& op : r.inbox) apply_to(r, op);
    r.inbox.clear();
  }
  for (int pass = 0; pass < 2; ++pass)
    for (replica& a : rs)
      for (replica& b : rs)
        for (const auto& op : b.doc.ops_since(a.doc.version())) apply_to(a, op);
  for (replica& r : rs) {
    ASSERT_EQ(r.doc.text(), rs[0].doc.text()) << "seed " << seed;
    ASSERT_EQ(r.doc.version(), rs[0].doc.version()) << "seed " << seed;
    ASSERT_EQ(r.doc.pending_ops(), 0u) << "seed " << seed;
    ASSERT_EQ(r.view, r.doc.text()) << "seed " << seed << ": view patched from change events diverged";
    ASSERT_EQ(r.doc.check_invariants(), "") << "seed " << seed;
  }
  ASSERT_EQ(rs[0].doc.text(), model.text()) << "seed " << seed << ": differs from the reference model";
}

TEST(Convergence, RandomReplicasRandomDelivery) {
  const std::uint64_t rounds = env_or("WEFT_FUZZ_ROUNDS", 1500);
  const std::uint64_t first = env_or("WEFT_FUZZ_SEED", 1);
  for (std::uint64_t s = first; s < first + rounds; ++s) {
    run_round(s);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace weft::test
