// Replaying real editing traces must reproduce their final text exactly,
// locally, remotely (op by op into a fresh replica), through snapshots and
// sync, and — for concurrent traces — with one replica per agent.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"
#include "traces/replay.h"

namespace weft::test {
namespace {

std::string shared_trace(const char* name) { return std::string(WEFT_TRACES_DIR) + "/" + name; }
std::string own_trace(const char* name) { return std::string(WEFT_TEST_DATA_DIR) + "/" + name; }

traces::trace load(const std::string& path) {
  auto t = traces::load_trace(path);
  EXPECT_TRUE(t.ok()) << t.error().to_string();
  return t.ok() ? std::move(t.value()) : traces::trace{};
}

void check_sequential(const std::string& path) {
  if (!std::filesystem::exists(path)) GTEST_FAIL() << "missing trace " << path;
  traces::trace t = load(path);
  ASSERT_FALSE(t.concurrent);
  document local(1);
  std::vector<operation> ops;
  status s = traces::replay_local(t, local, &ops);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_EQ(local.text(), t.end_content);
  ASSERT_EQ(local.check_invariants(), "");
  // The server's workload: every op applied one by one to a fresh replica.
  document remote(2);
  for (const auto& op : ops) must_apply(remote, op);
  ASSERT_EQ(remote.text(), t.end_content);
  ASSERT_EQ(remote.check_invariants(), "");
  // Snapshot round trip, and sync from the restored replica.
  const std::string snapshot = local.encode_snapshot();
  auto restored = document::decode_snapshot(snapshot, 1);
  ASSERT_TRUE(restored.ok()) << restored.error().to_string();
  ASSERT_EQ(restored.value().text(), t.end_content);
  ASSERT_EQ(restored.value().check_invariants(), "");
  ASSERT_EQ(restored.value().encode_snapshot(), snapshot);
  document synced(3);
  for (const auto& op : restored.value().ops_since(version_vector{})) must_apply(synced, op);
  ASSERT_EQ(synced.text(), t.end_content);
  ASSERT_EQ(synced.version(), local.version());
  // The restored replica edits on where the original would.
  document edited = local;
  const std::uint64_t middle = edited.length() / 2;
  ASSERT_EQ(must_insert(restored.value(), middle, "¶").id, must_insert(edited, middle, "¶").id);
  ASSERT_EQ(restored.value().text(), edited.text());
}

void check_concurrent(const std::string& path) {
  if (!std::filesystem::exists(path)) GTEST_FAIL() << "missing trace " << path;
  traces::trace t = load(path);
  ASSERT_TRUE(t.concurrent);
  auto r = traces::replay_concurrent(t);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  // Merge everything into a fresh replica in txn order.
  document merged(77);
  for (const auto& ops : r.value().txn_ops)
    for (const auto& op : ops) must_apply(merged, op);
  ASSERT_EQ(merged.pending_ops(), 0u);
  ASSERT_EQ(merged.text(), t.end_content);
  // A snapshot of several replicas' runs round-trips.
  auto restored = document::decode_snapshot(merged.encode_snapshot(), 78);
  ASSERT_TRUE(restored.ok()) << restored.error().to_string();
  ASSERT_EQ(restored.value().text(), t.end_content);
  ASSERT_EQ(restored.value().version(), merged.version());
  ASSERT_EQ(restored.value().check_invariants(), "");
  // And every agent's replica, brought up to date by version-vector sync.
  for (auto& rep : r.value().replicas) {
    for (const auto& op : merged.ops_since(rep.version())) must_apply(rep, op);
    ASSERT_EQ(rep.text(), t.end_content);
    ASSERT_EQ(rep.version(), merged.version());
    ASSERT_EQ(rep.check_invariants(), "");
  }
}

TEST(Traces, TinySequential) { check_sequential(own_trace("tiny-sequential.json.gz")); }
TEST(Traces, TinyConcurrent) { check_concurrent(own_trace("tiny-concurrent.json.gz")); }
TEST(Traces, AutomergePaper) { check_sequential(shared_trace("automerge-paper.json.gz")); }

// The snapshot format's size on the standard trace (issue #15: within
// Automerge's 129 kB, which keeps the whole history too). Deterministic: the
// same trace always encodes to the same bytes.
TEST(Traces, AutomergePaperSnapshotIsCompact) {
  traces::trace t = load(shared_trace("automerge-paper.json.gz"));
  document local(1);
  ASSERT_TRUE(traces::replay_local(t, local).ok());
  EXPECT_LE(local.encode_snapshot().size(), 130000u);
}
TEST(Traces, SephBlog1) { check_sequential(shared_trace("seph-blog1.json.gz")); }
TEST(Traces, Clownschool) { check_concurrent(shared_trace("clownschool.json.gz")); }

}  // namespace
}  // namespace weft::test
