#include "server/websocket_session.h"

#include <boost/asio/post.hpp>
#include <boost/beast/ssl.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <type_traits>

#include "weft/protocol.h"
#include "server/context.h"
#include "server/log.h"
#include "server/room.h"

namespace weft::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using protocol::error_kind;

namespace {
std::atomic<std::uint64_t> g_next_session{1};
constexpr const char* server_name = "weft 0.1.0";

// Test hooks (server_config::test, set only by in-process tests): true when `hook` names `doc`.
bool hooked(const std::string& hook, const std::string& doc) { return !hook.empty() && hook == doc; }

// Test hook throw_on_strand_open: the connection as its room sees it, but the
// room's first send to it throws, in the room's strand work.
class throw_once_subscriber final : public subscriber {
 public:
  explicit throw_once_subscriber(std::shared_ptr<subscriber> s) : s_(std::move(s)) {}
  std::uint64_t session_id() const noexcept override { return s_->session_id(); }
  bool binary() const noexcept override { return s_->binary(); }
  const std::string* identity() const noexcept override { return s_->identity(); }
  void send(std::shared_ptr<const std::string> message) override {
    if (!thrown_.exchange(true)) throw std::runtime_error("test hook: throw_on_strand_open");
    s_->send(std::move(message));
  }

 private:
  std::shared_ptr<subscriber> s_;
  std::atomic<bool> thrown_{false};
};
}  // namespace

// ---- session_list -----------------------------------------------------------

void session_list::add(websocket_session& s) {
  std::lock_guard<std::mutex> lock(mu_);
  s.prev_ = nullptr;
  s.next_ = head_;
  if (head_) head_->prev_ = &s;
  head_ = &s;
  ++size_;
}
void session_list::remove(websocket_session& s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (s.prev_) s.prev_->next_ = s.next_;
  else if (head_ == &s) head_ = s.next_;
  else return;  // never added
  if (s.next_) s.next_->prev_ = s.prev_;
  s.prev_ = s.next_ = nullptr;
  --size_;
}
std::vector<std::shared_ptr<websocket_session>> session_list::live() {
  std::vector<std::shared_ptr<websocket_session>> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.reserve(size_);
  // A session whose last reference is gone but whose destructor has not yet
  // unlinked it is still valid memory here (remove() waits for mu_); its weak
  // reference has expired, so it is skipped.
  for (websocket_session* s = head_; s; s = s->next_)
    if (auto p = s->weak_from_this().lock()) out.push_back(std::move(p));
  return out;
}
void session_list::close_all(const std::string& reason) {
  for (auto& s : live()) s->shutdown(reason);
}
void session_list::check_all_alive() {
  for (auto& s : live()) s->check_alive();
}
void session_list::recheck_tokens() {
  for (auto& s : live()) s->recheck_token();
}
std::size_t session_list::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

// ---- transports ------------------------------------------------------------------

namespace {

// The session over one concrete stream type: plain TCP or TLS over TCP.
template <class Stream>
class websocket_transport final : public websocket_session {
 public:
  websocket_transport(Stream&& stream, server_context& ctx, session_list& list, upgrade_info info)
      : websocket_session(ctx, list, std::move(info)), ws_(std::move(stream)) {}

