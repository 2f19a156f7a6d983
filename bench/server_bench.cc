// weft-server-bench: starts weft-server in-process (SQLite persistence on,
// in a temporary directory), connects clients over real WebSockets on
// 127.0.0.1 that type as fast as the server acknowledges (a window of
// unacknowledged messages each), and prints JSON lines: applied-and-durable
// ops/s, ack latency percentiles, group-commit latency and batching.
// Every client's replica must converge to the server's text, or it exits 1.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "machine_info.h"
#include "protocol/json_writer.h"
#include "weft/protocol.h"
#include "server/server.h"
#include "weft/document.h"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

struct options {
  int docs = 1;
  int clients_per_doc = 4;
  int ops_per_client = 3000;
  int window = 8;
  unsigned server_threads = 1;
};

struct client_result {
  std::vector<double> ack_ms;
  std::string text;
  bool ok = true;
};


// One typist: inserts a character at the end of its own paragraph per op.
void run_client(std::uint16_t port, const std::string& doc, weft::replica_id id, const options& o,
                std::atomic<int>* ready, std::atomic<int>* finished, int total_clients, client_result* out) {
  net::io_context io;
  beast::websocket::stream<beast::tcp_stream, false> ws(io);
  beast::get_lowest_layer(ws).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  beast::get_lowest_layer(ws).socket().set_option(tcp::no_delay(true));
  ws.handshake("127.0.0.1", "/");
  ws.text(true);
  namespace protocol = weft::protocol;
  protocol::decoder decoder;
  beast::flat_buffer buf;
  weft::document replica(id);
  // Decodes what is in buf; an undecodable message fails the run.
  auto decode = [&]() -> protocol::server_message {
    auto r = decoder.server(std::string_view(static_cast<const char*>(buf.data().data()), buf.size()),
                            protocol::server_message_limits);
    if (auto* m = std::get_if<protocol::server_message>(&r)) return std::move(*m);
    out->ok = false;
    return protocol::pong_msg{};
  };
  auto read_one = [&]() -> protocol::server_message {
    buf.consume(buf.size());
    ws.read(buf);
    return decode();
  };
  ws.write(net::buffer(protocol::encode_hello({protocol::protocol_version, "bench", {}})));
  read_one();
  ws.write(net::buffer(protocol::encode_open(doc, {})));
  for (;;) {
    auto m = read_one();
    if (auto* s = std::get_if<protocol::sync_msg>(&m)) {
      for (const auto& op : s->ops) (void)replica.apply(op);
      break;
    }
    if (auto* o = std::get_if<protocol::ops_msg>(&m))
      for (const auto& op : o->ops) (void)replica.apply(op);
  }
  ++*ready;
  while (ready->load() < total_clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  std::map<std::uint64_t, clock_type::time_point> sent_at;  // last counter of a message -> send time
  std::uint64_t acked = 0;
  int sent = 0;
  std::uint64_t my_end = 0;  // where this client types (its own characters)
  auto handle = [&](const protocol::server_message& m) {
    if (auto* o = std::get_if<protocol::ops_msg>(&m)) {
      for (const auto& op : o->ops) (void)replica.apply(op);
    } else if (auto* a = std::get_if<protocol::ack_msg>(&m)) {
      std::uint64_t c = a->version.get(id);
      auto now = clock_type::now();
      while (!sent_at.empty() && sent_at.begin()->first <= c) {
        out->ack_ms.push_back(std::chrono::duration<double, std::milli>(now - sent_at.begin()->second).count());
        sent_at.erase(sent_at.begin());
      }
      acked = std::max(acked, c);
    } else if (std::holds_alternative<protocol::error_msg>(m)) {
      out->ok = false;
    }
  };
  while (sent < o.ops_per_client || !sent_at.empty()) {
    if (sent < o.ops_per_client && static_cast<int>(sent_at.size()) < o.window) {
      // Type at the end of this client's own run of characters.
      std::uint64_t pos = std::min<std::uint64_t>(my_end, replica.length());
      auto op = replica.insert(pos, std::string(1, static_cast<char>('a' + sent % 26))).value();
      my_end = pos + 1;
      std::string msg = protocol::encode_ops(doc, std::span<const weft::operation>(&op, 1));
      sent_at[op.id.counter] = clock_type::now();
      ws.write(net::buffer(msg));
      ++sent;
      continue;
    }
    handle(read_one());
  }
  // Quiet period, once every client is done: collect the others' last ops
  // (async read with a deadline: stream timeouts do not apply to sync reads).
  ++*finished;
  auto deadline = clock_type::now() + std::chrono::milliseconds(500);
  while (clock_type::now() < deadline || finished->load() < total_clients) {
    if (finished->load() < total_clients) deadline = clock_type::now() + std::chrono::milliseconds(500);
    bool done = false;
    beast::error_code rec;
    buf.consume(buf.size());
    ws.async_read(buf, [&](beast::error_code ec, std::size_t) {
      done = true;
      rec = ec;
    });
    io.restart();
    io.run_for(deadline - clock_type::now());
    if (!done) {
      beast::get_lowest_layer(ws).cancel();
      io.restart();
      io.run();
      break;
    }
    if (rec) break;
    handle(decode());
  }
  out->text = replica.text();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

double metric(const std::string& text, const std::string& name) {
  auto pos = text.find("\n" + name + " ");
  if (pos == std::string::npos) return 0;
  return std::strtod(text.c_str() + pos + name.size() + 2, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (a == "--docs") o.docs = v;
    else if (a == "--clients-per-doc") o.clients_per_doc = v;
    else if (a == "--ops") o.ops_per_client = v;
    else if (a == "--window") o.window = v;
    else if (a == "--server-threads") o.server_threads = static_cast<unsigned>(v);
    else {
      std::fprintf(stderr, "usage: weft-server-bench [--docs N] [--clients-per-doc N] [--ops N] [--window N] [--server-threads N]\n");
      return 2;
    }
  }
  auto dir = std::filesystem::temp_directory_path() / ("weft-bench-" + std::to_string(std::random_device{}()));
  weft::server::server_config cfg;
  cfg.port = 0;
  cfg.data_dir = dir.string();
  cfg.threads = o.server_threads;
  cfg.level = weft::server::log_level::warn;
  auto srv = weft::server::server::start(cfg);
  if (!srv.ok()) {
    std::fprintf(stderr, "error: %s\n", srv.error().to_string().c_str());
    return 1;
  }
  const int total = o.docs * o.clients_per_doc;
  std::vector<client_result> results(static_cast<std::size_t>(total));
  std::vector<std::thread> threads;
  std::atomic<int> ready{0}, finished{0};
  auto t0 = clock_type::now();
  for (int d = 0; d < o.docs; ++d)
    for (int c = 0; c < o.clients_per_doc; ++c) {
      int k = d * o.clients_per_doc + c;
      threads.emplace_back(run_client, srv.value()->port(), "bench" + std::to_string(d),
                           static_cast<weft::replica_id>(1000 + k), std::cref(o), &ready, &finished, total, &results[static_cast<std::size_t>(k)]);
    }
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(clock_type::now() - t0).count() - 0.5;  // minus the quiet period
  // Server-side figures from /metrics, read before stopping.
  net::io_context io;
  beast::tcp_stream http(io);
  http.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), srv.value()->port()));
  std::string req = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
  net::write(http, net::buffer(req));
  std::string metrics;
  beast::error_code ec;
  char chunk[4096];
  for (std::size_t n; (n = http.socket().read_some(net::buffer(chunk), ec)) > 0 && !ec;) metrics.append(chunk, n);
  bool ok = true;
  std::vector<double> all_ack;
  for (int d = 0; d < o.docs; ++d) {
    const std::string& first = results[static_cast<std::size_t>(d * o.clients_per_doc)].text;
    for (int c = 0; c < o.clients_per_doc; ++c) {
      const auto& r = results[static_cast<std::size_t>(d * o.clients_per_doc + c)];
      ok &= r.ok && r.text == first && r.text.size() == static_cast<std::size_t>(o.ops_per_client * o.clients_per_doc);
      all_ack.insert(all_ack.end(), r.ack_ms.begin(), r.ack_ms.end());
    }
  }
  srv.value()->stop();
  std::filesystem::remove_all(dir);
  const double total_ops = static_cast<double>(total) * o.ops_per_client;
  const double commits = metric(metrics, "weft_commit_seconds_count");
  std::string scenario = std::to_string(o.docs) + "docs_x_" + std::to_string(o.clients_per_doc) + "clients_w" +
                         std::to_string(o.window);
  auto line = [&](const char* m, double v, const char* unit) {
    std::printf("{\"scenario\": \"%s\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", \"machine\": \"%s\"}\n",
                scenario.c_str(), m, v, unit, weft::bench::machine_description().c_str());
  };
  line("ops_durable_per_s", total_ops / seconds, "ops/s");
  line("ack_latency_p50_ms", percentile(all_ack, 0.50), "ms");
  line("ack_latency_p99_ms", percentile(all_ack, 0.99), "ms");
  line("commit_latency_avg_ms", commits > 0 ? 1000 * metric(metrics, "weft_commit_seconds_sum") / commits : 0, "ms");
  line("ops_per_commit", commits > 0 ? total_ops / commits : 0, "ops");
  line("converged", ok ? 1 : 0, "bool");
  return ok ? 0 : 1;
}
