// Crash test (issue #6): bot clients (weft::client) type into several
// documents while the weft-server process is killed with SIGKILL at random
// moments and restarted on the same data directory, cycle after cycle.
//
// After every kill, before any client can reconnect and resend, a second
// server process is started on the same data directory on another port and
// asked for each document: every op the killed server had acknowledged must
// be there. Then the server comes back on the clients' port, they resync
// (resending what was not acknowledged), and typing goes on. At the end all
// replicas and the server's text must be identical.
//
//   WEFT_CRASH_CYCLES=50 build/tests/weft_crash_tests   # the long variant
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "server_process.h"
#include "test_client.h"
#include "typists.h"
#include "weft/client.h"

extern char** environ;

namespace weft::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct bot {
  std::unique_ptr<client> c;
  std::string doc;
};

TEST(CrashTest, AcknowledgedEditsSurviveSigkill) {
  const int cycles = std::getenv("WEFT_CRASH_CYCLES") ? std::atoi(std::getenv("WEFT_CRASH_CYCLES")) : 6;
  const fs::path dir = fs::temp_directory_path() / ("weft-crash-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path data = dir / "data";

  auto srv = std::make_unique<server_process>(data, 0, dir / "server.log");
  ASSERT_NE(srv->port(), 0) << "weft-server did not start";
  const std::uint16_t port = srv->port();

  network net(2);
  const std::vector<std::string> docs = {"crash-a", "crash-b", "crash-c"};
  std::vector<bot> bots;
  for (int i = 0; i < 6; ++i) {
    client_options o;
    o.port = port;
    o.name = "crash-bot";
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    bots.push_back(bot{std::make_unique<client>(net, o), docs[i % docs.size()]});
    bots.back().c->open(bots.back().doc);
    bots.back().c->start();
  }

  // Typists: words at random places, some deletes, like people (and fast).
  std::vector<typists::target> targets;
  for (auto& b : bots) targets.push_back({b.c.get(), b.doc});
  typists typing(targets, typists::options{});

  std::mt19937 rng(12345);
  std::uint64_t acked_ops_checked = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 700));
    // What the server has acknowledged so far; anything acknowledged after
    // this read only makes the check below weaker, never wrong.
    std::vector<std::uint64_t> acked(bots.size());
    for (std::size_t i = 0; i < bots.size(); ++i) acked[i] = bots[i].c->acked(bots[i].doc);
    srv->kill(SIGKILL);

    // Check on a second process, on another port, before clients can resend.
    {
      server_process check(data, 0, dir / "check.log");
      ASSERT_NE(check.port(), 0) << "weft-server did not restart after SIGKILL (cycle " << cycle << ")";
      std::map<std::string, version_vector> versions;
      for (const auto& d : docs) versions[d] = server_version(check.port(), d);
      for (std::size_t i = 0; i < bots.size(); ++i) {
        std::uint64_t have = versions[bots[i].doc].get(bots[i].c->replica());
        EXPECT_GE(have, acked[i]) << "cycle " << cycle << ": bot " << i << " had " << acked[i]
                                  << " ids acknowledged, but only " << have << " survived the crash";
        acked_ops_checked += acked[i];
      }
      check.kill(cycle % 2 ? SIGKILL : SIGTERM);
    }
    srv = std::make_unique<server_process>(data, port, dir / "server.log");
    ASSERT_EQ(srv->port(), port) << "weft-server did not come back on port " << port;
  }

  typing.stop();

  // Quiet period: every bot online, everything acknowledged, replicas equal.
  auto own_counter = [&](bot& b) {
    std::promise<std::uint64_t> p;
    b.c->read(b.doc, [&p](const document& d) { p.set_value(d.version().get(d.replica())); });
    return p.get_future().get();
  };
  auto text_of = [&](bot& b) {
    std::promise<std::string> p;
    b.c->read(b.doc, [&p](const document& d) { p.set_value(d.text()); });
    return p.get_future().get();
  };
  bool settled = false;
  for (int i = 0; i < 600 && !settled; ++i) {
    settled = true;
    for (auto& b : bots) settled = settled && b.c->acked(b.doc) == own_counter(b);
    for (const auto& d : docs) {
      std::string expected = http_get(port, "/api/docs/" + d + "/text").second;
      for (auto& b : bots)
        if (b.doc == d) settled = settled && text_of(b) == expected;
    }
    if (!settled) std::this_thread::sleep_for(50ms);
  }
  std::string state;
  if (!settled)
    for (std::size_t i = 0; i < bots.size(); ++i) {
      std::string server_text = http_get(port, "/api/docs/" + bots[i].doc + "/text").second;
      state += "\n  bot " + std::to_string(i) + " (" + bots[i].doc + "): acked " +
               std::to_string(bots[i].c->acked(bots[i].doc)) + " of " + std::to_string(own_counter(bots[i])) +
               ", text " + (text_of(bots[i]) == server_text ? "equals" : "differs from") + " the server's";
    }
  EXPECT_TRUE(settled) << "replicas did not converge with the server after the last restart:" << state;
  std::uint64_t total_ids = 0;
  for (auto& b : bots) total_ids += own_counter(b);
  std::printf("crash test: %d SIGKILL cycles, %llu acknowledged ids checked after kills, %llu ids typed in all\n",
              cycles, static_cast<unsigned long long>(acked_ops_checked), static_cast<unsigned long long>(total_ids));
  RecordProperty("cycles", cycles);
  RecordProperty("acked_ids_checked", static_cast<int>(acked_ops_checked));
  // A run that checked nothing (no bot was ever acknowledged before a kill)
  // proves nothing: it fails rather than passes.
  EXPECT_GT(acked_ops_checked, 0u) << "no acknowledged id was ever checked after a kill";

  bots.clear();
  srv.reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace weft::test
