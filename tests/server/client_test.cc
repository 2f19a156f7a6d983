// weft::client (include/weft/client.h) against a real weft-server.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "auth/auth.h"
#include "server/server.h"
#include "test_client.h"
#include "weft/client.h"
#include "weft/protocol.h"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

std::string text_of(client& c, const std::string& doc) {
  std::promise<std::string> p;
  auto f = p.get_future();
  c.read(doc, [&p](const document& d) { p.set_value(d.text()); });
  return f.get();
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("weft-client-test-" + std::to_string(std::random_device{}()));
    start_server(0);
  }
  void TearDown() override {
    srv_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start_server(std::uint16_t port) {
    server::server_config c;
    c.port = port;
    c.data_dir = dir_.string();
    c.threads = 1;
    c.level = server::log_level::error;
    auto s = server::server::start(c);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    srv_ = std::move(s.value());
  }
  client_options opts() {
    client_options o;
    o.port = srv_->port();
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    return o;
  }
  std::filesystem::path dir_;
  std::unique_ptr<server::server> srv_;
};

void type(client& c, const std::string& doc, std::uint64_t pos, const std::string& text) {
  c.edit(doc, [pos, text](document& d, std::vector<operation>& out) {
    auto op = d.insert(std::min(pos, d.length()), text);
    if (op.ok()) out.push_back(op.value());
  });
}

TEST_F(ClientTest, TwoClientsConvergeAndGetAcks) {
  network net(1);
  std::atomic<int> changes{0};
  client_handlers h;
  h.on_remote = [&](const std::string&, const std::vector<operation>&, const std::vector<text_change>& ch) {
    changes += static_cast<int>(ch.size());
  };
  client a(net, opts()), b(net, opts(), h);
  a.open("d");
  b.open("d");
  a.start();
  b.start();
  type(a, "d", 0, "hello");
  ASSERT_TRUE(eventually([&] { return text_of(b, "d") == "hello"; }));
  type(b, "d", 5, " world");
  ASSERT_TRUE(eventually([&] { return text_of(a, "d") == "hello world"; }));
  EXPECT_GT(changes.load(), 0);
  EXPECT_TRUE(eventually([&] { return a.acked("d") == 5 && b.acked("d") == 6; }));
}

TEST_F(ClientTest, AnEmptyReplicaOpensFromOneSnapshotFrame) {
  network net(1);
  client a(net, opts());
  a.open("big");
  a.start();
  type(a, "big", 0, "a document ");
  type(a, "big", 11, "with history");
  ASSERT_TRUE(eventually([&] { return a.acked("big") == 23; }));
  for (bool snapshot : {true, false}) {
    SCOPED_TRACE(snapshot ? "snapshot" : "ops");
    std::mutex mu;
    std::vector<std::pair<std::size_t, std::vector<text_change>>> heard;  // (ops, changes) per on_remote
    client_handlers h;
    h.on_remote = [&](const std::string&, const std::vector<operation>& ops, const std::vector<text_change>& ch) {
      std::lock_guard<std::mutex> lock(mu);
      heard.emplace_back(ops.size(), ch);
    };
    client_options o = opts();
    o.snapshot = snapshot;
    client b(net, o, h);
    b.open("big");
    b.start();
    const std::string want = text_of(a, "big");
    ASSERT_TRUE(eventually([&] { return text_of(b, "big") == want; }));
    {
      std::lock_guard<std::mutex> lock(mu);
      ASSERT_FALSE(heard.empty());
      if (snapshot) {
        // One call, no ops, one insert of the whole text.
        ASSERT_EQ(heard.size(), 1u);
        EXPECT_EQ(heard[0].first, 0u);
        ASSERT_EQ(heard[0].second.size(), 1u);
        EXPECT_EQ(heard[0].second[0].text, want);
      } else {
        EXPECT_GT(heard[0].first, 0u);
      }
    }
    // The replica edits on from there, both ways.
    type(b, "big", 0, snapshot ? "S" : "O");
    ASSERT_TRUE(eventually([&] { return text_of(a, "big").front() == (snapshot ? 'S' : 'O'); }));
    type(a, "big", 1, "-");
    ASSERT_TRUE(eventually([&] { return text_of(b, "big") == text_of(a, "big"); }));
    b.stop();
  }
}

