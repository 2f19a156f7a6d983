// End-to-end tests: a real weft-server on 127.0.0.1 (random port), real
// WebSocket clients, a real SQLite database in a temporary directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <thread>

#include "weft/protocol.h"
#include "server/server.h"
#include "server_fixture.h"
#include "test_client.h"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

class ServerTest : public server_fixture {
 protected:
  void SetUp() override {
    server_fixture::SetUp();
    start();
  }
};

TEST_F(ServerTest, HealthAndMetrics) {
  auto [st, body] = http_get(port(), "/healthz");
  EXPECT_EQ(st, 200);
  EXPECT_EQ(body, "ok\n");
  test_client c(port());
  c.hello();
  auto [mst, metrics] = http_get(port(), "/metrics");
  EXPECT_EQ(mst, 200);
  EXPECT_NE(metrics.find("weft_connections 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("weft_commit_seconds_bucket"), std::string::npos);
  EXPECT_EQ(http_get(port(), "/api/docs/bad%20id/text").first, 400);
}

TEST_F(ServerTest, HelloIsRequiredAndVersioned) {
  test_client c(port());
  c.send(R"({"type":"open","doc":"x"})");
  auto e = c.expect("error");
  ASSERT_TRUE(e);
  EXPECT_NE(e->raw.find("not_hello"), std::string::npos);
  c.send(R"({"type":"hello","protocol":99})");
  e = c.expect("error");
  ASSERT_TRUE(e);
  EXPECT_NE(e->raw.find("protocol_version"), std::string::npos);
  c.hello();
}

TEST_F(ServerTest, TwoClientsConverge) {
  test_client a(port()), b(port());
  a.hello();
  b.hello();
  a.open("doc1");
  b.open("doc1");
  a.insert("doc1", 0, "Hello");
  ASSERT_TRUE(b.wait_text("doc1", "Hello"));
  b.insert("doc1", 5, " world");
  a.insert("doc1", 0, ">> ");  // concurrent with b's insert
  ASSERT_TRUE(a.wait_text("doc1", ">> Hello world"));
  ASSERT_TRUE(b.wait_text("doc1", ">> Hello world"));
  b.erase("doc1", 0, 3);
  ASSERT_TRUE(a.wait_text("doc1", "Hello world"));
  EXPECT_TRUE(a.wait_acked("doc1"));
  EXPECT_TRUE(b.wait_acked("doc1"));
  EXPECT_EQ(http_get(port(), "/api/docs/doc1/text").second, "Hello world");
}

TEST_F(ServerTest, OutOfOrderOpsAreAppliedAndRebroadcastInCausalOrder) {
  test_client a(port()), b(port());
  a.hello();
  b.hello();
  a.open("d");
  b.open("d");
  document local(4242);
  auto op1 = local.insert(0, "ab").value();
  auto op2 = local.insert(2, "cd").value();
  a.send_ops("d", {op2});  // n+1 first: the server buffers it
  a.barrier("d");
  a.send_ops("d", {op1});
  ASSERT_TRUE(b.wait_text("d", "abcd"));
  const auto& got = b.received("d");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, op1.id);
  EXPECT_EQ(got[1].id, op2.id);
}

TEST_F(ServerTest, BufferedOpsAreAcknowledgedOnceTheirDependenciesArrive) {
  test_client a(port(), 10), b(port(), 20);
  a.hello();
  b.hello();
  a.open("dep");
  b.open("dep");
  // b has a's text (received out of band) and builds on it.
  document& rb = b.replica("dep");
  document ra(10);
  auto base = ra.insert(0, "base").value();
  (void)rb.apply(base);
  b.insert("dep", 4, "+more");     // the server cannot apply this yet
  b.barrier("dep");
  EXPECT_EQ(b.acks_seen("dep"), 0);  // nothing is durable: no ack at all (not an empty one)
  EXPECT_EQ(b.acked("dep"), 0u);
  a.send_ops("dep", {base});       // now both apply
  EXPECT_TRUE(b.wait_acked("dep"));
  EXPECT_EQ(http_get(port(), "/api/docs/dep/text").second, "base+more");
}

TEST_F(ServerTest, AnAckNeverRepeatsWhatTheConnectionWasTold) {
  test_client a(port(), 31);
  a.hello();
  a.open("once");
  auto op = a.insert("once", 0, "hi");
  ASSERT_TRUE(a.wait_acked("once"));
  EXPECT_EQ(a.acks_seen("once"), 1);
  for (int i = 0; i < 3; ++i) a.send_ops("once", {op});  // duplicates of durable ops
  a.barrier("once");
  EXPECT_EQ(a.acks_seen("once"), 1);
  // A new connection resending them (the recovery path) is told once.
  test_client b(port(), 31);
  b.hello();
  b.send(protocol::encode_open("once", version_vector{}));
  ASSERT_TRUE(b.expect("sync"));
  b.send_ops("once", {op});
  b.send_ops("once", {op});
  ASSERT_TRUE(b.expect("ack"));
  b.barrier("once");
  EXPECT_EQ(b.acks_seen("once"), 1);
  EXPECT_EQ(b.acked("once"), op.id.counter + 1);
}

TEST_F(ServerTest, BinaryFramesAreNegotiatedAndMixWithJsonPeers) {
  test_client bin(port(), 41), json(port(), 42);
  bin.hello(/*binary=*/true);
  json.hello();
  bin.open("mix");
  json.open("mix");
  ASSERT_NE(bin.ref("mix"), 0u);
  EXPECT_EQ(json.ref("mix"), 0u);  // no ref for a JSON connection
  // Binary in: a keystroke as a binary frame; JSON peers get JSON, and the
  // author gets a binary ack.
  auto op = bin.replica("mix").insert(0, "hé").value();
  bin.send_binary_ops("mix", {op});
  ASSERT_TRUE(json.wait_text("mix", "hé"));
  auto ack = bin.expect("ack");
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->binary);
  EXPECT_EQ(bin.acked("mix"), op.id.counter + 1);
  // JSON in: the binary peer gets a binary rebroadcast of about 20 bytes.
  json.insert("mix", 2, "!");
  std::optional<message> live;
  for (int i = 0; i < 10 && !(live && live->type == "ops"); ++i) live = bin.expect("ops");
  ASSERT_TRUE(live);
  EXPECT_TRUE(live->binary);
  EXPECT_LE(live->raw.size(), 38u);
  ASSERT_TRUE(bin.wait_text("mix", "hé!"));
  // Bad binary frames get an error; binary frames are refused where not asked for.
  bin.send_binary(protocol::encode_binary_ops(999999, std::vector<operation>{op}));
  auto e = bin.expect("error");
  ASSERT_TRUE(e);
  EXPECT_EQ(std::get<protocol::error_msg>(e->decoded).code, "not_open");
  bin.send_binary(std::string("\x02\x01\x00", 3));
  ASSERT_TRUE(bin.expect("error"));
  json.send_binary(protocol::encode_binary_ops(bin.ref("mix"), std::vector<operation>{op}));
  auto refused = json.expect("error");
  ASSERT_TRUE(refused);
  EXPECT_EQ(std::get<protocol::error_msg>(refused->decoded).code, "bad_message");
  EXPECT_EQ(http_get(port(), "/api/docs/mix/text").second, "hé!");
}

