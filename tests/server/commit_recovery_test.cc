// A room whose commit failed recovers by itself once storage works again
// (docs/reliability.md, "When a commit fails"): no reload, no reconnect.
// The failure is real: the test takes SQLite's write lock on the server's
// database from a second connection (as a backup tool or a stray sqlite3
// shell would), so the server's commits fail with SQLITE_BUSY; releasing
// the lock is storage working again. Traffic goes over real WebSockets.
#include <sqlite3.h>

#include <optional>

#include "server_fixture.h"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

bool has(const std::optional<message>& m, const std::string& s) {
  return m && m->raw.find(s) != std::string::npos;
}

/// Holds the database's write lock while it lives (or until release()).
class write_lock {
 public:
  write_lock(const write_lock&) = delete;
  write_lock& operator=(const write_lock&) = delete;
  explicit write_lock(const std::filesystem::path& db) {
    if (sqlite3_open(db.c_str(), &db_) != SQLITE_OK) return;
    held_ = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~write_lock() {
    release();
    sqlite3_close(db_);
  }
  bool held() const { return held_; }
  void release() {
    if (held_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    held_ = false;
  }

 private:
  sqlite3* db_ = nullptr;
  bool held_ = false;
};

class CommitRecovery : public server_fixture {};

// While commits fail: edits still reach the others, nothing is
// acknowledged, the author and newcomers hear why. Once the lock is gone:
// everything applied meanwhile is stored and acknowledged, without reopening,
// and later edits take the normal path. A restart shows all of it on disk.
TEST_F(CommitRecovery, ARoomAcknowledgesAgainOnceStorageWorks) {
  start();
  test_client alice(port(), 4242), bob(port());
  alice.hello();
  bob.hello();
  alice.open("doc");
  bob.open("doc");
  alice.insert("doc", 0, "one ");
  ASSERT_TRUE(alice.wait_acked("doc"));
  const std::uint64_t acked_before = alice.acked("doc");

  write_lock lock(dir_ / "weft.db");
  ASSERT_TRUE(lock.held());
  alice.insert("doc", 4, "two ");
  auto e = alice.expect("error", 5s);
  ASSERT_TRUE(has(e, "\"storage\"")) << (e ? e->raw : "no error");
  EXPECT_TRUE(has(e, "I/O error")) << e->raw;  // SQLITE_BUSY: an I/O failure, not full, not corrupt
  EXPECT_GE(metric("weft_storage_errors_total{kind=\"io\"}"), 1);
  EXPECT_EQ(metric("weft_storage_errors_total{kind=\"corrupt\"}"), 0);
  // More edits while failing: broadcast, each one answered with the reason.
  alice.insert("doc", 8, "three");
  e = alice.expect("error", 5s);
  EXPECT_TRUE(has(e, "acknowledged once storage works again")) << (e ? e->raw : "no error");
  EXPECT_TRUE(bob.wait_text("doc", "one two three"));
  // A newcomer gets the text and the reason.
  test_client carol(port());
  carol.hello();
  carol.open("doc");
  EXPECT_EQ(carol.replica("doc").text(), "one two three");
  EXPECT_TRUE(has(carol.expect("error", 5s), "\"storage\""));
  // The lock outlives two more retries (each counted as it fails): still
  // nothing acknowledged.
  const std::int64_t failed = metric("weft_storage_errors_total{kind=\"io\"}");
  ASSERT_TRUE(eventually([&] { return metric("weft_storage_errors_total{kind=\"io\"}") >= failed + 2; }, 15s));
  while (alice.recv(50ms)) {
  }
  EXPECT_EQ(alice.acked("doc"), acked_before);

  lock.release();
  // Within the retry backoff (250 ms, doubling): acknowledged, same connection.
  EXPECT_TRUE(alice.wait_acked("doc", 15s)) << alice.acked("doc") << " of "
                                            << alice.replica("doc").version().get(4242);
  // And the normal path again: a new edit is acknowledged at once.
  alice.insert("doc", 0, "zero ");
  EXPECT_TRUE(alice.wait_acked("doc"));
  EXPECT_TRUE(bob.wait_text("doc", "zero one two three"));

  // All of it is on disk.
  restart();
  test_client reader(port());
  reader.hello();
  reader.open("doc");
  EXPECT_EQ(reader.replica("doc").text(), "zero one two three");
}

// A room that cannot store does not unload (that would drop what it holds
// unstored), and stores it when storage works again even with nobody left.
TEST_F(CommitRecovery, UnstoredOpsOutliveTheirAuthorsConnection) {
  config_.idle_unload_ms = 50;
  start();
  {
    std::optional<write_lock> lock;
    {
      test_client alice(port(), 4242);
      alice.hello();
      alice.open("doc");
      lock.emplace(dir_ / "weft.db");
      ASSERT_TRUE(lock->held());
      alice.insert("doc", 0, "while locked");
      ASSERT_TRUE(has(alice.expect("error", 5s), "\"storage\""));
    }  // Alice disconnects
    // Two more failed retries (250 ms apart at least) span several unload
    // intervals (50 ms) while the lock is held: the room stayed.
    const std::int64_t failed = metric("weft_storage_errors_total{kind=\"io\"}");
    ASSERT_TRUE(eventually([&] { return metric("weft_storage_errors_total{kind=\"io\"}") >= failed + 2; }, 15s));
    EXPECT_EQ(metric("weft_documents_loaded"), 1);
  }  // the lock goes
  // The retry stores it; the room may then unload.
  EXPECT_TRUE(metric_reaches("weft_documents_loaded", 0, 20s));
  test_client reader(port());
  reader.hello();
  reader.open("doc");
  EXPECT_EQ(reader.replica("doc").text(), "while locked");
}

}  // namespace
}  // namespace weft::test
