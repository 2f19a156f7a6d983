// Scale-out inside a region (docs/scale-out.md): several weft-server nodes on
// one real PostgreSQL (the shared store) and one real Redis (live fan-out on
// Redis Streams), over real sockets on 127.0.0.1. Some links to PostgreSQL
// go through a fault proxy to take the database away for a while.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <random>
#include <regex>
#include <thread>

#include "auth/auth.h"
#include "fault_proxy.h"
#include "server/postgres_storage.h"
#include "server/server.h"
#include "server/storage.h"
#include "services.h"
#include "storage_calls.h"
#include "test_client.h"
#include "weft/document.h"
#include "weft/encoding.h"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

// ---- the PostgreSQL storage backend on its own ---------------------------------

struct pg_store {
  server::metrics m;
  std::unique_ptr<server::storage> store;
  pg_store(const std::string& uri, const std::string& node = "n", bool retain_for_peers = false) {
    server::storage_options o;
    o.location = uri;
    o.node_id = node;
    o.retain_feed_for_peers = retain_for_peers;
    auto st = server::storage::open(&m, o);
    if (!st.ok()) throw std::runtime_error(st.error().to_string());
    store = std::move(st.value());
  }
  status append(const std::string& doc, std::string bytes) { return append_and_wait(*store, doc, std::move(bytes)); }
  status replicated(const std::string& doc, const std::string& key, std::uint64_t olsn, std::string bytes) {
    return replicate_and_wait(*store, doc, key, olsn, std::move(bytes));
  }
  result<server::stored_document> load(const std::string& doc) { return load_and_wait(*store, doc); }
  status snapshot(const std::string& doc, const document& d) {
    return snapshot_and_wait(*store, doc, d.encode_snapshot(), d.version());
  }
  status forget(const std::string& peer) {
    std::promise<status> p;
    store->forget_peer(peer, [&p](status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  }
};

class PostgresStorageTest : public ::testing::Test {
 protected:
  postgres_server pg;
  std::string db_name = pg.fresh_database();
  std::string db = pg.uri(db_name);
};

// Batches of real ops typed by replica `r` into `d`.
std::string typed(document& d, const std::string& text) {
  auto op = d.insert(d.length(), text);
  if (!op.ok()) throw std::runtime_error(op.error().to_string());
  std::vector<operation> ops{op.value()};
  return encode_ops(ops);
}

TEST_F(PostgresStorageTest, BatchesLoadAndFormTheFeed) {
  pg_store s(db, "eu");
  const std::string key = s.store->origin_key();
  EXPECT_EQ(key.rfind("eu~", 0), 0u);
  EXPECT_STREQ(s.store->backend(), "postgres");
  ASSERT_TRUE(s.append("x", "1").ok());
  ASSERT_TRUE(s.append("y", "2").ok());
  ASSERT_TRUE(s.append("x", std::string("3\0bytes", 7)).ok());
  EXPECT_EQ(s.store->have()[key], 3u);
  auto d = s.load("x");
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  ASSERT_EQ(d.value().batches.size(), 2u);
  EXPECT_EQ(d.value().batches[1].second, std::string("3\0bytes", 7));
  // A relayed batch keeps its origin; the same key with other bytes is refused alone.
  ASSERT_TRUE(s.replicated("x", "us~9", 1, "r").ok());
  ASSERT_TRUE(s.replicated("x", "us~9", 1, "r").ok());
  status conflict = s.replicated("x", "us~9", 1, "forged");
  EXPECT_FALSE(conflict.ok());
  EXPECT_NE(conflict.detail().find("conflicting write"), std::string::npos) << conflict.to_string();
  auto page = feed_and_wait(*s.store, key, 1, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page.value().entries.size(), 2u);
  EXPECT_EQ(page.value().entries[0].doc, "y");
  EXPECT_EQ(page.value().entries[0].path, key);
  EXPECT_EQ(pg.sql("SELECT COUNT(*) FROM weft_log", db_name), "4");
}

TEST_F(PostgresStorageTest, ACommitFindingItsRowsAlreadyThereSucceedsOnlyWithTheSameBytes) {
  pg_store s(db);
  const std::string key = s.store->origin_key(), name = db_name;
  auto put = [&](int olsn, const std::string& bytes) {
    pg.sql("INSERT INTO weft_log(doc, origin, olsn, path, ts, batch, sum) VALUES('doc', '" + key + "', " +
               std::to_string(olsn) + ", '" + key + "', 0, '" + bytes + "'::bytea, " +
               std::to_string(static_cast<std::int64_t>(server::content_checksum(bytes))) + ")",
           name);
  };
  // As if an attempt committed olsn 1 and its answer was lost with the connection.
  put(1, "same");
  EXPECT_TRUE(s.append("doc", "same").ok());
  // Another batch under the key this node uses next: never replaced, never passed off as this one.
  put(2, "other");
  status st = s.append("doc", "mine");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.detail().find("conflicting write"), std::string::npos) << st.to_string();
  auto d = s.load("doc");
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d.value().batches.size(), 2u);
  EXPECT_EQ(d.value().batches[1].second, "other");
}

