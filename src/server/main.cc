// weft-server: see `weft-server --help` and docs/protocol.md.
#include <csignal>
#include <cstdio>

#include <fmt/format.h>

#include "server/log.h"
#include "server/server.h"

int main(int argc, char** argv) {
  auto parsed = weft::server::parse_args(argc, argv);
  if (auto* out = std::get_if<weft::server::parse_outcome>(&parsed)) {
    std::fputs(out->message.c_str(), out->exit_code == 0 ? stdout : stderr);
    return out->exit_code;
  }
  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto srv = weft::server::server::start(std::get<weft::server::server_config>(parsed));
  if (!srv.ok()) {
    fmt::print(stderr, "weft-server: {}\n", srv.error().to_string());
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  weft::server::log(weft::server::log_level::info, "received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  srv.value()->stop();
  return 0;
}
