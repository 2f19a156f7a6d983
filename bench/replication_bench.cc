// weft-replication-bench: replication between real weft-server processes
// (the WEFT_SERVER_BIN binary), three nodes linked all-to-all, each
// inter-node link through a fault_proxy that holds every chunk for a one-way
// delay ± jitter (50 ms ± 10 ms by default). All traffic on 127.0.0.1.
//
// It measures (bench/README-replication.md says how and why):
//  1. steady state: writers type on a fixed schedule on every node, observers
//     on every node; edit-to-screen latency per op (scheduled send time to
//     arrival at an observer), same-node and cross-node; the replication lag
//     gauge of every link sampled every 100 ms, and the lag seen from op
//     arrivals (cross-node latency minus the injected delay);
//  2. node CPU per keystroke (utime+stime from /proc/PID/stat) in that run,
//     in a run with every writer on node a, and in a single-node baseline;
//  3. catch-up: node c cut off, many ops written on node a, then healed: the
//     time until c holds everything;
//  4. bytes per op of node a's replication log (the outbox) and of its
//     database file.
// Prints one JSON object on stdout and a short summary on stderr. Every wait
// is bounded; it exits 1 if a run could not be set up or did not finish.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "../tests/cluster/fault_proxy.h"
#include "../tests/crash/server_process.h"
#include "machine_info.h"
#include "weft/client.h"
#include "weft/encoding.h"

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---- options ------------------------------------------------------------------------

struct options {
  int duration_s = 20;
  int delay_ms = 50;
  int jitter_ms = 10;
  std::string topology = "all";
  int writers_per_node = 3;
  int keys_per_s = 10;
  int docs = 3;
  int observers = 1;  // per node and document
  int idle_s = 5;     // idle CPU measured before each steady phase
  int catchup_ops = 200000;
  int catchup_docs = 4;
  int ops_per_message = 100;
  int window = 8;  // messages in flight per catch-up connection
  int partition_s = 5;
  int catchup_timeout_s = 120;
  bool baseline = true;
  bool writers_on_a = true;
  bool catchup = true;
  bool keep = false;
  std::vector<std::string> server_args;  // passed on to every weft-server
};

const char* usage_text =
    "usage: weft-replication-bench [flags]\n"
    "\n"
    "Replication between three real weft-server processes (" WEFT_SERVER_BIN ")\n"
    "linked all-to-all, every inter-node link through a TCP proxy adding one-way\n"
    "delay +- jitter. Prints one JSON object on stdout, a summary on stderr.\n"
    "\n"
    "  --duration S          steady phase of each run, seconds (default 20)\n"
    "  --delay-ms N          injected one-way delay per inter-node link (default 50)\n"
    "  --jitter-ms N         +- uniform jitter on that delay (default 10)\n"
    "  --topology T          all, ring or star (hub a) (default all)\n"
    "  --writers-per-node N  writers per node (default 3); writer i types into doc i % docs\n"
    "  --keys-per-s N        keystrokes per second per writer, on a fixed schedule (default 10)\n"
    "  --docs N              shared documents of the steady phase (default 3)\n"
    "  --observers N         observer clients per node and document (default 1)\n"
    "  --idle-s S            idle CPU measured before each steady phase (default 5)\n"
    "  --catchup-ops N       ops written on node a while node c is cut off (default 200000)\n"
    "  --catchup-docs N      documents (one connection each) they are spread over (default 4)\n"
    "  --ops-per-message N   one-character inserts per ops message (default 100)\n"
    "  --window N            ops messages in flight per catch-up connection (default 8)\n"
    "  --partition-s S       minimum time node c stays cut off (default 5)\n"
    "  --catchup-timeout-s S bound on writing and on catching up, each (default 120)\n"
    "  --no-baseline         skip the single-node baseline run\n"
    "  --no-writers-on-a     skip the run with every writer on node a\n"
    "  --no-catchup          skip the catch-up phase (and the outbox figures)\n"
    "  --server-arg ARG      pass ARG to every weft-server (repeatable; e.g. --server-arg\n"
    "                        --commit-window-ms --server-arg 0)\n"
    "  --keep                keep the data directories and server logs\n"
    "  --help                this text\n";

// ---- small helpers --------------------------------------------------------------------

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string dist_json(const std::vector<double>& v) {
  double mx = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
  return fmt::format("{{\"count\":{},\"p50\":{:.2f},\"p99\":{:.2f},\"max\":{:.2f}}}", v.size(), percentile(v, 0.5),
                     percentile(v, 0.99), mx);
}

// GET on 127.0.0.1:port, bounded by `timeout`: {status, body}; {0, ""} on failure.
std::pair<int, std::string> http_get(std::uint16_t port, const std::string& target,
                                     std::chrono::milliseconds timeout = 3000ms) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {0, ""};
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return {0, ""};
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return {0, ""};
  }
  std::string raw;
  char buf[65536];
  const auto deadline = clock_type::now() + timeout;
  for (ssize_t n; clock_type::now() < deadline && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, n);
  ::close(fd);
  namespace http = boost::beast::http;
  http::response_parser<http::string_body> p;
  p.eager(true);
  p.body_limit(256u << 20);
  boost::beast::error_code ec;
  std::size_t off = 0;
  while (off < raw.size() && !p.is_done()) {
    std::size_t n = p.put(boost::asio::buffer(raw.data() + off, raw.size() - off), ec);
    if (ec || n == 0) break;
    off += n;
  }
  if (!p.is_done()) p.put_eof(ec);
  if (!p.is_done()) return {0, ""};
  return {static_cast<int>(p.get().result_int()), p.get().body()};
}

// Values of a labelled metric family, by peer: name{peer="X"} value.
std::map<std::string, double> by_peer(const std::string& metrics, const std::string& name) {
  std::map<std::string, double> out;
  const std::string prefix = name + "{peer=\"";
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    auto q = line.find('"', prefix.size());
    auto sp = line.find(' ', q);
    if (q == std::string::npos || sp == std::string::npos) continue;
    out[line.substr(prefix.size(), q - prefix.size())] = std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return out;
}

// An unlabelled metric (-1 when absent).
double scalar_metric(const std::string& metrics, const std::string& name) {
  auto pos = metrics.find("\n" + name + " ");
  if (pos == std::string::npos) return -1;
  return std::strtod(metrics.c_str() + pos + name.size() + 2, nullptr);
}