TEST_F(PostgresStorageTest, TwoNodesWriteOneDocumentUnderTheirOwnKeys) {
  pg_store a(db, "node"), b(db, "node");  // even the same --node-id: a new incarnation each
  EXPECT_NE(a.store->origin_key(), b.store->origin_key());
  document da(1), db_(2);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(a.append("doc", typed(da, "a")).ok());
    ASSERT_TRUE(b.append("doc", typed(db_, "b")).ok());
  }
  auto d = a.load("doc");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value().batches.size(), 40u);
}

TEST_F(PostgresStorageTest, ASnapshotCompactsOnlyTheEntriesItHolds) {
  pg_store a(db, "a"), b(db, "b");
  document writer1(1), writer2(2), server_view(7);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(a.append("doc", typed(writer1, "x")).ok());
  // b commits a batch that a's view has not seen yet.
  ASSERT_TRUE(b.append("doc", typed(writer2, "y")).ok());
  for (const auto& op : writer1.ops_since(version_vector{})) ASSERT_TRUE(server_view.apply(op).ok());
  ASSERT_TRUE(a.snapshot("doc", server_view).ok());
  auto d = a.load("doc");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d.value().snapshot.empty());
  ASSERT_EQ(d.value().batches.size(), 1u) << "b's batch is not in the snapshot: it stays";
  // A snapshot lacking ops of the stored one never replaces it.
  document older(8);
  for (const auto& op : writer2.ops_since(version_vector{})) ASSERT_TRUE(older.apply(op).ok());
  ASSERT_TRUE(b.snapshot("doc", older).ok());
  auto again = b.load("doc");
  ASSERT_TRUE(again.ok());
  auto snap = document::decode_snapshot(again.value().snapshot, 9);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap.value().text(), "xxxxx");
  // The loaded document is whole: snapshot plus what is left.
  for (const auto& [lsn, bytes] : again.value().batches) {
    auto ops = decode_ops(bytes);
    ASSERT_TRUE(ops.ok());
    for (const auto& op : ops.value()) ASSERT_TRUE(snap.value().apply(op).ok());
  }
  EXPECT_EQ(snap.value().text().size(), 6u);
}

TEST_F(PostgresStorageTest, ForgettingAPeerCompactsWhatOnlyItHeldBack) {
  pg_store a(db, "a", /*retain_for_peers=*/true);
  const std::string key = a.store->origin_key();
  document writer(1), view(7);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(a.append("doc", typed(writer, "x")).ok());
  for (const auto& op : writer.ops_since(version_vector{})) ASSERT_TRUE(view.apply(op).ok());
  // c confirmed all five, b only two: the snapshot compacts those two alone.
  a.store->record_peer_progress("c", {{key, 5}});
  a.store->record_peer_progress("b", {{key, 2}});
  ASSERT_TRUE(a.snapshot("doc", view).ok());
  EXPECT_EQ(pg.sql("SELECT COUNT(*) FROM weft_log", db_name), "3");
  // b left for good: forgetting it compacts the rest at once, with no new snapshot.
  ASSERT_TRUE(a.forget("b").ok());
  EXPECT_EQ(pg.sql("SELECT COUNT(*) FROM weft_log", db_name), "0");
  EXPECT_EQ(pg.sql("SELECT COUNT(*) FROM weft_peer_progress WHERE peer = 'b'", db_name), "0");
  // A name with nothing recorded is refused and changes nothing.
  status again = a.forget("b");
  EXPECT_EQ(again.code(), error_code::invalid_operation) << again.to_string();
  EXPECT_EQ(pg.sql("SELECT COUNT(*) FROM weft_peer_progress WHERE peer = 'c'", db_name), "1");
  auto d = a.load("doc");
  ASSERT_TRUE(d.ok());
  auto snap = document::decode_snapshot(d.value().snapshot, 9);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap.value().text(), "xxxxx");
}

