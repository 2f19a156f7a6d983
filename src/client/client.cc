#include "weft/client.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <simdjson.h>

#include <cmath>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "protocol/json_writer.h"
#include "protocol/messages.h"

namespace weft {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

// ---- network ---------------------------------------------------------------------

struct network::impl {
  net::io_context io;
  net::executor_work_guard<net::io_context::executor_type> work{io.get_executor()};
  std::vector<std::thread> threads;
};

network::network(unsigned threads) : p_(std::make_unique<impl>()) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i) p_->threads.emplace_back([io = &p_->io] { io->run(); });
}

network::~network() {
  p_->work.reset();
  p_->io.stop();
  for (auto& t : p_->threads) t.join();
}

// ---- client -------------------------------------------------------------------------

struct client::impl : std::enable_shared_from_this<client::impl> {
  impl(network& n, client_options o, client_handlers h)
      : opts(std::move(o)),
        handlers(std::move(h)),
        strand(net::make_strand(n.get().io)),
        resolver(strand),
        timer(strand),
        rng(std::random_device{}()) {
    if (opts.replica == 0) opts.replica = (rng() & max_replica_id) | 1;
  }

  struct doc_state {
    document replica;
    bool synced = false;
  };

  client_options opts;
  client_handlers handlers;
  net::strand<net::io_context::executor_type> strand;
  tcp::resolver resolver;
  net::steady_timer timer;
  std::mt19937_64 rng;
  // Touched only on strand:
  std::optional<websocket::stream<beast::tcp_stream>> ws;
  beast::flat_buffer buffer;
  std::deque<std::string> queue;
  bool writing = false;
  bool running = false;
  bool welcomed = false;
  bool retired = false;  // ~client() has returned: queued work is dropped
  unsigned attempt = 0;
  std::uint64_t generation = 0;  // connection attempt, so stale handlers are ignored
  std::map<std::string, doc_state> docs;
  std::map<std::string, std::string> presence;  // our presence per doc, resent after reconnect
  simdjson::dom::parser parser;
  // Read from any thread:
  mutable std::mutex acked_mu;
  std::map<std::string, std::uint64_t> acked;  // guarded by acked_mu

  // Work queued after the client was destroyed (e.g. a read() a handler
  // asked for while the client stopped) would reach the caller's objects
  // after ~client() returned: it is dropped.
  template <class F>
  void post(F&& f) {
    net::post(strand, [self = shared_from_this(), f = std::forward<F>(f)]() mutable {
      if (!self->retired) f(*self);
    });
  }

  void set_state(connection_state s) {
    if (handlers.on_state) handlers.on_state(s);
  }

  doc_state& doc(const std::string& id) {
    auto it = docs.find(id);
    if (it == docs.end()) it = docs.emplace(id, doc_state{document(opts.replica, opts.document), false}).first;
    return it->second;
  }

  // Sends once the server has welcomed us (everything but hello).
  void send(std::string msg) {
    if (welcomed) send_raw(std::move(msg));
  }
  void send_raw(std::string msg) {
    if (!ws) return;
    queue.push_back(std::move(msg));
    if (!writing) write_next();
  }

  void write_next() {
    writing = true;
    ws->text(true);
    ws->async_write(net::buffer(queue.front()),
                    [self = shared_from_this(), gen = generation](beast::error_code ec, std::size_t) {
                      if (gen != self->generation) return;
                      self->writing = false;
                      self->queue.pop_front();
                      if (ec) return self->lost();
                      if (!self->queue.empty()) self->write_next();
                    });
  }

  void connect() {
    if (!running) return;
    ++generation;
    welcomed = false;
    set_state(connection_state::connecting);
    resolver.async_resolve(opts.host, std::to_string(opts.port),
                           [self = shared_from_this(), gen = generation](beast::error_code ec, tcp::resolver::results_type r) {
                             if (gen != self->generation) return;
                             if (ec) return self->lost();
                             self->ws.emplace(self->strand);
                             beast::get_lowest_layer(*self->ws).expires_after(std::chrono::seconds(10));
                             beast::get_lowest_layer(*self->ws).async_connect(
                                 r, [self, gen](beast::error_code ec, const tcp::endpoint&) {
                                   if (gen != self->generation) return;
                                   if (ec) return self->lost();
                                   self->on_connected();
                                 });
                           });
  }

