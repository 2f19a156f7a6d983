// Replication between weft-server nodes (docs/replication.md), end to end:
// in-process servers on 127.0.0.1, each with its own SQLite database, linked
// over real WebSockets, some links through a fault proxy.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "fault_proxy.h"
#include "auth/auth.h"
#include "protocol/peer_messages.h"
#include "server/replica_owners.h"
#include "server/server.h"
#include "test_client.h"
#include "weft/document.h"
#include "weft/encoding.h"
#include "weft/protocol.h"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

class ClusterTest : public ::testing::Test {
 protected:
  struct node {
    std::string id;
    std::filesystem::path dir;
    std::uint16_t port = 0;
    std::vector<std::string> peers;
    std::unique_ptr<server::server> srv;
  };

  void TearDown() override {
    for (auto& n : nodes_) n.srv.reset();
    proxies_.clear();
    for (auto& n : nodes_) std::filesystem::remove_all(n.dir);
  }

  /// A node named `id` with a fresh data directory, dialling `peers`.
  static node make_node(const std::string& id, std::vector<std::string> peers = {}) {
    node x;
    x.id = id;
    x.dir = std::filesystem::temp_directory_path() /
            ("weft-cluster-" + std::to_string(std::random_device{}()) + "-" + std::to_string(::getpid()) + id);
    x.peers = std::move(peers);
    return x;
  }

  /// Starts `n` nodes named a, b, c, ...; node j dials every node i < j
  /// (through a fault proxy when `proxied`), so every pair has one link.
  void start_cluster(int n, const std::string& topology = "all", const std::string& hub = "", bool proxied = false) {
    topology_ = topology;
    hub_ = hub;
    for (int j = 0; j < n; ++j) {
      node x = make_node(std::string(1, static_cast<char>('a' + j)));
      for (int i = 0; i < j; ++i) {
        std::uint16_t port = nodes_[i].port;
        if (proxied) {
          proxies_[{i, j}] = std::make_unique<fault_proxy>(port);
          port = proxies_[{i, j}]->port();
        }
        x.peers.push_back("ws://127.0.0.1:" + std::to_string(port));
      }
      nodes_.push_back(std::move(x));
      start_node(j);
    }
  }

  server::server_config config_for(const node& x) {
    server::server_config c = base_;
    c.node_id = x.id;
    c.peers = x.peers;
    c.topology = topology_;
    c.hub = hub_;
    c.port = x.port;
    c.data_dir = x.dir.string();
    c.threads = 2;
    c.idle_unload_ms = 500;
    c.level = std::getenv("WEFT_TEST_LOG") ? server::log_level::debug : server::log_level::error;
    return c;
  }
  void start_node(int i) {
    auto s = server::server::start(config_for(nodes_[i]));
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    nodes_[i].srv = std::move(s.value());
    nodes_[i].port = nodes_[i].srv->port();
  }
  void stop_node(int i) { nodes_[i].srv.reset(); }
  std::uint16_t port(int i) const { return nodes_[i].port; }

