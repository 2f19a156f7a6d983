// The SQLite storage on its own: what it refuses to do silently, and the
// changes feed replication reads (docs/replication.md).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <future>
#include <random>

#include "server/metrics.h"
#include "server/storage.h"
#include "storage_calls.h"

namespace weft::test {
namespace {

struct temp_dir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("weft-storage-test-" + std::to_string(std::random_device{}()));
  ~temp_dir() { std::filesystem::remove_all(path); }
};

struct store_fixture {
  temp_dir dir;
  server::metrics m;
  std::unique_ptr<server::storage> store;
  explicit store_fixture(server::storage_options o = {}) { open(o); }
  void open(server::storage_options o = {}) {
    store.reset();
    auto st = server::storage::open(dir.path.string(), &m, o);
    if (!st.ok()) throw std::runtime_error(st.error().to_string());
    store = std::move(st.value());
  }
  status append(const std::string& doc, std::string bytes) { return append_and_wait(*store, doc, std::move(bytes)); }
  status replicated(const std::string& doc, const std::string& key, std::uint64_t olsn, std::string bytes) {
    return replicate_and_wait(*store, doc, key, olsn, std::move(bytes));
  }
  server::stored_document load(const std::string& doc) {
    auto r = load_and_wait(*store, doc);
    if (!r.ok()) throw std::runtime_error(r.error().to_string());
    return r.value();
  }
  server::feed_page feed(const std::string& key, std::uint64_t after) {
    auto r = feed_and_wait(*store, key, after);
    if (!r.ok()) throw std::runtime_error(r.error().to_string());
    return r.value();
  }
  void snapshot(const std::string& doc) { ASSERT_TRUE(snapshot_and_wait(*store, doc, "snap").ok()); }
};

TEST(Storage, AReplicatedBatchIsNeverReplaced) {
  store_fixture s;
  EXPECT_TRUE(s.replicated("doc", "a~1", 1, "first").ok());
  // The same batch again (a replay after a reconnect) is fine and not stored twice.
  EXPECT_TRUE(s.replicated("doc", "a~1", 1, "first").ok());
  // The same key with other bytes: a bug or a forgery, never the same batch.
  status again = s.replicated("doc", "a~1", 1, "other");
  EXPECT_FALSE(again.ok());
  EXPECT_NE(again.detail().find("conflicting write"), std::string::npos) << again.to_string();
  EXPECT_EQ(s.m.storage_errors[static_cast<int>(server::metrics::storage_error::conflict)].load(), 1u);
  EXPECT_TRUE(s.append("doc", "second").ok());  // the storage goes on
  auto d = s.load("doc");
  ASSERT_EQ(d.batches.size(), 2u);
  EXPECT_EQ(d.batches[0].second, "first");
  EXPECT_EQ(d.batches[1].second, "second");
}

TEST(Storage, OwnBatchesFormAnOrderedFeedWithTheirPath) {
  server::storage_options o;
  o.node_id = "eu";
  store_fixture s(o);
  const std::string key = s.store->origin_key();
  EXPECT_EQ(key.rfind("eu~", 0), 0u);
  ASSERT_TRUE(s.append("x", "1").ok());
  ASSERT_TRUE(s.append("y", "2").ok());
  ASSERT_TRUE(s.append("x", "3").ok());
  EXPECT_EQ(s.store->have()[key], 3u);
  auto page = s.feed(key, 1);
  ASSERT_EQ(page.entries.size(), 2u);
  EXPECT_EQ(page.entries[0].olsn, 2u);
  EXPECT_EQ(page.entries[0].doc, "y");
  EXPECT_EQ(page.entries[0].batch, "2");
  EXPECT_EQ(page.entries[0].path, key);
  EXPECT_EQ(page.entries[1].doc, "x");
  EXPECT_TRUE(s.feed(key, 3).entries.empty());
  // A relayed batch keeps its origin and gains this node on its path.
  ASSERT_TRUE(s.replicated("x", "us~9", 1, "r").ok());
  auto relayed = s.feed("us~9", 0);
  ASSERT_EQ(relayed.entries.size(), 1u);
  EXPECT_EQ(relayed.entries[0].path, "other~1," + key);
  // The same incarnation after a restart: the sequence goes on.
  s.open(o);
  EXPECT_EQ(s.store->origin_key(), key);
  ASSERT_TRUE(s.append("x", "4").ok());
  EXPECT_EQ(s.store->have()[key], 4u);
}

TEST(Storage, HaveAdvancesOnlyOverContiguousBatchesAcrossRestarts) {
  store_fixture s;
  std::vector<std::vector<std::string>> advanced;
  std::mutex mu;
  s.store->on_advanced([&](const std::vector<std::string>& keys) {
    std::lock_guard<std::mutex> lock(mu);
    advanced.push_back(keys);
  });
  ASSERT_TRUE(s.replicated("d", "a~1", 2, "two").ok());
  EXPECT_EQ(s.store->have()["a~1"], 0u);  // 1 is missing
  ASSERT_TRUE(s.replicated("d", "a~1", 4, "four").ok());
  s.store->on_advanced(nullptr);
  s.open();
  EXPECT_EQ(s.store->have()["a~1"], 0u);
  ASSERT_TRUE(s.replicated("d", "a~1", 1, "one").ok());
  EXPECT_EQ(s.store->have()["a~1"], 2u);  // 2 was held from before the restart
  ASSERT_TRUE(s.replicated("d", "a~1", 3, "three").ok());
  EXPECT_EQ(s.store->have()["a~1"], 4u);
  auto page = s.feed("a~1", 0);
  ASSERT_EQ(page.entries.size(), 4u);
  EXPECT_EQ(page.entries[3].batch, "four");
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_TRUE(advanced.empty()) << "nothing advanced before 1 arrived";
}

TEST(Storage, CompactionWaitsForEveryKnownPeer) {
  server::storage_options o;
  o.node_id = "eu";
  o.retain_feed_for_peers = true;
  store_fixture s(o);
  const std::string key = s.store->origin_key();
  ASSERT_TRUE(s.append("x", "1").ok());
  ASSERT_TRUE(s.append("x", "2").ok());
  s.snapshot("x");
  EXPECT_EQ(s.feed(key, 0).entries.size(), 2u) << "no peer has confirmed anything yet";
  EXPECT_TRUE(s.load("x").batches.empty()) << "the snapshot covers both";
  s.store->record_peer_progress("us", {{key, 1}});
  s.store->record_peer_progress("ap", {{key, 2}});
  s.snapshot("x");
  auto page = s.feed(key, 0);
  EXPECT_TRUE(page.compacted) << "1 was confirmed by both peers and compacted";
  ASSERT_EQ(s.feed(key, 1).entries.size(), 1u) << "2 waits for us";
  s.store->record_peer_progress("us", {{key, 2}});
  s.snapshot("x");
  EXPECT_TRUE(s.feed(key, 1).compacted);
}

TEST(Storage, ALoneNodeCompactsAtTheSnapshot) {
  store_fixture s;
  ASSERT_TRUE(s.append("x", "1").ok());
  s.snapshot("x");
  EXPECT_TRUE(s.feed(s.store->origin_key(), 0).compacted);
  auto d = s.load("x");
  EXPECT_EQ(d.snapshot, "snap");
  EXPECT_TRUE(d.batches.empty());
}

TEST(Storage, TheFirstFormatIsMigrated) {
  temp_dir dir;
  std::filesystem::create_directories(dir.path);
  {
    // The schema weft wrote before the changes feed (schema version 0).
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir.path / "weft.db").c_str(), &db), SQLITE_OK);
    const char* sql =
        "CREATE TABLE ops(doc TEXT NOT NULL, seq INTEGER NOT NULL, batch BLOB NOT NULL, PRIMARY KEY(doc, seq)) "
        "WITHOUT ROWID;"
        "CREATE TABLE snapshots(doc TEXT PRIMARY KEY, seq INTEGER NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;"
        "INSERT INTO snapshots VALUES('a', 2, 'snapA');"
        "INSERT INTO ops VALUES('a', 3, 'a3'), ('a', 4, 'a4'), ('b', 1, 'b1');";
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  server::metrics m;
  auto st = server::storage::open(dir.path.string(), &m);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  auto& store = *st.value();
  auto load = [&](const std::string& doc) {
    std::promise<result<server::stored_document>> p;
    auto f = p.get_future();
    store.load(doc, [&p](result<server::stored_document> r) { p.set_value(std::move(r)); });
    return f.get().value();
  };
  auto a = load("a");
  EXPECT_EQ(a.snapshot, "snapA");
  ASSERT_EQ(a.batches.size(), 2u);
  EXPECT_EQ(a.batches[0].second, "a3");
  EXPECT_EQ(a.batches[1].second, "a4");
  auto b = load("b");
  ASSERT_EQ(b.batches.size(), 1u);
  EXPECT_EQ(store.have()[store.origin_key()], 3u);
}

}  // namespace
}  // namespace weft::test