// /proc/PID/stat: {ppid, comm, utime+stime in seconds}.
struct proc_stat {
  bool ok = false;
  int ppid = 0;
  std::string comm;
  double cpu_s = 0;
};
proc_stat read_stat(int pid) {
  proc_stat s;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return s;
  s.comm = text.substr(open + 1, close - open - 1);
  std::istringstream rest(text.substr(close + 2));
  std::vector<std::string> f;
  for (std::string t; rest >> t;) f.push_back(t);
  // f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
  if (f.size() < 13) return s;
  static const double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
  s.ppid = std::atoi(f[1].c_str());
  s.cpu_s = (std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr)) / tck;
  s.ok = true;
  return s;
}

// The weft-server children of this process not in `known` (server_process
// keeps its pid to itself; its child is found by parent pid and name).
std::vector<int> new_server_children(const std::set<int>& known) {
  std::vector<int> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0 || known.count(pid)) continue;
    auto s = read_stat(pid);
    if (s.ok && s.ppid == getpid() && s.comm == "weft-server") out.push_back(pid);
  }
  closedir(d);
  return out;
}

std::uintmax_t file_size_or_0(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

// ---- a cluster of weft-server processes ------------------------------------------------

struct node {
  std::string id;
  fs::path dir;
  std::unique_ptr<weft::test::server_process> proc;
  int pid = -1;
  std::uint16_t port = 0;
};

class cluster {
 public:
  // `n` nodes a, b, c, ...: node j dials every node i < j through a proxy.
  cluster(const fs::path& root, int n, const options& o) : root_(root), n_(n) {
    fs::create_directories(root);
    for (int j = 0; j < n; ++j) {
      node x;
      x.id = std::string(1, static_cast<char>('a' + j));
      x.dir = root / x.id;
      std::vector<std::string> flags = {"--node-id", x.id, "--topology", o.topology,
                                        // The catch-up writer is a bulk loader, not a person: the per-connection
                                        // message rate limit (default 200/s) would close it. Writers type 10/s.
                                        "--max-messages-per-second", "100000", "--message-burst", "100000"};
      if (o.topology == "star") flags.insert(flags.end(), {"--hub", "a"});
      flags.insert(flags.end(), o.server_args.begin(), o.server_args.end());
      for (int i = 0; i < j; ++i) {
        auto p = std::make_unique<weft::test::fault_proxy>(nodes_[static_cast<std::size_t>(i)].port);
        p->set_latency(std::chrono::milliseconds(o.delay_ms), std::chrono::milliseconds(o.jitter_ms));
        flags.insert(flags.end(), {"--peer", "ws://127.0.0.1:" + std::to_string(p->port())});
        proxies_[{i, j}] = std::move(p);
      }
      x.proc = std::make_unique<weft::test::server_process>(x.dir, 0, root / (x.id + ".log"), flags);
      x.port = x.proc->port();
      std::set<int> known;
      for (auto& m : nodes_) known.insert(m.pid);
      auto kids = new_server_children(known);
      if (kids.size() == 1) x.pid = kids[0];
      nodes_.push_back(std::move(x));
    }
  }
  ~cluster() { stop(); }
  bool started() const {
    for (auto& x : nodes_)
      if (x.port == 0 || x.pid <= 0) return false;
    return true;
  }
  // Graceful stop (SIGTERM: SQLite checkpoints its WAL into the file).
  void stop() {
    for (auto& x : nodes_)
      if (x.proc) {
        x.proc->kill(SIGTERM);
        x.proc.reset();
      }
    proxies_.clear();
  }
  int size() const { return n_; }
  node& at(int i) { return nodes_[static_cast<std::size_t>(i)]; }
  std::vector<std::uint16_t> ports() const {
    std::vector<std::uint16_t> p;
    for (auto& x : nodes_) p.push_back(x.port);
    return p;
  }
  weft::test::fault_proxy* proxy(int i, int j) {
    auto it = proxies_.find({std::min(i, j), std::max(i, j)});
    return it == proxies_.end() ? nullptr : it->second.get();
  }
  int links_up(int i) {
    auto body = http_get(at(i).port, "/api/cluster").second;
    int n = 0;
    for (auto at = body.find("\"state\":\"up\""); at != std::string::npos; at = body.find("\"state\":\"up\"", at + 1))
      ++n;
    return n;
  }
  // Every node has a link to every other node (bounded: 20 s).
  bool wait_all_up() {
    for (int k = 0; k < 400; ++k) {
      bool up = true;
      for (int i = 0; i < n_; ++i) up = up && links_up(i) == n_ - 1;
      if (up) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  double cpu_s(int i) { return read_stat(at(i).pid).cpu_s; }

 private:
  fs::path root_;
  int n_;
  std::vector<node> nodes_;
  std::map<std::pair<int, int>, std::unique_ptr<weft::test::fault_proxy>> proxies_;
};

// ---- steady state ---------------------------------------------------------------------

struct op_key {
  std::uint64_t replica, counter;
  bool operator==(const op_key&) const = default;
};
struct op_key_hash {
  std::size_t operator()(const op_key& k) const noexcept {
    return std::hash<std::uint64_t>()(k.replica * 0x9E3779B97F4A7C15ull ^ k.counter);
  }
};

struct node_cpu {
  double idle_ms_per_s = 0;  // before the writers start
  double batches_received = 0, duplicates = 0;  // over its links, at the end of the phase
  double cpu_s = 0;          // over the steady phase
  std::uint64_t local_keystrokes = 0;
};

struct steady_result {
  bool ok = true;
  std::string why;
  std::uint64_t keystrokes = 0, expected_deliveries = 0, deliveries = 0, duplicates = 0;
  std::vector<double> same_ms, cross_ms;
  std::map<std::string, std::vector<double>> lag_s;  // "a->b": samples of a's lag gauge for b
  double phase_s = 0;
  std::vector<node_cpu> cpu;
  std::uint64_t remote_errors = 0;
};

// Writers (node of each) type on the fixed schedule; observers (node, doc)
// record arrivals. Node CPU from the writers' start until every observer has
// every op (or 10 s after the last keystroke).
steady_result run_steady(cluster& cl, const options& o, const std::vector<int>& writer_nodes,
                         const std::vector<std::pair<int, int>>& observers, const std::string& doc_prefix) {
  steady_result r;
  const int n = cl.size();
  r.cpu.resize(static_cast<std::size_t>(n));
  weft::network net(2);
  std::mutex mu;  // sent, the result vectors
  struct sent_info {
    clock_type::time_point at;
    int node;
  };
  std::unordered_map<op_key, sent_info, op_key_hash> sent;
  std::atomic<std::uint64_t> delivered{0}, duplicates{0}, remote_errors{0}, synced{0};
  std::vector<std::uint64_t> observers_of(static_cast<std::size_t>(o.docs), 0);
  auto doc_name = [&](int d) { return doc_prefix + std::to_string(d); };

  struct observer {
    std::unique_ptr<weft::client> c;
    std::unordered_set<op_key, op_key_hash> seen;  // its executor only
  };
  std::vector<std::unique_ptr<observer>> obs;
  for (auto [node_i, d] : observers) {
    auto ob = std::make_unique<observer>();
    observer* self = ob.get();
    ++observers_of[static_cast<std::size_t>(d)];
    weft::client_options co;
    co.port = cl.at(node_i).port;
    co.name = "observer";
    weft::client_handlers h;
    h.on_synced = [&synced] { ++synced; };
    h.on_error = [&remote_errors](const std::string&, const std::string&) { ++remote_errors; };
    h.on_remote = [&, self, node_i](const std::string&, const std::vector<weft::operation>& ops,
                                    const std::vector<weft::text_change>&) {
      const auto now = clock_type::now();
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& op : ops) {
        if (op.kind != weft::op_kind::insert) continue;
        for (std::uint64_t k = 0; k < op.length(); ++k) {
          op_key key{op.id.replica, op.id.counter + k};
          auto it = sent.find(key);
          if (it == sent.end()) continue;
          if (!self->seen.insert(key).second) {
            ++duplicates;
            continue;
          }
          (it->second.node == node_i ? r.same_ms : r.cross_ms).push_back(ms_between(it->second.at, now));
          ++delivered;
        }
      }
    };
    ob->c = std::make_unique<weft::client>(net, co, h);
    ob->c->open(doc_name(d));
    ob->c->start();
    obs.push_back(std::move(ob));
  }

  struct writer {
    std::unique_ptr<weft::client> c;
    int node = 0, doc = 0;
    std::uint64_t cursor = 0;  // its executor only
  };
  std::vector<std::unique_ptr<writer>> writers;
  for (std::size_t i = 0; i < writer_nodes.size(); ++i) {
    auto w = std::make_unique<writer>();
    w->node = writer_nodes[i];
    w->doc = static_cast<int>(i) % o.docs;
    weft::client_options co;
    co.port = cl.at(w->node).port;
    co.name = "writer";
    weft::client_handlers h;
    h.on_synced = [&synced] { ++synced; };
    h.on_error = [&remote_errors](const std::string&, const std::string&) { ++remote_errors; };
    w->c = std::make_unique<weft::client>(net, co, h);
    w->c->open(doc_name(w->doc));
    w->c->start();
    writers.push_back(std::move(w));
  }
  const std::uint64_t clients = obs.size() + writers.size();
  for (int k = 0; k < 400 && synced.load() < clients; ++k) std::this_thread::sleep_for(25ms);
  if (synced.load() < clients) {
    r.ok = false;
    r.why = "clients did not sync within 10 s";
    return r;
  }

  // Lag sampler: every link's gauge on every node, every 100 ms on average
  // (in every run, the baseline included, so the /metrics load is the same).
  // The interval is drawn from 50..150 ms: a fixed 100 ms would alias with
  // the writers' fixed schedule (10 keys/s) and read every link at the same
  // phase of its send/confirm cycle.
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    std::minstd_rand rng(7);
    auto next = clock_type::now();
    while (sampling) {
      for (int i = 0; i < n; ++i) {
        auto m = http_get(cl.at(i).port, "/metrics", 1000ms).second;
        for (auto& [peer, v] : by_peer(m, "weft_replication_lag_seconds")) {
          std::lock_guard<std::mutex> lock(mu);
          r.lag_s[cl.at(i).id + "->" + peer].push_back(v);
        }
      }
      next += std::chrono::milliseconds(50 + rng() % 101);
      std::this_thread::sleep_until(next);
    }
  });

  // Idle CPU, then the writers.
  std::vector<double> c0(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) c0[static_cast<std::size_t>(i)] = cl.cpu_s(i);
  std::this_thread::sleep_for(std::chrono::seconds(o.idle_s));
  for (int i = 0; i < n; ++i)
    r.cpu[static_cast<std::size_t>(i)].idle_ms_per_s =
        o.idle_s > 0 ? 1000 * (cl.cpu_s(i) - c0[static_cast<std::size_t>(i)]) / o.idle_s : 0;
  for (int i = 0; i < n; ++i) c0[static_cast<std::size_t>(i)] = cl.cpu_s(i);

  const auto period = std::chrono::microseconds(1000000 / o.keys_per_s);
  const std::int64_t per_writer = static_cast<std::int64_t>(o.duration_s) * o.keys_per_s;
  const auto t0 = clock_type::now() + 50ms;
  // (due, writer, k): writer w's k-th keystroke at t0 + w/W of a period + k periods.
  using event = std::tuple<clock_type::time_point, std::size_t, std::int64_t>;
  std::priority_queue<event, std::vector<event>, std::greater<>> due;
  for (std::size_t w = 0; w < writers.size(); ++w)
    due.emplace(t0 + period * static_cast<std::int64_t>(w) / static_cast<std::int64_t>(writers.size()), w, 0);
  std::atomic<std::uint64_t> typed{0};
  std::vector<std::uint64_t> typed_by_node(static_cast<std::size_t>(n), 0);
  while (!due.empty()) {
    auto [at, w, k] = due.top();
    due.pop();
    std::this_thread::sleep_until(at);
    writer* wr = writers[w].get();
    ++typed_by_node[static_cast<std::size_t>(wr->node)];
    wr->c->edit(doc_name(wr->doc), [&, wr, at = at, k = k](weft::document& d, std::vector<weft::operation>& out) {
      std::uint64_t pos = std::min(wr->cursor, d.length());
      auto op = d.insert(pos, std::string(1, static_cast<char>('a' + k % 26)));
      if (!op.ok()) return;
      wr->cursor = pos + 1;
      {
        std::lock_guard<std::mutex> lock(mu);
        sent[{op.value().id.replica, op.value().id.counter}] = {at, wr->node};
      }
      ++typed;
      out.push_back(std::move(op.value()));
    });
    if (k + 1 < per_writer) due.emplace(at + period, w, k + 1);
  }
  const auto last_key = clock_type::now();
  // Every observer of the document gets every keystroke.
  std::uint64_t expected = 0;
  for (std::size_t w = 0; w < writers.size(); ++w)
    expected += static_cast<std::uint64_t>(per_writer) * observers_of[static_cast<std::size_t>(writers[w]->doc)];
  while (delivered.load() < expected && clock_type::now() - last_key < 10s) std::this_thread::sleep_for(5ms);
  const auto t1 = clock_type::now();
  for (int i = 0; i < n; ++i) {
    auto& c = r.cpu[static_cast<std::size_t>(i)];
    c.cpu_s = cl.cpu_s(i) - c0[static_cast<std::size_t>(i)];
    c.local_keystrokes = typed_by_node[static_cast<std::size_t>(i)];
  }
  r.phase_s = std::chrono::duration<double>(t1 - t0).count();
  for (int i = 0; i < n; ++i) {
    auto m = http_get(cl.at(i).port, "/metrics").second;
    for (auto& [peer, v] : by_peer(m, "weft_replication_batches_received_total"))
      r.cpu[static_cast<std::size_t>(i)].batches_received += v;
    for (auto& [peer, v] : by_peer(m, "weft_replication_duplicates_total"))
      r.cpu[static_cast<std::size_t>(i)].duplicates += v;
  }
  sampling = false;
  sampler.join();
  r.keystrokes = typed.load();
  r.expected_deliveries = expected;
  r.deliveries = delivered.load();
  r.duplicates = duplicates.load();
  r.remote_errors = remote_errors.load();
  if (r.keystrokes != static_cast<std::uint64_t>(per_writer) * writers.size()) {
    r.ok = false;
    r.why = "not every keystroke was made";
  }
  for (auto& w : writers) w->c->stop();
  for (auto& ob : obs) ob->c->stop();
  writers.clear();
  obs.clear();
  return r;
}