  /// The document's text on node i ("" when it does not exist; "<error>" on failure).
  std::string text(int i, const std::string& doc) {
    test_client::headers h;
    if (!read_token_.empty()) h.emplace_back("Authorization", "Bearer " + read_token_);
    auto [st, body] = http_get(port(i), "/api/docs/" + doc + "/text", h);
    return st == 200 ? body : "<error " + std::to_string(st) + ">";
  }
  /// True once every running node has the same, non-empty text of `doc`.
  bool converged(const std::string& doc, std::chrono::milliseconds timeout = 20s) {
    return eventually(
        [&] {
          std::string first;
          bool any = false;
          for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (!nodes_[i].srv) continue;
            std::string t = text(static_cast<int>(i), doc);
            if (t.empty() || t.starts_with("<error")) return false;
            if (!any) first = t, any = true;
            else if (t != first) return false;
          }
          return any;
        },
        timeout);
  }
  /// Sum over peers of a labelled replication metric on node i.
  std::uint64_t metric_sum(int i, const std::string& name) {
    auto body = http_get(port(i), "/metrics").second;
    std::uint64_t sum = 0;
    std::regex re("\n" + name + "\\{peer=\"[^\"]*\"\\} ([0-9.e+]+)");
    for (auto it = std::sregex_iterator(body.begin(), body.end(), re); it != std::sregex_iterator(); ++it)
      sum += static_cast<std::uint64_t>(std::stod((*it)[1]));
    return sum;
  }
  std::int64_t metric(int i, const std::string& name) {
    auto body = http_get(port(i), "/metrics").second;
    auto at = body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
  }
  /// Links up on node i.
  int links_up(int i) { return static_cast<int>(metric_sum(i, "weft_replication_link_up")); }
  bool all_links_up(int per_node, std::chrono::milliseconds timeout = 15s) {
    return eventually(
        [&] {
          for (std::size_t i = 0; i < nodes_.size(); ++i)
            if (nodes_[i].srv && links_up(static_cast<int>(i)) != per_node) return false;
          return true;
        },
        timeout);
  }
  std::string cluster_json(int i) { return http_get(port(i), "/api/cluster").second; }
  /// Entries of `doc` in node i's log (its SQLite file); -1 when unreadable.
  std::int64_t log_rows(int i, const std::string& doc) {
    sqlite3* db = nullptr;
    std::int64_t n = -1;
    if (sqlite3_open_v2((nodes_[i].dir / "weft.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM log WHERE doc = ?1", -1, &st, nullptr);
      sqlite3_bind_text(st, 1, doc.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
  }
  /// True once every link of node i has nothing unconfirmed and nothing
  /// queued: whatever it sent has been received and confirmed (a barrier
  /// before checking that something did not happen, instead of a sleep).
  bool links_settled(int i, std::chrono::milliseconds timeout = 15s) {
    static const std::regex busy(R"re("(lag_batches|queue)":[1-9])re");
    return eventually([&] {
      auto j = cluster_json(i);
      return j.find("\"links\":[") != std::string::npos && !std::regex_search(j, busy);
    }, timeout);
  }
  /// The owner node i's SQLite file records for replica `r` of `doc` ("" if none).
  std::string owner_of(int i, const std::string& doc, replica_id r) {
    sqlite3* db = nullptr;
    std::string owner;
    if (sqlite3_open_v2((nodes_[i].dir / "weft.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(db, "SELECT owner FROM owners WHERE doc = ?1 AND replica = ?2", -1, &st, nullptr);
      sqlite3_bind_text(st, 1, doc.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(r));
      if (sqlite3_step(st) == SQLITE_ROW) owner = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return owner;
  }
  /// The "routes" object of node i's /api/cluster (origin -> the peer it
  /// takes that origin's batches from), as text.
  std::string routes(int i) {
    auto j = cluster_json(i);
    auto at = j.find("\"routes\":{");
    return at == std::string::npos ? std::string() : j.substr(at, j.find('}', at) - at + 1);
  }
  /// True once every running node routes every other origin and no node's
  /// routes changed over 3 samples 300 ms apart: the link state has flooded
  /// and the routing is in its steady state (under the sanitizers that takes
  /// several round trips longer than the links take to come up).
  bool routes_settled(std::chrono::milliseconds timeout = 15s) {
    std::vector<std::string> last;
    int stable = 0;
    return eventually(
        [&] {
          std::vector<std::string> now;
          for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (!nodes_[i].srv) continue;
            now.push_back(routes(static_cast<int>(i)));
            if (std::count(now.back().begin(), now.back().end(), ':') != static_cast<long>(nodes_.size()))
              return false;  // "routes": plus one per other origin
          }
          stable = now == last ? stable + 1 : 0;
          last = std::move(now);
          if (stable < 2) std::this_thread::sleep_for(300ms);
          return stable >= 2;
        },
        timeout);
  }

  /// Types `count` unique markers into `doc` on node i, each acknowledged.
  /// Returns the markers.
  /// With `token`, the client says hello with it (and `replica` as its id, when not 0).
  std::vector<std::string> type_markers(int i, const std::string& doc, int count, const std::string& tag,
                                        const std::string& token = {}, replica_id replica = 0) {
    test_client c(port(i), replica);
    if (token.empty())
      c.hello();
    else
      EXPECT_TRUE(c.hello_with_token(token));
    c.open(doc);
    std::vector<std::string> out;
    std::minstd_rand rng(static_cast<unsigned>(i * 7919 + count));
    for (int k = 0; k < count; ++k) {
      std::string m = "<";
      m += tag + std::to_string(k) + ">";
      // At either end: never inside another marker, so each stays whole.
      c.insert(doc, rng() % 2 ? 0 : c.replica(doc).length(), m);
      out.push_back(m);
    }
    EXPECT_TRUE(c.wait_acked(doc, 10s)) << "node " << nodes_[i].id << " did not acknowledge";
    return out;
  }
  void expect_everywhere(const std::string& doc, const std::vector<std::string>& markers) {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i].srv) continue;
      std::string t = text(static_cast<int>(i), doc);
      std::size_t missing = 0;
      for (const auto& m : markers) missing += t.find(m) == std::string::npos;
      EXPECT_EQ(missing, 0u) << "node " << nodes_[i].id << " lacks " << missing << " of " << markers.size()
                             << " acknowledged edits";
    }
  }

  /// Turns auth on for the nodes started from now: HS256 tokens with a test
  /// secret, and a peer token for the links.
  void use_auth() {
    const std::string secret = "a-secret-of-at-least-thirty-two-bytes!";
    signer_ = std::make_unique<server::token_verifier>(secret);
    token_exp_ = std::to_string(server::unix_now() + 3600);
    base_.auth_secret = secret;
    base_.peer_token = signer_->sign(R"({"sub":"nodes","exp":)" + token_exp_ + R"(,"peer":true})");
  }
  /// After use_auth(): a read-write token for every document, for user `sub`.
  std::string user_token(const std::string& sub) {
    return signer_->sign(R"({"sub":")" + sub + R"(","exp":)" + token_exp_ + R"(,"docs":{"*":"rw"}})");
  }

  /// After use_auth(): user "mallory" writes into `doc` on node i under
  /// replica id `r`; returns the error the node answers ("" when none).
  std::string forged_write(int i, replica_id r, const std::string& doc) {
    test_client mallory(port(i), r);
    if (!mallory.hello_with_token(user_token("mallory"))) return "";
    mallory.open(doc);
    mallory.insert(doc, 0, "forged");
    auto e = mallory.expect("error");
    return e ? e->raw : std::string();
  }

  server::server_config base_;
  std::unique_ptr<server::token_verifier> signer_;
  std::string token_exp_;
  std::string read_token_;  // with auth on: the token text() reads with
  std::string topology_ = "all", hub_;
  std::vector<node> nodes_;
  std::map<std::pair<int, int>, std::unique_ptr<fault_proxy>> proxies_;
};

// Concurrent edits on every node of every topology end as one text.
class TopologyTest : public ClusterTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(TopologyTest, ThreeNodesWithWritersOnEachConverge) {
  start_cluster(3, GetParam(), GetParam() == "star" ? "b" : "");
  ASSERT_TRUE(all_links_up(2));
  // Three writers, one per node, interleaving without waiting for each other.
  std::vector<std::unique_ptr<test_client>> writers;
  for (int i = 0; i < 3; ++i) {
    writers.push_back(std::make_unique<test_client>(port(i)));
    writers.back()->hello();
    writers.back()->open("shared");
  }
  std::vector<std::string> markers;
  std::minstd_rand rng(7);
  for (int round = 0; round < 40; ++round)
    for (int i = 0; i < 3; ++i) {
      auto& w = *writers[i];
      std::string m = "<";  // (not "<" + ...: GCC 12 warns falsely, -Wrestrict)
      m += std::to_string(i) + ":" + std::to_string(round) + ">";
      w.insert("shared", rng() % 2 ? 0 : w.replica("shared").length(), m);
      markers.push_back(m);
    }
  for (auto& w : writers) ASSERT_TRUE(w->wait_acked("shared", 10s));
  ASSERT_TRUE(converged("shared")) << text(0, "shared") << "\n" << text(1, "shared") << "\n" << text(2, "shared");
  expect_everywhere("shared", markers);
  // The writers' own replicas converge to the same text too.
  std::string final_text = text(0, "shared");
  for (auto& w : writers) EXPECT_TRUE(w->wait_text("shared", final_text, 10s));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(metric_sum(i, "weft_replication_errors_total"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Topologies, TopologyTest, ::testing::Values("all", "ring", "star"));

TEST_F(ClusterTest, DocumentsNobodyHasOpenAndThoseCreatedDuringAnOutageArrive) {
  start_cluster(2, "all", "", /*proxied=*/true);
  ASSERT_TRUE(all_links_up(1));
  auto before = type_markers(0, "early", 5, "e");
  ASSERT_TRUE(converged("early"));
  proxies_[{0, 1}]->cut();
  ASSERT_TRUE(all_links_up(0));
  // Both sides keep serving their own users while cut off.
  auto on_a = type_markers(0, "made-on-a", 20, "a");
  auto on_b = type_markers(1, "made-on-b", 20, "b");
  auto both_a = type_markers(0, "both", 10, "x");
  auto both_b = type_markers(1, "both", 10, "y");
  EXPECT_EQ(text(1, "made-on-a"), "");
  // The cut shows in the lag: a holds batches b has not confirmed.
  EXPECT_GE(metric_sum(0, "weft_replication_lag_batches"), 30u);
  proxies_[{0, 1}]->heal();
  ASSERT_TRUE(all_links_up(1, 20s));
  ASSERT_TRUE(converged("made-on-a"));
  ASSERT_TRUE(converged("made-on-b"));
  ASSERT_TRUE(converged("both"));
  expect_everywhere("made-on-a", on_a);
  expect_everywhere("made-on-b", on_b);
  both_a.insert(both_a.end(), both_b.begin(), both_b.end());
  expect_everywhere("both", both_a);
  EXPECT_GE(metric(0, "weft_replication_reconnects_total{peer=\"b\"}"), 0);
  EXPECT_GE(metric_sum(0, "weft_replication_reconnects_total") + metric_sum(1, "weft_replication_reconnects_total"), 1u);
}

TEST_F(ClusterTest, APartitionWithWritesOnBothSidesHealsToIdenticalTexts) {
  base_.max_replication_lag_s = 3;
  start_cluster(3, "all", "", /*proxied=*/true);
  ASSERT_TRUE(all_links_up(2));
  type_markers(0, "split", 3, "s");
  ASSERT_TRUE(converged("split"));
  EXPECT_EQ(http_get(port(0), "/healthz").second, "ok\n");
  // Node c is cut off from a and b (black-holed: the links look open).
  proxies_[{0, 2}]->black_hole();
  proxies_[{1, 2}]->black_hole();
  auto left = type_markers(0, "split", 30, "L");
  auto right = type_markers(2, "split", 30, "R");
  // The lag shows, while both sides keep serving their users.
  ASSERT_TRUE(eventually([&] { return http_get(port(0), "/healthz").second.starts_with("degraded: link to c"); }))
      << http_get(port(0), "/healthz").second;
  EXPECT_EQ(text(1, "split").find("<R"), std::string::npos) << "nothing crosses the partition";
  // Silent links are declared dead (10 s) and redialled until they come back.
  ASSERT_TRUE(eventually([&] { return links_up(2) == 0; }, 20s));
  proxies_[{0, 2}]->heal();
  proxies_[{1, 2}]->heal();
  ASSERT_TRUE(converged("split", 30s));
  left.insert(left.end(), right.begin(), right.end());
  expect_everywhere("split", left);
  ASSERT_TRUE(eventually([&] { return http_get(port(0), "/healthz").second == "ok\n"; }));
}

TEST_F(ClusterTest, ARestartedNodeCatchesUpFromItsCheckpoint) {
  start_cluster(3);
  ASSERT_TRUE(all_links_up(2));
  auto first = type_markers(0, "doc", 600, "f");
  ASSERT_TRUE(converged("doc"));
  stop_node(2);
  auto during = type_markers(1, "doc", 50, "d");
  auto elsewhere = type_markers(0, "other", 20, "o");
  start_node(2);
  ASSERT_TRUE(converged("doc"));
  ASSERT_TRUE(converged("other"));
  first.insert(first.end(), during.begin(), during.end());
  expect_everywhere("doc", first);
  expect_everywhere("other", elsewhere);
  // It resumed from its checkpoint: of the 600 batches it had before, none
  // came again. 70 are new; while its links come up one by one the routes
  // settle, and those may come more than once (relayed, from their origin,
  // again after a resubscription). Resending from scratch would be 670.
  EXPECT_LE(metric_sum(2, "weft_replication_batches_received_total"), 4u * (50 + 20));
}

TEST_F(ClusterTest, ARingOfFourDeliversEachBatchToEachNodeOnce) {
  start_cluster(4, "ring");
  ASSERT_TRUE(all_links_up(3));
  // Let the routes settle (link state floods in a few round trips).
  ASSERT_TRUE(routes_settled()) << routes(0) << routes(1) << routes(2) << routes(3);
  std::vector<std::uint64_t> before(4);
  for (int i = 0; i < 4; ++i) before[i] = metric_sum(i, "weft_replication_batches_received_total");
  // 30 acknowledged batches, each typed and acknowledged on its own.
  test_client c(port(0));
  c.hello();
  c.open("ring");
  for (int k = 0; k < 30; ++k) {
    c.insert("ring", 0, "x");
    ASSERT_TRUE(c.wait_acked("ring", 10s));
  }
  ASSERT_TRUE(converged("ring"));
  for (int i = 1; i < 4; ++i) {
    ASSERT_TRUE(eventually([&] { return metric_sum(i, "weft_replication_batches_received_total") - before[i] >= 30; }));
    // Every batch any node sent has been received and confirmed: a second
    // copy would have been counted by now.
    for (int k = 0; k < 4; ++k) ASSERT_TRUE(links_settled(k));
    EXPECT_EQ(metric_sum(i, "weft_replication_batches_received_total") - before[i], 30u)
        << "node " << nodes_[i].id << " got a batch more than once";
    EXPECT_EQ(metric_sum(i, "weft_replication_duplicates_total"), 0u);
  }
  // In a ring, a's batches reach c (opposite) through b, never over the a-c link.
  EXPECT_NE(cluster_json(2).find("\"a\":\"b\""), std::string::npos) << cluster_json(2);
}

TEST_F(ClusterTest, ARingRoutesAroundADownNodeAndBackWhenItReturns) {
  start_cluster(4, "ring");
  ASSERT_TRUE(all_links_up(3));
  ASSERT_TRUE(eventually([&] { return cluster_json(2).find("\"a\":\"b\"") != std::string::npos; }));
  stop_node(1);  // b: c's route to a's batches
  ASSERT_TRUE(eventually([&] { return cluster_json(2).find("\"a\":\"d\"") != std::string::npos; }))
      << cluster_json(2);
  auto m = type_markers(0, "around", 10, "r");
  ASSERT_TRUE(converged("around"));
  expect_everywhere("around", m);
  start_node(1);
  ASSERT_TRUE(eventually([&] { return cluster_json(2).find("\"a\":\"b\"") != std::string::npos; }))
      << "the configured shape returns: " << cluster_json(2);
  ASSERT_TRUE(converged("around"));
}

TEST_F(ClusterTest, AStarRoutesAroundADownHub) {
  start_cluster(4, "star", "a");
  ASSERT_TRUE(all_links_up(3));
  ASSERT_TRUE(eventually([&] { return cluster_json(2).find("\"b\":\"a\"") != std::string::npos; }));
  stop_node(0);  // the hub
  ASSERT_TRUE(eventually([&] { return cluster_json(2).find("\"b\":\"b\"") != std::string::npos; }))
      << cluster_json(2);
  auto m = type_markers(1, "spokes", 10, "s");
  ASSERT_TRUE(converged("spokes"));
  expect_everywhere("spokes", m);
  start_node(0);
  ASSERT_TRUE(eventually([&] { return cluster_json(2).find("\"b\":\"a\"") != std::string::npos; }))
      << cluster_json(2);
  ASSERT_TRUE(converged("spokes"));
  expect_everywhere("spokes", m);
}

TEST_F(ClusterTest, ANodeAddedLaterGetsDocumentsWhoseFeedWasCompacted) {
  base_.snapshot_every_ops = 5;
  start_cluster(2);
  ASSERT_TRUE(all_links_up(1));
  auto m = type_markers(0, "old", 20, "o");
  ASSERT_TRUE(converged("old"));
  // b's confirmation becomes a's record of b's checkpoint (written at most
  // once a second), then more snapshots let a compact what b confirmed.
  std::this_thread::sleep_for(1200ms);
  type_markers(0, "nudge", 2, "n");
  ASSERT_TRUE(converged("nudge"));
  std::this_thread::sleep_for(1200ms);
  type_markers(0, "nudge", 2, "n");
  ASSERT_TRUE(converged("nudge"));
  auto more = type_markers(0, "old", 10, "p");
  m.insert(m.end(), more.begin(), more.end());
  ASSERT_TRUE(converged("old"));
  auto rows = [&](const std::string& doc) { return log_rows(0, doc); };
  ASSERT_TRUE(eventually([&] { return rows("old") >= 0 && rows("old") < 30; }))
      << "a never compacted its feed: " << rows("old") << " entries";
  // A new region joins, linked to a only: its checkpoint (nothing) is in the gap.
  nodes_.push_back(make_node("c", {"ws://127.0.0.1:" + std::to_string(port(0))}));
  start_node(2);
  ASSERT_TRUE(converged("old"));
  ASSERT_TRUE(converged("nudge"));
  expect_everywhere("old", m);
  // And its checkpoint moved past the gap: a sees it caught up, not
  // exchanging the documents over and over.
  EXPECT_TRUE(eventually([&] { return metric_sum(0, "weft_replication_lag_batches") == 0; }))
      << cluster_json(0);
  // Then quiet: 1.5 s without a batch sent, within 15 s. Under load (the
  // sanitizer pass) a last batch or two may still be on its way when the lag
  // reads 0; a node exchanging the documents over and over is never quiet.
  bool quiet = false;
  for (int round = 0; round < 10 && !quiet; ++round) {
    const auto sent = metric_sum(0, "weft_replication_batches_sent_total");
    std::this_thread::sleep_for(1500ms);
    quiet = metric_sum(0, "weft_replication_batches_sent_total") == sent;
  }
  EXPECT_TRUE(quiet) << "still sending while idle";
}

// The per-document exchange that replaces a compacted feed carries the
// replica ownership claims too: the feed entries that first carried them are
// gone, and a new region without them would let anyone write as their owner.
TEST_F(ClusterTest, OwnershipClaimsArriveWithAPerDocumentExchange) {
  use_auth();
  base_.snapshot_every_ops = 5;
  read_token_ = user_token("reader");
  start_cluster(2);
  ASSERT_TRUE(all_links_up(1));
  const replica_id alice_replica = 6060;
  auto m = type_markers(0, "owned", 20, "o", user_token("alice"), alice_replica);
  ASSERT_TRUE(converged("owned"));
  // As in ANodeAddedLaterGetsDocumentsWhoseFeedWasCompacted: b's checkpoint
  // reaches a, and later snapshots let a compact alice's first entries.
  std::this_thread::sleep_for(1200ms);
  type_markers(0, "nudge", 2, "n", user_token("bob"));
  ASSERT_TRUE(converged("nudge"));
  std::this_thread::sleep_for(1200ms);
  type_markers(0, "nudge", 2, "n", user_token("bob"));
  ASSERT_TRUE(converged("nudge"));
  auto more = type_markers(0, "owned", 10, "p", user_token("alice"), alice_replica);
  ASSERT_TRUE(converged("owned"));
  ASSERT_TRUE(eventually([&] { return log_rows(0, "owned") >= 0 && log_rows(0, "owned") < 30; }))
      << "a never compacted its feed: " << log_rows(0, "owned") << " entries";
  nodes_.push_back(make_node("c", {"ws://127.0.0.1:" + std::to_string(port(0))}));
  start_node(2);
  ASSERT_TRUE(converged("owned"));
  expect_everywhere("owned", m);
  // On the new region, alice's replica is still hers: mallory is refused,
  // and after a restart of c too (the claim is durable there).
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "as received" : "after a restart");
    if (round == 1) {
      stop_node(2);
      start_node(2);
    }
    EXPECT_NE(forged_write(2, alice_replica, "owned").find("forbidden"), std::string::npos);
  }
  // alice herself writes on there.
  auto last = type_markers(2, "owned", 1, "q", user_token("alice"), alice_replica);
  ASSERT_TRUE(converged("owned"));
  expect_everywhere("owned", last);
}

TEST_F(ClusterTest, ForgettingADepartedPeerLetsTheLogCompact) {
  base_.snapshot_every_ops = 5;
  start_cluster(3);
  ASSERT_TRUE(all_links_up(2));
  auto rows = [&](const std::string& doc) { return log_rows(0, doc); };
  // Both peers confirm a first round, so a holds checkpoints of b and c.
  auto m = type_markers(0, "kept", 10, "k");
  ASSERT_TRUE(converged("kept"));
  std::this_thread::sleep_for(1200ms);
  type_markers(0, "nudge", 2, "n");
  ASSERT_TRUE(converged("nudge"));
  // b leaves for good. What a writes now, c confirms and b never will: a's
  // snapshots cover it, but compaction keeps it for b.
  stop_node(1);
  auto later = type_markers(0, "kept", 30, "l");
  m.insert(m.end(), later.begin(), later.end());
  for (int round = 0; round < 2; ++round) {
    std::this_thread::sleep_for(1200ms);
    type_markers(0, "nudge", 5, "n");
  }
  ASSERT_TRUE(eventually([&] { return text(2, "kept") == text(0, "kept"); }));
  ASSERT_TRUE(eventually([&] { return text(2, "nudge") == text(0, "nudge"); }));
  std::this_thread::sleep_for(1200ms);  // c's last confirmation recorded
  const auto held = rows("kept");
  EXPECT_GE(held, 30) << "a compacted entries b never confirmed";
  const auto held_c = log_rows(2, "kept");  // c keeps a's batches for b too (it could relay them)
  EXPECT_GE(held_c, 30) << "c compacted entries b never confirmed";
  // a forgets b while running, by POST /api/cluster/forget (a process on
  // this machine, no tokens). Not itself, not c (its link is up), not a
  // name it never heard of.
  auto forget = [&](int i, const std::string& node) {
    return http_request(port(i), "POST", "/api/cluster/forget?node=" + node);
  };
  EXPECT_EQ(forget(0, "a").first, 400);
  EXPECT_EQ(forget(0, "c").first, 409) << forget(0, "c").second;
  EXPECT_EQ(forget(0, "nobody").first, 404);
  EXPECT_EQ(forget(0, "no/such").first, 400);
  EXPECT_EQ(http_request(port(0), "POST", "/api/cluster/forget?node=b", {{"Origin", "http://example.com"}}).first, 403)
      << "a web page made the node forget a peer";
  auto [st, body] = forget(0, "b");
  EXPECT_EQ(st, 200) << body;
  EXPECT_LT(rows("kept"), 10) << "forgetting b left " << rows("kept") << " of " << held << " entries";
  EXPECT_EQ(http_get(port(0), "/metrics").second.find("peer=\"b\""), std::string::npos) << "a still watches b";
  // c restarts forgetting b (and a name it never heard of, which only warns).
  stop_node(2);
  base_.forget_peers = {"b", "nobody"};
  start_node(2);
  base_.forget_peers.clear();
  EXPECT_LT(log_rows(2, "kept"), 10) << "forgetting b left " << log_rows(2, "kept") << " of " << held_c << " entries";
  ASSERT_TRUE(all_links_up(1));
  // c has not reached b since its restart, so b's --peer URL has no node id
  // there and is dialled on, until a forget names it.
  const std::string b_url = nodes_[2].peers.at(1);
  std::string b_url_encoded;
  for (char ch : b_url) b_url_encoded += ch == ':' ? std::string("%3A") : ch == '/' ? std::string("%2F") : std::string(1, ch);
  ASSERT_NE(cluster_json(2).find(b_url), std::string::npos) << cluster_json(2);
  EXPECT_EQ(forget(2, "b&url=ws%3A%2F%2Fnowhere").first, 400);
  EXPECT_EQ(forget(2, "b&url=" + nodes_[2].peers.at(0)).first, 400) << "a URL that reached a";
  EXPECT_EQ(forget(2, "b&url=%zz").first, 400);
  auto [st_url, body_url] = forget(2, "b&url=" + b_url_encoded);
  EXPECT_EQ(st_url, 200) << body_url;
  EXPECT_NE(body_url.find("no longer dialled"), std::string::npos) << body_url;
  EXPECT_EQ(cluster_json(2).find(b_url), std::string::npos) << "c still dials b: " << cluster_json(2);
  // Nothing was lost, here or on c, and replication goes on.
  expect_everywhere("kept", m);
  type_markers(0, "kept", 3, "a");
  ASSERT_TRUE(eventually([&] { return text(2, "kept") == text(0, "kept"); }));
  // Forgetting itself is refused.
  auto c = config_for(nodes_[0]);
  c.port = 0;
  c.peers.clear();
  c.data_dir = (nodes_[0].dir / "other").string();
  c.forget_peers = {"a"};
  auto self = server::server::start(c);
  ASSERT_FALSE(self.ok());
  EXPECT_NE(self.error().detail().find("that is this node"), std::string::npos) << self.error().detail();
}

// The conflict rate: edits made in two regions at once (a partition, here)
// are counted on each side when the other's arrive; edits made one after
// the other, each region having seen the last, are not.
TEST_F(ClusterTest, ConcurrentEditsFromOtherRegionsAreCounted) {
  start_cluster(2, "all", "", /*proxied=*/true);
  ASSERT_TRUE(all_links_up(1));
  const std::string conflicts = "weft_concurrent_ops_merged_total";
  for (int round = 0; round < 3; ++round) {
    type_markers(round % 2, "turns", 3, "t" + std::to_string(round));
    ASSERT_TRUE(converged("turns"));
    for (int k = 0; k < 2; ++k) ASSERT_TRUE(links_settled(k));  // the other's confirmation arrived
  }
  EXPECT_EQ(metric(0, conflicts), 0);
  EXPECT_EQ(metric(1, conflicts), 0);
  proxies_[{0, 1}]->cut();
  ASSERT_TRUE(eventually([&] { return links_up(0) == 0 && links_up(1) == 0; }));
  type_markers(0, "turns", 4, "x");
  type_markers(1, "turns", 5, "y");
  proxies_[{0, 1}]->heal();
  ASSERT_TRUE(converged("turns"));
  EXPECT_TRUE(eventually([&] { return metric(0, conflicts) >= 5 && metric(1, conflicts) >= 4; }))
      << "a counted " << metric(0, conflicts) << ", b " << metric(1, conflicts);
}

TEST_F(ClusterTest, AWriteConcernSaysWhenOpsAreDurableInKRegions) {
  start_cluster(3, "all", "", /*proxied=*/true);
  ASSERT_TRUE(all_links_up(2));
  auto replicated = [](test_client& c, std::uint64_t regions, std::chrono::milliseconds timeout) -> std::uint64_t {
    auto m = c.expect("replicated", timeout);
    if (!m) return 0;
    const auto& r = std::get<protocol::replicated_msg>(m->decoded);
    EXPECT_EQ(r.regions, regions);
    return r.version.get(c.replica_id_value());
  };
  // The highest version reported, reading "replicated" messages until `want` or the timeout.
  auto replicated_upto = [](test_client& c, std::uint64_t regions, std::uint64_t want,
                            std::chrono::milliseconds timeout) -> std::uint64_t {
    const auto end = std::chrono::steady_clock::now() + timeout;
    std::uint64_t got = 0;
    for (int i = 0; i < 100 && got < want; ++i) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      auto m = c.expect("replicated", left);
      if (!m) break;
      const auto& r = std::get<protocol::replicated_msg>(m->decoded);
      EXPECT_EQ(r.regions, regions);
      got = std::max(got, r.version.get(c.replica_id_value()));
    }
    return got;
  };
  test_client three(port(0)), two(port(0));
  three.hello();
  two.hello();
  three.open("wc", 5s, 3);
  two.open("wc", 5s, 2);
  three.insert("wc", 0, "abc");
  ASSERT_TRUE(three.wait_acked("wc"));
  EXPECT_EQ(replicated(three, 3, 10s), three.replica("wc").version().get(three.replica_id_value()));
  // c is cut off: two regions (a and b) still hold each write, three do not.
  proxies_[{0, 2}]->cut();
  proxies_[{1, 2}]->cut();
  ASSERT_TRUE(eventually([&] { return links_up(0) == 1; }));
  three.insert("wc", 0, "x");
  two.insert("wc", 0, "y");
  ASSERT_TRUE(three.wait_acked("wc"));
  ASSERT_TRUE(two.wait_acked("wc"));
  EXPECT_EQ(replicated(two, 2, 10s), two.replica("wc").version().get(two.replica_id_value()));
  // Per write: a connection that opened without a concern asks for one on
  // single writes ("regions" in ops); other writes get acks only.
  test_client single(port(0));
  single.hello();
  single.open("wc");
  auto write = [&](const std::string& t, std::uint64_t regions) {
    auto op = single.replica("wc").insert(0, t).value();
    single.send(protocol::encode_ops("wc", std::vector<operation>{op}, regions));
    EXPECT_TRUE(single.wait_acked("wc"));
    return op.id.counter;
  };
  write("p", 0);
  write("q", 3);
  const auto r = write("r", 2);
  EXPECT_EQ(replicated_upto(single, 2, r, 10s), r);
  EXPECT_EQ(replicated(three, 3, 1500ms), 0u) << "durable in 3 regions while one is cut off?";
  EXPECT_EQ(replicated(single, 3, 10ms), 0u) << "durable in 3 regions while one is cut off?";
  proxies_[{0, 2}]->heal();
  proxies_[{1, 2}]->heal();
  EXPECT_EQ(replicated(three, 3, 20s), three.replica("wc").version().get(three.replica_id_value()))
      << cluster_json(0) << "\n" << cluster_json(2) << "\nc text: " << text(2, "wc") << " a text: " << text(0, "wc");
  EXPECT_EQ(replicated_upto(single, 3, r, 20s), r);
  // Those writes were answered: a later write without a concern gets no
  // "replicated" (nor an early one for "p" alone).
  const auto last = write("s", 0);
  EXPECT_EQ(replicated(single, 0, 1500ms), 0u) << "a replicated message for a write that did not ask";
  // Ops stored before, sent again with a concern (a resend after a
  // reconnect): answered from what is durable already.
  const std::vector<operation> mine = single.replica("wc").ops_since(version_vector{});
  single.send(protocol::encode_ops("wc", mine, 3));
  EXPECT_EQ(replicated_upto(single, 3, last, 10s), last) << "a concern for ops held already was never answered";
  // The same on a document where nobody asked for a concern when the ops
  // were stored.
  test_client late(port(0));
  late.hello();
  late.open("wc-late");
  const operation z = late.replica("wc-late").insert(0, "z").value();
  late.send(protocol::encode_ops("wc-late", std::vector<operation>{z}, 0));
  ASSERT_TRUE(late.wait_acked("wc-late"));
  ASSERT_TRUE(eventually([&] { return text(1, "wc-late") == "z" && text(2, "wc-late") == "z"; }));
  ASSERT_TRUE(links_settled(0));  // the peers' confirmations reached a
  late.send(protocol::encode_ops("wc-late", std::vector<operation>{z}, 2));
  EXPECT_EQ(replicated_upto(late, 2, z.id.counter, 10s), z.id.counter) << "a concern for ops stored before it";
}

