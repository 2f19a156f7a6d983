// A GoogleTest fixture owning a real weft-server on 127.0.0.1 (random port)
// with its SQLite database in a fresh temporary directory.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "server/server.h"

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

  server::server_config config_;
  std::filesystem::path dir_;
  std::unique_ptr<server::server> srv_;
};

}  // namespace weft::test