TEST_F(ServerTest, AnEmptyReplicaThatAsksGetsTheDocumentAsOneSnapshot) {
  test_client a(port(), 51);
  a.hello();
  a.open("snap");
  a.insert("snap", 0, "hello snapshot");
  a.erase("snap", 0, 6);
  ASSERT_TRUE(a.wait_acked("snap"));
  // Binary frames, an empty version and "snapshot":true: one snapshot frame,
  // then a sync without ops that gives the version and the ref.
  test_client b(port(), 52);
  b.send(protocol::encode_hello({protocol::protocol_version, "test", {}, /*binary=*/true}));
  auto welcome = b.expect("welcome");
  ASSERT_TRUE(welcome);
  EXPECT_TRUE(std::get<protocol::welcome_msg>(welcome->decoded).snapshot) << "offered on a binary connection";
  b.send(protocol::encode_open("snap", version_vector{}, 0, /*snapshot=*/true));
  auto first = b.recv();
  ASSERT_TRUE(first);
  ASSERT_EQ(first->type, "snapshot");
  EXPECT_TRUE(first->binary);
  EXPECT_EQ(first->snapshot_doc, "snap");
  auto loaded = document::decode_snapshot(first->snapshot, 52);
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  EXPECT_EQ(loaded.value().text(), "snapshot");
  EXPECT_EQ(loaded.value().version(), a.replica("snap").version());
  auto sync = b.expect("sync");
  ASSERT_TRUE(sync);
  const auto& sm = std::get<protocol::sync_msg>(sync->decoded);
  EXPECT_TRUE(sm.ops.empty());
  EXPECT_EQ(sm.version, a.replica("snap").version());
  EXPECT_NE(sm.ref, 0u);
  // The replica loaded from it edits on, and everyone gets the edit.
  b.replica("snap") = std::move(loaded.value());
  b.insert("snap", 8, "!");
  ASSERT_TRUE(a.wait_text("snap", "snapshot!"));
  ASSERT_TRUE(b.wait_acked("snap"));
  EXPECT_EQ(http_get(port(), "/api/docs/snap/text").second, "snapshot!");

  // No snapshot without binary frames, or for a replica that has ops: the
  // history comes as ops, as before.
  test_client c(port(), 53);
  c.send(protocol::encode_hello({protocol::protocol_version, "test", {}, /*binary=*/false}));
  auto json_welcome = c.expect("welcome");
  ASSERT_TRUE(json_welcome);
  EXPECT_FALSE(std::get<protocol::welcome_msg>(json_welcome->decoded).snapshot) << "not offered without binary frames";
  c.send(protocol::encode_open("snap", version_vector{}, 0, true));
  auto json_first = c.recv();
  ASSERT_TRUE(json_first);
  ASSERT_EQ(json_first->type, "sync");
  EXPECT_FALSE(std::get<protocol::sync_msg>(json_first->decoded).ops.empty());
  test_client d(port(), 54);
  d.hello(true);
  version_vector some;
  some.set(51, 2);
  d.send(protocol::encode_open("snap", some, 0, true));
  auto partial = d.recv();
  ASSERT_TRUE(partial);
  ASSERT_EQ(partial->type, "sync");
  EXPECT_FALSE(std::get<protocol::sync_msg>(partial->decoded).ops.empty());
}