// A write concern counts regions that are not this node's neighbours: in
// a ring of four linked only around (a-b, b-c, c-d, d-a), a's ops are
// durable in 4 regions once c holds them too, which a hears of from the
// state c floods, not from a link.
TEST_F(ClusterTest, AWriteConcernCountsRegionsThatAreNotNeighbours) {
  topology_ = "ring";
  const auto url = [&](int i) { return "ws://127.0.0.1:" + std::to_string(port(i)); };
  nodes_.push_back(make_node("a"));
  start_node(0);
  nodes_.push_back(make_node("b", {url(0)}));
  start_node(1);
  nodes_.push_back(make_node("c", {url(1)}));
  start_node(2);
  nodes_.push_back(make_node("d", {url(2), url(0)}));
  start_node(3);
  ASSERT_TRUE(all_links_up(2));
  ASSERT_TRUE(routes_settled());
  test_client w(port(0));
  w.hello();
  w.open("far", 5s, 4);
  w.insert("far", 0, "everywhere");
  ASSERT_TRUE(w.wait_acked("far"));
  const std::uint64_t mine = w.replica("far").version().get(w.replica_id_value());
  auto m = w.expect("replicated", 20s);
  ASSERT_TRUE(m) << "never durable in 4 regions: " << cluster_json(0);
  const auto& r = std::get<protocol::replicated_msg>(m->decoded);
  EXPECT_EQ(r.regions, 4u);
  EXPECT_EQ(r.version.get(w.replica_id_value()), mine);
  EXPECT_EQ(text(2, "far"), "everywhere");
  // Not earlier than c held it: with c stopped, a new write is durable in
  // 3 regions at most.
  stop_node(2);
  ASSERT_TRUE(eventually([&] { return links_up(1) == 1 && links_up(3) == 1; }));
  w.insert("far", 0, "x");
  ASSERT_TRUE(w.wait_acked("far"));
  // The write reached b and d, and they confirmed it to a (links drained):
  // everything that could count it has, and still no answer.
  ASSERT_TRUE(eventually([&] { return text(1, "far") == "xeverywhere" && text(3, "far") == "xeverywhere"; }));
  ASSERT_TRUE(links_settled(0));
  EXPECT_FALSE(w.expect("replicated", 500ms)) << "durable in 4 regions while one of them is down?";
}

