#include "swarm.h"

#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>

#include "weft/client.h"

namespace weft::load {

namespace {

using clock_type = std::chrono::steady_clock;

struct id_hash {
  std::size_t operator()(const op_id& id) const noexcept { return std::hash<std::uint64_t>()(id.replica * 1000003u ^ id.counter); }
};

// Edit -> applied by every other bot of the document.
class latency_tracker {
 public:
  void sent(op_id id, int receivers) {
    if (receivers <= 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    pending_[id] = entry{clock_type::now(), receivers};
  }
  void received(op_id id) {
    auto now = clock_type::now();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    if (--it->second.remaining == 0) {
      samples_.push_back(std::chrono::duration<double, std::milli>(now - it->second.sent).count());
      pending_.erase(it);
    }
  }
  std::vector<double> samples() {
    std::lock_guard<std::mutex> lock(mu_);
    return samples_;
  }

 private:
  struct entry {
    clock_type::time_point sent;
    int remaining;
  };
  std::mutex mu_;
  std::unordered_map<op_id, entry, id_hash> pending_;
  std::vector<double> samples_;
};

struct bot {
  std::unique_ptr<client> c;
  std::string doc;
  std::string name;
  // Touched only inside edit() callbacks (the client's executor):
  std::mt19937_64 rng;
  std::uint64_t cursor = 0;
  int since_presence = 0;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// utime + stime of a process, in seconds; -1 when unreadable.
double process_cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A /proc/PID/status field in MiB (VmRSS, VmHWM); -1 when unreadable.
double status_mib(int pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  return -1;
}

double self_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string http_get_text(const std::string& host, std::uint16_t port, const std::string& target) {
  namespace net = boost::asio;
  namespace http = boost::beast::http;
  net::io_context io;
  boost::beast::tcp_stream s(io);
  net::ip::tcp::resolver r(io);
  s.connect(r.resolve(host, std::to_string(port)));
  http::request<http::string_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host);
  req.keep_alive(false);
  http::write(s, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  return res.body();
}

template <class T>
T on_client(client& c, const std::string& doc, std::function<T(const document&)> f) {
  std::promise<T> p;
  auto fut = p.get_future();
  c.read(doc, [&p, &f](const document& d) { p.set_value(f(d)); });
  return fut.get();
}

const char* const words[] = {"the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dogs ", "and ",
                             "then ", "some ", "more ", "text ", "here ", "é ", "中文 ", "😀 "};

// One human-like action at the bot's cursor; the ops go to `out`.
void act(bot& b, document& d, std::vector<operation>& out, bool* moved) {
  std::uint64_t len = d.length();
  b.cursor = std::min(b.cursor, len);
  std::uint64_t r = b.rng() % 100;
  *moved = false;
  if (r < 80 || len == 0) {
    static const char letters[] = "etaoinshrdlucmfwypvbgkjqxz      ,.";
    std::string ch(1, letters[b.rng() % (sizeof letters - 1)]);
    if (b.rng() % 40 == 0) ch = "\n";
    auto op = d.insert(b.cursor, ch);
    if (op.ok()) {
      out.push_back(std::move(op.value()));
      ++b.cursor;
    }
  } else if (r < 90) {
    if (b.cursor > 0) {
      auto op = d.erase(b.cursor - 1, 1);  // backspace
      if (op.ok()) {
        out.push_back(std::move(op.value()));
        --b.cursor;
      }
    }
  } else if (r < 93) {
    std::string paste;
    for (std::uint64_t k = 0, n = 2 + b.rng() % 8; k < n; ++k) paste += words[b.rng() % (sizeof words / sizeof *words)];
    auto op = d.insert(b.cursor, paste);
    if (op.ok()) {
      b.cursor += op.value().length();
      out.push_back(std::move(op.value()));
    }
  } else {
    b.cursor = b.rng() % (len + 1);  // click elsewhere
    *moved = true;
  }
}

}  // namespace

double process_rss_mib(int pid) { return status_mib(pid, "VmRSS"); }

swarm_report run_swarm(const swarm_options& o) {
  swarm_report rep;
  const auto run_start = clock_type::now();
  const double run_cpu0 = self_cpu_seconds();
  network net(std::max(1u, o.threads));
  latency_tracker lat;
  std::atomic<std::uint64_t> keystrokes{0}, delivered{0}, errors{0}, disconnects{0};
  std::atomic<int> synced{0}, resynced{0};
  const int total = o.docs * o.bots_per_doc;
  std::vector<std::unique_ptr<bot>> bots;
  bots.reserve(static_cast<std::size_t>(total));
  std::mt19937_64 seed_rng(o.seed);
  for (int d = 0; d < o.docs; ++d) {
    for (int i = 0; i < o.bots_per_doc; ++i) {
      auto b = std::make_unique<bot>();
      b->doc = o.doc_prefix + "-" + std::to_string(o.seed) + "-" + std::to_string(d);
      b->name = "bot" + std::to_string(d) + "." + std::to_string(i);
      b->rng.seed(seed_rng());
      client_options co;
      co.host = o.host;
      co.port = o.port;
      co.replica = (seed_rng() & max_replica_id) | 1;
      co.name = b->name;
      client_handlers h;
      auto syncs = std::make_shared<std::atomic<int>>(0);
      h.on_synced = [&synced, &resynced, syncs] {
        int n = ++*syncs;
        if (n == 1) ++synced;
        if (n == 2) ++resynced;
      };
      h.on_remote = [&lat, &delivered](const std::string&, const std::vector<operation>& ops, const std::vector<text_change>&) {
        for (const auto& op : ops) lat.received(op.id);
        delivered += ops.size();
      };
      h.on_error = [&errors, name = b->name](const std::string& code, const std::string& message) {
        ++errors;
        fmt::print(stderr, "{}: server error {}: {}\n", name, code, message);
      };
      h.on_state = [&disconnects](connection_state s) {
        if (s == connection_state::offline) ++disconnects;
      };
      b->c = std::make_unique<client>(net, co, h);
      b->c->open(b->doc);
      bots.push_back(std::move(b));
    }
  }
  rep.connections = total;
  if (o.server_pid) rep.server_rss_before_mib = status_mib(o.server_pid, "VmRSS");
  // Connect, spread over the ramp.
  auto t0 = clock_type::now();
  for (int i = 0; i < total; ++i) {
    auto at = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.ramp_s * i / std::max(1, total)));
    std::this_thread::sleep_until(at);
    bots[static_cast<std::size_t>(i)]->c->start();
  }
  auto sync_deadline = clock_type::now() + std::chrono::seconds(30) + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.ramp_s));
  while (synced.load() < total && clock_type::now() < sync_deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (synced.load() < total) fmt::print(stderr, "warning: only {} of {} bots synced\n", synced.load(), total);
  if (o.server_pid) rep.server_rss_mib = status_mib(o.server_pid, "VmRSS");

  // Typing.
  double server_cpu0 = o.server_pid ? process_cpu_seconds(o.server_pid) : 0;
  auto start = clock_type::now();
  auto end = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.idle ? 0 : o.duration_s));
  using slot = std::pair<clock_type::time_point, std::size_t>;
  std::priority_queue<slot, std::vector<slot>, std::greater<>> schedule;
  std::mt19937_64 timing(o.seed * 7919);
  std::exponential_distribution<double> gap(std::max(0.001, o.rate));
  auto next_after = [&](clock_type::time_point t) {
    return t + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(gap(timing)));
  };
  if (!o.idle)
    for (std::size_t i = 0; i < bots.size(); ++i) schedule.push({next_after(start), i});
  auto next_progress = start + std::chrono::seconds(1);
  while (!schedule.empty()) {
    auto [when, i] = schedule.top();
    if (when >= end) break;
    schedule.pop();
    std::this_thread::sleep_until(when);
    bot& b = *bots[i];
    const int receivers = o.bots_per_doc - 1;
    b.c->edit(b.doc, [&b, &lat, &keystrokes, receivers](document& d, std::vector<operation>& out) {
      bool moved = false;
      act(b, d, out, &moved);
      for (const auto& op : out) lat.sent(op.id, receivers);
      if (!out.empty()) ++keystrokes;
      if (moved || ++b.since_presence >= 10) {
        b.since_presence = 0;
        b.c->set_presence(b.doc, fmt::format(R"({{"name":"{}","cursor":{}}})", b.name, b.cursor));
      }
    });
    schedule.push({next_after(when), i});
    if (o.progress && clock_type::now() >= next_progress) {
      next_progress += std::chrono::seconds(1);
      auto s = lat.samples();
      fmt::print(stderr, "\r{:5.1f}s  keys {:7}  delivered {:8}  p50 {:6.2f} ms  p99 {:6.2f} ms  errors {}  disconnects {}   ",
                 std::chrono::duration<double>(clock_type::now() - start).count(), keystrokes.load(), delivered.load(),
                 percentile(s, 0.5), percentile(s, 0.99), errors.load(), disconnects.load());
    }
  }
  if (!o.idle) std::this_thread::sleep_until(end);
  if (o.storm) {
    // Every connection drops at once (as when a load balancer restarts); all
    // reconnect with backoff and jitter, resync, and keep typing.
    auto storm_start = clock_type::now();
    for (auto& b : bots) b->c->drop_connection();
    auto storm_deadline = storm_start + std::chrono::seconds(60);
    while (resynced.load() < total && clock_type::now() < storm_deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    rep.storm_resync_s = std::chrono::duration<double>(clock_type::now() - storm_start).count();
    if (resynced.load() < total) fmt::print(stderr, "warning: only {} of {} bots resynced after the storm\n", resynced.load(), total);
    if (!o.idle)
      for (int round = 0; round < 3; ++round)
        for (auto& b : bots) {
          bot& x = *b;
          x.c->edit(x.doc, [&x, &keystrokes](document& d, std::vector<operation>& out) {
            bool moved = false;
            act(x, d, out, &moved);
            if (!out.empty()) ++keystrokes;
          });
        }
  }
  rep.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  double server_cpu = o.server_pid ? process_cpu_seconds(o.server_pid) - server_cpu0 : 0;
  if (o.progress) fmt::print(stderr, "\n");

  // Quiet period: every replica of a document equal, and equal to the server.
  auto quiet_end = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.quiet_s));
  std::string detail;
  bool ok = false;
  while (true) {
    detail.clear();
    ok = true;
    for (int d = 0; d < o.docs && ok; ++d) {
      const bot& first = *bots[static_cast<std::size_t>(d * o.bots_per_doc)];
      std::string text = on_client<std::string>(*first.c, first.doc, [](const document& x) { return x.text(); });
      for (int i = 1; i < o.bots_per_doc && ok; ++i) {
        const bot& other = *bots[static_cast<std::size_t>(d * o.bots_per_doc + i)];
        if (on_client<std::string>(*other.c, other.doc, [](const document& x) { return x.text(); }) != text) {
          ok = false;
          detail = fmt::format("{}: {} and {} differ", first.doc, first.name, other.name);
        }
      }
      if (ok) {
        std::string server_text;
        try {
          server_text = http_get_text(o.host, o.port, "/api/docs/" + first.doc + "/text");
        } catch (const std::exception& e) {
          server_text = std::string("<") + e.what() + ">";
        }
        if (server_text != text) {
          ok = false;
          detail = fmt::format("{}: the server's text differs from the bots' ({} vs {} bytes)", first.doc,
                               server_text.size(), text.size());
        }
      }
    }
    if (ok || clock_type::now() >= quiet_end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  rep.converged = ok;
  rep.convergence_detail = detail;
  auto samples = lat.samples();
  rep.latency_samples = samples.size();
  rep.latency_p50_ms = percentile(samples, 0.50);
  rep.latency_p95_ms = percentile(samples, 0.95);
  rep.latency_p99_ms = percentile(samples, 0.99);
  rep.latency_max_ms = samples.empty() ? 0 : *std::max_element(samples.begin(), samples.end());
  rep.keystrokes = keystrokes.load();
  rep.ops_delivered = delivered.load();
  rep.errors = errors.load();
  rep.disconnects = disconnects.load();
  // Over the whole run (connecting included), so a saturated load generator shows.
  double wall = std::chrono::duration<double>(clock_type::now() - run_start).count();
  rep.bots_cpu_percent = wall > 0 ? 100.0 * (self_cpu_seconds() - run_cpu0) / wall : 0;
  if (o.server_pid) {
    rep.server_cpu_us_per_keystroke = rep.keystrokes ? server_cpu * 1e6 / static_cast<double>(rep.keystrokes) : 0;
    rep.server_peak_rss_mib = status_mib(o.server_pid, "VmHWM");
  }
  for (auto& b : bots) b->c->stop();
  bots.clear();  // clients first, then the network
  return rep;
}

std::string to_json(const swarm_options& o, const swarm_report& r) {
  return fmt::format(
      R"({{"docs":{},"bots_per_doc":{},"rate":{},"duration_s":{},"idle":{},"connections":{},)"
      R"("keystrokes":{},"ops_delivered":{},"delivered_per_s":{:.1f},"errors":{},"disconnects":{},)"
      R"("latency_ms":{{"p50":{:.3f},"p95":{:.3f},"p99":{:.3f},"max":{:.3f},"samples":{}}},)"
      R"("bots_cpu_percent":{:.1f},"server_cpu_us_per_keystroke":{:.1f},"server_rss_mib":{:.1f},)"
      R"("server_peak_rss_mib":{:.1f},"server_rss_before_mib":{:.1f},"storm_resync_s":{:.3f},"converged":{},"detail":"{}"}})",
      o.docs, o.bots_per_doc, o.rate, o.duration_s, o.idle, r.connections, r.keystrokes, r.ops_delivered,
      r.seconds > 0 ? static_cast<double>(r.ops_delivered) / r.seconds : 0, r.errors, r.disconnects, r.latency_p50_ms,
      r.latency_p95_ms, r.latency_p99_ms, r.latency_max_ms, r.latency_samples, r.bots_cpu_percent,
      r.server_cpu_us_per_keystroke, r.server_rss_mib, r.server_peak_rss_mib, r.server_rss_before_mib, r.storm_resync_s,
      r.converged, r.convergence_detail);
}

std::string summary(const swarm_options& o, const swarm_report& r) {
  return fmt::format(
      "{} docs x {} bots x {} keys/s for {:.1f} s: {} keystrokes, {} ops delivered ({:.0f}/s)\n"
      "latency edit -> every other bot: p50 {:.2f} ms, p95 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms ({} samples)\n"
      "errors {}, disconnects {}, bots CPU {:.0f}% of a core{}{}\n"
      "convergence: {}\n",
      o.docs, o.bots_per_doc, o.rate, r.seconds, r.keystrokes, r.ops_delivered,
      r.seconds > 0 ? static_cast<double>(r.ops_delivered) / r.seconds : 0, r.latency_p50_ms, r.latency_p95_ms,
      r.latency_p99_ms, r.latency_max_ms, r.latency_samples, r.errors, r.disconnects, r.bots_cpu_percent,
      o.server_pid ? fmt::format(", server {:.1f} us CPU per keystroke, RSS {:.1f} MiB (peak {:.1f} MiB)",
                                 r.server_cpu_us_per_keystroke, r.server_rss_mib, r.server_peak_rss_mib)
                   : std::string(),
      o.storm ? fmt::format(", reconnect storm: all {} resynced in {:.2f} s", r.connections, r.storm_resync_s) : std::string(),
      r.converged ? "every replica equals the server's text" : "FAILED: " + r.convergence_detail);
}

}  // namespace weft::load

namespace weft::load {

std::string markdown_row(const std::string& label, const swarm_options& o, const swarm_report& r) {
  double per_conn_kib = r.connections && r.server_rss_mib > 0
                            ? (r.server_rss_mib - r.server_rss_before_mib) * 1024.0 / r.connections
                            : 0;
  return fmt::format("| {} | {} | {:.0f} | {} | {:.2f} / {:.2f} / {:.2f} / {:.2f} | {:.1f} | {:.1f} MiB ({:.2f} KiB/conn) | {} | {} / {} | {:.0f}% | {} |\n",
                     label, r.connections, r.seconds, r.keystrokes, r.latency_p50_ms, r.latency_p95_ms, r.latency_p99_ms,
                     r.latency_max_ms, r.server_cpu_us_per_keystroke, r.server_peak_rss_mib, per_conn_kib,
                     o.storm ? fmt::format("{:.2f} s", r.storm_resync_s) : std::string("-"), r.errors, r.disconnects,
                     r.bots_cpu_percent, r.converged ? "yes" : "**NO**: " + r.convergence_detail);
}

}  // namespace weft::load