TEST_F(ServerTest, ASnapshotOverTheFrameLimitGoesAsOps) {
  config_.max_snapshot_frame_bytes = 64;  // below this document's snapshot
  restart();
  test_client a(port(), 61);
  a.hello();
  a.open("capped");
  a.insert("capped", 0, std::string(200, 'x'));
  ASSERT_TRUE(a.wait_acked("capped"));
  test_client b(port(), 62);
  b.hello(/*binary=*/true);
  b.send(protocol::encode_open("capped", version_vector{}, 0, /*snapshot=*/true));
  auto first = b.recv();
  ASSERT_TRUE(first);
  ASSERT_EQ(first->type, "sync");
  EXPECT_FALSE(std::get<protocol::sync_msg>(first->decoded).ops.empty());
}

TEST_F(ServerTest, ReconnectGetsExactlyTheMissingOps) {
  test_client a(port(), 1111);
  a.hello();
  a.open("r");
  for (int i = 0; i < 10; ++i) a.insert("r", static_cast<std::uint64_t>(i), "x");
  ASSERT_TRUE(a.wait_acked("r"));
  // A client that saw the first 4 characters reconnects with that version.
  test_client b(port(), 2222);
  b.hello();
  document& rb = b.replica("r");
  for (const auto& op : a.replica("r").ops_since(version_vector{}))
    if (op.id.counter <= 4) {
      operation part = op;
      part.text = op.text.substr(0, 4 - (op.id.counter - 1));
      (void)rb.apply(part);
    }
  ASSERT_EQ(rb.text(), "xxxx");
  std::string msg = R"({"type":"open","doc":"r","version":[[1111,4]]})";
  b.send(msg);
  auto sync = b.expect("sync");
  ASSERT_TRUE(sync);
  EXPECT_EQ(rb.text(), "xxxxxxxxxx");
  // Exactly the six missing characters came, no more.
  std::uint64_t ids = 0;
  for (const auto& op : std::get<protocol::sync_msg>(sync->decoded).ops) ids += op.length();
  EXPECT_EQ(ids, 6u);
}

TEST_F(ServerTest, AcknowledgedOpsSurviveARestart) {
  std::string expected;
  {
    test_client a(port());
    a.hello();
    a.open("persist");
    for (int i = 0; i < 50; ++i) a.insert("persist", static_cast<std::uint64_t>(i), std::string(1, 'a' + i % 26));
    a.erase("persist", 10, 5);
    ASSERT_TRUE(a.wait_acked("persist"));
    expected = a.replica("persist").text();
  }
  restart();
  test_client b(port());
  b.hello();
  b.open("persist");
  EXPECT_EQ(b.replica("persist").text(), expected);
  EXPECT_EQ(http_get(port(), "/api/docs/persist/text").second, expected);
}