  void run(beast::http::request<beast::http::string_body> req) {
    // Beast times the opening and closing handshakes; idle connections are
    // checked by the server's liveness rounds (check_alive), so that no
    // connection keeps a timer wait pending while it idles.
    websocket::stream_base::timeout t = websocket::stream_base::timeout::suggested(beast::role_type::server);
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws_.set_option(t);
    // Pongs (and pings, closes) count as signs of life. The stream lives
    // inside this session and calls back only from its own reads.
    ws_.control_callback([this](websocket::frame_type, beast::string_view) { heard_from_peer(); });
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(beast::http::field::server, server_name); }));
    ws_.read_message_max(ctx_.config.max_message_bytes);
    ws_.async_accept(req, [self = self()](beast::error_code ec) { self->on_accept(ec); });
  }

 private:
  std::shared_ptr<websocket_transport> self() {
    return std::static_pointer_cast<websocket_transport>(shared_from_this());
  }
  void post(std::function<void()> f) override { net::post(ws_.get_executor(), std::move(f)); }
  // The broadcast path: straight onto the strand, without a std::function
  // (Asio recycles the handler's memory, so a keystroke's fan-out does not
  // allocate per recipient).
  void send(std::shared_ptr<const std::string> message) override {
    net::post(ws_.get_executor(), [self = self(), m = std::move(message)]() mutable { self->enqueue(std::move(m)); });
  }
  void read_message() override {
    // Waiting for a client's next message holds the buffer it will land in
    // for as long as the client stays quiet, and most connections are quiet:
    // wait with a small buffer, which fits a keystroke, and read the rest of a
    // longer message only once it is arriving.
    // (The plain-buffer overload: the dynamic-buffer one wraps the pending
    // operation in one more layer of state.)
    ws_.async_read_some(buffer_.prepare(idle_read_bytes), [self = self()](beast::error_code ec, std::size_t n) {
      self->buffer_.commit(n);
      if (ec || self->ws_.is_message_done()) {
        self->on_read(ec, n);
        return;
      }
      self->ws_.async_read(self->buffer_, [self, n](beast::error_code ec, std::size_t more) { self->on_read(ec, n + more); });
    });
  }
  bool got_text() const override { return ws_.got_text(); }
  void write_message(const std::string& message) override {
    ws_.text(!message.empty() && message[0] == '{');  // binary frames never start with '{' (protocol.h)
    ws_.async_write(net::buffer(message),
                    [self = self()](beast::error_code ec, std::size_t n) { self->on_write(ec, n); });
  }
  void close_transport(websocket::close_code code, const std::string& reason) override {
    ws_.async_close(websocket::close_reason(code, reason), [self = shared_from_this(), id = session_id()](beast::error_code ec) {
      log(log_level::debug, "session {}: close done: {}", id, ec.message());
    });
  }

  void send_ping() override {
    ws_.async_ping({}, [self = self()](beast::error_code) { self->on_ping_sent(); });
  }
  void abort_transport() override {
    beast::close_socket(beast::get_lowest_layer(ws_));
  }

  websocket::stream<Stream, false> ws_;  // no permessage-deflate: keystrokes are tiny
};

}  // namespace

namespace {
// A socket whose executor is the connection's strand by type, not behind
// any_io_executor's type erasure: every pending operation of an idle
// connection carries copies of its executor, and this one is two pointers.
using strand_type = net::strand<net::io_context::executor_type>;
using strand_socket = net::basic_stream_socket<net::ip::tcp, strand_type>;
}  // namespace

template <class Stream>
void start_websocket_session(Stream&& stream, beast::http::request<beast::http::string_body> req, server_context& ctx,
                             session_list& list, upgrade_info info) {
  if constexpr (std::is_same_v<Stream, net::ip::tcp::socket>) {
    const strand_type* strand = stream.get_executor().template target<strand_type>();
    beast::error_code ec;
    auto protocol = stream.local_endpoint(ec).protocol();
    if (!strand || ec) return;  // connection already gone (or not on a strand: never happens)
    const auto fd = stream.release(ec);
    if (ec) return;
    strand_socket socket(*strand);
    socket.assign(protocol, fd, ec);
    if (ec) {
      ::close(fd);
      return;
    }
    auto s = std::make_shared<websocket_transport<strand_socket>>(std::move(socket), ctx, list, std::move(info));
    list.add(*s);
    s->run(std::move(req));
  } else {
    auto s = std::make_shared<websocket_transport<Stream>>(std::move(stream), ctx, list, std::move(info));
    list.add(*s);
    s->run(std::move(req));
  }
}

