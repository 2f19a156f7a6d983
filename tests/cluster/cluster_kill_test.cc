// A node of a three-node cluster is SIGKILLed while bots type on every node,
// then restarted on its data: it catches up, the others get what it had
// acknowledged, and every acknowledged op is on every node (checked per bot,
// by version vector, on each node). Real weft-server processes.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <random>
#include <thread>

#include "server_process.h"
#include "test_client.h"
#include "typists.h"
#include "weft/client.h"

namespace weft::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

int links_up(std::uint16_t port) {
  auto body = http_get(port, "/api/cluster").second;
  int n = 0;
  for (std::size_t at = body.find("\"state\":\"up\""); at != std::string::npos; at = body.find("\"state\":\"up\"", at + 1))
    ++n;
  return n;
}

TEST(ClusterKillTest, ANodeKilledUnderLoadCatchesUpAndNothingAcknowledgedIsLost) {
  const fs::path dir = fs::temp_directory_path() / ("weft-cluster-kill-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto flags = [](const std::string& id, std::vector<std::uint16_t> peers) {
    std::vector<std::string> f = {"--node-id", id, "--idle-unload-ms", "1000"};
    for (auto p : peers) f.insert(f.end(), {"--peer", "ws://127.0.0.1:" + std::to_string(p)});
    return f;
  };
  server_process a(dir / "a", 0, dir / "a.log", flags("a", {}));
  ASSERT_NE(a.port(), 0);
  server_process b(dir / "b", 0, dir / "b.log", flags("b", {a.port()}));
  ASSERT_NE(b.port(), 0);
  auto c = std::make_unique<server_process>(dir / "c", 0, dir / "c.log", flags("c", {a.port(), b.port()}));
  ASSERT_NE(c->port(), 0);
  const std::uint16_t c_port = c->port();
  const std::vector<std::uint16_t> ports = {a.port(), b.port(), c_port};
  auto all_up = [&] {
    for (int i = 0; i < 200; ++i) {
      bool up = true;
      for (auto p : ports) up = up && links_up(p) == 2;
      if (up) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };
  ASSERT_TRUE(all_up());

  network net(2);
  const std::vector<std::string> docs = {"k-1", "k-2", "k-3"};
  struct bot {
    std::unique_ptr<client> c;
    std::string doc;
    int node;
  };
  std::vector<bot> bots;
  for (int i = 0; i < 9; ++i) {
    client_options o;
    o.port = ports[i % 3];
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    bots.push_back(bot{std::make_unique<client>(net, o), docs[(i / 3) % 3], i % 3});
    bots.back().c->open(bots.back().doc);
    bots.back().c->start();
  }
  std::vector<typists::target> targets;
  for (auto& b : bots) targets.push_back({b.c.get(), b.doc});
  typists::options to;
  to.seed = 7;
  to.erase_one_in = 4;
  to.erase_above = 30;
  to.max_word = 4;
  to.min_pause_ms = 8;
  to.pause_spread_ms = 8;
  typists typing(targets, to);

  std::this_thread::sleep_for(1500ms);
  // What c acknowledged before it dies must reach everyone.
  std::vector<std::uint64_t> acked_before(bots.size());
  for (std::size_t i = 0; i < bots.size(); ++i) acked_before[i] = bots[i].c->acked(bots[i].doc);
  c->kill(SIGKILL);
  std::this_thread::sleep_for(1000ms);  // a and b go on without it
  c = std::make_unique<server_process>(dir / "c", c_port, dir / "c.log", flags("c", {a.port(), b.port()}));
  ASSERT_EQ(c->port(), c_port) << "c did not come back";
  std::this_thread::sleep_for(1000ms);
  typing.stop();

  // Quiet: every bot's ops acknowledged, every node and bot on one text.
  auto own = [](bot& b) {
    std::promise<std::pair<std::uint64_t, std::string>> p;
    b.c->read(b.doc, [&p](const document& d) { p.set_value({d.version().get(d.replica()), d.text()}); });
    return p.get_future().get();
  };
  bool settled = false;
  for (int i = 0; i < 1200 && !settled; ++i) {
    settled = true;
    for (const auto& d : docs) {
      std::string t0 = http_get(ports[0], "/api/docs/" + d + "/text").second;
      for (auto p : ports) settled = settled && http_get(p, "/api/docs/" + d + "/text").second == t0;
      for (auto& b : bots)
        if (b.doc == d) {
          auto [counter, text] = own(b);
          settled = settled && b.c->acked(b.doc) == counter && text == t0;
        }
    }
    if (!settled) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(settled) << "the cluster did not converge within 60 s";
  ASSERT_TRUE(all_up());
  std::uint64_t checked = 0, checked_from_c = 0;
  for (std::size_t n = 0; n < ports.size(); ++n)
    for (const auto& d : docs) {
      version_vector v = server_version(ports[n], d);
      for (std::size_t i = 0; i < bots.size(); ++i) {
        if (bots[i].doc != d) continue;
        const std::uint64_t acked = bots[i].c->acked(d);
        EXPECT_GE(v.get(bots[i].c->replica()), acked) << "node " << n << " lacks acknowledged ops of bot " << i;
        EXPECT_GE(acked, acked_before[i]);
        checked += acked;
        if (bots[i].node == 2) checked_from_c += acked_before[i];
      }
    }
  EXPECT_GT(checked, 0u);
  EXPECT_GT(checked_from_c, 0u) << "no op acknowledged by c before the kill was checked";
  for (auto& b : bots) b.c->stop();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace weft::test