TEST_F(ServerTest, SnapshotsAndUnloadKeepEverything) {
  config_.snapshot_every_ops = 7;
  config_.idle_unload_ms = 50;
  restart();
  std::string expected;
  {
    test_client a(port());
    a.hello();
    a.open("snap");
    for (int i = 0; i < 40; ++i) a.insert("snap", 0, std::string(1, 'a' + i % 26));
    ASSERT_TRUE(a.wait_acked("snap"));
    expected = a.replica("snap").text();
  }
  // The last connection left: the document unloads (with a final snapshot).
  ASSERT_TRUE(metric_reaches("weft_documents_loaded", 0)) << metric("weft_documents_loaded");
  EXPECT_EQ(http_get(port(), "/api/docs/snap/text").second, expected);  // loads it again
  restart();
  EXPECT_EQ(http_get(port(), "/api/docs/snap/text").second, expected);
}

TEST_F(ServerTest, ResentUnacknowledgedOpsApplyOnce) {
  test_client a(port(), 777);
  a.hello();
  a.open("once");
  auto op = a.insert("once", 0, "hello");
  ASSERT_TRUE(a.wait_acked("once"));
  // Reconnect and resend the same op, as a client unsure of its ack would.
  test_client again(port(), 777);
  again.hello();
  again.open("once");
  again.send_ops("once", {op, op});
  auto ack = again.expect("ack");
  ASSERT_TRUE(ack);
  EXPECT_NE(ack->raw.find("[777,5]"), std::string::npos) << ack->raw;
  EXPECT_EQ(http_get(port(), "/api/docs/once/text").second, "hello");
}

TEST_F(ServerTest, ServerThatLostOpsGetsThemBackOnResync) {
  // A client holds ops the server does not have (e.g. broadcast before a
  // crash, or from a restored backup): opening sends them.
  test_client a(port(), 55);
  a.hello();
  (void)a.replica("lost").insert(0, "offline edits");
  a.open("lost");
  ASSERT_TRUE(a.wait_acked("lost"));
  EXPECT_EQ(http_get(port(), "/api/docs/lost/text").second, "offline edits");
}

TEST_F(ServerTest, BadInputGetsAnErrorAndTheConnectionStaysUsable) {
  test_client c(port());
  c.hello();
  c.open("ok");
  c.insert("ok", 0, "safe");
  ASSERT_TRUE(c.wait_acked("ok"));
  struct bad_case {
    const char* frame;
    const char* code;
  };
  const bad_case cases[] = {
      {"{not json", "bad_json"},
      {"[1,2,3]", "bad_message"},
      {R"({"type":"teleport","doc":"ok"})", "unknown_type"},
      {R"({"type":"open","doc":"ok","version":"all"})", "bad_message"},
      {R"({"type":"open","doc":"ok","colour":"red"})", "bad_message"},
      {R"({"type":"open","doc":"../etc/passwd"})", "bad_doc_id"},
      {R"({"type":"ops","doc":"never-opened","ops":[]})", "not_open"},
      {R"({"type":"ops","doc":"ok","ops":[{"kind":"insert","id":[1,0],"text":"x"}]})", "bad_message"},
      {R"({"type":"ops","doc":"ok","ops":[{"kind":"insert","id":[1,1],"text":7}]})", "bad_message"},
      {R"({"type":"ops","doc":"ok","ops":[{"kind":"erase","id":[9,1],"targets":[[12345,1,1]]}]})", nullptr},
      {R"({"type":"ops","doc":"ok","ops":[{"kind":"insert","id":[9,1],"left":[9,5],"text":"x"}]})", "invalid_op"},
      {R"({"type":"ops","doc":"ok","ops":[{"kind":"insert","id":[9007199254740993,1],"text":"x"}]})", "bad_message"},
  };
  for (const auto& k : cases) {
    c.send(k.frame);
    if (k.code) {
      auto e = c.expect("error");
      ASSERT_TRUE(e) << k.frame;
      EXPECT_NE(e->raw.find(k.code), std::string::npos) << k.frame << " -> " << e->raw;
    }
    c.send(R"({"type":"ping"})");
    ASSERT_TRUE(c.expect("pong")) << "connection unusable after " << k.frame;
  }
  EXPECT_EQ(http_get(port(), "/api/docs/ok/text").second, "safe");
  // The document still takes edits.
  c.insert("ok", 4, "!");
  ASSERT_TRUE(c.wait_acked("ok"));
  EXPECT_EQ(http_get(port(), "/api/docs/ok/text").second, "safe!");
}

