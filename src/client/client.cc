#include "weft/client.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <charconv>
#include <cmath>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "protocol/json_writer.h"
#include "weft/protocol.h"
#include "weft/unicode.h"

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
    replica_id id = 0;      // the replica id this document is written under
    // While a refused replica id is being replaced: the new replica, fed by
    // the server's open answer, that takes over at the sync (rotate()).
    std::optional<document> fresh;
    // Counter ranges [first, last] of the ops this client made under `id`
    // (edit()): what a rotation carries over when the server refused them.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> own;
    bool synced = false;
    std::uint64_t ref = 0;  // number in binary frames (from sync; 0: none)
    bool snapshot_asked = false;  // the last open asked for a snapshot frame, none came yet
    bool skip_sync = false;       // that snapshot could not be loaded: the next sync (no ops) is not the answer
  };

  client_options opts;
  client_handlers handlers;
  net::strand<net::io_context::executor_type> strand;
  tcp::resolver resolver;
  net::steady_timer timer;
  std::mt19937_64 rng;
  // Touched only on strand:
  std::optional<websocket::stream<beast::tcp_stream, false>> ws;  // no permessage-deflate
  beast::flat_buffer buffer;
  std::deque<std::string> queue;
  bool writing = false;
  bool running = false;
  bool welcomed = false;
  bool binary = false;  // the server confirmed binary frames for this connection
  bool server_snapshots = false;  // its welcome offered snapshot frames
  bool asked_binary = false;  // this connection's hello asked for them
  std::uint64_t max_message_bytes = 1u << 20;  // the server's, from welcome
  bool retired = false;  // ~client() has returned: queued work is dropped
  unsigned attempt = 0;
  std::uint64_t generation = 0;  // connection attempt, so stale handlers are ignored
  std::map<std::string, doc_state> docs;
  std::map<std::string, std::string> presence;  // our presence per doc, resent after reconnect
  protocol::decoder decoder;
  // Read from any thread:
  mutable std::mutex acked_mu;
  std::map<std::string, std::uint64_t> acked;  // guarded by acked_mu
  std::map<std::string, replica_id> replaced;  // docs whose replica id changed; guarded by acked_mu

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
    if (it == docs.end()) {
      doc_state d{document(opts.replica, opts.document), opts.replica, std::nullopt, {}};
      it = docs.emplace(id, std::move(d)).first;
    }
    return it->second;
  }
  // The replica the server's answers go into: the new one while a refused
  // replica id is being replaced.
  static document& target(doc_state& d) { return d.fresh ? *d.fresh : d.replica; }

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
    ws->text(!queue.front().empty() && queue.front()[0] == '{');  // binary frames never start with '{'
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
      self->asked_binary = self->opts.binary;
      self->send_raw(
          protocol::encode_hello({protocol::protocol_version, self->opts.name, self->opts.token, self->opts.binary}));
      self->read();
    });
  }

  void read() {
    ws->async_read(buffer, [self = shared_from_this(), gen = generation](beast::error_code ec, std::size_t) {
      if (gen != self->generation) return;
      if (ec) return self->lost();
      const std::size_t size = self->buffer.size();
      if (self->ws->got_text()) {
        self->buffer.prepare(protocol::decoder::padding);  // parsed in place, not copied
        auto data = self->buffer.data();
        self->handle(std::string_view(static_cast<const char*>(data.data()), size), size + protocol::decoder::padding);
      } else {
        auto data = self->buffer.data();
        self->handle_binary(std::string_view(static_cast<const char*>(data.data()), size));
      }
      self->buffer.consume(self->buffer.size());
      if (gen == self->generation) self->read();
    });
  }

  void send_open(const std::string& id, bool allow_snapshot = true) {
    doc_state& d = doc(id);
    document& t = target(d);
    d.snapshot_asked =
        allow_snapshot && opts.snapshot && server_snapshots && t.version().empty() && t.pending_ops() == 0;
    send(protocol::encode_open(id, t.version(), 0, d.snapshot_asked));
  }

  // The answer to an open that asked for a snapshot: loaded into the replica
  // only if it is still empty (a local edit since would be lost otherwise).
  // If it cannot be, the document is opened again without asking, and the
  // first sync (which has no ops) is skipped.
  void load_snapshot(const protocol::binary_snapshot& s) {
    auto it = docs.find(s.doc);
    if (it == docs.end() || !it->second.snapshot_asked) {
      if (handlers.on_error) handlers.on_error("client_decode", "a snapshot frame this client did not ask for");
      return;
    }
    doc_state& d = it->second;
    d.snapshot_asked = false;
    result<document> loaded = status(error_code::invalid_argument, "the replica is no longer empty");
    if (target(d).version().empty() && target(d).pending_ops() == 0)
      loaded = document::decode_snapshot(s.bytes, target(d).replica(), opts.document);
    if (!loaded.ok()) {
      if (handlers.on_error)
        handlers.on_error("client_decode", "cannot load the snapshot of " + s.doc + ": " + loaded.error().to_string());
      d.skip_sync = true;
      send_open(s.doc, false);
      return;
    }
    if (d.fresh) {
      // The app shows the old replica, which has this text already.
      d.fresh = std::move(loaded.value());
      return;
    }
    d.replica = std::move(loaded.value());
    if (handlers.on_remote && d.replica.length() > 0) {
      std::vector<text_change> changes{text_change{text_change::kind::insert, 0, d.replica.length(), d.replica.text()}};
      handlers.on_remote(it->first, {}, changes);
    }
  }

  // A message from the server. Frames it sends are trusted to be well
  // formed; one that is not is reported through on_error and skipped.
  void handle(std::string_view frame, std::size_t readable) {
    auto decoded = decoder.server(frame, protocol::server_message_limits, readable);
    if (auto* e = std::get_if<protocol::decode_error>(&decoded)) {
      // A message type from a newer server is not for us; anything else
      // undecodable is reported (as a client-side problem, not a server code).
      if (e->kind != protocol::error_kind::unknown_type && handlers.on_error)
        handlers.on_error("client_decode", "undecodable message from the server: " + e->message);
      return;
    }
    std::visit([this](auto& m) { on_message(m); }, std::get<protocol::server_message>(decoded));
  }

  void handle_binary(std::string_view frame) {
    auto decoded = protocol::decoder::binary(frame, protocol::server_message_limits);
    if (auto* e = std::get_if<protocol::decode_error>(&decoded)) {
      if (handlers.on_error) handlers.on_error("client_decode", "undecodable binary frame from the server: " + e->message);
      return;
    }
    auto& m = std::get<protocol::binary_message>(decoded);
    if (auto* s = std::get_if<protocol::binary_snapshot>(&m)) return load_snapshot(*s);  // before the sync gives the ref
    const std::uint64_t ref = std::visit([](const auto& x) { return x.ref; }, m);
    for (auto& [id, d] : docs) {
      if (d.ref != ref) continue;
      if (auto* o = std::get_if<protocol::binary_ops>(&m)) {
        apply_remote(id, d, o->ops);
      } else if (auto* k = std::get_if<protocol::binary_ack>(&m)) {
        protocol::ack_msg a{id, std::move(k->version)};
        on_message(a);
      }
      return;
    }
  }

  // Sends our ops of `id` in the connection's format, in as many messages as
  // the server's limits need (a paste or long offline work can be large).
  void send_ops(const std::string& id, const doc_state& d, const std::vector<operation>& ops) {
    const std::size_t budget = std::max<std::uint64_t>(4096, max_message_bytes / 2);
    auto frames = binary && d.ref ? protocol::encode_binary_ops_chunked(d.ref, ops, budget)
                                  : protocol::encode_ops_chunked(id, ops, budget);
    for (auto& f : frames) send(std::move(f));
  }

  void on_message(protocol::welcome_msg& w) {
    binary = w.binary;
    server_snapshots = w.binary && w.snapshot;
    if (w.max_message_bytes) max_message_bytes = w.max_message_bytes;
    welcomed = true;
    attempt = 0;
    set_state(connection_state::syncing);
    for (auto& [id, d] : docs) {
      d.synced = false;
      d.skip_sync = false;
      send_open(id);
    }
    if (docs.empty()) {
      set_state(connection_state::online);
      if (handlers.on_synced) handlers.on_synced();
    }
  }
  void on_message(protocol::error_msg& m) {
    if (!welcomed && asked_binary && m.kind == protocol::error_kind::bad_message) {
      // A server from before binary frames refuses hello's "binary" field
      // and keeps the connection: say hello again without it.
      asked_binary = false;
      send_raw(protocol::encode_hello({protocol::protocol_version, opts.name, opts.token, false}));
      return;
    }
    if (handlers.on_error) handlers.on_error(m.code, m.message);
    if (m.kind == protocol::error_kind::forbidden) {
      auto it = docs.find(m.doc);
      if (it != docs.end() && !it->second.fresh && names_replica(m.message, it->second.id)) rotate(it->first, it->second);
    }
  }

  // True when a `forbidden` message names `id` among the refused replica ids
  // ("replica id 5 belongs", "replica id 5, 9 belong": docs/protocol.md).
  static bool names_replica(std::string_view msg, replica_id id) {
    const std::string_view head = "replica id ";
    auto at = msg.find(head);
    if (at == std::string_view::npos) return false;
    std::string_view rest = msg.substr(at + head.size());
    rest = rest.substr(0, rest.find(" belong"));
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      replica_id r = 0;
      auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), r);
      if (ec == std::errc() && p == item.data() + item.size() && r == id) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return false;
  }

  // The server will never take ops of `d` under its replica id: open `id`
  // again into a new replica under a fresh id, which takes over at the sync
  // (finish_rotation). The old replica stays what edit() and read() see
  // until then, so the app's view never jumps.
  void rotate(const std::string& id, doc_state& d) {
    replica_id fresh_id = d.id;
    while (fresh_id == d.id || fresh_id == opts.replica) fresh_id = (rng() & max_replica_id) | 1;
    d.fresh.emplace(fresh_id, opts.document);
    d.synced = false;
    d.skip_sync = false;
    // Every earlier open was answered already (the refusal answers ops sent
    // after a sync), so the next sync answers this open; after a reconnect,
    // the welcome opens the new replica's version likewise. No snapshot:
    // live ops of the document reach the new replica before one could.
    send_open(id, false);
  }

  // The server's state is in the new replica: carry over what this client
  // did under the refused id and the server never took, and make the new
  // replica the document's. By character id, not by comparing texts: the
  // owner of the refused id may have written under it meanwhile, and the old
  // replica refused those ops (their ids collide with ours) while the new one
  // has them; a text difference would erase them for everyone.
  void finish_rotation(const std::string& id, doc_state& d) {
    document& old = d.replica;
    document& next = *d.fresh;
    std::uint64_t acked_upto = 0;
    {
      std::lock_guard<std::mutex> lock(acked_mu);
      acked_upto = acked[id];
    }
    // Ours and refused: made here under the refused id and never acknowledged.
    auto refused = [&](op_id x) {
      if (x.replica != d.id || x.counter <= acked_upto) return false;
      for (const auto& [first, last] : d.own)
        if (x.counter >= first && x.counter <= last) return true;
      return false;
    };
    const std::uint64_t piece = std::max<std::uint64_t>(1, std::min<std::uint64_t>(65536, opts.document.max_op_ids));
    // Our deletions of others' characters.
    version_vector from = old.version();
    from.set(d.id, acked_upto);
    for (const auto& op : old.ops_since(from)) {
      if (op.kind != op_kind::erase || !refused(op.id)) continue;
      for (const auto& t : op.targets)
        for (std::uint64_t c = t.counter; c < t.counter + t.length; ++c) {
          const op_id x{t.replica, c};
          if (refused(x)) continue;
          if (auto at = next.position_of(x)) (void)next.erase(*at, 1);
        }
    }
    // Our characters the old replica shows, run by run, after the nearest
    // character before them that the new replica shows too.
    const std::string shown = old.text();
    std::optional<op_id> anchor;
    std::string run;
    auto flush = [&] {
      std::uint64_t at = 0;
      if (anchor)
        if (auto p = next.position_of(*anchor)) at = *p + 1;
      for (std::string_view rest = run; !rest.empty();) {
        const std::size_t bytes = std::min(rest.size(), utf8_offset_of_code_point(rest, piece));
        if (!next.insert(at, rest.substr(0, bytes)).ok()) break;
        at += count_code_points(rest.substr(0, bytes));
        rest.remove_prefix(bytes);
      }
      run.clear();
    };
    std::size_t byte = 0;
    for (std::uint64_t pos = 0; pos < old.length() && byte < shown.size(); ++pos) {
      const std::size_t len = utf8_offset_of_code_point(std::string_view(shown).substr(byte), 1);
      auto x = old.id_at(pos);
      if (x.ok() && refused(x.value())) {
        run.append(shown, byte, len);
      } else {
        if (!run.empty()) flush();
        if (x.ok() && next.position_of(x.value())) anchor = x.value();
      }
      byte += len;
    }
    if (!run.empty()) flush();
    // The app shows the old text: tell it how the new one differs (others'
    // edits the old replica could not take), as one replacement.
    std::vector<text_change> changes;
    const std::string now = next.text();
    if (now != shown) {
      std::size_t p = 0;
      while (p < shown.size() && p < now.size() && shown[p] == now[p]) ++p;
      while (p > 0 && p < shown.size() && (static_cast<unsigned char>(shown[p]) & 0xC0) == 0x80) --p;
      std::size_t s = 0;
      while (s < shown.size() - p && s < now.size() - p && shown[shown.size() - 1 - s] == now[now.size() - 1 - s]) ++s;
      while (s > 0 && (static_cast<unsigned char>(shown[shown.size() - s]) & 0xC0) == 0x80) --s;
      const std::uint64_t at = count_code_points(std::string_view(shown).substr(0, p));
      const std::uint64_t gone = count_code_points(std::string_view(shown).substr(p, shown.size() - p - s));
      const std::string added = now.substr(p, now.size() - p - s);
      if (gone > 0) changes.push_back(text_change{text_change::kind::erase, at, gone, {}});
      if (!added.empty()) changes.push_back(text_change{text_change::kind::insert, at, count_code_points(added), added});
    }
    const replica_id old_id = d.id;
    d.id = next.replica();
    d.own.clear();
    if (const std::uint64_t made = next.version().get(d.id)) d.own.emplace_back(1, made);
    d.replica = std::move(next);
    d.fresh.reset();
    {
      std::lock_guard<std::mutex> lock(acked_mu);
      acked[id] = 0;
      replaced[id] = d.id;
    }
    if (handlers.on_replica_changed) handlers.on_replica_changed(id, old_id, d.id);
    if (handlers.on_remote && !changes.empty()) handlers.on_remote(id, {}, changes);
  }
  void on_message(protocol::pong_msg&) {}
  // Sent only to connections that asked for a write concern (open "regions"), which this client does not.
  void on_message(protocol::replicated_msg&) {}
  void on_message(protocol::closed_msg&) {}

  // Applies remote ops; on_remote hears of the ones the replica accepted
  // (applied, buffered or already known), never of a refused one, which is
  // reported through on_error instead.
  void apply_remote(const std::string& id, doc_state& d, const std::vector<operation>& ops) {
    std::vector<text_change> changes;
    std::vector<operation> accepted;
    accepted.reserve(ops.size());
    // While a refused replica id is replaced, the new replica gets them too
    // (what it cannot apply now it lacks, and the sync brings).
    if (d.fresh)
      for (const auto& op : ops) (void)d.fresh->apply(op);
    for (const auto& op : ops) {
      auto r = d.replica.apply(op, &changes);
      if (r.ok()) {
        accepted.push_back(op);
      } else if (handlers.on_error) {
        handlers.on_error("invalid_op", "refused an op from the server for " + id + ": " + r.error().to_string());
      }
    }
    if (handlers.on_remote && !accepted.empty()) handlers.on_remote(id, accepted, changes);
  }
  void on_message(protocol::ops_msg& m) {
    auto it = docs.find(m.doc);
    if (it != docs.end()) apply_remote(it->first, it->second, m.ops);
  }
  void on_message(protocol::sync_msg& m) {
    auto it = docs.find(m.doc);
    if (it == docs.end()) return;
    doc_state& d = it->second;
    d.ref = binary ? m.ref : 0;
    if (d.skip_sync) {
      d.skip_sync = false;
      return;
    }
    if (d.snapshot_asked && m.ops.empty() && !m.version.empty()) {
      // The snapshot the server sent in place of these ops never loaded (an
      // undecodable frame): ask again for the history as ops.
      if (handlers.on_error) handlers.on_error("client_decode", "the snapshot of " + m.doc + " did not arrive; opening again");
      send_open(m.doc, false);
      return;
    }
    d.snapshot_asked = false;
    apply_remote(it->first, d, m.ops);
    if (d.fresh) finish_rotation(it->first, d);
    // Give the server what it lacks: our edits made offline or never acknowledged.
    version_vector server = m.version;
    // Our own ops are counted from the last ack, not from the server's
    // version: if the server stored them but its ack was lost (it crashed
    // right after the commit), resending them is what earns the ack.
    {
      std::lock_guard<std::mutex> lock(acked_mu);
      const std::uint64_t a = acked[it->first];
      if (server.get(d.id) > a) server.set(d.id, a);
    }
    auto missing = d.replica.ops_since(server);
    if (!missing.empty()) send_ops(it->first, d, missing);
    d.synced = true;
    bool all = true;
    for (auto& [id, x] : docs) all &= x.synced;
    if (all) {
      set_state(connection_state::online);
      for (auto& [pid, state] : presence) send_presence(pid, state);
      if (handlers.on_synced) handlers.on_synced();
    }
  }
  void on_message(protocol::ack_msg& m) {
    auto it = docs.find(m.doc);
    if (it == docs.end()) return;
    const std::uint64_t c = m.version.get(it->second.id);
    {
      std::lock_guard<std::mutex> lock(acked_mu);
      auto& a = acked[it->first];
      if (c <= a) return;
      a = c;
    }
    if (handlers.on_ack) handlers.on_ack(it->first, c);
  }
  void on_message(protocol::peer_presence_msg& m) {
    if (handlers.on_presence && docs.count(m.doc)) handlers.on_presence(m.doc, m.session, m.state_json);
  }

  void send_presence(const std::string& id, const std::string& state) {
    send(protocol::encode_presence(id, state));
  }

  // Forgets the connection's state: what it still reports is ignored, its
  // unsent messages are dropped (the sync of the next connection resends
  // what matters) and documents wait for their next sync. A write in flight
  // when the connection went would otherwise leave `writing` set forever,
  // and the next connection would never send its hello.
  void forget_connection() {
    ++generation;
    queue.clear();
    writing = false;
    welcomed = false;
    for (auto& [id, d] : docs) {
      d.synced = false;
      d.ref = 0;
    }
  }

  void lost() {
    forget_connection();
    if (ws) {
      beast::error_code ec;
      beast::get_lowest_layer(*ws).socket().close(ec);
    }
    ws.reset();
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

replica_id client::replica(const std::string& doc) const {
  std::lock_guard<std::mutex> lock(p_->acked_mu);
  auto it = p_->replaced.find(doc);
  return it == p_->replaced.end() ? p_->opts.replica : it->second;
}

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
    c.forget_connection();
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
    for (const auto& op : ops) {
      if (op.id.replica != d.id || op.length() == 0) continue;
      const std::uint64_t last = op.id.counter + op.length() - 1;
      if (!d.own.empty() && d.own.back().second + 1 == op.id.counter)
        d.own.back().second = last;
      else
        d.own.emplace_back(op.id.counter, last);
    }
    // Not yet synced: the sync answer's "what the server lacks" carries them.
    if (!ops.empty() && d.synced) c.send_ops(doc, d, ops);
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