TEST_F(ClusterTest, WithAuthOnALinkNeedsAPeerToken) {
  const std::string secret = "a-secret-of-at-least-thirty-two-bytes!";
  server::token_verifier signer(secret);
  const auto exp = std::to_string(server::unix_now() + 3600);
  base_.auth_secret = secret;
  // No token: refused.
  start_cluster(2);
  EXPECT_FALSE(all_links_up(1, 2s));
  EXPECT_NE(cluster_json(1).find("peer token"), std::string::npos) << cluster_json(1);
  // A client's token, even one that may write everything: refused.
  stop_node(1);
  base_.peer_token = signer.sign(R"({"sub":"mallory","exp":)" + exp + R"(,"docs":{"*":"rw"}})");
  start_node(1);
  EXPECT_FALSE(all_links_up(1, 2s));
  EXPECT_NE(cluster_json(1).find("a client token cannot open a replication link"), std::string::npos) << cluster_json(1);
  // A peer token: the link comes up and carries batches.
  stop_node(1);
  base_.peer_token = signer.sign(R"({"sub":"b","exp":)" + exp + R"(,"peer":true})");
  start_node(1);
  ASSERT_TRUE(all_links_up(1));
  test_client c(port(0));
  auto welcome = c.hello_with_token(signer.sign(R"({"sub":"alice","exp":)" + exp + R"(,"docs":{"*":"rw"}})"));
  ASSERT_TRUE(welcome && welcome->type == "welcome");
  c.open("secured");
  c.insert("secured", 0, "hello");
  ASSERT_TRUE(c.wait_acked("secured"));
  auto bearer = test_client::headers{{"Authorization", "Bearer " + signer.sign(R"({"sub":"bob","exp":)" + exp +
                                                                                  R"(,"docs":{"*":"r"}})")}};
  EXPECT_TRUE(eventually([&] { return http_get(port(1), "/api/docs/secured/text", bearer).second == "hello"; }));
  // A peer token is no client token: it opens no document.
  test_client peer_as_client(port(0));
  auto refused = peer_as_client.hello_with_token(base_.peer_token);
  if (refused && refused->type == "welcome") {
    peer_as_client.send(R"({"type":"open","doc":"secured"})");
    auto e = peer_as_client.expect("error");
    ASSERT_TRUE(e);
    EXPECT_NE(e->raw.find("forbidden"), std::string::npos) << e->raw;
  }
}