TEST_F(ServerTest, OversizedFrameClosesThatConnectionOnly) {
  config_.max_message_bytes = 4096;
  restart();
  test_client other(port());
  other.hello();
  test_client c(port());
  c.hello();
  bool write_failed = false;
  try {
    c.send(std::string(10000, ' '));
  } catch (const std::exception&) {
    write_failed = true;  // the server may close before the frame is fully written
  }
  if (!write_failed) {
    while (c.recv(2s)) {
    }
    EXPECT_TRUE(c.closed());
    EXPECT_EQ(c.close_reason().code, close_code::too_big);
  }
  other.send(R"({"type":"ping"})");
  EXPECT_TRUE(other.expect("pong"));
  EXPECT_EQ(http_get(port(), "/healthz").first, 200);
}

TEST_F(ServerTest, SlowConsumerIsDisconnectedOthersAreNot) {
  config_.max_send_queue = 64;
  restart();
  test_client slow(port()), writer(port()), reader(port());
  slow.hello();
  writer.hello();
  reader.hello();
  slow.open("flood");
  writer.open("flood");
  reader.open("flood");
  // ~16 MB of edits: more than the kernel buffers towards `slow`, which
  // does not read meanwhile, so its send queue fills up on the server.
  const std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 256; ++i) {
    writer.insert("flood", writer.replica("flood").length(), chunk);
    if (i % 16 == 15) {
      ASSERT_TRUE(reader.wait_text("flood", writer.replica("flood").text(), 20s));
    }
  }
  ASSERT_TRUE(writer.wait_acked("flood", 20s));
  while (slow.recv(2s)) {
  }
  EXPECT_TRUE(slow.closed());
  EXPECT_EQ(slow.close_reason().code, close_code::try_again_later);
  // Everyone else is fine, and the slow client can come back and resync.
  EXPECT_TRUE(reader.wait_text("flood", writer.replica("flood").text(), 20s));
  test_client back(port());
  back.hello();
  back.open("flood", 120s);  // 16 MB of history: slow under the sanitizers
  EXPECT_EQ(back.replica("flood").length(), 256u * 64 * 1024);
  auto m = http_get(port(), "/metrics").second;
  EXPECT_NE(m.find("weft_slow_consumers_dropped_total 1"), std::string::npos);
}

TEST_F(ServerTest, DocumentsPerConnectionAreLimited) {
  config_.max_docs_per_connection = 2;
  restart();
  test_client c(port());
  c.hello();
  c.open("a");
  c.open("b");
  c.send(R"({"type":"open","doc":"c"})");
  auto e = c.expect("error");
  ASSERT_TRUE(e);
  EXPECT_NE(e->raw.find("\"limit\""), std::string::npos);
}

TEST_F(ServerTest, PresenceIsRelayedAndExpires) {
  config_.presence_ttl_ms = 300;
  restart();
  test_client a(port()), b(port());
  a.hello();
  b.hello();
  a.open("p");
  b.open("p");
  b.send(R"({"type":"presence","doc":"p","state":{"name":"Bob","cursor":3}})");
  auto p = a.expect("presence");
  ASSERT_TRUE(p);
  EXPECT_NE(p->raw.find("\"name\":\"Bob\""), std::string::npos) << p->raw;
  // Not refreshed: expires.
  auto gone = a.expect("presence", 3s);
  ASSERT_TRUE(gone);
  EXPECT_NE(gone->raw.find("\"state\":null"), std::string::npos) << gone->raw;
  // And clears when a client leaves.
  b.send(R"({"type":"presence","doc":"p","state":{"name":"Bob","cursor":4}})");
  ASSERT_TRUE(a.expect("presence"));
  b.send(R"({"type":"close","doc":"p"})");
  auto left = a.expect("presence");
  ASSERT_TRUE(left);
  EXPECT_NE(left->raw.find("\"state\":null"), std::string::npos);
}

TEST_F(ServerTest, ManyDocumentsOnOneConnection) {
  test_client a(port()), b(port());
  a.hello();
  b.hello();
  for (int i = 0; i < 5; ++i) {
    a.open("tab" + std::to_string(i));
    b.open("tab" + std::to_string(i));
  }
  for (int i = 0; i < 5; ++i) a.insert("tab" + std::to_string(i), 0, "doc " + std::to_string(i));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.wait_text("tab" + std::to_string(i), "doc " + std::to_string(i)));
}