template void start_websocket_session<net::ip::tcp::socket>(net::ip::tcp::socket&&,
                                                            beast::http::request<beast::http::string_body>,
                                                            server_context&, session_list&, upgrade_info);
template void start_websocket_session<beast::ssl_stream<beast::tcp_stream>>(
    beast::ssl_stream<beast::tcp_stream>&&, beast::http::request<beast::http::string_body>, server_context&,
    session_list&, upgrade_info);

// ---- websocket_session ----------------------------------------------------------

websocket_session::websocket_session(server_context& ctx, session_list& list, upgrade_info info)
    : ctx_(ctx),
      list_(list),
      id_(g_next_session++),
      slot_(std::move(info.slot)),
      claims_(std::move(info.claims)),
      rate_(ctx.config.max_messages_per_second, ctx.config.message_burst) {
  ++ctx_.stats.connections;
  if (claims_) identity_ = std::make_unique<const std::string>(claims_->subject);
}

websocket_session::~websocket_session() {
  --ctx_.stats.connections;
  ctx_.stats.send_queue_depth -= static_cast<std::int64_t>(queue_.size());
  list_.remove(*this);
}

void websocket_session::on_accept(beast::error_code ec) {
  accepted_ = true;
  if (ec) {
    log(log_level::debug, "session {}: upgrade failed: {}", id_, ec.message());
    closed_ = true;
    return;
  }
  if (closing_) {  // shut down during the handshake: close now that it is done
    close_with(close_code_, close_reason_);
    return;
  }
  log(log_level::debug, "session {} connected from {}", id_, slot_.address());
  read_message();
}

void websocket_session::on_read(beast::error_code ec, std::size_t) {
  heard_ = true;
  if (!ec && (closing_ || closed_)) {
    // Frames that arrive while we close (Beast still delivers them until the
    // peer's close frame) are not served: an open now would pin a room that
    // nobody releases.
    buffer_.consume(buffer_.size());
    return;
  }
  if (ec) {
    if (ec == websocket::error::message_too_big)
      log(log_level::info, "session {}: closed: message over {} bytes", id_, ctx_.config.max_message_bytes);
    else if (ec != websocket::error::closed && ec != net::error::operation_aborted)
      log(log_level::debug, "session {}: read ended: {}", id_, ec.message());
    closed_ = true;
    leave_all();
    return;
  }
  ++ctx_.stats.messages_received;
  if (!rate_.take()) {
    ++ctx_.stats.errors_sent;
    std::string why = "more than " + std::to_string(ctx_.config.max_messages_per_second) +
                      " messages per second; reconnect later (unacknowledged ops are resent on sync)";
    ++ctx_.stats.rate_limited;
    log(log_level::info, "session {} ({}): rate limit: closing", id_, slot_.address());
    close_with(websocket::close_code::policy_error, "rate limit exceeded",
               protocol::encode_error(error_kind::rate_limited, why));
    return;
  }
  // A bug in handling one message (an exception) is that message's error,
  // not the server's end: it is answered as `internal`, counted and logged.
  try {
    if (!got_text()) {
      if (binary_.load(std::memory_order_relaxed)) {
        auto data = buffer_.data();
        handle_binary(std::string_view(static_cast<const char*>(data.data()), data.size()));
      } else {
        error(error_kind::bad_message,
              "binary frames are off on this connection: ask for them in hello (\"binary\":true) or send JSON text");
      }
    } else {
      // Room after the message lets the decoder parse it where it lies,
      // without a copy (the bytes there are never read as JSON).
      const std::size_t size = buffer_.size();
      buffer_.prepare(protocol::decoder::padding);
      auto data = buffer_.data();
      handle(std::string_view(static_cast<const char*>(data.data()), size), size + protocol::decoder::padding);
    }
  } catch (const std::exception& e) {
    ++ctx_.stats.internal_errors;
    log(log_level::error, "session {}: internal error handling a message: {}", id_, e.what());
    error(error_kind::internal, std::string("internal error: ") + e.what());
  }
  buffer_.consume(buffer_.size());
  // A long message (a sync, a paste) grew the buffer: give that back rather
  // than hold it while the connection idles.
  if (buffer_.capacity() > 4 * idle_read_bytes) buffer_.shrink_to_fit();
  if (!closing_) read_message();
}