TEST_F(PostgresStorageTest, DamagedBatchesAreReportedNotServed) {
  pg_store s(db);
  ASSERT_TRUE(s.append("doc", "good").ok());
  pg.sql("UPDATE weft_log SET batch = 'bad'::bytea", db_name);
  auto d = s.load("doc");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.code(), error_code::corrupt_data) << d.error().to_string();
  EXPECT_GE(s.m.storage_errors[static_cast<int>(server::metrics::storage_error::corrupt)].load(), 1u);
}

TEST_F(PostgresStorageTest, ANewerSchemaIsRefused) {
  { pg_store s(db); }
  pg.sql("UPDATE weft_schema SET version = 99", db_name);
  server::metrics m;
  server::storage_options o;
  o.location = db;
  auto st = server::storage::open(&m, o);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), error_code::unsupported_version) << st.error().to_string();
}

TEST_F(PostgresStorageTest, WritesWaitWhileTheDatabaseIsUnreachableAndCommitWhenBack) {
  fault_proxy proxy(pg.port());
  const std::string via_proxy = pg.uri(db_name, proxy.port());
  pg_store s(via_proxy);
  std::mutex mu;
  std::vector<bool> availability;
  s.store->on_availability([&](status st) {
    std::lock_guard<std::mutex> lock(mu);
    availability.push_back(st.ok());
  });
  ASSERT_TRUE(s.append("doc", "before").ok());
  proxy.cut();
  std::promise<status> p;
  auto f = p.get_future();
  s.store->append("doc", "during", [&p](status st, std::uint64_t) { p.set_value(st); });
  EXPECT_EQ(f.wait_for(1500ms), std::future_status::timeout) << "no acknowledgement while it is away";
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(availability, std::vector<bool>{false});
  }
  proxy.heal();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(availability, (std::vector<bool>{false, true}));
  }
  auto d = s.load("doc");
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d.value().batches.size(), 2u);
  EXPECT_EQ(d.value().batches[1].second, "during");
}

// ---- nodes of one region -----------------------------------------------------------

class RegionTest : public ::testing::Test {
 protected:
  postgres_server pg;
  redis_server redis;
  std::string db_name = pg.fresh_database();
  std::string db = pg.uri(db_name);
  std::vector<std::unique_ptr<server::server>> nodes;
  server::server_config base;