TEST_F(ClientTest, EditsWhileDisconnectedArriveAfterReconnect) {
  network net(1);
  client a(net, opts()), b(net, opts());
  a.open("off");
  b.open("off");
  a.start();
  b.start();
  type(a, "off", 0, "base");
  ASSERT_TRUE(eventually([&] { return text_of(b, "off") == "base"; }));
  a.stop();
  type(a, "off", 4, " offline");  // a is stopped: stays local
  type(b, "off", 0, ">");
  // b's edit went through the server and back as an ack: anything a had sent
  // would have reached b before (one server, one document, in order).
  ASSERT_TRUE(eventually([&] { return b.acked("off") == 1; }));
  EXPECT_EQ(text_of(b, "off"), ">base");
  a.start();
  EXPECT_TRUE(eventually([&] { return text_of(a, "off") == ">base offline" && text_of(b, "off") == ">base offline"; }));
}

// Long offline work makes a post-sync resend far over the server's limits
// (10,000 ops and 1 MiB per message): it must arrive in pieces, in binary
// frames and in JSON.
TEST_F(ClientTest, LongOfflineWorkArrivesDespiteMessageLimits) {
  for (bool binary : {true, false}) {
    SCOPED_TRACE(binary ? "binary frames" : "JSON frames");
    const std::string doc = binary ? "long-bin" : "long-json";
    network net(1);
    client_options o = opts();
    o.binary = binary;
    std::atomic<int> errors{0};
    client_handlers h;
    h.on_error = [&](const std::string&, const std::string&) { ++errors; };
    client a(net, o, h);
    a.open(doc);
    // Offline: 1.2 MB of pastes, then every other character of 30,000 deleted
    // one by one (30,000 erase ops with a target each, or one erase with
    // 15,000 targets once merged).
    a.edit(doc, [](document& d, std::vector<operation>& out) {
      std::string big(600000, 'a');  // two pastes: one op may hold at most 2^20 ids
      for (std::size_t i = 0; i < big.size(); i += 7) big[i] = 'b';
      out.push_back(d.insert(0, big).value());
      out.push_back(d.insert(300000, big).value());
      for (std::uint64_t i = 0; i < 15000; ++i) out.push_back(d.erase(i, 1).value());
    });
    std::string expected = text_of(a, doc);
    a.start();
    ASSERT_TRUE(eventually([&] { return a.acked(doc) == 1200000 + 15000; }, 30s)) << "acked " << a.acked(doc);
    EXPECT_EQ(errors.load(), 0);
    test_client check(srv_->port());
    check.hello();
    check.open(doc, 30s);
    EXPECT_EQ(check.replica(doc).text().size(), expected.size());
    EXPECT_TRUE(check.replica(doc).text() == expected);
  }
}

TEST_F(ClientTest, ReconnectsAfterTheServerRestarts) {
  network net(1);
  std::atomic<int> synced{0};
  client_handlers h;
  h.on_synced = [&] { ++synced; };
  client a(net, opts(), h);
  a.open("r");
  a.start();
  ASSERT_TRUE(eventually([&] { return synced.load() == 1; }));
  type(a, "r", 0, "before");
  ASSERT_TRUE(eventually([&] { return a.acked("r") == 6; }));
  std::uint16_t port = srv_->port();
  srv_.reset();
  type(a, "r", 6, " during");  // the server is down
  start_server(port);
  EXPECT_TRUE(eventually([&] { return synced.load() >= 2; }, 15s));
  EXPECT_TRUE(eventually([&] { return a.acked("r") == 13; }));
  client b(net, opts());
  b.open("r");
  b.start();
  EXPECT_TRUE(eventually([&] { return text_of(b, "r") == "before during"; }));
}

TEST_F(ClientTest, DroppedConnectionResyncsWithoutLoss) {
  network net(2);
  client a(net, opts()), b(net, opts());
  a.open("drop");
  b.open("drop");
  a.start();
  b.start();
  for (int i = 0; i < 200; ++i) {
    type(a, "drop", 1000000, "a");
    type(b, "drop", 0, "b");
    if (i % 50 == 25) a.drop_connection();
  }
  EXPECT_TRUE(eventually([&] {
    auto ta = text_of(a, "drop"), tb = text_of(b, "drop");
    return ta == tb && ta.size() == 400;
  }, 15s));
}

