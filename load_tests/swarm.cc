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
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "weft/client.h"

namespace weft::load {

namespace {

using clock_type = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

double ms_between(clock_type::time_point from, clock_type::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// Latency of every op: from its keystroke's scheduled time until every other
// bot of the document has applied all of its ids.
//
// Ops are matched by ids, not by op: an op of k ids uses (replica, counter ..
// counter+k-1), and what a receiver gets may carry those ids split (the
// server rebroadcasts what it applied, trimmed to the part it lacked),
// merged with neighbours (a sync answer after a reconnect), or twice. A
// replica's ids are applied in counter order (version vectors rely on it), so
// per receiver and sender the tracker keeps the contiguous prefix of the
// sender's counters received so far (ids that arrive ahead of a gap wait
// until it closes); an op counts as applied by a receiver once that prefix
// reaches its last id.
//
// With several nodes, each delivery is also filed by whether the sender and
// the receiver were connected to the same node when it arrived (across nodes
// it went through replication; after a failover the sender's current node counts).
class latency_tracker {
 public:
  latency_tracker(int docs, int per_doc)
      : per_doc_(per_doc), node_(std::make_unique<std::atomic<int>[]>(static_cast<std::size_t>(docs * per_doc))) {
    for (int d = 0; d < docs; ++d) docs_.push_back(std::make_unique<doc_state>());
  }
  // Before any traffic: which bot (global index) uses replica `r`.
  void add_replica(replica_id r, int bot) { who_[r] = bot; }
  // Bot `bot` is (now) connected to URL `url`.
  void set_node(int bot, int url) { node_[static_cast<std::size_t>(bot)].store(url, std::memory_order_relaxed); }

  // Bot `sender`'s keystroke scheduled at `scheduled` ran at `ran` (on its
  // executor) and made `ops` (possibly none: a click elsewhere).
  void made(int sender, const std::vector<operation>& ops, clock_type::time_point scheduled, clock_type::time_point ran) {
    doc_state& d = *docs_[static_cast<std::size_t>(sender / per_doc_)];
    std::lock_guard<std::mutex> lock(d.mu);
    d.lags.push_back(std::max(0.0, ms_between(scheduled, ran)));
    if (per_doc_ < 2) return;  // nobody to receive it
    if (d.sent.empty()) {
      d.sent.resize(static_cast<std::size_t>(per_doc_));
      d.links.resize(static_cast<std::size_t>(per_doc_) * static_cast<std::size_t>(per_doc_));
    }
    auto& mine = d.sent[static_cast<std::size_t>(sender % per_doc_)];
    for (const auto& op : ops) {
      const std::uint64_t n = op.length();
      if (n == 0) continue;
      mine.push_back(pending_op{scheduled, op.id.counter + n - 1, per_doc_ - 1});
      ++d.ops;
    }
  }

  // Bot `receiver` applied `ops` (its on_remote handler, at `now`).
  void received(int receiver, const std::vector<operation>& ops, clock_type::time_point now) {
    doc_state& d = *docs_[static_cast<std::size_t>(receiver / per_doc_)];
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.sent.empty()) return;
    for (const auto& op : ops) {
      auto w = who_.find(op.id.replica);
      const std::uint64_t n = op.length();
      if (w == who_.end() || n == 0) continue;
      const int sender = w->second;
      if (sender == receiver || sender / per_doc_ != receiver / per_doc_) continue;
      const auto s = static_cast<std::size_t>(sender % per_doc_);
      link& l = d.links[static_cast<std::size_t>(receiver % per_doc_) * static_cast<std::size_t>(per_doc_) + s];
      const std::uint64_t first = op.id.counter, last = op.id.counter + n - 1;
      if (first > l.prefix + 1) {  // ahead of a gap: wait for it to close
        auto& e = l.ahead[first];
        e = std::max(e, last);
        continue;
      }
      l.prefix = std::max(l.prefix, last);
      while (!l.ahead.empty() && l.ahead.begin()->first <= l.prefix + 1) {
        l.prefix = std::max(l.prefix, l.ahead.begin()->second);
        l.ahead.erase(l.ahead.begin());
      }
      auto& theirs = d.sent[s];
      while (l.credited < theirs.size() && theirs[l.credited].last <= l.prefix) {
        pending_op& p = theirs[l.credited++];
        const double ms = ms_between(p.scheduled, now);
        d.delivery.push_back(ms);
        const bool same = node_[static_cast<std::size_t>(sender)].load(std::memory_order_relaxed) ==
                          node_[static_cast<std::size_t>(receiver)].load(std::memory_order_relaxed);
        (same ? d.delivery_same : d.delivery_across).push_back(ms);
        if (--p.remaining == 0) d.samples.push_back(ms);
      }
    }
  }

  struct totals {
    std::vector<double> samples, delivery, lags;  // filled by collect(true) only
    std::vector<double> delivery_same, delivery_across;  // the deliveries by node (collect(true) only)
    std::uint64_t ops = 0, complete = 0;
    std::uint64_t incomplete() const { return ops - complete; }
  };
  totals collect(bool with_samples = true) {
    totals t;
    for (auto& dp : docs_) {
      doc_state& d = *dp;
      std::lock_guard<std::mutex> lock(d.mu);
      t.ops += d.ops;
      t.complete += d.samples.size();
      if (with_samples) {
        t.samples.insert(t.samples.end(), d.samples.begin(), d.samples.end());
        t.delivery.insert(t.delivery.end(), d.delivery.begin(), d.delivery.end());
        t.lags.insert(t.lags.end(), d.lags.begin(), d.lags.end());
        t.delivery_same.insert(t.delivery_same.end(), d.delivery_same.begin(), d.delivery_same.end());
        t.delivery_across.insert(t.delivery_across.end(), d.delivery_across.begin(), d.delivery_across.end());
      }
    }
    return t;
  }

 private:
  struct pending_op {
    clock_type::time_point scheduled;
    std::uint64_t last;  // the op's last counter
    int remaining;       // receivers yet to apply it
  };
  struct link {  // one receiver, one sender
    std::uint64_t prefix = 0;                  // every counter 1..prefix received
    std::map<std::uint64_t, std::uint64_t> ahead;  // received past a gap: first -> last
    std::size_t credited = 0;                  // sender's ops counted as applied here
  };
  struct doc_state {
    std::mutex mu;
    std::vector<std::vector<pending_op>> sent;  // per sender (index in the document), in counter order
    std::vector<link> links;                    // receiver * per_doc + sender
    std::vector<double> samples, delivery, lags;
    std::vector<double> delivery_same, delivery_across;
    std::uint64_t ops = 0;
  };
  int per_doc_;
  std::unique_ptr<std::atomic<int>[]> node_;  // per bot: index of the URL it is connected to
  std::vector<std::unique_ptr<doc_state>> docs_;
  std::unordered_map<replica_id, int> who_;
};

struct bot {
  // The client, replaced on failover by one on the next URL (same replica id,
  // same document state). Guarded by mu: whoever posts to or reads through
  // `c` holds it, and the failover swaps it under it.
  std::mutex mu;
  std::unique_ptr<client> c;
  std::size_t url = 0;  // index in swarm_options::urls (guarded by mu)
  int index = 0;
  std::string doc;
  std::string name;
  client_options options;    // of the first client (host and port change on failover)
  client_handlers handlers;  // shared by its clients
  // Set by the client's state handler (its executor), read by the failover thread:
  std::atomic<bool> connected{false};  // since the last syncing state, no offline yet
  std::atomic<int> failed{0};          // connection attempts failed in a row
  std::atomic<bool> wants_failover{false};
  std::atomic<int> syncs{0};           // sync completions, across its clients
  // Touched only inside edit() callbacks (the executor of the current client;
  // a failover destroys the old client, waiting for its executor, before the
  // new one runs anything):
  std::mt19937_64 rng;
  std::uint64_t cursor = 0;
  int since_presence = 0;
};

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

// GET http://host:port/target. Throws when the server cannot be reached
// (connection refused, timeout); otherwise returns the status and body.
struct http_answer {
  unsigned status = 0;
  std::string body;
};
http_answer http_get(const std::string& host, std::uint16_t port, const std::string& target) {
  namespace net = boost::asio;
  namespace http = boost::beast::http;
  net::io_context io;
  boost::beast::tcp_stream s(io);
  net::ip::tcp::resolver r(io);
  // A node that hangs must not hang the convergence check (the timeout
  // applies to the asynchronous operations only: run them on `io`).
  s.expires_after(std::chrono::seconds(5));
  boost::beast::error_code ec;
  auto endpoints = r.resolve(host, std::to_string(port), ec);
  if (ec) throw std::runtime_error(ec.message());
  s.async_connect(endpoints, [&ec](boost::beast::error_code e, const net::ip::tcp::endpoint&) { ec = e; });
  io.run();
  if (ec) throw std::runtime_error(ec.message());
  io.restart();
  http::request<http::string_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host);
  req.keep_alive(false);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::async_write(s, req, [&](boost::beast::error_code e, std::size_t) {
    ec = e;
    if (!e) http::async_read(s, buf, res, [&ec](boost::beast::error_code e2, std::size_t) { ec = e2; });
  });
  io.run();
  if (ec) throw std::runtime_error(ec.message());
  return {res.result_int(), res.body()};
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

std::string server_url::to_string() const { return fmt::format("ws://{}:{}/", host, port); }

bool parse_server_url(const std::string& text, server_url& out) {
  std::string rest = text;
  if (auto p = rest.find("://"); p != std::string::npos) {
    const std::string scheme = rest.substr(0, p);
    if (scheme != "ws" && scheme != "http") return false;  // wss: weft::client speaks plain WebSocket only
    rest = rest.substr(p + 3);
  }
  rest = rest.substr(0, rest.find('/'));
  server_url u;
  const auto colon = rest.rfind(':');
  u.host = rest.substr(0, colon);
  if (u.host.size() >= 2 && u.host.front() == '[' && u.host.back() == ']') u.host = u.host.substr(1, u.host.size() - 2);
  if (u.host.empty()) return false;
  if (colon != std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || end != port.data() + port.size() || v == 0 || v > 65535) return false;
    u.port = static_cast<std::uint16_t>(v);
  }
  out = u;
  return true;
}

swarm_report run_swarm(const swarm_options& o) {
  swarm_report rep;
  const auto run_start = clock_type::now();
  const double run_cpu0 = self_cpu_seconds();
  const std::vector<server_url> urls = o.urls.empty() ? std::vector<server_url>{server_url{}} : o.urls;
  const bool several = urls.size() > 1;
  network net(std::max(1u, o.threads));
  const int total = o.docs * o.bots_per_doc;
  latency_tracker lat(o.docs, o.bots_per_doc);
  std::atomic<std::uint64_t> keystrokes{0}, delivered{0}, errors{0}, disconnects{0}, failed_connects{0}, failovers{0};
  std::atomic<int> synced{0};
  std::vector<std::unique_ptr<bot>> bots;
  bots.reserve(static_cast<std::size_t>(total));
  std::mt19937_64 seed_rng(o.seed);
  std::unordered_map<replica_id, int> replicas;
  rep.urls.resize(urls.size());
  for (std::size_t u = 0; u < urls.size(); ++u) rep.urls[u].url = urls[u].to_string();
  for (int d = 0; d < o.docs; ++d) {
    for (int i = 0; i < o.bots_per_doc; ++i) {
      const int index = d * o.bots_per_doc + i;
      auto b = std::make_unique<bot>();
      bot* bp = b.get();
      b->index = index;
      b->doc = o.doc_prefix + "-" + std::to_string(o.seed) + "-" + std::to_string(d);
      b->name = "bot" + std::to_string(d) + "." + std::to_string(i);
      b->rng.seed(seed_rng());
      // Round robin over the nodes, shifted per document: every document
      // has bots on min(bots_per_doc, nodes) nodes.
      b->url = static_cast<std::size_t>(d + i) % urls.size();
      ++rep.urls[b->url].bots;
      lat.set_node(index, static_cast<int>(b->url));
      client_options co;
      co.host = urls[b->url].host;
      co.port = urls[b->url].port;
      do co.replica = (seed_rng() & max_replica_id) | 1;
      while (replicas.count(co.replica));  // ops are told apart by replica id
      replicas.emplace(co.replica, index);
      lat.add_replica(co.replica, index);
      co.name = b->name;
      co.binary = !o.json_frames;
      client_handlers h;
      h.on_synced = [&synced, bp] {
        if (++bp->syncs == 1) ++synced;
      };
      h.on_remote = [&lat, &delivered, index](const std::string&, const std::vector<operation>& ops, const std::vector<text_change>&) {
        lat.received(index, ops, clock_type::now());
        delivered += ops.size();
      };
      h.on_error = [&errors, name = b->name](const std::string& code, const std::string& message) {
        ++errors;
        fmt::print(stderr, "{}: server error {}: {}\n", name, code, message);
      };
      // An established connection lost counts as a disconnect; attempts
      // that fail after it (or before the first) as failed connects, and
      // o.failover_attempts of them in a row ask for a failover.
      h.on_state = [&disconnects, &failed_connects, bp, several, limit = std::max(1, o.failover_attempts)](connection_state s) {
        if (s == connection_state::syncing || s == connection_state::online) {
          bp->connected = true;
          bp->failed = 0;
        } else if (s == connection_state::offline) {
          if (bp->connected.exchange(false)) {
            ++disconnects;
          } else {
            ++failed_connects;
            if (several && ++bp->failed >= limit) bp->wants_failover = true;
          }
        }
      };
      b->options = co;
      b->handlers = h;
      b->c = std::make_unique<client>(net, co, h);
      b->c->open(b->doc);
      bots.push_back(std::move(b));
    }
  }
  rep.connections = total;

  // Failover: a new client on the next URL with the bot's replica (same id,
  // same document state, its own edits included). The old client's queued
  // work (the bot's edits) runs before the copy is taken, and no new edit is
  // posted meanwhile (the bot's mutex); its sync on the new node resends
  // every op of ours the node lacks (weft::client counts from its last ack,
  // 0 for a new client) and fetches what we lack.
  std::atomic<int> failover_messages{0};
  auto failover = [&](bot& b) {
    std::lock_guard<std::mutex> lock(b.mu);
    auto state = std::make_shared<document>(on_client<document>(*b.c, b.doc, [](const document& x) { return x; }));
    b.c.reset();  // stops it and waits for its executor: none of its handlers runs after this
    const std::size_t from = b.url;
    b.url = (b.url + 1) % urls.size();
    b.connected = false;
    b.failed = 0;
    b.wants_failover = false;
    lat.set_node(b.index, static_cast<int>(b.url));
    client_options co = b.options;
    co.host = urls[b.url].host;
    co.port = urls[b.url].port;
    b.c = std::make_unique<client>(net, co, b.handlers);
    b.c->edit(b.doc, [state](document& d, std::vector<operation>&) { d = std::move(*state); });
    b.c->start();
    ++failovers;
    if (++failover_messages <= 5)
      fmt::print(stderr, "{}{}: {} unreachable, failing over to {}\n", o.progress ? "\n" : "", b.name,
                 urls[from].to_string(), urls[b.url].to_string());
  };
  std::atomic<bool> finished{false};
  std::thread watcher;
  if (several) {
    watcher = std::thread([&] {
      while (!finished.load()) {
        for (auto& b : bots)
          if (b->wants_failover.load()) failover(*b);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }

  // Each bot's keystroke times, fixed in advance: a Poisson process at
  // o.rate drawn from the seed (offsets in seconds from the typing start),
  // whatever happens during the run.
  struct slot {
    double at;
    std::size_t bot;
  };
  std::vector<slot> plan;
  if (!o.idle && o.duration_s > 0) {
    std::exponential_distribution<double> gap(std::max(0.001, o.rate));
    for (std::size_t i = 0; i < bots.size(); ++i) {
      std::seed_seq seq{o.seed, std::uint64_t{7919}, static_cast<std::uint64_t>(i)};
      std::mt19937_64 timing(seq);
      for (double at = gap(timing); at < o.duration_s; at += gap(timing)) plan.push_back({at, i});
    }
    std::stable_sort(plan.begin(), plan.end(), [](const slot& a, const slot& b) { return a.at < b.at; });
  }

  if (o.server_pid) rep.server_rss_before_mib = status_mib(o.server_pid, "VmRSS");
  // Connect, spread over the ramp.
  auto t0 = clock_type::now();
  for (int i = 0; i < total; ++i) {
    auto at = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.ramp_s * i / std::max(1, total)));
    std::this_thread::sleep_until(at);
    bot& b = *bots[static_cast<std::size_t>(i)];
    std::lock_guard<std::mutex> lock(b.mu);
    b.c->start();
  }
  auto sync_deadline = clock_type::now() + std::chrono::seconds(30) + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.ramp_s));
  while (synced.load() < total && clock_type::now() < sync_deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (synced.load() < total) fmt::print(stderr, "warning: only {} of {} bots synced\n", synced.load(), total);
  if (o.server_pid) rep.server_rss_mib = status_mib(o.server_pid, "VmRSS");

  // Typing: every slot of the plan is sent, at its time or, when the bots
  // fell behind, at once; its latency counts from its scheduled time.
  const double server_cpu0 = o.server_pid ? process_cpu_seconds(o.server_pid) : 0;
  const double bots_cpu0 = self_cpu_seconds();
  const auto start = clock_type::now();
  const auto end = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.idle ? 0 : o.duration_s));
  auto next_progress = start + std::chrono::seconds(1);
  auto type = [&](const std::vector<slot>& slots, clock_type::time_point from, bool progress) {
    for (const slot& sl : slots) {
      const auto when = from + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(sl.at));
      if (clock_type::now() < when) std::this_thread::sleep_until(when);
      bot& b = *bots[sl.bot];
      const int index = static_cast<int>(sl.bot);
      {
        std::lock_guard<std::mutex> lock(b.mu);  // not during a failover
        client* c = b.c.get();  // runs the edit, and outlives it (~client waits for its executor)
        c->edit(b.doc, [&b, c, &lat, &keystrokes, index, when](document& d, std::vector<operation>& out) {
          const auto ran = clock_type::now();
          bool moved = false;
          act(b, d, out, &moved);
          lat.made(index, out, when, ran);
          if (!out.empty()) ++keystrokes;
          if (moved || ++b.since_presence >= 10) {
            b.since_presence = 0;
            c->set_presence(b.doc, fmt::format(R"({{"name":"{}","cursor":{}}})", b.name, b.cursor));
          }
        });
      }
      if (progress && o.progress && clock_type::now() >= next_progress) {
        next_progress += std::chrono::seconds(1);
        auto t = lat.collect();
        fmt::print(stderr, "\r{:5.1f}s  keys {:7}  delivered {:8}  p50 {:6.2f} ms  p99 {:6.2f} ms  lag max {:6.2f} ms  errors {}  disconnects {}{}   ",
                   std::chrono::duration<double>(clock_type::now() - start).count(), keystrokes.load(), delivered.load(),
                   percentile(t.samples, 0.5), percentile(t.samples, 0.99),
                   t.lags.empty() ? 0.0 : *std::max_element(t.lags.begin(), t.lags.end()), errors.load(), disconnects.load(),
                   several ? fmt::format("  failovers {}", failovers.load()) : std::string());
      }
    }
  };
  type(plan, start, true);
  if (!o.idle) std::this_thread::sleep_until(end);
  if (o.storm) {
    // Every connection drops at once (as when a load balancer restarts); all
    // reconnect with backoff and jitter, resync, and keep typing.
    // (A bot has resynced once it completed a sync after the drop; its
    // count of syncs may already be past 1, after a reconnect or a failover.)
    std::vector<int> syncs_before;
    for (auto& b : bots) syncs_before.push_back(b->syncs.load());
    auto storm_start = clock_type::now();
    for (auto& b : bots) {
      std::lock_guard<std::mutex> lock(b->mu);
      b->c->drop_connection();
    }
    auto resynced = [&] {
      int n = 0;
      for (std::size_t i = 0; i < bots.size(); ++i) n += bots[i]->syncs.load() > syncs_before[i];
      return n;
    };
    auto storm_deadline = storm_start + std::chrono::seconds(60);
    while (resynced() < total && clock_type::now() < storm_deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    rep.storm_resync_s = std::chrono::duration<double>(clock_type::now() - storm_start).count();
    if (const int n = resynced(); n < total) fmt::print(stderr, "warning: only {} of {} bots resynced after the storm\n", n, total);
    // Then everyone keeps typing a little: 3 keystrokes per bot, at times
    // drawn in advance from the seed, uniformly over the 3 / rate seconds
    // after the resync (a Poisson process at the bots' rate, given the count).
    if (!o.idle) {
      std::vector<slot> after;
      std::uniform_real_distribution<double> within(0, 3 / std::max(0.001, o.rate));
      for (std::size_t i = 0; i < bots.size(); ++i) {
        std::seed_seq seq{o.seed, std::uint64_t{104729}, static_cast<std::uint64_t>(i)};
        std::mt19937_64 timing(seq);
        for (int k = 0; k < 3; ++k) after.push_back({within(timing), i});
      }
      std::stable_sort(after.begin(), after.end(), [](const slot& a, const slot& b) { return a.at < b.at; });
      type(after, clock_type::now(), false);
    }
  }
  rep.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  const double server_cpu = o.server_pid ? process_cpu_seconds(o.server_pid) - server_cpu0 : 0;
  const double bots_cpu = self_cpu_seconds() - bots_cpu0;
  if (o.progress) fmt::print(stderr, "\n");

  // Quiet period: every replica of a document equal (bots on different
  // nodes only after replication), equal to the text of every node that
  // answers (a node that cannot be reached is left out, and reported), and
  // every op applied by every other bot of its document.
  auto text_of = [](bot& b) {
    std::lock_guard<std::mutex> lock(b.mu);
    return on_client<std::string>(*b.c, b.doc, [](const document& x) { return x.text(); });
  };
  auto quiet_end = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.quiet_s));
  std::string detail;
  bool ok = false;
  std::vector<std::string> unreachable(urls.size());  // per URL: why it could not be compared (last check)
  while (true) {
    detail.clear();
    ok = true;
    for (auto& u : unreachable) u.clear();
    for (int d = 0; d < o.docs && ok; ++d) {
      bot& first = *bots[static_cast<std::size_t>(d * o.bots_per_doc)];
      std::string text = text_of(first);
      for (int i = 1; i < o.bots_per_doc && ok; ++i) {
        bot& other = *bots[static_cast<std::size_t>(d * o.bots_per_doc + i)];
        if (text_of(other) != text) {
          ok = false;
          detail = fmt::format("{}: {} and {} differ", first.doc, first.name, other.name);
        }
      }
      int compared = 0;
      for (std::size_t u = 0; u < urls.size() && ok; ++u) {
        http_answer a;
        try {
          a = http_get(urls[u].host, urls[u].port, "/api/docs/" + first.doc + "/text");
        } catch (const std::exception& e) {
          unreachable[u] = e.what();
          continue;
        }
        ++compared;
        if (a.status != 200 || a.body != text) {
          ok = false;
          detail = a.status != 200 ? fmt::format("{}: {} answered HTTP {} for its text", first.doc, urls[u].to_string(), a.status)
                   : several       ? fmt::format("{}: the text of {} differs from the bots' ({} vs {} bytes)", first.doc,
                                                 urls[u].to_string(), a.body.size(), text.size())
                                   : fmt::format("{}: the server's text differs from the bots' ({} vs {} bytes)", first.doc,
                                                 a.body.size(), text.size());
        }
      }
      if (ok && compared == 0) {
        ok = false;
        detail = fmt::format("{}: no server could be reached to compare with ({})", first.doc, unreachable.front());
      }
    }
    const bool all_arrived = lat.collect(false).incomplete() == 0;
    if ((ok && all_arrived) || clock_type::now() >= quiet_end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(ok ? 20 : 100));
  }
  finished = true;
  if (watcher.joinable()) watcher.join();
  rep.converged = ok;
  rep.convergence_detail = detail;
  for (std::size_t u = 0; u < urls.size(); ++u)
    rep.urls[u].unreachable = unreachable[u];
  for (auto& b : bots) {
    std::lock_guard<std::mutex> lock(b->mu);
    ++rep.urls[b->url].bots_at_end;
  }
  auto t = lat.collect();
  rep.ops_sent = t.ops;
  rep.ops_with_latency = t.complete;
  rep.ops_never_arrived = t.incomplete();
  rep.latency_samples = t.samples.size();
  rep.latency_p50_ms = percentile(t.samples, 0.50);
  rep.latency_p95_ms = percentile(t.samples, 0.95);
  rep.latency_p99_ms = percentile(t.samples, 0.99);
  rep.latency_max_ms = t.samples.empty() ? 0 : *std::max_element(t.samples.begin(), t.samples.end());
  rep.delivery_samples = t.delivery.size();
  rep.delivery_p50_ms = percentile(t.delivery, 0.50);
  rep.delivery_p99_ms = percentile(t.delivery, 0.99);
  rep.delivery_same_node_samples = t.delivery_same.size();
  rep.delivery_same_node_p50_ms = percentile(t.delivery_same, 0.50);
  rep.delivery_same_node_p99_ms = percentile(t.delivery_same, 0.99);
  rep.delivery_across_nodes_samples = t.delivery_across.size();
  rep.delivery_across_nodes_p50_ms = percentile(t.delivery_across, 0.50);
  rep.delivery_across_nodes_p99_ms = percentile(t.delivery_across, 0.99);
  rep.schedule_lag_p99_ms = percentile(t.lags, 0.99);
  rep.schedule_lag_max_ms = t.lags.empty() ? 0 : *std::max_element(t.lags.begin(), t.lags.end());
  rep.keystrokes = keystrokes.load();
  rep.ops_delivered = delivered.load();
  rep.errors = errors.load();
  rep.disconnects = disconnects.load();
  rep.failed_connects = failed_connects.load();
  rep.failovers = failovers.load();
  const double per_keystroke = rep.keystrokes ? 1e6 / static_cast<double>(rep.keystrokes) : 0;
  rep.bots_cpu_seconds = bots_cpu;
  rep.bots_cpu_us_per_keystroke = bots_cpu * per_keystroke;
  // (An idle run has no typing phase: no percentage of a moment.)
  const bool window = rep.seconds >= 0.1;
  rep.bots_cpu_percent = window ? 100.0 * bots_cpu / rep.seconds : 0;
  // Also over the whole run (connecting included), so a saturated load generator shows in idle runs.
  double wall = std::chrono::duration<double>(clock_type::now() - run_start).count();
  rep.bots_cpu_percent_whole_run = wall > 0 ? 100.0 * (self_cpu_seconds() - run_cpu0) / wall : 0;
  if (o.server_pid) {
    rep.server_cpu_seconds = server_cpu;
    rep.server_cpu_us_per_keystroke = server_cpu * per_keystroke;
    rep.server_cpu_percent = window ? 100.0 * server_cpu / rep.seconds : 0;
    rep.server_peak_rss_mib = status_mib(o.server_pid, "VmHWM");
  }
  for (auto& b : bots) b->c->stop();
  bots.clear();  // clients first, then the network
  return rep;
}