  /// Starts `n` more nodes on the shared store and bus, named n0, n1, ... or
  /// all `region` (a region's nodes may share one name: their origin keys
  /// still differ by incarnation, and other regions see one region).
  void start_nodes(int n, const std::string& store = "", const std::string& region = "") {
    const std::size_t first = nodes.size();
    for (int i = 0; i < n; ++i) {
      server::server_config c = base;
      c.port = 0;
      c.node_id = "n";
      c.node_id += std::to_string(first + static_cast<std::size_t>(i));
      if (!region.empty()) c.node_id = region;
      c.store = store.empty() ? db : store;
      c.bus = redis.url();
      c.threads = 2;
      c.idle_unload_ms = 500;
      c.commit_window_ms = 0;
      c.level = std::getenv("WEFT_TEST_LOG") ? server::log_level::debug : server::log_level::error;
      auto s = server::server::start(c);
      ASSERT_TRUE(s.ok()) << s.error().to_string();
      nodes.push_back(std::move(s.value()));
    }
  }
  std::uint16_t port(int i) const { return nodes[i]->port(); }
  std::string text(int i, const std::string& doc) {
    auto [st, body] = http_get(port(i), "/api/docs/" + doc + "/text");
    return st == 200 ? body : "<error " + std::to_string(st) + ">";
  }
  double metric(int i, const std::string& name) {
    auto body = http_get(port(i), "/metrics").second;
    auto at = body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stod(body.substr(at + name.size() + 2));
  }
  bool converged(const std::string& doc, std::chrono::milliseconds timeout = 20s) {
    return eventually(
        [&] {
          std::string first = text(0, doc);
          if (first.empty() || first.starts_with("<error")) return false;
          for (std::size_t i = 1; i < nodes.size(); ++i)
            if (text(static_cast<int>(i), doc) != first) return false;
          return true;
        },
        timeout);
  }
  /// Another region: one node "far" on its own SQLite, in a temporary
  /// directory that goes with it at the end of the test. Its port.
  std::uint16_t start_far_region() {
    far_dir = temp_path("far-region");
    server::server_config fc;
    fc.node_id = "far";
    fc.port = 0;
    fc.data_dir = far_dir.string();
    fc.threads = 2;
    fc.level = std::getenv("WEFT_TEST_LOG") ? server::log_level::debug : server::log_level::error;
    auto s = server::server::start(fc);
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    if (!s.ok()) return 0;
    far = std::move(s.value());
    return far->port();
  }
  void TearDown() override {
    far.reset();
    std::error_code ec;
    if (!far_dir.empty()) std::filesystem::remove_all(far_dir, ec);
  }
  std::unique_ptr<server::server> far;
  std::filesystem::path far_dir;
  static std::string marker(int who, int k) {
    std::string m = "<";
    m += std::to_string(who) + ":" + std::to_string(k) + ">";
    return m;
  }
};

TEST_F(RegionTest, ThreeNodesOnOnePostgresAndOneRedisConvergeLive) {
  start_nodes(3);
  // Writers on every node, on the same documents.
  std::vector<std::unique_ptr<test_client>> writers;
  const std::vector<std::string> docs = {"alpha", "beta"};
  for (int i = 0; i < 3; ++i) {
    writers.push_back(std::make_unique<test_client>(port(i)));
    writers.back()->hello();
    for (const auto& d : docs) writers.back()->open(d);
  }
  ASSERT_TRUE(eventually([&] { return metric(0, "weft_bus_streams") == 2 && metric(2, "weft_bus_connected") == 1; }));
  std::vector<std::string> markers;
  std::minstd_rand rng(3);
  for (int round = 0; round < 30; ++round)
    for (int i = 0; i < 3; ++i)
      for (const auto& d : docs) {
        auto& w = *writers[i];
        std::string m = marker(i, round);
        w.insert(d, rng() % 2 ? 0 : w.replica(d).length(), m);
        if (d == "alpha") markers.push_back(m);
      }
  for (auto& w : writers)
    for (const auto& d : docs) ASSERT_TRUE(w->wait_acked(d, 10s));
  for (const auto& d : docs) ASSERT_TRUE(converged(d)) << text(0, d) << "\n" << text(1, d) << "\n" << text(2, d);
  // Every writer's replica got the others' edits live, without reopening.
  const std::string final_text = text(0, "alpha");
  for (auto& w : writers) EXPECT_TRUE(w->wait_text("alpha", final_text, 10s));
  for (const auto& m : markers) EXPECT_NE(final_text.find(m), std::string::npos) << m;
  for (int i = 0; i < 3; ++i) {
    EXPECT_GE(metric(i, "weft_bus_received_total"), 1) << "node " << i;
    EXPECT_EQ(metric(i, "weft_bus_publish_dropped_total"), 0) << "node " << i;
  }
  // A node that opens a document later loads it from the shared store.
  test_client late(port(1));
  late.hello();
  late.open("alpha");
  EXPECT_TRUE(late.wait_text("alpha", final_text, 10s));
}