  void on_connected() {
    beast::get_lowest_layer(*ws).socket().set_option(tcp::no_delay(true));
    beast::get_lowest_layer(*ws).expires_never();
    websocket::stream_base::timeout t = websocket::stream_base::timeout::suggested(beast::role_type::client);
    t.idle_timeout = std::chrono::seconds(30);
    t.keep_alive_pings = true;
    ws->set_option(t);
    ws->read_message_max(64u << 20);
    ws->async_handshake(opts.host, "/", [self = shared_from_this(), gen = generation](beast::error_code ec) {
      if (gen != self->generation) return;
      if (ec) return self->lost();
      std::string hello = R"({"type":"hello","protocol":1,"client":)";
      protocol::append_json_string(hello, self->opts.name);
      if (!self->opts.token.empty()) {
        hello += R"(,"token":)";
        protocol::append_json_string(hello, self->opts.token);
      }
      hello += "}";
      self->send_raw(std::move(hello));
      self->read();
    });
  }

  void read() {
    ws->async_read(buffer, [self = shared_from_this(), gen = generation](beast::error_code ec, std::size_t) {
      if (gen != self->generation) return;
      if (ec) return self->lost();
      auto data = self->buffer.data();
      self->handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
      self->buffer.consume(self->buffer.size());
      if (gen == self->generation) self->read();
    });
  }

  void send_open(const std::string& id) {
    std::string msg = R"({"type":"open","doc":)";
    protocol::append_json_string(msg, id);
    msg += ",\"version\":";
    protocol::append_version(msg, doc(id).replica.version());
    msg += "}";
    send(std::move(msg));
  }

  void handle(std::string_view frame) {
    simdjson::dom::element e;
    if (parser.parse(frame.data(), frame.size()).get(e)) return;
    std::string_view type;
    if (e["type"].get_string().get(type)) return;
    if (type == "welcome") {
      welcomed = true;
      attempt = 0;
      set_state(connection_state::syncing);
      for (auto& [id, d] : docs) {
        d.synced = false;
        send_open(id);
      }
      if (docs.empty()) {
        set_state(connection_state::online);
        if (handlers.on_synced) handlers.on_synced();
      }
      return;
    }
    if (type == "error") {
      std::string_view code, message;
      if (e["code"].get_string().get(code)) code = "internal";
      if (e["message"].get_string().get(message)) message = {};
      if (handlers.on_error) handlers.on_error(std::string(code), std::string(message));
      return;
    }
    std::string_view doc_id;
    if (e["doc"].get_string().get(doc_id)) return;
    auto it = docs.find(std::string(doc_id));
    if (it == docs.end()) return;
    doc_state& d = it->second;
    if (type == "ops" || type == "sync") {
      simdjson::dom::element ops_e;
      if (e["ops"].get(ops_e)) return;
      auto parsed = protocol::parse_ops_array(ops_e);
      auto* ops = std::get_if<std::vector<operation>>(&parsed);
      if (!ops) return;
      std::vector<text_change> changes;
      for (const auto& op : *ops) (void)d.replica.apply(op, &changes);
      if (handlers.on_remote && (!ops->empty())) handlers.on_remote(it->first, *ops, changes);
      if (type == "sync") {
        // Give the server what it lacks: our edits made offline or never acknowledged.
        version_vector server;
        simdjson::dom::array v;
        if (!e["version"].get_array().get(v))
          for (auto entry : v) {
            std::uint64_t r = 0, c = 0;
            if (!entry.at(0).get_uint64().get(r) && !entry.at(1).get_uint64().get(c)) server.set(r, c);
          }
        // Our own ops are counted from the last ack, not from the server's
        // version: if the server stored them but its ack was lost (it crashed
        // right after the commit), resending them is what earns the ack.
        {
          std::lock_guard<std::mutex> lock(acked_mu);
          const std::uint64_t a = acked[it->first];
          if (server.get(opts.replica) > a) server.set(opts.replica, a);
        }
        auto missing = d.replica.ops_since(server);
        if (!missing.empty()) send(protocol::encode_ops_message(it->first, missing));
        d.synced = true;
        bool all = true;
        for (auto& [id, x] : docs) all &= x.synced;
        if (all) {
          set_state(connection_state::online);
          for (auto& [pid, state] : presence) send_presence(pid, state);
          if (handlers.on_synced) handlers.on_synced();
        }
      }
      return;
    }
    if (type == "ack") {
      simdjson::dom::array v;
      if (e["version"].get_array().get(v)) return;
      for (auto entry : v) {
        std::uint64_t r = 0, c = 0;
        if (entry.at(0).get_uint64().get(r) || entry.at(1).get_uint64().get(c) || r != opts.replica) continue;
        {
          std::lock_guard<std::mutex> lock(acked_mu);
          auto& a = acked[it->first];
          if (c <= a) continue;
          a = c;
        }
        if (handlers.on_ack) handlers.on_ack(it->first, c);
      }
      return;
    }
    if (type == "presence" && handlers.on_presence) {
      std::uint64_t session = 0;
      if (e["session"].get_uint64().get(session)) return;
      simdjson::dom::element st;
      std::string state = e["state"].get(st) ? "null" : simdjson::minify(st);
      handlers.on_presence(it->first, session, state);
    }
  }