// Revoking a peer token (its jti on --auth-deny-list) closes the links
// accepted with it, and the node that dialled cannot link again with it.
TEST_F(ClusterTest, RevokingAPeerTokenClosesItsLinks) {
  const std::string secret = "a-secret-of-at-least-thirty-two-bytes!";
  server::token_verifier signer(secret);
  const auto exp = std::to_string(server::unix_now() + 3600);
  const auto deny = std::filesystem::temp_directory_path() /
                    ("weft-deny-" + std::to_string(std::random_device{}()) + "-" + std::to_string(::getpid()));
  std::ofstream(deny) << "# revoked\n";
  base_.auth_secret = secret;
  base_.auth_deny_list = deny.string();
  base_.peer_token = signer.sign(R"({"sub":"nodes","exp":)" + exp + R"(,"jti":"link-1","peer":true})");
  start_cluster(2);
  ASSERT_TRUE(all_links_up(1));
  std::ofstream(deny) << "# revoked\nlink-1\n";  // reread within 2 s
  EXPECT_TRUE(eventually([&] { return links_up(0) == 0 && links_up(1) == 0; }, 15s))
      << cluster_json(0) << "\n" << cluster_json(1);
  // b keeps dialling, with the revoked token: never up again.
  EXPECT_FALSE(all_links_up(1, 3s));
  EXPECT_NE(cluster_json(1).find("revoked"), std::string::npos) << cluster_json(1);
  std::filesystem::remove(deny);
}