// ---- catch-up -------------------------------------------------------------------------

struct catchup_result {
  bool ok = true;
  std::string why;
  std::uint64_t ops = 0, messages = 0, client_errors = 0;
  double write_s = 0, partition_s = 0;
  std::map<std::string, double> lag_batches_before_heal;  // a's and b's gauge for c, while cut off
  std::map<std::string, double> link_up_s;                // heal -> c's link to a / b up (c's metrics)
  double first_link_up_s = -1;
  double metric_zero_s = -1;  // heal -> lag_batches{peer="c"} == 0 on every node whose link to c is up, from then on
  double max_lag_batches_after_heal = 0;  // sum over a and b
  double caught_up_s = -1;                // heal -> that, and c's texts == a's
  std::map<std::string, double> batches_received_by_c;  // per peer, on the link after the heal
  std::map<std::string, double> duplicates_at_c;        // of those, batches c held already
  double ops_applied_at_c = 0, duplicate_ops_at_c = 0;  // c's replicated ops, from the heal to caught up
  std::vector<std::string> docs;
};

catchup_result run_catchup(cluster& cl, const options& o) {
  catchup_result r;
  const int a = 0, c = 2;
  auto* pac = cl.proxy(a, c);
  auto* pbc = cl.proxy(1, c);
  if (!pac || !pbc) {
    r.ok = false;
    r.why = "no proxy on c's links";
    return r;
  }
  pac->cut();
  pbc->cut();
  const auto cut_at = clock_type::now();
  // Bounded wait until a and b see c down.
  for (int k = 0; k < 200 && (cl.links_up(a) != 1 || cl.links_up(1) != 1); ++k) std::this_thread::sleep_for(50ms);

  weft::network net(1);
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<std::uint64_t> synced{0}, errors{0};
  std::vector<std::unique_ptr<weft::client>> cs;
  for (int d = 0; d < o.catchup_docs; ++d) {
    r.docs.push_back("catchup-" + std::to_string(d));
    weft::client_options co;
    co.port = cl.at(a).port;
    co.name = "bulk";
    weft::client_handlers h;
    h.on_synced = [&synced] { ++synced; };
    h.on_ack = [&](const std::string&, std::uint64_t) {
      std::lock_guard<std::mutex> lock(mu);
      cv.notify_all();
    };
    h.on_error = [&errors](const std::string&, const std::string&) { ++errors; };
    cs.push_back(std::make_unique<weft::client>(net, co, h));
    cs.back()->open(r.docs.back());
    cs.back()->start();
  }
  for (int k = 0; k < 400 && synced.load() < cs.size(); ++k) std::this_thread::sleep_for(25ms);
  if (synced.load() < cs.size()) {
    r.ok = false;
    r.why = "catch-up clients did not sync";
    return r;
  }
  // Each connection: `window` messages of `ops_per_message` one-character
  // inserts in flight, the next sent as acknowledgements come back.
  const std::uint64_t total = static_cast<std::uint64_t>(o.catchup_ops);
  const std::uint64_t per_msg = static_cast<std::uint64_t>(o.ops_per_message);
  std::vector<std::uint64_t> target(cs.size()), submitted(cs.size(), 0);
  for (std::size_t i = 0; i < cs.size(); ++i) target[i] = total / cs.size() + (i < total % cs.size() ? 1 : 0);
  const auto w0 = clock_type::now();
  const auto deadline = w0 + std::chrono::seconds(o.catchup_timeout_s);
  for (;;) {
    bool done = true, sent_any = false;
    for (std::size_t i = 0; i < cs.size(); ++i) {
      const std::uint64_t acked = cs[i]->acked(r.docs[i]);
      if (acked < target[i]) done = false;
      while (submitted[i] < target[i] && submitted[i] - acked < per_msg * static_cast<std::uint64_t>(o.window)) {
        const std::uint64_t m = std::min(per_msg, target[i] - submitted[i]);
        cs[i]->edit(r.docs[i], [m](weft::document& d, std::vector<weft::operation>& out) {
          for (std::uint64_t k = 0; k < m; ++k) {
            auto op = d.insert(d.length(), std::string(1, static_cast<char>('a' + k % 26)));
            if (op.ok()) out.push_back(std::move(op.value()));
          }
        });
        submitted[i] += m;
        ++r.messages;
        sent_any = true;
      }
    }
    if (done) break;
    if (clock_type::now() > deadline) {
      r.ok = false;
      r.why = "the catch-up ops were not all acknowledged in time";
      return r;
    }
    if (!sent_any) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, 20ms);
    }
  }
  r.write_s = std::chrono::duration<double>(clock_type::now() - w0).count();
  for (std::size_t i = 0; i < cs.size(); ++i) r.ops += cs[i]->acked(r.docs[i]);
  r.client_errors = errors.load();
  for (auto& x : cs) x->stop();
  cs.clear();
  // Stay cut off for at least --partition-s.
  std::this_thread::sleep_until(cut_at + std::chrono::seconds(o.partition_s));
  r.partition_s = std::chrono::duration<double>(clock_type::now() - cut_at).count();
  for (int i : {0, 1}) {
    auto lb = by_peer(http_get(cl.at(i).port, "/metrics").second, "weft_replication_lag_batches");
    r.lag_batches_before_heal[cl.at(i).id] = lb.count("c") ? lb["c"] : -1;
  }

  auto c_ops = [&] {
    auto m = http_get(cl.at(c).port, "/metrics").second;
    return std::pair{scalar_metric(m, "weft_replicated_ops_applied_total"),
                     scalar_metric(m, "weft_replicated_duplicate_ops_total")};
  };
  const auto c_ops_before = c_ops();
  pac->heal();
  pbc->heal();
  const auto h0 = clock_type::now();
  const auto h_deadline = h0 + std::chrono::seconds(o.catchup_timeout_s);
  auto since = [&] { return std::chrono::duration<double>(clock_type::now() - h0).count(); };
  while (clock_type::now() < h_deadline) {
    // c's links (c dials a and b), and the senders' view of c.
    for (auto& [peer, v] : by_peer(http_get(cl.at(c).port, "/metrics").second, "weft_replication_link_up"))
      if (v == 1 && !r.link_up_s.count(peer)) {
        r.link_up_s[peer] = since();
        if (r.first_link_up_s < 0) r.first_link_up_s = since();
      }
    int up = 0;
    bool zero = true;
    double behind_sum = 0;
    for (int i : {0, 1}) {
      auto m = http_get(cl.at(i).port, "/metrics").second;
      auto lu = by_peer(m, "weft_replication_link_up");
      auto lb = by_peer(m, "weft_replication_lag_batches");
      if (!(lu.count("c") && lu["c"] == 1)) continue;
      ++up;
      const double behind = lb.count("c") ? lb["c"] : -1;
      behind_sum += std::max(0.0, behind);
      zero = zero && behind == 0;
    }
    r.max_lag_batches_after_heal = std::max(r.max_lag_batches_after_heal, behind_sum);
    if (up == 0 || !zero) r.metric_zero_s = -1;
    if (up > 0 && zero) {
      if (r.metric_zero_s < 0) r.metric_zero_s = since();
      bool same = true;
      for (const auto& d : r.docs) {
        auto ta = http_get(cl.at(a).port, "/api/docs/" + d + "/text");
        auto tc = http_get(cl.at(c).port, "/api/docs/" + d + "/text");
        same = same && ta.first == 200 && tc.first == 200 && ta.second == tc.second;
        if (!same) break;
      }
      if (same) {
        r.caught_up_s = since();
        break;
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  if (r.caught_up_s < 0) {
    r.ok = false;
    r.why = "node c did not catch up in time";
  }
  {
    auto mc = http_get(cl.at(c).port, "/metrics").second;
    r.batches_received_by_c = by_peer(mc, "weft_replication_batches_received_total");
    r.duplicates_at_c = by_peer(mc, "weft_replication_duplicates_total");
    const auto c_ops_after = c_ops();
    r.ops_applied_at_c = c_ops_after.first - c_ops_before.first;
    r.duplicate_ops_at_c = c_ops_after.second - c_ops_before.second;
  }
  return r;
}

// ---- outbox on disk -------------------------------------------------------------------

struct outbox_part {
  std::uint64_t rows = 0, ops = 0, ids = 0, bytes = 0, batch_bytes = 0;
  std::uint64_t undecodable = 0;
};

// Node a's log (read only): per part (steady documents, catch-up documents).
std::map<std::string, outbox_part> read_outbox(const fs::path& db_path, std::string& error) {
  std::map<std::string, outbox_part> parts;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    error = db ? sqlite3_errmsg(db) : "cannot open";
    sqlite3_close(db);
    return parts;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* s = nullptr;
  const char* sql = "SELECT doc, length(batch)+length(path)+length(doc)+length(origin), batch FROM log";
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) {
    error = sqlite3_errmsg(db);
    sqlite3_close(db);
    return parts;
  }
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    std::string doc(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
    auto& p = parts[doc.rfind("catchup-", 0) == 0 ? "catchup" : "steady"];
    ++p.rows;
    p.bytes += static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
    const auto* blob = static_cast<const char*>(sqlite3_column_blob(s, 2));
    const int n = sqlite3_column_bytes(s, 2);
    p.batch_bytes += static_cast<std::uint64_t>(n);
    auto ops = weft::decode_ops(std::string_view(blob ? blob : "", static_cast<std::size_t>(n)));
    if (!ops.ok()) {
      ++p.undecodable;
      continue;
    }
    p.ops += ops.value().size();
    for (const auto& op : ops.value()) p.ids += op.length();
  }
  if (rc != SQLITE_DONE) error = sqlite3_errmsg(db);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return parts;
}

// ---- output ---------------------------------------------------------------------------

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\', o += ch;
    else if (static_cast<unsigned char>(ch) < 0x20) o += fmt::format("\\u{:04x}", ch);
    else o += ch;
  }
  return o;
}