namespace {

std::string json_escape(const std::string& in) {
  std::string out;
  for (char ch : in) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(ch));
      continue;
    }
    out += ch;
  }
  return out;
}

double per_second(std::uint64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }

}  // namespace

std::string to_json(const swarm_options& o, const swarm_report& r) {
  std::string urls;
  for (const auto& u : r.urls)
    urls += fmt::format(R"({}{{"url":"{}","bots":{},"bots_at_end":{},"compared":{},"unreachable":"{}"}})", urls.empty() ? "" : ",",
                        json_escape(u.url), u.bots, u.bots_at_end, u.unreachable.empty(), json_escape(u.unreachable));
  std::string server_cpu =
      o.server_pid ? fmt::format(R"({{"pid":{},"source":"/proc/{}/stat utime+stime","seconds":{:.3f},"us_per_keystroke":{:.1f},"percent_of_core":{:.1f}}})",
                                 o.server_pid, o.server_pid, r.server_cpu_seconds, r.server_cpu_us_per_keystroke, r.server_cpu_percent)
                   : std::string("null");
  return fmt::format(
      R"({{"docs":{},"bots_per_doc":{},"rate":{},"duration_s":{},"idle":{},"threads":{},"connections":{},"seconds":{:.3f},)"
      R"("keystrokes":{},"keystrokes_per_s":{:.1f},"ops_sent":{},"ops_with_latency":{},"ops_never_arrived":{},)"
      R"("ops_delivered":{},"delivered_per_s":{:.1f},"errors":{},"disconnects":{},)"
      R"("latency_ms":{{"from":"scheduled keystroke","until":"every other bot applied it","p50":{:.3f},"p95":{:.3f},"p99":{:.3f},"max":{:.3f},"samples":{}}},)"
      R"("delivery_latency_ms":{{"from":"scheduled keystroke","until":"one other bot applied it","p50":{:.3f},"p99":{:.3f},"samples":{},)"
      R"("same_node":{{"p50":{:.3f},"p99":{:.3f},"samples":{}}},"across_nodes":{{"p50":{:.3f},"p99":{:.3f},"samples":{}}}}},)"
      R"("urls":[{}],"failovers":{},"failed_connects":{},)"
      R"("schedule_lag_ms":{{"max":{:.3f},"p99":{:.3f}}},)"
      R"("server_cpu":{},)"
      R"("bots_cpu":{{"source":"this process, getrusage","seconds":{:.3f},"us_per_keystroke":{:.1f},"percent_of_core":{:.1f},"percent_of_core_whole_run":{:.1f}}},)"
      R"("server_rss_mib":{:.1f},"server_peak_rss_mib":{:.1f},"server_rss_before_mib":{:.1f},"storm_resync_s":{:.3f},"converged":{},"detail":"{}"}})",
      o.docs, o.bots_per_doc, o.rate, o.duration_s, o.idle, o.threads, r.connections, r.seconds, r.keystrokes,
      per_second(r.keystrokes, r.seconds), r.ops_sent, r.ops_with_latency, r.ops_never_arrived, r.ops_delivered,
      per_second(r.ops_delivered, r.seconds), r.errors, r.disconnects, r.latency_p50_ms, r.latency_p95_ms,
      r.latency_p99_ms, r.latency_max_ms, r.latency_samples, r.delivery_p50_ms, r.delivery_p99_ms, r.delivery_samples,
      r.delivery_same_node_p50_ms, r.delivery_same_node_p99_ms, r.delivery_same_node_samples,
      r.delivery_across_nodes_p50_ms, r.delivery_across_nodes_p99_ms, r.delivery_across_nodes_samples, urls, r.failovers,
      r.failed_connects, r.schedule_lag_max_ms, r.schedule_lag_p99_ms, server_cpu, r.bots_cpu_seconds, r.bots_cpu_us_per_keystroke,
      r.bots_cpu_percent, r.bots_cpu_percent_whole_run, r.server_rss_mib, r.server_peak_rss_mib, r.server_rss_before_mib,
      r.storm_resync_s, r.converged, json_escape(r.convergence_detail));
}

