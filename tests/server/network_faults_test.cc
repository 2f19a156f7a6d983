// Network faults against a real weft-server (issue #6): connections cut in
// the middle of a frame, stale and future version vectors, ops replayed many
// times, ops far out of order across reconnects, and a flood of ops that
// can never apply. The server stays up, memory stays bounded, documents
// converge.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
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
namespace net = boost::asio;

class NetworkFaultsTest : public server_fixture {
 protected:
  std::string text(const std::string& doc) { return http_get(port(), "/api/docs/" + doc + "/text").second; }
};

TEST_F(NetworkFaultsTest, ConnectionsCutMidFrameLeaveNoTrace) {
  start();
  test_client writer(port());
  writer.hello();
  writer.open("cut");
  writer.insert("cut", 0, "intact");
  ASSERT_TRUE(writer.wait_acked("cut"));
  for (int i = 0; i < 20; ++i) {
    // A WebSocket upgrade, then the first bytes of a masked text frame that
    // announces 200 bytes, then the connection drops.
    net::io_context io;
    net::ip::tcp::socket s(io);
    s.connect({net::ip::make_address("127.0.0.1"), port()});
    std::string upgrade =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    net::write(s, net::buffer(upgrade));
    char buf[512];
    (void)s.read_some(net::buffer(buf));  // 101 Switching Protocols
    const char partial[] = {'\x81', '\xFE', '\x00', '\xC8', 'm', 'a', 's', 'k', '{', '"', 't'};
    net::write(s, net::buffer(partial, i % sizeof partial + 1));
    s.close();
  }
  // The server is up, the document intact, and the cut connections are gone.
  writer.insert("cut", 6, "!");
  ASSERT_TRUE(writer.wait_acked("cut"));
  EXPECT_EQ(text("cut"), "intact!");
  bool drained = false;
  for (int i = 0; i < 100 && !drained; ++i) {
    drained = metric("weft_connections") == 1;
    if (!drained) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(drained) << metric("weft_connections");
}

TEST_F(NetworkFaultsTest, StaleAndFutureVersionVectors) {
  start();
  test_client a(port(), 100);
  a.hello();
  a.open("vv");
  a.insert("vv", 0, "abc");
  a.insert("vv", 3, "def");
  ASSERT_TRUE(a.wait_acked("vv"));

  // Stale: a client that claims only part of the history gets the rest.
  test_client stale(port(), 200);
  stale.hello();
  operation abc;
  abc.id = op_id{100, 1};
  abc.text = "abc";  // a's first edit, exactly as a made it
  ASSERT_TRUE(stale.replica("vv").apply(abc).ok());
  stale.open("vv");
  EXPECT_EQ(stale.replica("vv").text(), "abcdef");

  // Future: a client claiming ops the server never saw gets an answer
  // computed from its claim and cannot damage the document.
  test_client liar(port(), 300);
  liar.hello();
  liar.send(R"({"type":"open","doc":"vv","version":[[100,999999],[424242,50]]})");
  auto sync = liar.expect("sync");
  ASSERT_TRUE(sync);
  EXPECT_NE(sync->raw.find("\"version\":[[100,6]]"), std::string::npos) << sync->raw;
  EXPECT_EQ(text("vv"), "abcdef");
  // An honest newcomer still gets everything.
  test_client fresh(port(), 400);
  fresh.hello();
  fresh.open("vv");
  EXPECT_EQ(fresh.replica("vv").text(), "abcdef");
}

TEST_F(NetworkFaultsTest, OpsReplayedManyTimesApplyOnce) {
  start();
  test_client a(port(), 500), b(port(), 600);
  a.hello();
  b.hello();
  a.open("replay");
  b.open("replay");
  document local(700);
  std::vector<operation> ops;
  for (int i = 0; i < 20; ++i) ops.push_back(local.insert(local.length(), std::string(1, char('a' + i))).value());
  ops.push_back(local.erase(3, 5).value());
  for (int round = 0; round < 30; ++round) a.send_ops("replay", ops);
  ASSERT_TRUE(b.wait_text("replay", local.text()));
  EXPECT_EQ(text("replay"), local.text());
  // b saw each op once.
  std::uint64_t ids = 0;
  for (const auto& op : b.received("replay")) ids += op.length();
  EXPECT_EQ(ids, 25u);
}

TEST_F(NetworkFaultsTest, OpsFarOutOfOrderAcrossReconnects) {
  start();
  document author(900);
  std::vector<operation> ops;
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    if (author.length() > 0 && rng() % 4 == 0)
      ops.push_back(author.erase(rng() % author.length(), 1).value());
    else
      ops.push_back(author.insert(author.length() ? rng() % (author.length() + 1) : 0, std::string(1, char('a' + i % 26))).value());
  }
  // Three connections, each sending a third of the history, newest third first,
  // each third reversed, and each connection dropped right after.
  std::vector<operation> reversed(ops.rbegin(), ops.rend());
  for (int part = 0; part < 3; ++part) {
    test_client c(port(), 900);
    c.hello();
    c.send(R"({"type":"open","doc":"ooo","version":[]})");
    ASSERT_TRUE(c.expect("sync"));
    std::vector<operation> slice(reversed.begin() + part * 100, reversed.begin() + (part + 1) * 100);
    c.send_ops("ooo", slice);
    c.barrier("ooo");
  }
  test_client check(port(), 901);
  check.hello();
  check.open("ooo");
  EXPECT_EQ(check.replica("ooo").text(), author.text());
  EXPECT_EQ(text("ooo"), author.text());
  EXPECT_EQ(metric("weft_pending_ops"), 0);
}

TEST_F(NetworkFaultsTest, OpsThatCanNeverApplyKeepMemoryBounded) {
  config_.max_pending_ops = 200;
  config_.max_pending_per_connection = 100000;  // let one connection reach the document's bound
  start();
  test_client flood(port());
  flood.hello();
  flood.open("orphans");
  std::string batch;
  for (int msg = 0; msg < 10; ++msg) {
    std::vector<operation> ops;
    for (int i = 0; i < 100; ++i) {
      operation op;
      op.kind = op_kind::insert;
      op.id = op_id{31337, static_cast<std::uint64_t>(1000 + msg * 100 + i) * 2};
      op.origin_left = op_id{31337, 1};  // never arrives
      op.text = "z";
      ops.push_back(op);
    }
    flood.send_ops("orphans", ops);
  }
  bool full = false;
  for (auto m = flood.recv(2s); m; m = flood.recv(500ms))
    if (m->raw.find("\"limit\"") != std::string::npos) full = true;
  EXPECT_TRUE(full);
  EXPECT_LE(metric("weft_pending_ops"), 200);
  // The document still works for everyone else.
  test_client ok(port());
  ok.hello();
  ok.open("orphans");
  ok.insert("orphans", 0, "alive");
  EXPECT_TRUE(ok.wait_acked("orphans"));
  EXPECT_EQ(text("orphans"), "alive");
}

}  // namespace
}  // namespace weft::test