TEST_F(RegionTest, ARedisRestartMidRunIsFollowedByAResyncAndConvergence) {
  start_nodes(2);
  test_client a(port(0)), b(port(1));
  a.hello();
  b.hello();
  a.open("doc");
  b.open("doc");
  for (int k = 0; k < 20; ++k) a.insert("doc", a.replica("doc").length(), marker(0, k));
  ASSERT_TRUE(a.wait_acked("doc", 10s));
  ASSERT_TRUE(b.wait_text("doc", a.replica("doc").text(), 10s));
  redis.stop();
  // Edits go on while Redis is away: committed, acknowledged, not yet fanned out.
  for (int k = 20; k < 40; ++k) a.insert("doc", a.replica("doc").length(), marker(0, k));
  for (int k = 0; k < 20; ++k) b.insert("doc", 0, marker(1, k));
  ASSERT_TRUE(a.wait_acked("doc", 10s));
  ASSERT_TRUE(b.wait_acked("doc", 10s));
  ASSERT_TRUE(eventually([&] { return metric(0, "weft_bus_connected") == 0; }));
  EXPECT_TRUE(http_get(port(0), "/healthz").second.starts_with("degraded: bus (Redis) unreachable"));
  redis.start();  // empty: the streams are gone
  ASSERT_TRUE(eventually([&] { return metric(0, "weft_bus_connected") == 1 && metric(1, "weft_bus_connected") == 1; }));
  ASSERT_TRUE(converged("doc"));
  const std::string t = text(0, "doc");
  EXPECT_TRUE(a.wait_text("doc", t, 10s));
  EXPECT_TRUE(b.wait_text("doc", t, 10s));
  for (int k = 0; k < 40; ++k) EXPECT_NE(t.find(marker(0, k)), std::string::npos);
  for (int k = 0; k < 20; ++k) EXPECT_NE(t.find(marker(1, k)), std::string::npos);
  EXPECT_GE(metric(0, "weft_bus_resyncs_total{reason=\"reconnect\"}"), 1);
  // And live again afterwards.
  a.insert("doc", 0, "<after>");
  EXPECT_TRUE(b.wait_text("doc", a.replica("doc").text(), 10s));
}

TEST_F(RegionTest, WhilePostgresIsUnreachableNodesServeAndBroadcastButDoNotAcknowledge) {
  fault_proxy proxy(pg.port());
  const std::string via_proxy = pg.uri(db_name, proxy.port());
  start_nodes(2, via_proxy);
  test_client writer(port(0)), reader(port(0)), other(port(1));
  for (auto* c : {&writer, &reader, &other}) {
    c->hello();
    c->open("doc");
  }
  writer.insert("doc", 0, "<before>");
  ASSERT_TRUE(writer.wait_acked("doc", 10s));
  ASSERT_TRUE(other.wait_text("doc", "<before>", 10s));
  proxy.cut();
  const std::uint64_t acked_before = writer.acked("doc");
  for (int k = 0; k < 10; ++k) writer.insert("doc", writer.replica("doc").length(), marker(0, k));
  // Served and broadcast on the same node, live.
  ASSERT_TRUE(reader.wait_text("doc", writer.replica("doc").text(), 10s));
  // The writer is told why its edits wait, and nothing is acknowledged.
  bool told = false;
  for (int i = 0; i < 50 && !told; ++i) {
    auto m = writer.recv(200ms);
    if (m && m->type == "error" && m->raw.find("\"storage\"") != std::string::npos) told = true;
  }
  EXPECT_TRUE(told) << "no storage error while the database was away";
  EXPECT_EQ(http_get(port(0), "/healthz").second, "degraded: storage unreachable; edits wait for it\n");
  EXPECT_EQ(writer.acked("doc"), acked_before);
  proxy.heal();
  ASSERT_TRUE(writer.wait_acked("doc", 15s)) << "acknowledged once the database is back";
  // Committed, then fanned out to the other node.
  EXPECT_TRUE(other.wait_text("doc", writer.replica("doc").text(), 10s));
}

