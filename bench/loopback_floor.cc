// weft-loopback-floor: the kernel's share of one keystroke in the load
// scenarios, without any server logic. A keystroke costs the server at least
// one receive (the author's frame) and N sends (N-1 rebroadcasts and one ack)
// of a small WebSocket frame over loopback TCP, where the kernel also runs
// the receivers' side of TCP on the sending CPU. This process does exactly
// that with plain read()/write() on N connected sockets (a child process
// drains the other ends) and reports its own CPU time per keystroke: the
// floor under any server's "µs per keystroke" measured over 127.0.0.1.
//
//   weft-loopback-floor [--peers N] [--keystrokes K] [--bytes B]
// Prints one JSON object per line.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "machine_info.h"

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int connect_to(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::exit(1);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  int peers = 20, keystrokes = 20000, bytes = 120;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--peers") peers = std::atoi(argv[i + 1]);
    else if (a == "--keystrokes") keystrokes = std::atoi(argv[i + 1]);
    else if (a == "--bytes") bytes = std::atoi(argv[i + 1]);
  }
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  listen(lfd, 128);
  socklen_t len = sizeof a;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::uint16_t port = ntohs(a.sin_port);

  pid_t child = fork();
  if (child == 0) {
    // The other ends: connection 0 is the author (it sends one frame per
    // keystroke, paced by the parent), all of them drain what they receive.
    std::vector<int> fds;
    for (int i = 0; i < peers; ++i) fds.push_back(connect_to(port));
    std::vector<char> frame(static_cast<std::size_t>(bytes), 'k'), buf(1 << 16);
    std::vector<pollfd> p;
    for (int fd : fds) p.push_back({fd, POLLIN, 0});
    long long received = 0, expected = static_cast<long long>(keystrokes) * bytes * peers;
    int sent = 0;
    while (received < expected) {
      if (sent < keystrokes && received >= static_cast<long long>(sent) * bytes * peers) {
        if (write(fds[0], frame.data(), frame.size()) < 0) break;  // next keystroke once the last was delivered
        ++sent;
      }
      if (poll(p.data(), p.size(), 1000) <= 0) break;
      for (auto& q : p)
        if (q.revents & POLLIN) {
          ssize_t n = read(q.fd, buf.data(), buf.size());
          if (n > 0) received += n;
        }
    }
    _exit(0);
  }
  std::vector<int> conns;
  for (int i = 0; i < peers; ++i) {
    int fd = accept(lfd, nullptr, nullptr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conns.push_back(fd);
  }
  // The author is whichever accepted socket gets data first; with one
  // writer that is deterministic enough: find it by polling.
  std::vector<char> frame(static_cast<std::size_t>(bytes), 's'), buf(1 << 16);
  const double c0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<pollfd> p;
  for (int fd : conns) p.push_back({fd, POLLIN, 0});
  for (int k = 0; k < keystrokes; ++k) {
    // One receive (epoll/poll + read, as a server does) ...
    int author = -1;
    while (author < 0) {
      if (poll(p.data(), p.size(), 5000) <= 0) return 1;
      for (std::size_t i = 0; i < p.size(); ++i)
        if (p[i].revents & POLLIN) author = static_cast<int>(i);
    }
    (void)!read(conns[static_cast<std::size_t>(author)], buf.data(), static_cast<std::size_t>(bytes));
    // ... and one send to every connection: rebroadcasts to the others, the ack to the author.
    for (int fd : conns)
      if (write(fd, frame.data(), frame.size()) < 0) return 1;
  }
  const double cpu = cpu_seconds() - c0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int fd : conns) close(fd);
  waitpid(child, nullptr, 0);
  std::printf(
      "{\"bench\":\"loopback_floor\",\"peers\":%d,\"keystrokes\":%d,\"bytes\":%d,\"cpu_us_per_keystroke\":%.1f,"
      "\"wall_s\":%.2f,\"machine\":\"%s\"}\n",
      peers, keystrokes, bytes, cpu * 1e6 / keystrokes, wall, weft::bench::machine_description().c_str());
  return 0;
}