// Replica ownership travels with the batches (issue #14): a claim made in
// one region is held in the other, so a user who moves there keeps writing
// under her replica id, and nobody else can write under it there either.
TEST_F(ClusterTest, ReplicaOwnershipTravelsBetweenRegions) {
  use_auth();
  start_cluster(2);
  ASSERT_TRUE(all_links_up(1));
  const replica_id alice_replica = 6060;
  {
    test_client alice(port(0), alice_replica);
    ASSERT_TRUE(alice.hello_with_token(user_token("alice")));
    alice.open("owned");
    alice.insert("owned", 0, "from a");
    ASSERT_TRUE(alice.wait_acked("owned"));
  }
  // The other region has her ops, and with them her claim.
  test_client watcher(port(1), 1);
  ASSERT_TRUE(watcher.hello_with_token(user_token("watcher")));
  watcher.open("owned");
  ASSERT_TRUE(watcher.wait_text("owned", "from a", 20s));
  EXPECT_NE(forged_write(1, alice_replica, "owned").find("forbidden"), std::string::npos);
  test_client alice(port(1), alice_replica);
  ASSERT_TRUE(alice.hello_with_token(user_token("alice")));
  alice.open("owned");
  alice.insert("owned", 6, ", then b");
  ASSERT_TRUE(alice.wait_acked("owned"));
  EXPECT_TRUE(watcher.wait_text("owned", "from a, then b"));
}

// A /peer upgrade holds its place under --max-connections-per-address for
// as long as the link lives, like a client's: anyone may try one before the
// hello shows a peer token, so it must not be a way around the limit.
TEST_F(ClusterTest, PeerLinksCountAgainstTheConnectionLimitPerAddress) {
  namespace net = boost::asio;
  namespace beast = boost::beast;
  base_.max_connections_per_address = 3;
  start_cluster(1);
  net::io_context io;
  std::vector<std::unique_ptr<beast::websocket::stream<beast::tcp_stream>>> links;
  auto open_peer = [&]() -> bool {
    auto ws = std::make_unique<beast::websocket::stream<beast::tcp_stream>>(io);
    beast::get_lowest_layer(*ws).expires_after(5s);
    beast::error_code ec;
    beast::get_lowest_layer(*ws).connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port(0)), ec);
    if (!ec) ws->handshake("127.0.0.1", "/peer", ec);
    if (ec) return false;
    links.push_back(std::move(ws));
    return true;
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(open_peer()) << "upgrade " << i;
  EXPECT_FALSE(open_peer()) << "a fourth /peer upgrade from one address was admitted";
  EXPECT_EQ(http_get(port(0), "/healthz").first, 429);
  links.clear();  // the links close: their places are free again
  EXPECT_TRUE(eventually([&] { return http_get(port(0), "/healthz").first == 200; }));
}