TEST_F(ClientTest, PresenceReachesOtherClients) {
  network net(1);
  std::mutex mu;
  std::string seen;
  client_handlers h;
  h.on_presence = [&](const std::string&, std::uint64_t, const std::string& state) {
    std::lock_guard<std::mutex> lock(mu);
    seen = state;
  };
  client a(net, opts()), b(net, opts(), h);
  a.open("p");
  b.open("p");
  a.start();
  b.start();
  a.set_presence("p", R"({"name":"bot","cursor":0})");
  EXPECT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen.find("\"bot\"") != std::string::npos;
  }));
}

// The hand-over contract of include/weft/client.h, as a native editor uses
// it: several "UI" threads call edit() at once while remote edits stream in
// over two I/O threads. Edit functions and handlers never overlap; no edit is
// lost; and the ordered stream of changes the executor hands to the UI (local
// ones recorded inside edit(), remote ones from on_remote) rebuilds exactly
// the replica's text on the UI side.
TEST_F(ClientTest, UiThreadsHandOverThroughTheExecutor) {
  network net(2);
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  auto enter = [&] {
    if (inside.fetch_add(1) != 0) overlapped = true;
  };
  auto leave = [&] { inside.fetch_sub(1); };

  std::mutex mu;
  std::vector<text_change> stream;  // executor -> UI hand-over queue
  client_handlers h;
  h.on_remote = [&](const std::string&, const std::vector<operation>&, const std::vector<text_change>& ch) {
    enter();
    {
      std::lock_guard<std::mutex> lock(mu);
      stream.insert(stream.end(), ch.begin(), ch.end());
    }
    leave();
  };
  client editor(net, opts(), h), other(net, opts());
  editor.open("ui");
  other.open("ui");
  editor.start();
  other.start();

  constexpr int kThreads = 3, kEdits = 150;
  std::vector<std::thread> ui;
  for (int t = 0; t < kThreads; ++t) {
    ui.emplace_back([&, t] {
      for (int i = 0; i < kEdits; ++i) {
        editor.edit("ui", [&, t, i](document& d, std::vector<operation>& out) {
          enter();
          // Positions are computed here, on the executor: always valid.
          std::uint64_t pos = (static_cast<std::uint64_t>(i) * 7 + t) % (d.length() + 1);
          auto op = d.insert(pos, std::string(1, static_cast<char>('a' + t)));
          if (op.ok()) {
            out.push_back(op.value());
            std::lock_guard<std::mutex> lock(mu);
            stream.push_back(text_change{text_change::kind::insert, pos, 1, std::string(1, static_cast<char>('a' + t))});
          }
          leave();
        });
      }
    });
  }
  for (int i = 0; i < 200; ++i) type(other, "ui", 0, "R");
  for (auto& th : ui) th.join();

  const std::size_t expected = kThreads * kEdits + 200;
  ASSERT_TRUE(eventually([&] {
    auto a = text_of(editor, "ui"), b = text_of(other, "ui");
    return a == b && a.size() == expected;
  }, 20s));
  EXPECT_FALSE(overlapped.load());

  // The UI thread replays the hand-over stream onto its own buffer.
  std::string ui_buffer;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& c : stream) {
      if (c.type == text_change::kind::insert) ui_buffer.insert(c.position, c.text);
      else ui_buffer.erase(c.position, c.length);
    }
  }
  EXPECT_EQ(ui_buffer, text_of(editor, "ui"));
  EXPECT_TRUE(eventually([&] { return editor.acked("ui") == kThreads * kEdits; }));
}

// A handler that asks for more work while the client stops (an editor
// refreshing its view on the "stopped" state) must not have that work run
// after ~client() returned: it would reach objects already destroyed.
TEST_F(ClientTest, WorkQueuedWhileStoppingNeverRunsAfterDestruction) {
  auto net_owner = std::make_unique<network>(1);
  network& net = *net_owner;
  std::atomic<int> reads{0};
  client* self = nullptr;
  client_handlers h;
  h.on_state = [&](connection_state s) {
    if (s == connection_state::stopped) self->read("d", [&reads](const document&) { ++reads; });
  };
  int at_destruction = 0;
  {
    client c(net, opts(), h);
    self = &c;
    c.open("d");
    c.start();
    ASSERT_TRUE(eventually([&] { return text_of(c, "d").empty(); }));
  }
  at_destruction = reads.load();
  // Destroying the network joins its threads: whatever was still queued has
  // run (or never will) by then, so the check below is final, not timed.
  net_owner.reset();
  EXPECT_EQ(reads.load(), at_destruction);
}