std::string summary(const swarm_options& o, const swarm_report& r) {
  std::string out =
      o.idle ? fmt::format("{} docs x {} bots, idle: {} connections\n", o.docs, o.bots_per_doc, r.connections)
             : fmt::format("{} docs x {} bots x {} keys/s for {:.1f} s: {} keystrokes ({:.0f}/s), {} ops delivered ({:.0f}/s)\n",
                           o.docs, o.bots_per_doc, o.rate, r.seconds, r.keystrokes, per_second(r.keystrokes, r.seconds),
                           r.ops_delivered, per_second(r.ops_delivered, r.seconds));
  if (r.urls.size() > 1) {
    out += fmt::format("nodes ({}, bot k of document d on node (d + k) mod {}):\n", r.urls.size(), r.urls.size());
    for (const auto& u : r.urls)
      out += fmt::format("  {}: {} bots{}{}\n", u.url, u.bots,
                         u.bots_at_end != u.bots ? fmt::format(", {} at the end", u.bots_at_end) : std::string(),
                         u.unreachable.empty() ? std::string() : ", unreachable at the end: " + u.unreachable);
  }
  if (r.keystrokes > 0) {
    out += fmt::format(
        "latency, scheduled keystroke -> every other bot applied it: p50 {:.2f} ms, p95 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n"
        "  ops: {} sent, {} with a complete latency sample, {} never arrived{}\n"
        "  per delivery (-> one other bot): p50 {:.2f} ms, p99 {:.2f} ms ({} samples)\n",
        r.latency_p50_ms, r.latency_p95_ms, r.latency_p99_ms, r.latency_max_ms, r.ops_sent, r.ops_with_latency,
        r.ops_never_arrived, o.bots_per_doc < 2 ? " (one bot per document: nobody receives)" : "", r.delivery_p50_ms,
        r.delivery_p99_ms, r.delivery_samples);
    if (r.urls.size() > 1)
      out += fmt::format(
          "    sender and receiver on the same node: p50 {:.2f} ms, p99 {:.2f} ms ({} samples)\n"
          "    on different nodes (through replication): p50 {:.2f} ms, p99 {:.2f} ms ({} samples)\n",
          r.delivery_same_node_p50_ms, r.delivery_same_node_p99_ms, r.delivery_same_node_samples,
          r.delivery_across_nodes_p50_ms, r.delivery_across_nodes_p99_ms, r.delivery_across_nodes_samples);
    out += fmt::format("schedule: keystrokes ran at most {:.2f} ms behind their scheduled time (p99 {:.2f} ms)\n",
                       r.schedule_lag_max_ms, r.schedule_lag_p99_ms);
  }
  if (o.server_pid) {
    if (r.keystrokes > 0)
      out += fmt::format("server CPU (pid {}, /proc utime+stime, typing phase): {:.1f} us per keystroke, {:.1f}% of a core\n",
                         o.server_pid, r.server_cpu_us_per_keystroke, r.server_cpu_percent);
    out += fmt::format("server RSS {:.1f} MiB after connecting ({:.1f} before), peak {:.1f} MiB\n", r.server_rss_mib,
                       r.server_rss_before_mib, r.server_peak_rss_mib);
  }
  if (r.keystrokes > 0)
    out += fmt::format("bots CPU (this process, typing phase): {:.1f} us per keystroke, {:.1f}% of a core ({:.1f}% over the whole run)\n",
                       r.bots_cpu_us_per_keystroke, r.bots_cpu_percent, r.bots_cpu_percent_whole_run);
  else
    out += fmt::format("bots CPU (this process): {:.1f}% of a core over the whole run\n", r.bots_cpu_percent_whole_run);
  out += fmt::format("errors {}, disconnects {}, failed connection attempts {}{}{}\n", r.errors, r.disconnects,
                     r.failed_connects, r.urls.size() > 1 ? fmt::format(", failovers {}", r.failovers) : std::string(),
                     o.storm ? fmt::format(", reconnect storm: all {} resynced in {:.2f} s", r.connections, r.storm_resync_s)
                             : std::string());
  std::size_t compared = 0;
  for (const auto& u : r.urls) compared += u.unreachable.empty();
  const std::string agreed = r.urls.size() <= 1        ? "every replica equals the server's text"
                             : compared == r.urls.size() ? fmt::format("every replica equals the text of every node ({})", compared)
                                                         : fmt::format("every replica equals the text of the {} of {} nodes that answered",
                                                                       compared, r.urls.size());
  out += fmt::format("convergence: {}\n", r.converged ? agreed : "FAILED: " + r.convergence_detail);
  return out;
}

