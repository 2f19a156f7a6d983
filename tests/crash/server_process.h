// A weft-server child process for tests that kill it (SIGKILL) and start it
// again on the same data: the real binary (WEFT_SERVER_BIN), its log in a file.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace weft::test {

/// A weft-server child process.
class server_process {
 public:
  /// Starts it on `port` (0: any free one) with `extra` flags; waits up to
  /// 5 s for it to listen (port() stays 0 when it does not).
  server_process(const std::filesystem::path& data, std::uint16_t port, const std::filesystem::path& log,
                 const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {WEFT_SERVER_BIN, "--port", std::to_string(port), "--data-dir", data.string(),
                                     "--threads", "2", "--log-level", "info"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (posix_spawn(&pid_, WEFT_SERVER_BIN, &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    // Wait for "listening on 127.0.0.1:PORT" in its log.
    std::regex listening("listening on 127\\.0\\.0\\.1:(\\d+)");
    for (int i = 0; i < 500 && pid_ > 0 && port_ == 0; ++i) {
      std::ifstream in(log);
      std::stringstream ss;
      ss << in.rdbuf();
      std::smatch m;
      std::string text = ss.str();
      if (std::regex_search(text, m, listening)) port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
      else std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~server_process() { kill(SIGKILL); }
  std::uint16_t port() const { return port_; }
  void kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace weft::test
