#include "server/websocket_session.h"

#include <boost/asio/post.hpp>
#include <simdjson.h>

#include <atomic>

#include "protocol/messages.h"
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
}  // namespace

// ---- session_list -----------------------------------------------------------

void session_list::add(const std::shared_ptr<websocket_session>& s) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_[s->session_id()] = s;
}
void session_list::remove(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(id);
}
void session_list::close_all(const std::string& reason) {
  std::vector<std::shared_ptr<websocket_session>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, w] : sessions_)
      if (auto s = w.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->shutdown(reason);
}
std::size_t session_list::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

// ---- websocket_session ----------------------------------------------------------

websocket_session::websocket_session(net::ip::tcp::socket&& socket, server_context& ctx, session_list& list)
    : ws_(std::move(socket)), ctx_(ctx), list_(list), id_(g_next_session++) {
  ++ctx_.stats.connections;
}

websocket_session::~websocket_session() {
  --ctx_.stats.connections;
  ctx_.stats.send_queue_depth -= static_cast<std::int64_t>(queue_.size());
  list_.remove(id_);
}

void websocket_session::run(beast::http::request<beast::http::string_body> req) {
  list_.add(shared_from_this());
  websocket::stream_base::timeout t = websocket::stream_base::timeout::suggested(beast::role_type::server);
  t.idle_timeout = std::chrono::milliseconds(ctx_.config.ws_idle_timeout_ms);
  t.keep_alive_pings = true;
  ws_.set_option(t);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(beast::http::field::server, server_name); }));
  ws_.read_message_max(ctx_.config.max_message_bytes);
  ws_.async_accept(req, beast::bind_front_handler(&websocket_session::on_accept, shared_from_this()));
}

void websocket_session::on_accept(beast::error_code ec) {
  if (ec) {
    log(log_level::debug, "session {}: upgrade failed: {}", id_, ec.message());
    return;
  }
  log(log_level::debug, "session {} connected", id_);
  do_read();
}

void websocket_session::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&websocket_session::on_read, shared_from_this()));
}

void websocket_session::on_read(beast::error_code ec, std::size_t) {
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
  if (!ws_.got_text()) {
    reply(protocol::encode_error(error_kind::bad_message, "binary frames are not part of the protocol; send JSON text"));
  } else {
    auto data = buffer_.data();
    handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
  }
  buffer_.consume(buffer_.size());
  if (!closing_) do_read();
}

void websocket_session::reply(std::string message) { enqueue(std::make_shared<const std::string>(std::move(message))); }

void websocket_session::handle(std::string_view frame) {
  static const protocol::parse_limits limits{};
  // One parser per I/O thread, not per connection: a simdjson parser keeps
  // ~9 KiB of buffers, which idle connections would otherwise each hold.
  // Parsed messages own their data, so nothing outlives this call.
  static thread_local simdjson::dom::parser parser;
  auto parsed = protocol::parse_client_message(parser, frame, limits);
  if (auto* e = std::get_if<protocol::parse_error>(&parsed)) {
    ++ctx_.stats.errors_sent;
    reply(protocol::encode_error(e->kind, e->message, e->doc));
    return;
  }
  auto& msg = std::get<protocol::client_message>(parsed);
  auto self = shared_from_this();
  auto error = [&](error_kind k, const std::string& m, const std::string& doc = {}) {
    ++ctx_.stats.errors_sent;
    reply(protocol::encode_error(k, m, doc));
  };
  if (auto* h = std::get_if<protocol::hello_msg>(&msg)) {
    if (h->protocol != protocol::protocol_version) {
      error(error_kind::protocol_version,
            "this server speaks protocol " + std::to_string(protocol::protocol_version) + ", not " +
                std::to_string(h->protocol));
      return;
    }
    hello_ = true;
    reply(protocol::encode_welcome(server_name, ctx_.config.max_message_bytes));
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
  if (auto* o = std::get_if<protocol::open_msg>(&msg)) {
    if (!docs_.count(o->doc) && docs_.size() >= ctx_.config.max_docs_per_connection) {
      error(error_kind::limit,
            "a connection may open at most " + std::to_string(ctx_.config.max_docs_per_connection) + " documents",
            o->doc);
      return;
    }
    docs_.insert(o->doc);
    ctx_.rooms.acquire(o->doc)->join(self, std::move(o->version));
    return;
  }
  if (auto* c = std::get_if<protocol::close_msg>(&msg)) {
    if (docs_.erase(c->doc)) {
      if (auto room = ctx_.rooms.find(c->doc)) room->leave(id_);
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
  if (!docs_.count(doc)) {
    error(error_kind::not_open, "open the document before sending to it", doc);
    return;
  }
  if (auto* ops = std::get_if<protocol::ops_msg>(&msg)) {
    ctx_.rooms.acquire(doc)->submit(self, std::move(ops->ops));
  } else if (auto* p = std::get_if<protocol::presence_msg>(&msg)) {
    ctx_.rooms.acquire(doc)->presence(self, std::move(p->state_json));
  }
}

void websocket_session::send(std::shared_ptr<const std::string> message) {
  net::post(ws_.get_executor(), [self = shared_from_this(), m = std::move(message)]() mutable {
    self->enqueue(std::move(m));
  });
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
  ws_.text(true);
  ws_.async_write(net::buffer(*queue_.front()),
                  beast::bind_front_handler(&websocket_session::on_write, shared_from_this()));
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
    close_with(close_code_, close_reason_);  // the deferred close
    return;
  }
  if (!queue_.empty()) do_write();
}

void websocket_session::close_with(websocket::close_code code, std::string reason) {
  if (closed_) return;
  if (!closing_) {
    closing_ = true;
    ctx_.stats.send_queue_depth -= static_cast<std::int64_t>(queue_.size() - (writing_ ? 1 : 0));
    if (writing_) {
      // Keep the frame being written; close once it is done.
      auto front = std::move(queue_.front());
      queue_.clear();
      queue_.push_back(std::move(front));
    } else {
      queue_.clear();
    }
    close_code_ = code;
    close_reason_ = std::move(reason);
  }
  if (writing_) return;
  closed_ = true;
  leave_all();
  log(log_level::debug, "session {}: closing ({})", id_, close_reason_);
  ws_.async_close(websocket::close_reason(close_code_, close_reason_),
                  [self = shared_from_this()](beast::error_code ec) {
                    log(log_level::debug, "session {}: close done: {}", self->id_, ec.message());
                  });
}

void websocket_session::shutdown(std::string reason) {
  net::post(ws_.get_executor(), [self = shared_from_this(), r = std::move(reason)]() mutable {
    self->close_with(websocket::close_code::going_away, std::move(r));
  });
}

void websocket_session::leave_all() {
  for (const auto& d : docs_)
    if (auto room = ctx_.rooms.find(d)) room->leave(id_);
  docs_.clear();
}

}  // namespace weft::server