std::string markdown_header() {
  return "| run | connections | s | keystrokes | ops sent / with latency / never arrived | latency p50 / p95 / p99 / max ms "
         "| max schedule lag ms | server CPU µs/keystroke (% of a core) | bots CPU µs/keystroke (% of a core) "
         "| server peak RSS (RSS added per connection) | storm resync | errors / disconnects | converged |\n"
         "|---|---:|---:|---:|---|---|---:|---|---|---|---|---|---|\n";
}

std::string markdown_row(const std::string& label, const swarm_options& o, const swarm_report& r) {
  double per_conn_kib = r.connections && r.server_rss_mib > 0
                            ? (r.server_rss_mib - r.server_rss_before_mib) * 1024.0 / r.connections
                            : 0;
  std::string bots_cpu = r.keystrokes ? fmt::format("{:.1f} ({:.1f}%)", r.bots_cpu_us_per_keystroke, r.bots_cpu_percent)
                                      : fmt::format("- ({:.0f}% whole run)", r.bots_cpu_percent_whole_run);
  const bool typed = r.keystrokes > 0;
  return fmt::format("| {} | {} | {:.0f} | {} | {} / {} / {} | {} | {} | {} | {} | {:.1f} MiB ({:.2f} KiB/conn) | {} | {} / {} | {} |\n",
                     label, r.connections, r.seconds, r.keystrokes, r.ops_sent, r.ops_with_latency, r.ops_never_arrived,
                     typed ? fmt::format("{:.2f} / {:.2f} / {:.2f} / {:.2f}", r.latency_p50_ms, r.latency_p95_ms,
                                         r.latency_p99_ms, r.latency_max_ms)
                           : std::string("-"),
                     typed ? fmt::format("{:.2f}", r.schedule_lag_max_ms) : std::string("-"),
                     o.server_pid && r.keystrokes ? fmt::format("{:.1f} ({:.1f}%)", r.server_cpu_us_per_keystroke, r.server_cpu_percent) : std::string("-"),
                     bots_cpu, r.server_peak_rss_mib, per_conn_kib,
                     o.storm ? fmt::format("{:.2f} s", r.storm_resync_s) : std::string("-"), r.errors, r.disconnects,
                     r.converged ? "yes" : "**NO**: " + r.convergence_detail);
}

}  // namespace weft::load