bool websocket_session::authorised(const std::string& hello_token) {
  if (!ctx_.auth) return true;
  if (!hello_token.empty()) {
    auto r = ctx_.auth->verify(hello_token, unix_now());
    if (!r.ok()) {
      ++ctx_.stats.auth_failures;
      log(log_level::info, "session {} ({}): token refused: {}", id_, slot_.address(), r.error().detail());
      close_with(websocket::close_code::policy_error, "unauthorized",
                 protocol::encode_error(error_kind::unauthorized, r.error().detail()));
      return false;
    }
    if (identity_ && *identity_ != r.value().subject) {
      // Replica ids belong to an identity: one connection is one user.
      error(error_kind::forbidden, "this connection is authenticated as another user; connect again to switch users");
      return false;
    }
    claims_ = std::make_unique<token_claims>(std::move(r.value()));
    if (!identity_) identity_ = std::make_unique<const std::string>(claims_->subject);
    log(log_level::debug, "session {}: authenticated as \"{}\"", id_, claims_->subject);
  }
  if (!claims_) {
    ++ctx_.stats.auth_failures;
    close_with(websocket::close_code::policy_error, "unauthorized",
               protocol::encode_error(error_kind::unauthorized, "this server requires a token: send it in hello's "
                                                                "\"token\" or an Authorization: Bearer header"));
    return false;
  }
  if (claims_->expired(unix_now())) {
    close_with(websocket::close_code::policy_error, "token expired",
               protocol::encode_error(error_kind::unauthorized, "token expired; reconnect with a fresh one"));
    return false;
  }
  return true;
}

void websocket_session::reply(std::string message) { enqueue(std::make_shared<const std::string>(std::move(message))); }

