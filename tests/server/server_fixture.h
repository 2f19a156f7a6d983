// A GoogleTest fixture owning a real weft-server on 127.0.0.1 (random port)
// with its SQLite database in a fresh temporary directory.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "server/server.h"
#include "test_client.h"

namespace weft::test {

class server_fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("weft-test-" + std::to_string(std::random_device{}()) + "-" + std::to_string(::getpid()));
  }
  void TearDown() override {
    srv_.reset();
    std::filesystem::remove_all(dir_);
  }
  /// Starts a server with config_ (port, data dir, threads and log level set here).
  result<std::unique_ptr<server::server>> try_start() {
    server::server_config c = config_;
    c.port = 0;
    c.data_dir = dir_.string();
    c.threads = 2;
    c.level = std::getenv("WEFT_TEST_LOG") ? server::log_level::debug : server::log_level::error;
    return server::server::start(c);
  }
  /// try_start(), failing the test when it does not start.
  void start() {
    auto s = try_start();
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    srv_ = std::move(s.value());
  }
  /// Stops the server and starts a new one on the same data.
  void restart() {
    srv_.reset();
    start();
  }
  std::uint16_t port() const { return srv_->port(); }
  /// A gauge or counter from /metrics (-1 when absent).
  std::int64_t metric(const std::string& name);
  /// Polls metric(name) until it equals `want`, for at most `timeout`: a
  /// condition to wait for, never a fixed sleep. True when it got there.
  bool metric_reaches(const std::string& name, std::int64_t want,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (metric(name) != want) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  server::server_config config_;
  std::filesystem::path dir_;
  std::unique_ptr<server::server> srv_;
};

inline std::int64_t server_fixture::metric(const std::string& name) {
  auto body = http_get(port(), "/metrics").second;
  auto at = body.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
}

}  // namespace weft::test