// A hand-written peer on /peer (auth off): says hello as node `node`;
// take() runs its reads and returns the control messages of one type the
// node sent so far.
class raw_peer {
 public:
  raw_peer(std::uint16_t port, const std::string& node, const std::string& key) {
    namespace net = boost::asio;
    ws_.next_layer().connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    ws_.handshake("127.0.0.1", "/peer");
    send(protocol::peer::encode(protocol::peer::hello{node, key, "", protocol::peer::link_version}));
    read_next();
  }
  ~raw_peer() {
    boost::beast::error_code ec;
    ws_.next_layer().socket().close(ec);
    io_.restart();
    io_.poll();
  }
  void send(const std::string& text) {
    ws_.text(true);
    ws_.write(boost::asio::buffer(text));
  }
  void send_binary(const std::string& bytes) {
    ws_.binary(true);
    ws_.write(boost::asio::buffer(bytes));
  }
  template <class T>
  std::vector<T> take() {
    pump();
    std::vector<T> out;
    for (auto it = got_.begin(); it != got_.end();) {
      if (auto* t = std::get_if<T>(&*it)) {
        out.push_back(*t);
        it = got_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }
  bool closed() {
    pump();
    return closed_;
  }

 private:
  void pump() {
    io_.restart();
    io_.run_for(std::chrono::milliseconds(50));
  }
  void read_next() {
    ws_.async_read(buf_, [this](boost::beast::error_code ec, std::size_t) {
      if (ec) {
        closed_ = true;
        return;
      }
      if (ws_.got_text()) {
        auto m = protocol::peer::decode(boost::beast::buffers_to_string(buf_.data()));
        if (m.ok()) got_.push_back(std::move(m.value()));
      }
      buf_.consume(buf_.size());
      read_next();
    });
  }
  boost::asio::io_context io_;
  boost::beast::websocket::stream<boost::beast::tcp_stream, false> ws_{io_};
  boost::beast::flat_buffer buf_;
  std::deque<protocol::peer::message> got_;
  bool closed_ = false;
};

// The per-document exchange cannot be turned against a node: a peer may ask
// (want_doc) only for documents a gap of this link named, and a node that is
// sent a gap asks for its documents a few at a time, not all at once.
TEST_F(ClusterTest, APerDocumentExchangeIsBoundedAndOnlyForDocumentsAGapNamed) {
  start_cluster(1);
  {
    raw_peer x(port(0), "x", "x~01");
    ASSERT_TRUE(eventually([&] { return !x.take<protocol::peer::welcome>().empty(); }, 5s));
    x.send(protocol::peer::encode(protocol::peer::want_doc{"a~00", "secret", {}}));
    ASSERT_TRUE(eventually([&] { return x.closed(); }, 5s)) << "the link stayed up";
    auto errors = x.take<protocol::peer::link_error>();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].message.find("no gap"), std::string::npos) << errors[0].message;
  }
  raw_peer y(port(0), "y", "y~02");
  ASSERT_TRUE(eventually([&] { return !y.take<protocol::peer::welcome>().empty(); }, 5s));
  protocol::peer::gap g{"y~02", 5, {}};
  for (int i = 0; i < 100; ++i) g.docs.push_back("gapdoc" + std::to_string(i));
  y.send(protocol::peer::encode(g));
  std::vector<protocol::peer::want_doc> asked;
  ASSERT_TRUE(eventually([&] {
    for (auto& w : y.take<protocol::peer::want_doc>()) asked.push_back(std::move(w));
    return asked.size() >= 16;
  }, 10s)) << asked.size();
  std::this_thread::sleep_for(500ms);
  for (auto& w : y.take<protocol::peer::want_doc>()) asked.push_back(std::move(w));
  EXPECT_EQ(asked.size(), 16u) << "asked for more documents at once than the bound";
  // Each answer lets one more ask go out; all 100 are asked for in the end.
  std::set<std::string> docs;
  for (int round = 0; round < 200 && docs.size() < 100; ++round) {
    for (auto& w : y.take<protocol::peer::want_doc>()) asked.push_back(std::move(w));
    while (!asked.empty()) {
      auto w = std::move(asked.back());
      asked.pop_back();
      docs.insert(w.doc);
      y.send_binary(protocol::peer::encode_entries({protocol::peer::entry{w.key, 0, w.doc, "y~02", 0, encode_ops({}), {}}}));
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(docs.size(), 100u);
  EXPECT_FALSE(y.closed());
}

// A per-document answer's owner claims are stored even when every op in it
// was held here already (the ops came by a way that carried no claims): a
// claim kept only in memory would be gone after an unload or a restart,
// leaving the replica ownerless here and its owner refused.
TEST_F(ClusterTest, ClaimsOfAnAnswerWhoseOpsWereAllHeldAreStored) {
  start_cluster(1);
  const replica_id r = 7070;
  std::vector<operation> ops;
  {
    test_client c(port(0), r);
    c.hello();
    c.open("claimdoc");
    c.insert("claimdoc", 0, "held here already");
    ASSERT_TRUE(c.wait_acked("claimdoc", 10s));
    ops = c.replica("claimdoc").ops_since(version_vector{});
  }
  ASSERT_FALSE(ops.empty());
  EXPECT_EQ(owner_of(0, "claimdoc", r), "");
  raw_peer y(port(0), "y", "y~02");
  ASSERT_TRUE(eventually([&] { return !y.take<protocol::peer::welcome>().empty(); }, 5s));
  y.send(protocol::peer::encode(protocol::peer::gap{"y~02", 5, {"claimdoc"}}));
  std::vector<protocol::peer::want_doc> asked;
  ASSERT_TRUE(eventually([&] {
    for (auto& w : y.take<protocol::peer::want_doc>()) asked.push_back(std::move(w));
    return !asked.empty();
  }, 10s));
  const std::string claims = server::encode_claims({{r, "alice"}});
  y.send_binary(protocol::peer::encode_entries(
      {protocol::peer::entry{asked[0].key, 0, asked[0].doc, "y~02", 0, encode_ops(ops), claims}}));
  EXPECT_TRUE(eventually([&] { return owner_of(0, "claimdoc", r) == "alice"; }, 10s))
      << "the claim was not stored";
  EXPECT_FALSE(y.closed());
}

// A peer that keeps its link alive but never reads cannot make a node hold
// its whole feed in memory: feed entries wait in storage once 16 MiB wait to
// be written, and the link closes once a frame has waited for
// --peer-write-timeout-s. Replication would resume from the checkpoint.
TEST_F(ClusterTest, APeerThatDoesNotReadIsBoundedAndDropped) {
  base_.peer_write_timeout_s = 4;
  start_cluster(1);
  {
    // About 48 MB of the node's own batches for the peer to be sent.
    test_client c(port(0));
    c.hello();
    c.open("big");
    const std::string chunk(500000, 'x');
    for (int k = 0; k < 96; ++k) c.insert("big", 0, chunk);
    ASSERT_TRUE(c.wait_acked("big", 60s));
  }
  raw_peer y(port(0), "y", "y~02");
  ASSERT_TRUE(eventually([&] { return !y.take<protocol::peer::welcome>().empty(); }, 5s));
  y.send(protocol::peer::encode(protocol::peer::subscribe{{"a"}, {}}));
  // From here on y reads nothing (no take()), but it sends a probe every
  // 200 ms, so it is never silent.
  const std::regex queued(R"re("peer":"y"[^}]*"state":"up"[^}]*"queue_bytes":(\d+))re");
  std::uint64_t most = 0;
  bool was_up = false, dropped = false;
  for (int round = 0; round < 100 && !dropped; ++round) {
    y.send(protocol::peer::encode(protocol::peer::probe{1, false}));
    std::smatch m;
    const std::string j = cluster_json(0);
    if (std::regex_search(j, m, queued)) {
      was_up = true;
      most = std::max<std::uint64_t>(most, std::stoull(m[1].str()));
    } else if (was_up) {
      dropped = true;
    }
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(was_up);
  EXPECT_GT(most, 1u << 20) << "nothing queued up: the test did not stop the peer reading";
  EXPECT_LE(most, (16u << 20) + (5u << 20)) << "the link queued " << most << " bytes for a peer that does not read";
  EXPECT_TRUE(dropped) << "the link to a peer that does not read stayed up";
}

// ---- links over TLS ---------------------------------------------------------------------

/// A wss:// client of the node on `port` (its certificate checked against the
/// test CA): sends `ops` for `doc` when given, and returns the text of the
/// document as its sync shows it.
std::string tls_session(std::uint16_t port, const std::string& doc, const std::vector<operation>& ops = {}) {
  namespace net = boost::asio;
  namespace beast = boost::beast;
  net::io_context io;
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.load_verify_file(WEFT_TEST_DATA_DIR "/tls/test-cert.pem");
  ctx.set_verify_mode(net::ssl::verify_peer);
  beast::websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(io, ctx);
  beast::get_lowest_layer(ws).expires_after(10s);
  beast::get_lowest_layer(ws).connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  ws.next_layer().set_verify_callback(net::ssl::host_name_verification("127.0.0.1"));
  ws.next_layer().handshake(net::ssl::stream_base::client);
  ws.handshake("127.0.0.1", "/");
  ws.text(true);
  ws.write(net::buffer(std::string(R"({"type":"hello","protocol":1})")));
  ws.write(net::buffer(R"({"type":"open","doc":")" + doc + R"("})"));
  protocol::decoder dec;
  document replica(9);
  for (int i = 0; i < 20; ++i) {  // welcome, then the sync (in one piece for a small document)
    beast::flat_buffer buf;
    ws.read(buf);
    auto m = dec.server(beast::buffers_to_string(buf.data()));
    auto* msg = std::get_if<protocol::server_message>(&m);
    auto* sync = msg ? std::get_if<protocol::sync_msg>(msg) : nullptr;
    if (!sync) continue;
    for (const auto& op : sync->ops) (void)replica.apply(op);
    break;
  }
  if (!ops.empty()) {
    ws.write(net::buffer(protocol::encode_ops(doc, ops)));
    for (int i = 0; i < 20; ++i) {  // until the ack: the ops are durable there
      beast::flat_buffer buf;
      ws.read(buf);
      if (beast::buffers_to_string(buf.data()).find(R"("type":"ack")") != std::string::npos) break;
    }
  }
  beast::error_code ec;
  ws.close(beast::websocket::close_code::normal, ec);
  return replica.text();
}

// --peer wss://: the link runs over TLS, the dialling node checks the
// peer's certificate against --peer-ca and the host name, and batches
// travel both ways over it. Without a CA that signed the certificate, the
// link does not come up and says why.
TEST_F(ClusterTest, LinksOverTlsCheckThePeersCertificate) {
  // a serves TLS only; b dials it with wss://.
  nodes_.push_back(make_node("a"));
  base_.tls_cert = WEFT_TEST_DATA_DIR "/tls/test-cert.pem";
  base_.tls_key = WEFT_TEST_DATA_DIR "/tls/test-key.pem";
  start_node(0);
  base_.tls_cert.clear();
  base_.tls_key.clear();
  nodes_.push_back(make_node("b", {"wss://127.0.0.1:" + std::to_string(port(0))}));
  base_.peer_ca = WEFT_TEST_DATA_DIR "/tls/test-cert.pem";
  start_node(1);
  ASSERT_TRUE(eventually([&] { return links_up(1) == 1; }, 15s)) << cluster_json(1);

  // b -> a: typed on b, read on a over wss://.
  test_client c(port(1));
  c.hello();
  c.open("secure");
  c.insert("secure", 0, "from b");
  ASSERT_TRUE(c.wait_acked("secure"));
  EXPECT_TRUE(eventually([&] { return tls_session(port(0), "secure") == "from b"; }, 20s));
  // a -> b: written on a over wss://, seen by b's client.
  document writer(77);
  for (const auto& o : c.replica("secure").ops_since({})) (void)writer.apply(o);
  auto op = writer.insert(writer.length(), ", from a");
  ASSERT_TRUE(op.ok());
  tls_session(port(0), "secure", {op.value()});
  EXPECT_TRUE(c.wait_text("secure", "from b, from a", 20s));

  // A node without the CA (the system's CAs) refuses a's self-signed certificate.
  nodes_.push_back(make_node("d", {"wss://127.0.0.1:" + std::to_string(port(0))}));
  base_.peer_ca.clear();
  start_node(2);
  EXPECT_TRUE(eventually([&] { return cluster_json(2).find("certificate verify failed") != std::string::npos; }, 15s))
      << cluster_json(2);
  EXPECT_EQ(links_up(2), 0);
}

// Mutual TLS on links: with --peer-client-ca, a node takes /peer links only
// from peers presenting a client certificate its CA signed, and only for the
// node the certificate names.
TEST_F(ClusterTest, WithPeerClientCaALinkNeedsACertificateNamingItsNode) {
  const std::string tls = WEFT_TEST_DATA_DIR "/tls/";
  nodes_.push_back(make_node("a"));
  base_.tls_cert = tls + "test-cert.pem";
  base_.tls_key = tls + "test-key.pem";
  base_.peer_client_ca = tls + "peer-ca.pem";
  start_node(0);
  base_.tls_cert.clear();
  base_.tls_key.clear();
  base_.peer_client_ca.clear();
  base_.peer_ca = tls + "test-cert.pem";
  const std::string url = "wss://127.0.0.1:" + std::to_string(port(0));
  // b presents the certificate the CA made for b: the link comes up and
  // carries batches.
  base_.peer_cert = tls + "peer-b-cert.pem";
  base_.peer_key = tls + "peer-b-key.pem";
  nodes_.push_back(make_node("b", {url}));
  start_node(1);
  ASSERT_TRUE(eventually([&] { return links_up(1) == 1; }, 15s)) << cluster_json(1);
  auto m = type_markers(1, "mtls", 3, "m");
  // (a serves TLS only: read over wss://.)
  ASSERT_TRUE(eventually([&] { return tls_session(port(0), "mtls") == text(1, "mtls"); }, 15s));
  // c presents b's certificate: refused, it names b.
  nodes_.push_back(make_node("c", {url}));
  start_node(2);
  EXPECT_TRUE(eventually([&] { return cluster_json(2).find("names b, not node c") != std::string::npos; }, 15s))
      << cluster_json(2);
  // d presents none: refused at the upgrade.
  base_.peer_cert.clear();
  base_.peer_key.clear();
  nodes_.push_back(make_node("d", {url}));
  start_node(3);
  EXPECT_TRUE(eventually([&] { return cluster_json(3).find("needs a client certificate") != std::string::npos; }, 15s))
      << cluster_json(3);
  EXPECT_EQ(links_up(2), 0);
  EXPECT_EQ(links_up(3), 0);
  EXPECT_EQ(links_up(1), 1);
  // Clients of a still connect without a certificate.
  EXPECT_NE(tls_session(port(0), "mtls").find(m[0]), std::string::npos);
}

}  // namespace
}  // namespace weft::test