void websocket_session::handle(std::string_view frame, std::size_t readable) {
  static const protocol::decode_limits limits{};
  // One decoder per I/O thread, not per connection: its parser keeps
  // ~9 KiB of buffers, which idle connections would otherwise each hold.
  // Decoded messages own their data, so nothing outlives this call.
  static thread_local protocol::decoder decoder;
  auto parsed = decoder.client(frame, limits, readable);
  if (auto* e = std::get_if<protocol::decode_error>(&parsed)) {
    error(e->kind, e->message, e->doc);
    return;
  }
  auto& msg = std::get<protocol::client_message>(parsed);
  auto self = shared_from_this();
  if (auto* h = std::get_if<protocol::hello_msg>(&msg)) {
    if (h->protocol != protocol::protocol_version) {
      error(error_kind::protocol_version,
            "this server speaks protocol " + std::to_string(protocol::protocol_version) + ", not " +
                std::to_string(h->protocol));
      return;
    }
    if (!authorised(h->token)) return;
    hello_ = true;
    binary_.store(h->binary, std::memory_order_relaxed);
    // Snapshot frames are binary: offered on binary connections only.
    reply(protocol::encode_welcome(server_name, ctx_.config.max_message_bytes, h->binary, h->binary));
    return;
  }
  if (std::holds_alternative<protocol::ping_msg>(msg)) {
    reply(protocol::encode_pong());
    return;
  }
  if (!hello_) {
    error(error_kind::not_hello, "send {\"type\":\"hello\",\"protocol\":1} first");
    return;
  }
  if (!authorised()) return;  // the token may have expired since hello
  if (auto* o = std::get_if<protocol::open_msg>(&msg)) {
    if (hooked(ctx_.config.test.throw_on_open, o->doc)) throw std::runtime_error("test hook: throw_on_open");
    if (claims_ && claims_->rights_for(o->doc) == access::none) {
      error(error_kind::forbidden, "your token gives no access to this document", o->doc);
      return;
    }
    document_room* room = room_of(o->doc);
    if (!room && docs_.size() >= ctx_.config.max_docs_per_connection) {
      error(error_kind::limit,
            "a connection may open at most " + std::to_string(ctx_.config.max_docs_per_connection) + " documents",
            o->doc);
      return;
    }
    if (!room) {
      docs_.push_back(open_doc{o->doc, ctx_.rooms.acquire(o->doc)});  // pinned until close or disconnect
      room = docs_.back().room.get();
    }
    if (hooked(ctx_.config.test.throw_on_strand_open, o->doc))
      room->join(std::make_shared<throw_once_subscriber>(self), std::move(o->version), o->regions, o->snapshot);
    else
      room->join(self, std::move(o->version), o->regions, o->snapshot);
    return;
  }
  if (auto* c = std::get_if<protocol::close_msg>(&msg)) {
    auto it = std::find_if(docs_.begin(), docs_.end(), [&](const open_doc& d) { return d.id == c->doc; });
    if (it != docs_.end()) {
      it->room->leave(id_);
      ctx_.rooms.release(it->room);
      docs_.erase(it);
    }
    reply(protocol::encode_closed(c->doc));
    return;
  }
  const std::string& doc = std::visit(
      [](const auto& m) -> const std::string& {
        if constexpr (requires { m.doc; }) {
          return m.doc;
        } else {
          static const std::string none;
          return none;
        }
      },
      msg);
  document_room* room = room_of(doc);
  if (!room) {
    error(error_kind::not_open, "open the document before sending to it", doc);
    return;
  }
  if (auto* ops = std::get_if<protocol::ops_msg>(&msg)) {
    submit(doc, *room, std::move(ops->ops), ops->regions);
  } else if (auto* p = std::get_if<protocol::presence_msg>(&msg)) {
    room->presence(self, std::move(p->state_json));
  }
}

void websocket_session::handle_binary(std::string_view frame) {
  static const protocol::decode_limits limits{};
  auto decoded = protocol::decoder::binary(frame, limits);
  if (auto* e = std::get_if<protocol::decode_error>(&decoded)) {
    error(e->kind, e->message);
    return;
  }
  auto* ops = std::get_if<protocol::binary_ops>(&std::get<protocol::binary_message>(decoded));
  if (!ops) {
    error(error_kind::bad_message, "clients send only ops frames (kind 1)");
    return;
  }
  if (!authorised()) return;  // the token may have expired since hello
  const open_doc* d = nullptr;
  for (const auto& x : docs_)
    if (x.room->ref() == ops->ref) d = &x;
  if (!d) {
    error(error_kind::not_open, "no open document has ref " + std::to_string(ops->ref) + " on this connection");
    return;
  }
  submit(d->id, *d->room, std::move(ops->ops));
}

void websocket_session::submit(const std::string& doc, document_room& room, std::vector<operation> ops,
                               std::uint64_t regions) {
  if (claims_ && claims_->rights_for(doc) != access::write) {
    error(error_kind::forbidden, "read-only access: your token does not allow editing this document", doc);
    return;
  }
  room.submit(shared_from_this(), std::move(ops), regions);
}

void websocket_session::error(error_kind kind, const std::string& message, const std::string& doc) {
  ++ctx_.stats.errors_sent;
  reply(protocol::encode_error(kind, message, doc));
}

void websocket_session::enqueue(std::shared_ptr<const std::string> message) {
  if (closing_ || closed_) return;
  if (queue_.size() >= ctx_.config.max_send_queue) {
    ++ctx_.stats.slow_consumers_dropped;
    log(log_level::info, "session {}: send queue full ({} messages): disconnecting slow client", id_, queue_.size());
    close_with(websocket::close_code::try_again_later, "send queue full: client too slow; reconnect to resync");
    return;
  }
  queue_.push_back(std::move(message));
  ++ctx_.stats.send_queue_depth;
  if (!writing_) do_write();
}