std::string lag_json(const steady_result& r, double& p99_out) {
  std::vector<double> all;
  std::string per_link;
  for (const auto& [link, v] : r.lag_s) {
    std::vector<double> ms;
    for (double x : v) ms.push_back(x * 1000);
    all.insert(all.end(), ms.begin(), ms.end());
    per_link += fmt::format("{}\"{}\":{}", per_link.empty() ? "" : ",", link, dist_json(ms));
  }
  p99_out = percentile(all, 0.99);
  return fmt::format("{{\"samples_ms\":{},\"per_link_ms\":{{{}}}}}", dist_json(all), per_link);
}

std::string cpu_json(const steady_result& r, const std::string& ids) {
  std::string out;
  for (std::size_t i = 0; i < r.cpu.size(); ++i) {
    const auto& c = r.cpu[i];
    out += fmt::format(
        "{}\"{}\":{{\"cpu_s\":{:.3f},\"idle_cpu_ms_per_s\":{:.2f},\"local_keystrokes\":{},"
        "\"us_per_keystroke\":{:.1f},\"us_per_keystroke_net_of_idle\":{:.1f},\"us_per_local_keystroke\":{:.1f},"
        "\"link_batches_received\":{},\"link_duplicates\":{}}}",
        i ? "," : "", ids[i], c.cpu_s, c.idle_ms_per_s, c.local_keystrokes,
        r.keystrokes ? 1e6 * c.cpu_s / static_cast<double>(r.keystrokes) : 0.0,
        r.keystrokes ? 1e6 * (c.cpu_s - c.idle_ms_per_s / 1000 * r.phase_s) / static_cast<double>(r.keystrokes) : 0.0,
        c.local_keystrokes ? 1e6 * c.cpu_s / static_cast<double>(c.local_keystrokes) : 0.0, c.batches_received,
        c.duplicates);
  }
  return "{" + out + "}";
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a write to a closed socket is an error, not an exit
  options o;
  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto num = [&](int& v) {
      if (i + 1 >= argc) return false;
      char* end = nullptr;
      long x = std::strtol(argv[++i], &end, 10);
      if (*end || x < 0 || x > 100000000) return false;
      v = static_cast<int>(x);
      return true;
    };
    bool ok = true;
    if (a == "--help" || a == "-h") {
      std::fputs(usage_text, stdout);
      return 0;
    } else if (a == "--duration") ok = num(o.duration_s) && o.duration_s > 0;
    else if (a == "--delay-ms") ok = num(o.delay_ms);
    else if (a == "--jitter-ms") ok = num(o.jitter_ms) && o.jitter_ms <= o.delay_ms;
    else if (a == "--topology") {
      ok = i + 1 < argc;
      if (ok) o.topology = argv[++i];
      ok = ok && (o.topology == "all" || o.topology == "ring" || o.topology == "star");
    } else if (a == "--writers-per-node") ok = num(o.writers_per_node) && o.writers_per_node > 0;
    else if (a == "--keys-per-s") ok = num(o.keys_per_s) && o.keys_per_s > 0 && o.keys_per_s <= 1000;
    else if (a == "--docs") ok = num(o.docs) && o.docs > 0;
    else if (a == "--observers") ok = num(o.observers);
    else if (a == "--idle-s") ok = num(o.idle_s);
    else if (a == "--catchup-ops") ok = num(o.catchup_ops) && o.catchup_ops > 0;
    else if (a == "--catchup-docs") ok = num(o.catchup_docs) && o.catchup_docs > 0;
    else if (a == "--ops-per-message") ok = num(o.ops_per_message) && o.ops_per_message > 0;
    else if (a == "--window") ok = num(o.window) && o.window > 0;
    else if (a == "--partition-s") ok = num(o.partition_s);
    else if (a == "--catchup-timeout-s") ok = num(o.catchup_timeout_s) && o.catchup_timeout_s > 0;
    else if (a == "--no-baseline") o.baseline = false;
    else if (a == "--no-writers-on-a") o.writers_on_a = false;
    else if (a == "--no-catchup") o.catchup = false;
    else if (a == "--keep") o.keep = true;
    else if (a == "--server-arg") {
      ok = i + 1 < argc;
      if (ok) o.server_args.push_back(argv[++i]);
    }
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "bad or unknown flag near %s\n%s", a.c_str(), usage_text);
      return 2;
    }
  }
  const fs::path root =
      fs::temp_directory_path() / ("weft-replication-bench-" + std::to_string(getpid()));
  fs::remove_all(root);
  const int nodes = 3;
  const std::string ids = "abc";
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "weft-replication-bench: %s (data in %s)\n", why.c_str(), root.c_str());
    return 1;
  };

  // Run 1: writers and observers on every node; then the catch-up on the same cluster.
  std::vector<int> writers_all, writers_a;
  for (int n = 0; n < nodes; ++n)
    for (int w = 0; w < o.writers_per_node; ++w) writers_all.push_back(n), writers_a.push_back(0);
  std::vector<std::pair<int, int>> observers_all, observers_single;
  for (int n = 0; n < nodes; ++n)
    for (int d = 0; d < o.docs; ++d)
      for (int k = 0; k < o.observers; ++k) observers_all.push_back({n, d}), observers_single.push_back({0, d});

  steady_result steady, on_a, single;
  catchup_result cu;
  std::map<std::string, outbox_part> outbox;
  std::string outbox_error;
  std::uintmax_t db_initial = 0, db_final = 0;
  std::uint64_t ids_on_a_total = 0;
  {
    std::fprintf(stderr, "run 1: 3 nodes, writers on every node (%d s)...\n", o.duration_s);
    cluster cl(root / "cluster", nodes, o);
    if (!cl.started()) return fail("a node did not start");
    if (!cl.wait_all_up()) return fail("the links did not come up within 20 s");
    const fs::path db = cl.at(0).dir / "weft.db";
    db_initial = file_size_or_0(db) + file_size_or_0(fs::path(db.string() + "-wal"));
    steady = run_steady(cl, o, writers_all, observers_all, "steady-");
    if (!steady.ok) return fail("run 1: " + steady.why);
    ids_on_a_total = steady.keystrokes;
    if (o.catchup) {
      std::fprintf(stderr, "catch-up: c cut off, %d ops on a, partition >= %d s...\n", o.catchup_ops, o.partition_s);
      cu = run_catchup(cl, o);
      if (!cu.ok) return fail("catch-up: " + cu.why);
      ids_on_a_total += cu.ops;
      outbox = read_outbox(db, outbox_error);
    }
    cl.stop();  // SIGTERM: the WAL is checkpointed into weft.db
    db_final = file_size_or_0(db) + file_size_or_0(fs::path(db.string() + "-wal"));
  }
  if (o.writers_on_a) {
    std::fprintf(stderr, "run 2: 3 nodes, every writer on node a (%d s)...\n", o.duration_s);
    cluster cl(root / "writers-on-a", nodes, o);
    if (!cl.started()) return fail("a node did not start");
    if (!cl.wait_all_up()) return fail("the links did not come up within 20 s");
    on_a = run_steady(cl, o, writers_a, observers_all, "on-a-");
    if (!on_a.ok) return fail("run 2: " + on_a.why);
  }
  if (o.baseline) {
    std::fprintf(stderr, "run 3: one node, no peers (%d s)...\n", o.duration_s);
    cluster cl(root / "single", 1, o);
    if (!cl.started()) return fail("the node did not start");
    single = run_steady(cl, o, writers_a, observers_single, "single-");
    if (!single.ok) return fail("run 3: " + single.why);
  }

  // ---- the JSON object ----
  const double target_lag_ms = o.delay_ms + 10;
  double metric_p99 = 0;
  std::string lag = lag_json(steady, metric_p99);
  std::vector<double> arrival_lag;
  for (double x : steady.cross_ms) arrival_lag.push_back(x - o.delay_ms);
  const double arrival_p99 = percentile(steady.cross_ms, 0.99);

  auto steady_json = [&](const steady_result& r, const std::string& node_ids) {
    return fmt::format(
        "{{\"keystrokes\":{},\"phase_s\":{:.2f},\"deliveries\":{},\"expected_deliveries\":{},\"duplicates\":{},"
        "\"client_errors\":{},\"latency_ms\":{{\"same_node\":{},\"cross_node\":{}}},\"cpu\":{}}}",
        r.keystrokes, r.phase_s, r.deliveries, r.expected_deliveries, r.duplicates, r.remote_errors,
        dist_json(r.same_ms), dist_json(r.cross_ms), cpu_json(r, node_ids));
  };
  auto us_per_key = [](const steady_result& r, int i) {
    return r.keystrokes ? 1e6 * r.cpu[static_cast<std::size_t>(i)].cpu_s / static_cast<double>(r.keystrokes) : 0.0;
  };
  // The same, less the node's idle rate (timers, probes, the /metrics polls) over the phase.
  auto net_us_per_key = [](const steady_result& r, int i) {
    const auto& c = r.cpu[static_cast<std::size_t>(i)];
    return r.keystrokes ? 1e6 * (c.cpu_s - c.idle_ms_per_s / 1000 * r.phase_s) / static_cast<double>(r.keystrokes)
                        : 0.0;
  };
  std::string out = "{\"bench\":\"replication\",";
  out += fmt::format("\"machine\":\"{}\",\"command\":\"{}\",", json_escape(weft::bench::machine_description()),
                     json_escape(command));
  out += fmt::format(
      "\"config\":{{\"nodes\":{},\"topology\":\"{}\",\"delay_ms\":{},\"jitter_ms\":{},\"duration_s\":{},"
      "\"writers_per_node\":{},\"keys_per_s\":{},\"docs\":{},\"observers_per_node_per_doc\":{},"
      "\"server_flags\":\"--threads 2 --max-messages-per-second 100000 --message-burst 100000 (others default: "
      "--commit-window-ms 10)\",\"extra_server_args\":\"{}\",\"metrics_poll_ms\":\"50..150 (uniform)\","
      "\"catchup_ops\":{},\"catchup_docs\":{},\"ops_per_message\":{},\"window\":{},\"partition_s\":{}}},",
      nodes, o.topology, o.delay_ms, o.jitter_ms, o.duration_s, o.writers_per_node, o.keys_per_s, o.docs, o.observers,
      json_escape(fmt::format("{}", fmt::join(o.server_args, " "))), o.catchup_ops, o.catchup_docs, o.ops_per_message, o.window, o.partition_s);
  out += "\"steady\":" + steady_json(steady, ids) + ",";
  out += fmt::format(
      "\"replication_lag\":{{\"gauge\":{},\"from_arrival_minus_delay_ms\":{},\"target_p99_ms\":{},"
      "\"gauge_p99_ms\":{:.2f},\"arrival_p99_ms\":{:.2f},\"gauge_target_met\":{},\"arrival_target_met\":{}}},",
      lag, dist_json(arrival_lag), target_lag_ms, metric_p99, arrival_p99, metric_p99 <= target_lag_ms,
      arrival_p99 <= target_lag_ms);
  if (o.writers_on_a) out += "\"writers_on_a\":" + steady_json(on_a, ids) + ",";
  if (o.baseline) out += "\"single_node\":" + steady_json(single, "a") + ",";
  if (o.baseline) {
    const double base = us_per_key(single, 0);
    double mean_all = 0;
    for (int i = 0; i < nodes; ++i) mean_all += us_per_key(steady, i) / nodes;
    const double on_a_us = o.writers_on_a ? us_per_key(on_a, 0) : 0;
    const double net_base = net_us_per_key(single, 0), net_on_a = o.writers_on_a ? net_us_per_key(on_a, 0) : 0;
    out += fmt::format(
        "\"cpu_per_keystroke\":{{\"baseline_us\":{:.1f},\"cluster_node_mean_us\":{:.1f},"
        "\"cluster_ratio\":{:.2f},\"writers_on_a_node_a_us\":{:.1f},\"writers_on_a_ratio\":{:.2f},"
        "\"net_of_idle\":{{\"baseline_us\":{:.1f},\"writers_on_a_node_a_us\":{:.1f},\"writers_on_a_ratio\":{:.2f}}},"
        "\"target_ratio\":1.5,\"target_met\":{}}},",
        base, mean_all, base > 0 ? mean_all / base : 0, on_a_us, base > 0 ? on_a_us / base : 0, net_base, net_on_a,
        net_base > 0 ? net_on_a / net_base : 0, o.writers_on_a && base > 0 && on_a_us / base <= 1.5);
  }
  if (o.catchup) {
    auto rate = [&](double s) { return s > 0 ? static_cast<double>(cu.ops) / s : 0.0; };
    const double from_link = cu.caught_up_s - std::max(0.0, cu.first_link_up_s);
    auto obj = [](const std::map<std::string, double>& m) {
      std::string o;
      for (const auto& [k, v] : m) o += fmt::format("{}\"{}\":{:.3f}", o.empty() ? "" : ",", k, v);
      return "{" + o + "}";
    };
    out += fmt::format(
        "\"catchup\":{{\"ops\":{},\"messages\":{},\"client_errors\":{},\"write_s\":{:.2f},\"partition_s\":{:.2f},"
        "\"lag_batches_before_heal\":{},\"max_lag_batches_after_heal\":{},\"batches_received_by_c\":{},\"duplicates_at_c\":{},\"replicated_ops_applied_at_c\":{},\"replicated_duplicate_ops_at_c\":{},"
        "\"heal_to_link_up_s\":{},\"heal_to_first_link_up_s\":{:.3f},"
        "\"heal_to_lag_batches_zero_s\":{:.3f},\"heal_to_caught_up_s\":{:.3f},\"ops_per_s_from_heal\":{:.0f},"
        "\"ops_per_s_from_link_up\":{:.0f},\"target_ops_per_s\":100000,\"target_met_from_heal\":{},"
        "\"target_met_from_link_up\":{}}},",
        cu.ops, cu.messages, cu.client_errors, cu.write_s, cu.partition_s, obj(cu.lag_batches_before_heal),
        cu.max_lag_batches_after_heal, obj(cu.batches_received_by_c), obj(cu.duplicates_at_c), cu.ops_applied_at_c, cu.duplicate_ops_at_c, obj(cu.link_up_s), cu.first_link_up_s,
        cu.metric_zero_s, cu.caught_up_s, rate(cu.caught_up_s),
        rate(from_link), rate(cu.caught_up_s) >= 100000, rate(from_link) >= 100000);
    std::string parts;
    outbox_part sum;
    for (const auto& [name, p] : outbox) {
      parts += fmt::format(
          "\"{}\":{{\"rows\":{},\"ops\":{},\"ids\":{},\"bytes\":{},\"batch_bytes\":{},\"undecodable\":{},"
          "\"bytes_per_id\":{:.2f},\"bytes_per_row\":{:.1f}}},",
          name, p.rows, p.ops, p.ids, p.bytes, p.batch_bytes, p.undecodable,
          p.ids ? static_cast<double>(p.bytes) / static_cast<double>(p.ids) : 0.0,
          p.rows ? static_cast<double>(p.bytes) / static_cast<double>(p.rows) : 0.0);
      sum.rows += p.rows, sum.ids += p.ids, sum.bytes += p.bytes;
    }
    out += fmt::format(
        "\"outbox_node_a\":{{{}\"error\":\"{}\",\"bytes_per_op\":{:.2f},\"db_bytes_initial\":{},\"db_bytes_final\":{},"
        "\"ops_stored\":{},\"db_growth_bytes_per_op\":{:.2f}}},",
        parts, json_escape(outbox_error),
        sum.ids ? static_cast<double>(sum.bytes) / static_cast<double>(sum.ids) : 0.0, db_initial, db_final,
        ids_on_a_total,
        ids_on_a_total ? static_cast<double>(db_final - std::min(db_final, db_initial)) /
                             static_cast<double>(ids_on_a_total)
                       : 0.0);
  }
  out.back() = '}';
  std::printf("%s\n", out.c_str());

  // ---- the summary ----
  std::fprintf(stderr, "\nmachine: %s\n", weft::bench::machine_description().c_str());
  std::fprintf(stderr, "edit-to-screen, cross-node: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%zu deliveries; link delay %d±%d ms)\n",
               percentile(steady.cross_ms, 0.5), percentile(steady.cross_ms, 0.99),
               steady.cross_ms.empty() ? 0 : *std::max_element(steady.cross_ms.begin(), steady.cross_ms.end()),
               steady.cross_ms.size(), o.delay_ms, o.jitter_ms);
  std::fprintf(stderr, "edit-to-screen, same node:  p50 %.1f ms, p99 %.1f ms (%zu deliveries)\n",
               percentile(steady.same_ms, 0.5), percentile(steady.same_ms, 0.99), steady.same_ms.size());
  std::fprintf(stderr, "replication lag p99 (target <= %.0f ms): gauge %.1f ms %s; from arrivals %.1f ms %s\n",
               target_lag_ms, metric_p99, metric_p99 <= target_lag_ms ? "MET" : "MISSED", arrival_p99,
               arrival_p99 <= target_lag_ms ? "MET" : "MISSED");
  if (o.baseline) {
    const double base = us_per_key(single, 0);
    std::fprintf(stderr, "node CPU per keystroke: baseline %.1f µs", base);
    if (o.writers_on_a)
      std::fprintf(stderr, ", node a with every writer %.1f µs (%.2fx, target <= 1.5x: %s)", us_per_key(on_a, 0),
                   base > 0 ? us_per_key(on_a, 0) / base : 0, base > 0 && us_per_key(on_a, 0) / base <= 1.5 ? "MET" : "MISSED");
    std::fprintf(stderr, "; writers everywhere: a %.1f, b %.1f, c %.1f µs\n", us_per_key(steady, 0),
                 us_per_key(steady, 1), us_per_key(steady, 2));
  }
  if (o.catchup) {
    const double from_link = cu.caught_up_s - std::max(0.0, cu.first_link_up_s);
    std::fprintf(stderr,
                 "catch-up: %llu ops in %.2f s from heal (%.0f ops/s, target >= 100000: %s); link up after %.2f s, "
                 "then %.2f s (%.0f ops/s: %s)\n",
                 static_cast<unsigned long long>(cu.ops), cu.caught_up_s,
                 cu.caught_up_s > 0 ? cu.ops / cu.caught_up_s : 0, cu.caught_up_s > 0 && cu.ops / cu.caught_up_s >= 100000 ? "MET" : "MISSED",
                 cu.first_link_up_s, from_link, from_link > 0 ? cu.ops / from_link : 0,
                 from_link > 0 && cu.ops / from_link >= 100000 ? "MET" : "MISSED");
    outbox_part sum;
    for (const auto& [name, p] : outbox) sum.ids += p.ids, sum.bytes += p.bytes;
    std::fprintf(stderr, "outbox on node a: %.1f bytes/op; database file growth %.1f bytes/op\n",
                 sum.ids ? static_cast<double>(sum.bytes) / static_cast<double>(sum.ids) : 0.0,
                 ids_on_a_total ? static_cast<double>(db_final - std::min(db_final, db_initial)) / static_cast<double>(ids_on_a_total) : 0.0);
  }
  if (!o.keep) fs::remove_all(root);
  return 0;
}