  void send_presence(const std::string& id, const std::string& state) {
    std::string msg = R"({"type":"presence","doc":)";
    protocol::append_json_string(msg, id);
    msg += ",\"state\":" + state + "}";
    send(std::move(msg));
  }

  void lost() {
    ++generation;  // ignore everything the old connection still reports
    if (ws) {
      beast::error_code ec;
      beast::get_lowest_layer(*ws).socket().close(ec);
    }
    ws.reset();
    queue.clear();
    writing = false;
    welcomed = false;
    for (auto& [id, d] : docs) d.synced = false;
    if (!running) return;
    set_state(connection_state::offline);
    if (!opts.reconnect) return;
    // Exponential backoff with jitter: a restarted server is not stormed.
    double base = std::min<double>(opts.reconnect_max_ms, opts.reconnect_min_ms * std::pow(2.0, std::min(attempt, 16u)));
    ++attempt;
    double delay = base * std::uniform_real_distribution<double>(0.5, 1.5)(rng);
    timer.expires_after(std::chrono::milliseconds(static_cast<long>(delay)));
    timer.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && self->running && !self->ws) self->connect();
    });
  }
};

client::client(network& net, client_options options, client_handlers handlers)
    : p_(std::make_shared<impl>(net, std::move(options), std::move(handlers))) {}

// REQUIRES: not called from one of this client's handlers, and before its
// network is destroyed (it waits for the client's executor).
client::~client() {
  stop();
  // Wait until the executor has run everything queued before: after this no
  // handler of ours runs any more (stale completions check `running`), and
  // nothing queued later runs (post() checks `retired`).
  std::promise<void> done;
  auto f = done.get_future();
  p_->post([&done](impl& c) {
    c.retired = true;
    done.set_value();
  });
  f.wait();
}

replica_id client::replica() const noexcept { return p_->opts.replica; }

void client::start() {
  p_->post([](impl& c) {
    if (c.running) return;
    c.running = true;
    c.connect();
  });
}

void client::stop() {
  p_->post([](impl& c) {
    if (!c.running) return;
    c.running = false;
    c.timer.cancel();
    c.resolver.cancel();
    ++c.generation;  // what the connection still reports is ignored from now on
    c.welcomed = false;
    if (c.ws && c.ws->is_open()) c.ws->async_close(websocket::close_code::normal, [self = c.shared_from_this()](beast::error_code) {});
    c.set_state(connection_state::stopped);
  });
}

void client::open(const std::string& doc) {
  p_->post([doc](impl& c) {
    bool fresh = !c.docs.count(doc);
    c.doc(doc);
    if (fresh && c.welcomed) c.send_open(doc);
  });
}

void client::edit(const std::string& doc, std::function<void(document&, std::vector<operation>&)> f) {
  p_->post([doc, f = std::move(f)](impl& c) {
    bool fresh = !c.docs.count(doc);
    auto& d = c.doc(doc);
    if (fresh && c.welcomed) c.send_open(doc);
    std::vector<operation> ops;
    f(d.replica, ops);
    // Not yet synced: the sync answer's "what the server lacks" carries them.
    if (!ops.empty() && d.synced) c.send(protocol::encode_ops_message(doc, ops));
  });
}

void client::read(const std::string& doc, std::function<void(const document&)> f) {
  p_->post([doc, f = std::move(f)](impl& c) { f(c.doc(doc).replica); });
}

void client::set_presence(const std::string& doc, std::string state_json) {
  p_->post([doc, s = std::move(state_json)](impl& c) {
    c.presence[doc] = s;
    auto it = c.docs.find(doc);
    if (it != c.docs.end() && it->second.synced) c.send_presence(doc, s);
  });
}

void client::drop_connection() {
  p_->post([](impl& c) {
    if (c.ws) c.lost();
  });
}

std::uint64_t client::acked(const std::string& doc) const {
  std::lock_guard<std::mutex> lock(p_->acked_mu);
  auto it = p_->acked.find(doc);
  return it == p_->acked.end() ? 0 : it->second;
}

}  // namespace weft