TEST_F(RegionTest, DocumentStreamsStayBounded) {
  base.bus_stream_max = 50;
  start_nodes(2);
  test_client a(port(0)), b(port(1));
  a.hello();
  b.hello();
  a.open("doc");
  b.open("doc");
  for (int k = 0; k < 600; ++k) {
    a.insert("doc", a.replica("doc").length(), "x");
    if (k % 50 == 49) {
      ASSERT_TRUE(a.wait_acked("doc", 10s));
    }
  }
  ASSERT_TRUE(a.wait_acked("doc", 10s));
  ASSERT_TRUE(b.wait_text("doc", a.replica("doc").text(), 10s));
  const auto len = std::stoll(redis.command("XLEN weft:doc:doc"));
  EXPECT_GT(len, 0);
  // MAXLEN ~ trims whole stream nodes (100 entries each by default).
  EXPECT_LE(len, 50 + 100) << "the stream grows without bound";
  EXPECT_GE(metric(0, "weft_bus_published_total"), 100);
}

TEST_F(RegionTest, ARegionReplicatesToAnotherRegionThroughTheNodeThatCarriesTheLinks) {
  const std::uint16_t far_port = start_far_region();
  ASSERT_NE(far_port, 0);
  // Region "eu": n0 carries the links to it; n1 has none.
  base.peers = {"ws://127.0.0.1:" + std::to_string(far_port)};
  start_nodes(1, "", "eu");
  base.peers.clear();
  start_nodes(1, "", "eu");
  test_client near(port(1)), away(far_port);
  near.hello();
  away.hello();
  near.open("doc");
  away.open("doc");
  for (int k = 0; k < 20; ++k) near.insert("doc", near.replica("doc").length(), marker(1, k));
  ASSERT_TRUE(near.wait_acked("doc", 10s));
  // n1's batches are in the shared feed; n0 serves them to the far region.
  EXPECT_TRUE(away.wait_text("doc", near.replica("doc").text(), 20s)) << away.replica("doc").text();
  for (int k = 0; k < 20; ++k) away.insert("doc", 0, marker(9, k));
  ASSERT_TRUE(away.wait_acked("doc", 10s));
  // n0 stores them and publishes them on the bus: live on n1.
  EXPECT_TRUE(near.wait_text("doc", away.replica("doc").text(), 20s)) << near.replica("doc").text();
  ASSERT_TRUE(converged("doc"));
  EXPECT_EQ(text(0, "doc"), http_get(far_port, "/api/docs/doc/text").second);
}

// The region's links move by themselves. Every node of region "eu" is given
// the same --peer; only the node holding the region's lease in PostgreSQL
// dials it (and accepts /peer links). When that node stops, another node of
// the region takes the links over, resuming from the shared checkpoints, and
// replication goes on both ways.
TEST_F(RegionTest, TheRegionsLinksMoveToAnotherNodeWhenTheirNodeStops) {
  const std::uint16_t far_port = start_far_region();
  ASSERT_NE(far_port, 0);
  auto far_links_up = [&] {
    auto j = http_get(far_port, "/api/cluster").second;
    std::size_t n = 0;
    for (auto at = j.find("\"state\":\"up\""); at != std::string::npos; at = j.find("\"state\":\"up\"", at + 1)) ++n;
    return n;
  };
  base.peers = {"ws://127.0.0.1:" + std::to_string(far_port)};
  start_nodes(1, "", "eu");
  ASSERT_TRUE(eventually([&] { return metric(0, "weft_replication_links_node") == 1; }, 10s));
  ASSERT_TRUE(eventually([&] { return far_links_up() == 1; }, 10s));
  start_nodes(2, "", "eu");
  // n1 and n2 stand by: the lease is n0's for as long as n0 runs.
  EXPECT_EQ(metric(1, "weft_replication_links_node"), 0);
  EXPECT_EQ(metric(2, "weft_replication_links_node"), 0);
  EXPECT_EQ(far_links_up(), 1u);
  test_client near(port(1)), other(port(2)), away(far_port);
  near.hello();
  other.hello();
  away.hello();
  for (auto* c : {&near, &other, &away}) c->open("doc");
  for (int k = 0; k < 10; ++k) near.insert("doc", near.replica("doc").length(), marker(1, k));
  ASSERT_TRUE(near.wait_acked("doc", 10s));
  EXPECT_TRUE(away.wait_text("doc", near.replica("doc").text(), 20s)) << away.replica("doc").text();
  // The links node stops; one of the others takes the links.
  nodes[0]->stop();
  nodes.erase(nodes.begin());
  ASSERT_TRUE(eventually([&] {
    return metric(0, "weft_replication_links_node") + metric(1, "weft_replication_links_node") == 1;
  }, 15s)) << "no node of the region took the links over";
  ASSERT_TRUE(eventually([&] { return far_links_up() == 1; }, 15s)) << http_get(far_port, "/api/cluster").second;
  // Both ways again: the far region's edits reach both nodes live, and what
  // the region writes reaches the far region.
  for (int k = 0; k < 10; ++k) away.insert("doc", 0, marker(9, k));
  ASSERT_TRUE(away.wait_acked("doc", 10s));
  for (int k = 0; k < 10; ++k) other.insert("doc", other.replica("doc").length(), marker(2, k));
  ASSERT_TRUE(other.wait_acked("doc", 10s));
  ASSERT_TRUE(converged("doc"));
  EXPECT_TRUE(eventually([&] { return http_get(far_port, "/api/docs/doc/text").second == text(0, "doc"); }, 20s))
      << http_get(far_port, "/api/docs/doc/text").second << "\n" << text(0, "doc");
  for (int who : {1, 2, 9})
    for (int k = 0; k < 10; ++k)
      EXPECT_NE(text(0, "doc").find(marker(who, k)), std::string::npos) << marker(who, k);
  EXPECT_TRUE(near.wait_text("doc", text(0, "doc"), 10s));
}