void websocket_session::do_write() {
  writing_ = true;
  write_message(*queue_.front());
}

void websocket_session::on_write(beast::error_code ec, std::size_t bytes) {
  writing_ = false;
  queue_.pop_front();
  --ctx_.stats.send_queue_depth;
  if (ec) {
    closed_ = true;
    leave_all();
    return;
  }
  ++ctx_.stats.messages_sent;
  ctx_.stats.bytes_sent += bytes;
  if (closing_) {
    close_with(close_code_, close_reason_);  // the rest of the close sequence
    return;
  }
  if (!queue_.empty()) do_write();
}

void websocket_session::close_with(websocket::close_code code, std::string reason, std::string last_message) {
  if (closed_) return;
  if (!closing_) {
    closing_ = true;
    // Drop what is queued (the frame being written, if any, completes), then
    // say why, then close.
    const std::size_t keep = writing_ ? 1 : 0;
    ctx_.stats.send_queue_depth -= static_cast<std::int64_t>(queue_.size() - keep);
    queue_.keep_first(keep);
    if (!last_message.empty()) {
      queue_.push_back(std::make_shared<const std::string>(std::move(last_message)));
      ++ctx_.stats.send_queue_depth;
    }
    close_code_ = code;
    close_reason_ = std::move(reason);
  }
  // The handshake's own write must finish first: on_accept() comes back here.
  if (!accepted_) return;
  if (writing_) return;  // on_write() comes back here
  if (!queue_.empty()) {
    do_write();
    return;
  }
  closed_ = true;
  leave_all();
  log(log_level::debug, "session {}: closing ({})", id_, close_reason_);
  close_transport(close_code_, close_reason_);
}

void websocket_session::check_alive() {
  post([self = shared_from_this()] {
    // Before the upgrade completes Beast's handshake timeout applies; once
    // closing, its close timeout does.
    if (!self->accepted_ || self->closing_ || self->closed_) return;
    if (self->heard_) {
      self->heard_ = false;
      self->pinged_ = false;
      return;
    }
    if (!self->pinged_) {
      self->pinged_ = true;
      if (!self->ping_in_flight_) {
        self->ping_in_flight_ = true;
        self->send_ping();
      }
      return;
    }
    ++self->ctx_.stats.idle_timeouts;
    log(log_level::info, "session {} ({}): no answer to a ping for {} ms: closing", self->id_, self->slot_.address(),
        self->ctx_.config.ws_idle_timeout_ms / 2);
    self->closed_ = true;
    self->leave_all();
    self->abort_transport();
  });
}

// ---- revocation (--auth-deny-list) ---------------------------------------------------
// Checked when the list changes, not per message: messages stay off its lock.
void websocket_session::recheck_token() {
  post([self = shared_from_this()] {
    if (!self->claims_ || !self->ctx_.auth || !self->ctx_.auth->revoked(*self->claims_)) return;
    log(log_level::info, "session {} ({}): token revoked: closing", self->id_, self->slot_.address());
    self->close_with(websocket::close_code::policy_error, "unauthorized",
                     protocol::encode_error(error_kind::unauthorized,
                                            "token revoked (its jti is on the deny list); reconnect with another"));
  });
}

void websocket_session::shutdown(std::string reason) {
  post([self = shared_from_this(), r = std::move(reason)]() mutable {
    self->close_with(websocket::close_code::going_away, std::move(r));
  });
}

void websocket_session::leave_all() {
  for (const auto& d : docs_) {
    d.room->leave(id_);
    ctx_.rooms.release(d.room);
  }
  docs_.clear();
}

}  // namespace weft::server