// The server may store a client's ops and crash before the ack goes out;
// after reconnecting the server's version already covers them, yet the client
// must still get its ack (it resends ops it has no ack for, which the server
// acknowledges as duplicates).
TEST_F(ClientTest, OpsStoredButNeverAcknowledgedGetTheirAckAfterReconnecting) {
  network net(1);
  client_options o = opts();
  o.replica = 4711;
  client a(net, o);
  a.open("lost-ack");
  type(a, "lost-ack", 0, "hello");  // offline: kept locally
  // The same ops reach the server by another path (as if stored just before a crash).
  std::promise<std::vector<operation>> ops;
  a.read("lost-ack", [&ops](const document& d) { ops.set_value(d.ops_since({})); });
  test_client relay(srv_->port());
  relay.hello();
  relay.open("lost-ack");
  relay.send_ops("lost-ack", ops.get_future().get());
  ASSERT_TRUE(relay.expect("ack"));
  EXPECT_EQ(http_get(srv_->port(), "/api/docs/lost-ack/text").second, "hello");
  a.start();
  EXPECT_TRUE(eventually([&] { return a.acked("lost-ack") == 5; })) << "acked " << a.acked("lost-ack");
}

// With auth on, a replica id belongs to the user who first wrote under it.
// A client whose id is someone else's (a copied configuration, say) is
// refused; it moves to a fresh id by itself, carrying what it typed, and its
// text never jumps.
TEST_F(ClientTest, ARefusedReplicaIdIsReplacedAndItsEditsCarried) {
  const std::string secret = "a-secret-of-at-least-thirty-two-bytes!";
  server::token_verifier signer(secret);
  const auto exp = std::to_string(server::unix_now() + 3600);
  auto token = [&](const std::string& sub) {
    return signer.sign(R"({"sub":")" + sub + R"(","exp":)" + exp + R"(,"docs":{"*":"rw"}})");
  };
  srv_.reset();
  {
    server::server_config c;
    c.data_dir = dir_.string();
    c.threads = 1;
    c.level = server::log_level::error;
    c.auth_secret = secret;
    auto s = server::server::start(c);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    srv_ = std::move(s.value());
  }
  network net(1);
  client_options oa = opts();
  oa.replica = 5151;
  oa.token = token("alice");
  client alice(net, oa);
  alice.open("shared");
  alice.start();
  type(alice, "shared", 0, "alice.");
  ASSERT_TRUE(eventually([&] { return alice.acked("shared") == 6; }));

  client_options om = oa;
  om.token = token("mallory");
  std::mutex mu;
  std::vector<std::pair<replica_id, replica_id>> changed;
  std::vector<std::string> views;  // mallory's text after every remote change
  std::atomic<bool> synced{false};
  client_handlers h;
  h.on_replica_changed = [&](const std::string& doc, replica_id from, replica_id to) {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(doc, "shared");
    changed.emplace_back(from, to);
  };
  h.on_synced = [&] { synced = true; };
  client mallory(net, om, h);
  mallory.open("shared");
  mallory.start();
  ASSERT_TRUE(eventually([&] { return synced.load() && text_of(mallory, "shared") == "alice."; }));
  type(mallory, "shared", 0, "mallory ");
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !changed.empty();
  })) << "the refused replica id was never replaced";
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(changed.size(), 1u);
    EXPECT_EQ(changed[0].first, 5151u);
    EXPECT_NE(changed[0].second, 5151u);
    EXPECT_EQ(mallory.replica("shared"), changed[0].second);
  }
  EXPECT_EQ(mallory.replica(), 5151u);
  // Her words, typed under alice's id and refused, arrive under the new id,
  // acknowledged; her own view never lost them.
  EXPECT_EQ(text_of(mallory, "shared"), "mallory alice.");
  ASSERT_TRUE(eventually([&] { return mallory.acked("shared") == 8; })) << "acked " << mallory.acked("shared");
  ASSERT_TRUE(eventually([&] { return text_of(alice, "shared") == "mallory alice."; })) << text_of(alice, "shared");
  EXPECT_EQ(http_get(srv_->port(), "/api/docs/shared/text", {{"Authorization", "Bearer " + token("alice")}}).second,
            "mallory alice.");
  // And she writes on under it.
  type(mallory, "shared", 14, "!");
  ASSERT_TRUE(eventually([&] { return text_of(alice, "shared") == "mallory alice.!"; })) << text_of(alice, "shared");

  // Written offline under the refused id before ever syncing, while its
  // owner wrote on under it: the ids collide, so the old replica holds other
  // characters under the owner's ids (and refuses or misplaces the owner's
  // ops). Only what was typed here is carried over; the owner's text stays
  // whole.
  std::atomic<int> rotated{0};
  client_handlers he;
  he.on_replica_changed = [&](const std::string&, replica_id, replica_id) { ++rotated; };
  client_options oe = oa;
  oe.token = token("eve");
  client eve(net, oe, he);
  eve.open("shared");
  type(eve, "shared", 0, "eve ");  // 5151:1..4, colliding with alice's "alic"
  type(alice, "shared", 15, " more");
  ASSERT_TRUE(eventually([&] { return text_of(alice, "shared") == "mallory alice.! more"; }));
  eve.start();
  ASSERT_TRUE(eventually([&] { return rotated.load() == 1; })) << "eve's refused replica id was never replaced";
  std::string final_text;
  EXPECT_TRUE(eventually([&] {
    final_text = text_of(alice, "shared");
    return text_of(eve, "shared") == final_text && final_text.size() == 24;
  })) << "eve: " << text_of(eve, "shared") << "\nalice: " << final_text;
  auto at = final_text.find("eve ");
  ASSERT_NE(at, std::string::npos) << final_text;
  EXPECT_EQ(final_text.substr(0, at) + final_text.substr(at + 4), "mallory alice.! more")
      << "the owner's text was changed: " << final_text;
}