// Replica ownership inside a region (issue #14): claims go into PostgreSQL
// with the batch and onto the bus with it. A node that had the document open
// before the claim learns it from the bus; a node that opens the document
// afterwards reads it from PostgreSQL. On both, the owner keeps writing (a
// failover) and nobody else can.
TEST_F(RegionTest, ReplicaOwnershipHoldsOnEveryNodeOfTheRegion) {
  const std::string secret = "region-ownership-secret-0123456789abcdef";
  server::token_verifier signer(secret);
  auto user_token = [&](const std::string& sub) {
    return signer.sign(R"({"sub":")" + sub + R"(","exp":)" + std::to_string(server::unix_now() + 3600) +
                       R"(,"docs":{"*":"rw"}})");
  };
  base.auth_secret = secret;
  start_nodes(2);
  const replica_id alice_replica = 8080;
  test_client watcher(port(1), 1);  // n1 has the document open before Alice's claim
  ASSERT_TRUE(watcher.hello_with_token(user_token("watcher")));
  watcher.open("owned");
  {
    test_client alice(port(0), alice_replica);
    ASSERT_TRUE(alice.hello_with_token(user_token("alice")));
    alice.open("owned");
    alice.insert("owned", 0, "on n0");
    ASSERT_TRUE(alice.wait_acked("owned"));
  }
  ASSERT_TRUE(watcher.wait_text("owned", "on n0"));
  start_nodes(1);  // n2 loads the document (and the claim) from PostgreSQL
  for (int i : {1, 2}) {
    test_client mallory(port(i), alice_replica);
    ASSERT_TRUE(mallory.hello_with_token(user_token("mallory")));
    mallory.open("owned");
    mallory.insert("owned", 0, "X");
    auto e = mallory.expect("error");
    ASSERT_TRUE(e) << "node " << i;
    EXPECT_NE(e->raw.find("forbidden"), std::string::npos) << "node " << i << ": " << e->raw;
  }
  std::string expected = "on n0";
  for (int i : {1, 2}) {
    // Alice's replica moves with her (a client keeps its replica state): the
    // node she moves to has everything she wrote before she types there.
    test_client reader(port(i), 100 + static_cast<replica_id>(i));
    ASSERT_TRUE(reader.hello_with_token(user_token("reader")));
    reader.open("owned");
    ASSERT_TRUE(reader.wait_text("owned", expected)) << "node " << i;
    test_client alice(port(i), alice_replica);
    ASSERT_TRUE(alice.hello_with_token(user_token("alice")));
    alice.open("owned");
    alice.insert("owned", alice.replica("owned").length(), "+");
    ASSERT_TRUE(alice.wait_acked("owned")) << "node " << i;
    expected += "+";
  }
  EXPECT_TRUE(watcher.wait_text("owned", expected));
}

}  // namespace
}  // namespace weft::test
