// Pinned formats (docs/encoding.md): the snapshot and op-batch encoders must
// produce exactly the committed bytes in tests/data/golden/, and every golden
// file of every format version so far must still decode to the same document.
//
// The format version is read from the encoded header (byte 4), so bumping the
// encoder's constant makes this test ask for <kind>-v<new>.bin while the
// older files keep being decoded: a decoder that drops an old version fails.
// WEFT_UPDATE_GOLDEN=1 writes the current version's files instead of
// comparing (run it only for a deliberate format change).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"
#include "weft/document.h"
#include "weft/encoding.h"

namespace weft::test {
namespace {

namespace fs = std::filesystem;

const fs::path golden_dir = fs::path(WEFT_TEST_DATA_DIR) / "golden";

bool updating() {
  const char* v = std::getenv("WEFT_UPDATE_GOLDEN");
  return v && std::string(v) == "1";
}

constexpr replica_id ana = 0x1f2e3d, ben = 0x4c5b6a;
// The largest replica id: its varints are the longest the formats write.
constexpr replica_id cy = max_replica_id;

// Every golden file of every version holds this document, so they all decode
// to the same text and version vector. Changing the scenario would make the
// old files' expectations wrong: add a second scenario instead.
const char* const expected_text = "Grüß, dear ünïcode 日本 𝄞 wörl\n";
const std::vector<std::pair<replica_id, std::uint64_t>> expected_version = {{ana, 31}, {ben, 6}, {cy, 14}};

struct scenario {
  document doc{ana};
  std::vector<operation> batch;  // one batch with every op kind and flag of the format
};

scenario build() {
  scenario s;
  document& a = s.doc;
  document b(ben), c(cy);
  std::vector<operation> typed;  // in the order `a` applied them: a causal order
  auto local = [&](operation op) {
    typed.push_back(op);
    return op;
  };
  auto to = [](document& d, const operation& op) { must_apply(d, op); };

  auto hello = local(must_insert(a, 0, "Hello, wörld!\n"));
  to(b, hello);
  to(c, hello);
  // Concurrent inserts at one place (FugueMax keeps them apart).
  auto dear = must_insert(b, 7, "dear ");
  auto uni = must_insert(c, 7, "ünïcode 日本 𝄞 ");
  to(a, local(dear));
  to(a, local(uni));
  // Deleting a word and typing over it, one character at a time.
  to(a, local(must_erase(a, 0, 5)));
  std::uint64_t at = 0;
  for (const char* ch : {"G", "r", "ü", "ß"}) to(a, local(must_insert(a, at++, ch)));
  for (const auto& op : a.ops_since(b.version())) to(b, op);
  for (const auto& op : a.ops_since(c.version())) to(c, op);
  // Deleting "!" while another replica types after it.
  const std::uint64_t bang = c.length() - 2;
  auto back = must_erase(c, bang, 1);
  auto party = must_insert(b, b.length() - 1, "🎉");
  to(a, local(back));
  to(a, local(party));
  for (const char* ch : {"x", "y", "z"}) to(a, local(must_insert(a, a.length() - 1, ch)));
  // Several targets in one erase: "d🎉x" spans runs of two replicas.
  to(a, local(must_erase(a, a.length() - 6, 3)));
  // Backspacing: "z", then "y".
  to(a, local(must_erase(a, a.length() - 2, 1)));
  to(a, local(must_erase(a, a.length() - 2, 1)));

  s.batch = typed;
  // A replica that saw only the first line gets what was typed and deleted since as tombstones.
  version_vector stale;
  stale.set(ana, 14);
  for (const auto& op : a.ops_since(stale))
    if (op.kind == op_kind::tombstone) s.batch.push_back(op);
  return s;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << p;
}

std::string hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : bytes) {
    out += digits[ch >> 4];
    out += digits[ch & 15];
  }
  return out;
}

int format_version(const std::string& blob) {
  return blob.size() > 5 && blob.compare(0, 4, "WEFT") == 0 ? static_cast<unsigned char>(blob[4]) : -1;
}

fs::path golden_path(const std::string& kind, int version) {
  return golden_dir / (kind + "-v" + std::to_string(version) + ".bin");
}

// The encoder's bytes against the golden file of its own format version.
void expect_pinned(const std::string& kind, const std::string& encoded) {
  const int v = format_version(encoded);
  ASSERT_GT(v, 0) << kind << ": no weft header";
  const fs::path path = golden_path(kind, v);
  if (updating()) {
    write_file(path, encoded);
    std::printf("wrote %s (%zu bytes)\n", path.c_str(), encoded.size());
    return;
  }
  ASSERT_TRUE(fs::exists(path)) << kind << " format version " << v << " has no golden file " << path
                                << ": write it with WEFT_UPDATE_GOLDEN=1, commit it and keep the older ones";
  const std::string golden = read_file(path);
  std::size_t at = 0;
  while (at < golden.size() && at < encoded.size() && golden[at] == encoded[at]) ++at;
  EXPECT_EQ(hex(encoded), hex(golden))
      << kind << " bytes changed under format version " << v << " (first difference at byte " << at
      << "): if old readers cannot read the new bytes, bump the version; docs/encoding.md, \"Pinned formats\"";
}

// Golden files of versions 1..current: all must exist and be readable.
std::vector<std::pair<int, std::string>> goldens_up_to(const std::string& kind, int current) {
  std::vector<std::pair<int, std::string>> out;
  for (int v = 1; v <= current; ++v) {
    const fs::path path = golden_path(kind, v);
    EXPECT_TRUE(fs::exists(path)) << path << " is missing: every format version keeps its golden file";
    if (fs::exists(path)) out.emplace_back(v, read_file(path));
  }
  return out;
}

