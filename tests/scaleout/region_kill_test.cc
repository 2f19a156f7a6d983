// A node of a region (three weft-server processes on one real PostgreSQL and
// one real Redis) is SIGKILLed under load:
//  - what it acknowledged before it died is in the shared store: another node
//    serves it at once, before any client could give it back;
//  - weft-bots with every node's URL fails over to the other nodes and ends
//    converged, with every op delivered (its own checks, exit status 0).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <future>
#include <random>
#include <regex>
#include <thread>

#include "server_process.h"
#include "services.h"
#include "test_client.h"
#include "typists.h"
#include "weft/client.h"

namespace weft::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST(RegionKillTest, AKilledNodeLosesNothingAcknowledgedAndBotsFailOver) {
  postgres_server pg;
  redis_server redis;
  const std::string db = pg.uri(pg.fresh_database());
  const fs::path dir = temp_path("region-kill");
  fs::create_directories(dir);
  auto flags = [&](const std::string& id) {
    return std::vector<std::string>{"--node-id", id, "--store", db, "--bus", redis.url(), "--idle-unload-ms", "1000"};
  };
  std::vector<std::unique_ptr<server_process>> nodes;
  for (int i = 0; i < 3; ++i) {
    const std::string id = "n" + std::to_string(i);
    nodes.push_back(std::make_unique<server_process>(dir / id, 0, dir / (id + ".log"), flags(id)));
    ASSERT_NE(nodes.back()->port(), 0) << "node " << i << " did not start";
  }
  std::vector<std::uint16_t> ports;
  for (auto& n : nodes) ports.push_back(n->port());

  // ---- part 1: acknowledged means in the shared store -------------------------
  network net(2);
  struct bot {
    std::unique_ptr<client> c;
    std::string doc;
    int node;
  };
  std::vector<bot> bots;
  for (int i = 0; i < 6; ++i) {
    client_options o;
    o.port = ports[i % 3];
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    bots.push_back(bot{std::make_unique<client>(net, o), i % 2 ? "k-odd" : "k-even", i % 3});
    bots.back().c->open(bots.back().doc);
    bots.back().c->start();
  }
  std::vector<typists::target> targets;
  for (auto& b : bots) targets.push_back({b.c.get(), b.doc});
  typists::options to;
  to.erase_one_in = 0;
  to.max_word = 3;
  to.min_pause_ms = 8;
  to.pause_spread_ms = 8;
  to.max_edits = 2000;
  typists typing(targets, to);
  std::this_thread::sleep_for(1500ms);
  typing.stop();
  std::this_thread::sleep_for(100ms);  // acks in flight arrive
  std::vector<std::uint64_t> acked(bots.size());
  for (std::size_t i = 0; i < bots.size(); ++i) acked[i] = bots[i].c->acked(bots[i].doc);
  nodes[2]->kill(SIGKILL);
  // Its bots keep redialling the dead port: nobody can give the ops back. A
  // node started now has the documents from the shared store alone.
  server_process checker(dir / "checker", 0, dir / "checker.log", flags("checker"));
  ASSERT_NE(checker.port(), 0);
  std::uint64_t checked = 0;
  for (std::size_t i = 0; i < bots.size(); ++i) {
    if (bots[i].node != 2) continue;
    const version_vector v = server_version(checker.port(), bots[i].doc);
    EXPECT_GE(v.get(bots[i].c->replica()), acked[i]) << "an op node 2 acknowledged is not in the shared store";
    checked += acked[i];
  }
  EXPECT_GT(checked, 0u) << "node 2 acknowledged nothing before it was killed";
  for (auto& b : bots) b.c->stop();

  // ---- part 2: weft-bots fails over ------------------------------------------
  nodes[2] = std::make_unique<server_process>(dir / "n2b", 0, dir / "n2b.log", flags("n2"));
  ASSERT_NE(nodes[2]->port(), 0);
  ports[2] = nodes[2]->port();
  std::vector<std::string> args = {WEFT_BOTS_BIN, "--docs", "3", "--bots-per-doc", "3", "--rate", "8",
                                   "--duration", "5", "--quiet", "15", "--failover-after", "2",
                                   "--json", (dir / "bots.json").string()};
  for (auto p : ports) args.insert(args.end(), {"--url", "ws://127.0.0.1:" + std::to_string(p) + "/"});
  const pid_t bots_pid = spawn(args, dir / "bots.log");
  ASSERT_GT(bots_pid, 0);
  std::this_thread::sleep_for(2000ms);
  nodes[1]->kill(SIGKILL);  // mid-run: its bots move to the other nodes
  int st = 0;
  ASSERT_EQ(::waitpid(bots_pid, &st, 0), bots_pid);
  std::ifstream log(dir / "bots.log");
  std::stringstream out;
  out << log.rdbuf();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out.str();
  // The killed node's bots did move (the summary counts failovers).
  std::smatch m;
  const std::string text = out.str();
  ASSERT_TRUE(std::regex_search(text, m, std::regex(", failovers (\\d+)"))) << text;
  EXPECT_GE(std::stoi(m[1]), 1) << text;

  fs::remove_all(dir);
}

// The node carrying a region's links is SIGKILLed: PostgreSQL ends its
// session, so the region's lease comes free and another node of the region
// takes the links over by itself; the far region's edits reach the region
// again.
TEST(RegionKillTest, AKilledLinksNodeHandsTheRegionsLinksOver) {
  postgres_server pg;
  redis_server redis;
  const std::string db = pg.uri(pg.fresh_database());
  const fs::path dir = temp_path("region-kill-links");
  fs::create_directories(dir);
  server_process far(dir / "far", 0, dir / "far.log", {"--node-id", "far"});
  ASSERT_NE(far.port(), 0);
  const std::string far_url = "ws://127.0.0.1:" + std::to_string(far.port());
  std::vector<std::unique_ptr<server_process>> eu;
  for (int i = 0; i < 2; ++i) {
    const std::string id = "eu" + std::to_string(i);
    eu.push_back(std::make_unique<server_process>(
        dir / id, 0, dir / (id + ".log"),
        std::vector<std::string>{"--node-id", "eu", "--store", db, "--bus", redis.url(), "--peer", far_url}));
    ASSERT_NE(eu.back()->port(), 0);
  }
  auto links_node = [&](int i) {
    auto body = http_get(eu[i]->port(), "/metrics").second;
    return body.find("\nweft_replication_links_node 1\n") != std::string::npos;
  };
  auto far_linked = [&] { return http_get(far.port(), "/api/cluster").second.find("\"state\":\"up\"") != std::string::npos; };
  ASSERT_TRUE(eventually([&] { return links_node(0) != links_node(1) && far_linked(); }, 15s));
  const int holder = links_node(0) ? 0 : 1, other = 1 - holder;
  eu[holder]->kill(SIGKILL);
  ASSERT_TRUE(eventually([&] { return links_node(other); }, 20s)) << "the lease never came free";
  ASSERT_TRUE(eventually(far_linked, 15s));
  {
    test_client away(far.port());
    away.hello();
    away.open("after");
    away.insert("after", 0, "written far away");
    ASSERT_TRUE(away.wait_acked("after", 10s));
  }
  EXPECT_TRUE(eventually([&] { return http_get(eu[other]->port(), "/api/docs/after/text").second == "written far away"; },
                         20s));
  eu.clear();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace weft::test
