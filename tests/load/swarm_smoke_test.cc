// The load test's short smoke variant: bots type into a real (in-process)
// server for a few seconds over real sockets, and everything must converge.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "server/server.h"
#include "swarm.h"

namespace weft::test {
namespace {

TEST(Swarm, BotsTypeAndConverge) {
  auto dir = std::filesystem::temp_directory_path() / ("weft-swarm-" + std::to_string(std::random_device{}()));
  server::server_config c;
  c.port = 0;
  c.data_dir = dir.string();
  c.threads = 1;
  c.level = server::log_level::error;
  auto srv = server::server::start(c);
  ASSERT_TRUE(srv.ok()) << srv.error().to_string();
  load::swarm_options o;
  o.urls = {load::server_url{"127.0.0.1", srv.value()->port()}};
  o.docs = 2;
  o.bots_per_doc = 4;
  o.rate = 20;
  o.duration_s = 2.5;
  o.ramp_s = 0.2;
  o.progress = false;
  o.server_pid = static_cast<int>(::getpid());
  auto r = load::run_swarm(o);
  EXPECT_TRUE(r.converged) << r.convergence_detail;
  EXPECT_EQ(r.errors, 0u);
  EXPECT_GT(r.keystrokes, 100u);
  EXPECT_GT(r.latency_samples, 50u);
  EXPECT_GE(r.ops_delivered, r.keystrokes * 3 / 2);  // each op reaches the 3 other bots (some still in flight)
  EXPECT_GT(r.server_peak_rss_mib, 0);
  std::cerr << load::summary(o, r);
  srv.value().reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace weft::test