TEST(GoldenFormat, TheScenarioIsUnchanged) {
  const scenario s = build();
  EXPECT_EQ(s.doc.text(), expected_text);
  EXPECT_EQ(s.doc.version().entries(), expected_version);
  // The batch pins every flag of the op format.
  bool erase = false, tombstone = false, both_origins = false, no_origin = false, many_targets = false;
  for (const auto& op : s.batch) {
    erase |= op.kind == op_kind::erase;
    tombstone |= op.kind == op_kind::tombstone;
    both_origins |= op.kind == op_kind::insert && op.origin_left && op.origin_right;
    no_origin |= op.kind == op_kind::insert && !op.origin_left && !op.origin_right;
    many_targets |= op.targets.size() > 1;
  }
  EXPECT_TRUE(erase && tombstone && both_origins && no_origin && many_targets)
      << erase << tombstone << both_origins << no_origin << many_targets;
}

TEST(GoldenFormat, SnapshotBytesArePinned) {
  expect_pinned("snapshot", build().doc.encode_snapshot());
}

TEST(GoldenFormat, OpBatchBytesArePinned) {
  expect_pinned("ops", encode_ops(build().batch));
}

TEST(GoldenFormat, EverySnapshotVersionStillDecodes) {
  const std::string current = build().doc.encode_snapshot();
  for (const auto& [v, bytes] : goldens_up_to("snapshot", format_version(current))) {
    SCOPED_TRACE("snapshot-v" + std::to_string(v));
    auto d = document::decode_snapshot(bytes, 0x99);
    ASSERT_TRUE(d.ok()) << d.error().to_string();
    EXPECT_EQ(d.value().text(), expected_text);
    EXPECT_EQ(d.value().version().entries(), expected_version);
    EXPECT_EQ(d.value().check_invariants(), "");
    // The history came along: a new replica synced from it has the same text.
    document fresh(0x98);
    for (const auto& op : d.value().ops_since({})) must_apply(fresh, op);
    EXPECT_EQ(fresh.text(), expected_text);
    // And it edits on.
    EXPECT_TRUE(d.value().insert(0, "¶").ok());
  }
}

// A second scenario, large enough that the snapshot's columns are coded
// (Huffman alone and with matches, snapshot format 2 on): the scenario
// above is so small that every column is stored raw. Deterministic on every
// platform: raw mt19937 output, no distributions.
document coded_scenario() {
  static const char* const words[] = {"weft ", "replica ", "merges ", "the ", "ops ", "in ", "any ",
                                      "order, ", "ünïcode ", "日本 ", "and ", "converges.\n"};
  document a(ana), b(ben);
  std::mt19937 rng(2026);
  for (int i = 0; i < 900; ++i) {
    document& d = rng() % 3 == 0 ? b : a;
    if (d.length() > 4 && rng() % 4 == 0) {
      const std::uint64_t at = rng() % (d.length() - 3);
      must_erase(d, at, 1 + rng() % 3);
    } else {
      must_insert(d, d.length() == 0 ? 0 : rng() % (d.length() + 1), words[rng() % std::size(words)]);
    }
    if (i % 50 == 0) {  // sync both ways now and then: runs of two replicas interleave
      for (const auto& op : a.ops_since(b.version())) must_apply(b, op);
      for (const auto& op : b.ops_since(a.version())) must_apply(a, op);
    }
  }
  for (const auto& op : b.ops_since(a.version())) must_apply(a, op);
  return a;
}

// Coded golden files exist from snapshot format 2 on.
constexpr int first_coded_version = 2;

TEST(GoldenFormat, CodedSnapshotBytesArePinned) {
  const std::string bytes = coded_scenario().encode_snapshot();
  ASSERT_GT(bytes.size(), 1000u);
  expect_pinned("snapshot-coded", bytes);
}

TEST(GoldenFormat, EveryCodedSnapshotVersionStillDecodes) {
  const document want = coded_scenario();
  const int current = format_version(want.encode_snapshot());
  for (int v = first_coded_version; v <= current; ++v) {
    SCOPED_TRACE("snapshot-coded-v" + std::to_string(v));
    const fs::path path = golden_path("snapshot-coded", v);
    ASSERT_TRUE(fs::exists(path)) << path << " is missing: every format version keeps its golden file";
    auto d = document::decode_snapshot(read_file(path), 0x99);
    ASSERT_TRUE(d.ok()) << d.error().to_string();
    EXPECT_EQ(d.value().text(), want.text());
    EXPECT_EQ(d.value().version(), want.version());
    EXPECT_EQ(d.value().check_invariants(), "");
    document fresh(0x98);
    for (const auto& op : d.value().ops_since({})) must_apply(fresh, op);
    EXPECT_EQ(fresh.text(), want.text());
  }
}

TEST(GoldenFormat, EveryOpBatchVersionStillDecodes) {
  const std::vector<operation> batch = build().batch;
  const std::string current = encode_ops(batch);
  for (const auto& [v, bytes] : goldens_up_to("ops", format_version(current))) {
    SCOPED_TRACE("ops-v" + std::to_string(v));
    auto ops = decode_ops(bytes);
    ASSERT_TRUE(ops.ok()) << ops.error().to_string();
    EXPECT_EQ(ops.value(), batch);
    document fresh(0x99);
    for (const auto& op : ops.value()) must_apply(fresh, op);
    EXPECT_EQ(fresh.text(), expected_text);
    EXPECT_EQ(fresh.version().entries(), expected_version);
    EXPECT_EQ(fresh.pending_ops(), 0u);
  }
}

}  // namespace
}  // namespace weft::test