// A server that sends an op the replica must refuse (a bug or a hostile
// server): on_remote never hears of it, on_error does, and the good ops of
// the same message still arrive.
TEST(ClientAgainstAScriptedServer, RefusedOpsAreNotPassedOnToOnRemote) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  document source(1);
  auto good = source.insert(0, "abc").value();
  operation bad;  // its left origin is an id the replica knows but that is no character
  bad.kind = op_kind::insert;
  bad.id = op_id{3, 1};
  bad.origin_left = op_id{2, 2};
  bad.text = "Z";
  document other(2);
  (void)other.apply(good);
  auto x = other.insert(0, "x").value();
  auto erase_x = other.erase(0, 1).value();  // (2,2): an erase
  std::thread fake([&] {
    beast::websocket::stream<asio::ip::tcp::socket> ws(io);
    acceptor.accept(ws.next_layer());
    ws.accept();
    beast::flat_buffer buf;
    ws.read(buf);  // hello
    buf.consume(buf.size());
    ws.text(true);
    ws.write(asio::buffer(protocol::encode_welcome("scripted", 1 << 20)));
    ws.read(buf);  // open
    ws.write(asio::buffer(protocol::encode_sync("d", std::vector<operation>{good, x, erase_x, bad}, other.version())));
    // Keep the connection until the client goes.
    beast::error_code ec;
    while (!ec) ws.read(buf, ec);
  });
  network net(1);
  std::mutex mu;
  std::vector<operation> passed_on;
  std::vector<std::string> errors;
  client_handlers h;
  h.on_remote = [&](const std::string&, const std::vector<operation>& ops, const std::vector<text_change>&) {
    std::lock_guard<std::mutex> lock(mu);
    passed_on.insert(passed_on.end(), ops.begin(), ops.end());
  };
  h.on_error = [&](const std::string& code, const std::string&) {
    std::lock_guard<std::mutex> lock(mu);
    errors.push_back(code);
  };
  client_options o;
  o.port = port;
  o.binary = false;
  o.reconnect = false;
  {
    client c(net, o, h);
    c.open("d");
    c.start();
    ASSERT_TRUE(eventually([&] { return text_of(c, "d") == "abc"; }));
    ASSERT_TRUE(eventually([&] {
      std::lock_guard<std::mutex> lock(mu);
      return !errors.empty();
    }));
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(errors, std::vector<std::string>{"invalid_op"});
    EXPECT_EQ(passed_on.size(), 3u);
    for (const auto& op : passed_on) EXPECT_NE(op.id, bad.id);
  }
  fake.join();
}

}  // namespace
}  // namespace weft::test