TEST_F(ServerTest, GracefulShutdownClosesWithAReason) {
  test_client a(port());
  a.hello();
  std::thread stopper([&] { srv_->stop(); });  // the client keeps reading meanwhile, as real ones do
  while (a.recv(2s)) {
  }
  stopper.join();
  EXPECT_TRUE(a.closed());
  EXPECT_EQ(a.close_reason().code, close_code::going_away);
}

// The server waits for each message with a small buffer and reads longer ones
// in more steps: messages of every size, whole or in many frames, between
// keystrokes, arrive intact and in order.
TEST_F(ServerTest, MessagesOfEverySizeAndFragmentationArriveIntact) {
  test_client a(port()), b(port());
  a.hello();
  b.hello();
  a.open("sizes");
  b.open("sizes");
  std::string expected;
  auto type = [&](const std::string& text) {
    a.insert("sizes", expected.size(), text);
    expected += text;
  };
  type("k");                     // fits the waiting buffer
  type(std::string(40, 'a'));    // about its size
  type(std::string(300, 'b'));   // over it
  type(std::string(5000, 'c'));  // a paste
  type("e");
  // A 40 KB paste sent as 41 frames of 1,000 bytes.
  auto paste = a.replica("sizes").insert(expected.size(), std::string(40000, 'd'));
  ASSERT_TRUE(paste.ok());
  expected += std::string(40000, 'd');
  a.send_fragmented(protocol::encode_ops("sizes", std::vector<operation>{paste.value()}), 1000);
  type("!");
  ASSERT_TRUE(b.wait_text("sizes", expected));
  EXPECT_TRUE(a.wait_acked("sizes"));
  EXPECT_EQ(http_get(port(), "/api/docs/sizes/text").second, expected);
}

// Liveness: a peer that stops answering pings is disconnected after about the
// idle timeout; one that answers them stays, however long it says nothing.
TEST_F(ServerTest, SilentPeersAreDisconnectedAndLiveOnesStay) {
  config_.ws_idle_timeout_ms = 400;
  restart();
  test_client gone(port()), alive(port());
  gone.hello();
  alive.hello();
  gone.open("liveness");
  alive.open("liveness");
  // `alive` keeps reading (its WebSocket answers pings) but sends nothing;
  // `gone` reads nothing for the same time, as a vanished peer would.
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until) (void)alive.recv(50ms);
  EXPECT_FALSE(alive.closed());
  alive.send(R"({"type":"ping"})");
  EXPECT_TRUE(alive.expect("pong"));
  while (gone.recv(1s)) {
  }
  EXPECT_TRUE(gone.closed());
  auto [st, metrics] = http_get(port(), "/metrics");
  EXPECT_NE(metrics.find("weft_idle_timeouts_total 1\n"), std::string::npos) << metrics;
  // The one that left no longer counts as a reader of the document.
  alive.insert("liveness", 0, "still here");
  EXPECT_TRUE(alive.wait_acked("liveness"));
}

// Stopping while writes wait in the commit window: the storage thread may hold
// the last reference to a room when the server is torn down. The room must not
// outlive what its destructor touches (found by ASan in CI as a flaky
// use-after-free in ~document_room).
TEST_F(ServerTest, StoppingWithWritesInTheCommitWindowIsClean) {
  config_.commit_window_ms = 50;
  for (int round = 0; round < 20; ++round) {
    restart();
    const std::string doc = "doc" + std::to_string(round);
    test_client a(port()), b(port());
    a.hello();
    b.hello();
    a.open(doc);
    b.open(doc);
    a.insert(doc, 0, "typed just before the stop");
    // b has it once the room applied it; its commit waits for the window.
    ASSERT_TRUE(b.wait_text(doc, "typed just before the stop"));
    std::thread stopper([&] { srv_.reset(); });
    while (a.recv(2s) || b.recv(2s)) {
    }
    stopper.join();
  }
  // Everything written before each stop was flushed and survives.
  restart();
  for (int round = 0; round < 20; ++round)
    EXPECT_EQ(http_get(port(), "/api/docs/doc" + std::to_string(round) + "/text").second,
              "typed just before the stop");
}

}  // namespace
}  // namespace weft::test
