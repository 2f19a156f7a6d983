#include "server/http_session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "weft/protocol.h"
#include "server/context.h"
#include "server/log.h"
#include "server/room.h"
#include "server/peer_certificate.h"
#include "server/peer_link.h"
#include "server/replicator.h"
#include "server/websocket_session.h"

namespace weft::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

using response = http::response<http::string_body>;

response make(http::status st, unsigned version, bool keep_alive, std::string body, std::string_view type) {
  response res{st, version};
  res.set(http::field::server, "weft 0.1.0");
  res.set(http::field::content_type, type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

std::string_view mime_type(std::string_view path) {
  auto ext = path.substr(path.rfind('.') == std::string_view::npos ? path.size() : path.rfind('.'));
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".wasm") return "application/wasm";
  if (ext == ".json") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  return "application/octet-stream";
}

/// The value of `name` in a query string ("a=1&b=x%2Fy"), percent-decoded
/// ('+' stays itself); "" when absent, nullopt when its escapes are broken.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '%') {
        out += raw[i];
        continue;
      }
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      };
      if (i + 2 >= raw.size()) return std::nullopt;
      int hi = hex(raw[i + 1]), lo = hex(raw[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    return out;
  }
  return std::string();
}

std::string_view bearer_token(const http::request<http::string_body>& req) {
  auto it = req.find(http::field::authorization);
  if (it == req.end()) return {};
  std::string_view v(it->value().data(), it->value().size());
  constexpr std::string_view scheme = "Bearer ";
  if (v.size() <= scheme.size() || v.substr(0, scheme.size()) != scheme) return {};
  return v.substr(scheme.size());
}

/// A 401 answer that names the scheme (RFC 6750).
response unauthorized(unsigned version, bool keep_alive, std::string detail) {
  auto res = make(http::status::unauthorized, version, keep_alive, std::move(detail) + "\n", "text/plain");
  res.set(http::field::www_authenticate, "Bearer");
  return res;
}

template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
 public:
  http_session(Stream&& stream, server_context& ctx, session_list& sessions, connection_slot slot)
      : stream_(std::move(stream)), ctx_(ctx), sessions_(sessions), slot_(std::move(slot)) {}

  void run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->start(); });
  }

 private:
  auto& tcp() { return beast::get_lowest_layer(stream_); }
  void start();
  void do_read();
  void on_read(beast::error_code ec, std::size_t);
  void respond(response res);
  void on_write(bool keep_alive, beast::error_code ec, std::size_t);
  void handle(http::request<http::string_body> req);
  void upgrade(http::request<http::string_body> req);
  void serve_file(const http::request<http::string_body>& req, std::string_view target);
  void shutdown();
  /// Verifies an Authorization header's token; counts refusals.
  result<token_claims> verify_bearer(std::string_view token);
  /// The verified claims of the request's bearer token (`what`: how the
  /// answer names the token it wants); nullopt after answering 401.
  std::optional<token_claims> bearer_claims(const http::request<http::string_body>& req, unsigned v, bool ka,
                                            std::string_view what);
  /// POST /api/cluster/forget?node=NAME: forgets a peer that left for good
  /// (replicator::forget, then its checkpoints in storage), as --forget-peer
  /// does at startup.
  void forget_peer(unsigned v, bool ka, const std::string& query, const http::request<http::string_body>& req);

  Stream stream_;
  beast::flat_buffer buffer_;
  server_context& ctx_;
  session_list& sessions_;
  connection_slot slot_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<response> res_;
};

constexpr bool is_tls(const beast::tcp_stream*) { return false; }
constexpr bool is_tls(const beast::ssl_stream<beast::tcp_stream>*) { return true; }

}  // namespace

template <class Stream>
void http_session<Stream>::start() {
  if constexpr (is_tls(static_cast<Stream*>(nullptr))) {
    tcp().expires_after(std::chrono::seconds(30));
    stream_.async_handshake(net::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
      if (ec) {
        log(log_level::debug, "TLS handshake failed: {}", ec.message());
        return;
      }
      self->do_read();
    });
  } else {
    do_read();
  }
}

template <class Stream>
void http_session<Stream>::do_read() {
  parser_.emplace();
  parser_->body_limit(16 * 1024);
  parser_->header_limit(16 * 1024);
  tcp().expires_after(std::chrono::seconds(30));
  http::async_read(stream_, buffer_, *parser_,
                   [self = this->shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
}

template <class Stream>
void http_session<Stream>::shutdown() {
  beast::error_code ec;
  if constexpr (is_tls(static_cast<Stream*>(nullptr))) {
    tcp().expires_after(std::chrono::seconds(5));
    stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
  } else {
    tcp().socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  }
}

template <class Stream>
void http_session<Stream>::forget_peer(unsigned v, bool ka, const std::string& query,
                                       const http::request<http::string_body>& req) {
  auto plain = [&](http::status st, std::string body) { respond(make(st, v, ka, std::move(body) + "\n", "text/plain")); };
  // Who may: with auth on, a peer token (what an operator of the cluster
  // holds); without, only a process on this machine (the trust model of
  // running without tokens).
  if (ctx_.auth) {
    auto claims = bearer_claims(req, v, ka, "PEER-TOKEN");
    if (!claims) return;
    if (!claims->peer) {
      ++ctx_.stats.auth_failures;
      plain(http::status::forbidden, "forgetting a peer takes a peer token (weft-token --peer)");
      return;
    }
  } else {
    boost::system::error_code ec;
    auto addr = net::ip::make_address(slot_.address(), ec);
    if (ec || !addr.is_loopback()) {
      plain(http::status::forbidden, "without tokens, only a process on this machine may forget a peer");
      return;
    }
  }
  // Browsers send Origin with every POST: a web page (any site, or a
  // rebound host name) must not make an operator's browser forget a peer.
  if (req.find(http::field::origin) != req.end()) {
    plain(http::status::forbidden, "forgetting a peer is not for web pages (a request with Origin)");
    return;
  }
  const std::string node = query_param(query, "node").value_or("");
  const bool valid = !node.empty() && node.size() <= 64 &&
                     std::all_of(node.begin(), node.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
                     });
  if (!valid) {
    plain(http::status::bad_request,
          "say which node: POST /api/cluster/forget?node=NAME (letters, digits, - _ .)[&url=PEER-URL]");
    return;
  }
  auto url = query_param(query, "url");
  if (!url) {
    plain(http::status::bad_request, "url= is not percent-encoded text");
    return;
  }
  if (!ctx_.replication) {
    plain(http::status::not_found, "this server does not replicate");
    return;
  }
  status st = ctx_.replication->can_forget(node, *url);
  if (!st.ok()) {
    plain(st.code() == error_code::invalid_operation ? http::status::conflict : http::status::bad_request,
          "cannot forget " + node + ": " + st.detail());
    return;
  }
  // Storage first: if its checkpoints cannot be dropped, the node keeps
  // dialling and reporting the peer as before.
  ctx_.store.forget_peer(node, [self = this->shared_from_this(), v, ka, node, url = *url](status s) {
    bool stopped = false;
    if (s.ok() || s.code() == error_code::invalid_operation) stopped = self->ctx_.replication->forget(node, url);
    net::post(self->stream_.get_executor(), [self, v, ka, node, stopped, s = std::move(s)] {
      const std::string dialling = stopped ? "; no longer dialled" : "";
      if (s.ok()) {
        log(log_level::info, "forgot peer {}: the log no longer keeps entries for it{}", node, dialling);
        self->respond(make(http::status::ok, v, ka,
                           "forgot " + node + ": its checkpoints are gone and the log compacted" + dialling + "\n",
                           "text/plain"));
      } else if (s.code() == error_code::invalid_operation && stopped) {
        log(log_level::info, "forgot peer {}: nothing was recorded for it; no longer dialled", node);
        self->respond(make(http::status::ok, v, ka, "nothing was recorded for " + node + "; no longer dialled\n",
                           "text/plain"));
      } else if (s.code() == error_code::invalid_operation) {
        self->respond(make(http::status::not_found, v, ka, "nothing is recorded for " + node + "\n", "text/plain"));
      } else {
        self->respond(make(http::status::service_unavailable, v, ka, "cannot forget " + node + ": " + s.detail() + "\n",
                           "text/plain"));
      }
    });
  });
}

template <class Stream>
std::optional<token_claims> http_session<Stream>::bearer_claims(const http::request<http::string_body>& req,
                                                               unsigned v, bool ka, std::string_view what) {
  std::string_view token = bearer_token(req);
  if (token.empty()) {
    ++ctx_.stats.auth_failures;
    respond(unauthorized(v, ka, "send Authorization: Bearer " + std::string(what)));
    return std::nullopt;
  }
  auto claims = verify_bearer(token);
  if (!claims.ok()) {
    respond(unauthorized(v, ka, claims.error().detail()));
    return std::nullopt;
  }
  return std::move(claims.value());
}

template <class Stream>
result<token_claims> http_session<Stream>::verify_bearer(std::string_view token) {
  auto claims = ctx_.auth->verify(token, unix_now());
  if (!claims.ok()) ++ctx_.stats.auth_failures;
  return claims;
}

template <class Stream>
void http_session<Stream>::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) {
    shutdown();
    return;
  }
  if (ec) return;
  if (!slot_.admitted()) {
    // Over the per-address limit: one clear answer, then the connection ends.
    ++ctx_.stats.connections_refused;
    auto res = make(http::status::too_many_requests, parser_->get().version(), false,
                    "too many connections from " + slot_.address() + " (limit " +
                        std::to_string(ctx_.connections.max_per_address()) + ")\n",
                    "text/plain");
    respond(std::move(res));
    return;
  }
  if (beast::websocket::is_upgrade(parser_->get())) {
    upgrade(parser_->release());
    return;
  }
  handle(parser_->release());
}

template <class Stream>
void http_session<Stream>::upgrade(http::request<http::string_body> req) {
  const unsigned v = req.version();
  if (!ctx_.config.allowed_origins.empty()) {
    auto it = req.find(http::field::origin);
    if (it != req.end()) {
      std::string_view origin(it->value().data(), it->value().size());
      bool allowed = false;
      for (const auto& o : ctx_.config.allowed_origins) allowed = allowed || o == origin;
      if (!allowed) {
        ++ctx_.stats.connections_refused;
        log(log_level::info, "refused a WebSocket from {}: Origin {} is not allowed", slot_.address(), origin);
        respond(make(http::status::forbidden, v, false, "this Origin may not connect (see --allowed-origin)\n",
                     "text/plain"));
        return;
      }
    }
  }
  upgrade_info info;
  if (ctx_.auth) {
    std::string_view token = bearer_token(req);
    if (!token.empty()) {
      auto claims = verify_bearer(token);
      if (!claims.ok()) {
        log(log_level::info, "refused a WebSocket from {}: {}", slot_.address(), claims.error().detail());
        respond(unauthorized(v, false, claims.error().detail()));
        return;
      }
      info.claims = std::make_unique<token_claims>(std::move(claims.value()));
    }
  }
  tcp().expires_never();
  std::string_view path(req.target().data(), req.target().size());
  if (path == "/peer" || path.starts_with("/peer?")) {
    // A replication link from another node: only with a peer token (when
    // tokens are required), here or in its hello.
    if (info.claims && !info.claims->peer) {
      ++ctx_.stats.auth_failures;
      respond(unauthorized(v, false, "a client token cannot open a replication link (weft-token --peer)"));
      return;
    }
    // With --peer-client-ca, only over TLS with a verified client
    // certificate; its names bind the node id the hello may give.
    std::vector<std::string> cert_names;
    if (!ctx_.config.peer_client_ca.empty()) {
      std::optional<std::vector<std::string>> names;
      if constexpr (is_tls(static_cast<Stream*>(nullptr))) names = verified_client_names(stream_.native_handle());
      if (!names || names->empty()) {  // (one naming nothing could claim to be any node)
        ++ctx_.stats.auth_failures;
        log(log_level::info, "refused a replication link from {}: no verified client certificate", slot_.address());
        respond(make(http::status::forbidden, v, false,
                     "a replication link needs a client certificate signed by a CA of this node's --peer-client-ca\n",
                     "text/plain"));
        return;
      }
      cert_names = std::move(*names);
    }
    // Counted against --max-connections-per-address like any connection.
    accept_peer_link(std::move(stream_), std::move(req), ctx_, std::shared_ptr<const token_claims>(std::move(info.claims)),
                     std::move(slot_), std::move(cert_names));
    return;
  }
  info.slot = std::move(slot_);
  if constexpr (is_tls(static_cast<Stream*>(nullptr))) {
    start_websocket_session(std::move(stream_), std::move(req), ctx_, sessions_, std::move(info));
  } else {
    // The WebSocket keeps its own timeouts; the bare socket spares every
    // connection tcp_stream's timer state.
    start_websocket_session(stream_.release_socket(), std::move(req), ctx_, sessions_, std::move(info));
  }
}

template <class Stream>
void http_session<Stream>::respond(response res) {
  bool keep_alive = res.keep_alive();
  res_ = std::make_shared<response>(std::move(res));
  http::async_write(stream_, *res_, [self = this->shared_from_this(), keep_alive](beast::error_code ec, std::size_t n) {
    self->on_write(keep_alive, ec, n);
  });
}

template <class Stream>
void http_session<Stream>::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
  res_.reset();
  if (ec) return;
  if (!keep_alive) {
    shutdown();
    return;
  }
  do_read();
}

template <class Stream>
void http_session<Stream>::handle(http::request<http::string_body> req) {
  const unsigned v = req.version();
  const bool ka = req.keep_alive();
  std::string target(req.target());
  std::string query;
  if (auto q = target.find('?'); q != std::string::npos) {
    query = target.substr(q + 1);
    target.resize(q);
  }
  if (target == "/api/cluster/forget" && req.method() == http::verb::post) {
    forget_peer(v, ka, query, req);
    return;
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    respond(make(http::status::method_not_allowed, v, ka, "only GET is served here\n", "text/plain"));
    return;
  }
  if (target == "/healthz") {
    // Degraded replication is reported, not fatal: the node keeps serving.
    auto degraded = ctx_.replication ? ctx_.replication->degraded() : std::nullopt;
    // So are a database that cannot be reached (edits wait, unacknowledged)
    // and a lost bus (clients here miss other nodes' edits until it is back).
    if (!degraded && !ctx_.store.reachable()) degraded = "storage unreachable; edits wait for it";
    if (!degraded && ctx_.region_bus && ctx_.region_bus->stats().connected == 0)
      degraded = "bus (Redis) unreachable; edits of other nodes arrive once it is back";
    respond(make(http::status::ok, v, ka, degraded ? "degraded: " + *degraded + "\n" : "ok\n", "text/plain"));
    return;
  }
  if (target == "/metrics") {
    std::string body = ctx_.stats.render();
    if (ctx_.replication) body += ctx_.replication->metrics_text();
    if (ctx_.region_bus) body += ctx_.region_bus->stats().render();
    respond(make(http::status::ok, v, ka, std::move(body), "text/plain; version=0.0.4"));
    return;
  }
  if (target == "/api/cluster") {
    auto res = make(http::status::ok, v, ka, ctx_.replication ? ctx_.replication->cluster_json() : "{}",
                    "application/json");
    // The cluster page of one node may poll the others.
    res.set(http::field::access_control_allow_origin, "*");
    respond(std::move(res));
    return;
  }
  if (target == "/cluster") target = "/cluster.html";
  constexpr std::string_view api = "/api/docs/";
  if (target.rfind(api, 0) == 0 && target.size() > api.size() + 5 && target.ends_with("/text")) {
    std::string id = target.substr(api.size(), target.size() - api.size() - 5);
    if (!protocol::valid_doc_id(id)) {
      respond(make(http::status::bad_request, v, ka, "bad document id\n", "text/plain"));
      return;
    }
    if (ctx_.auth) {
      auto claims = bearer_claims(req, v, ka, "TOKEN");
      if (!claims) return;
      if (claims->rights_for(id) == access::none) {
        respond(make(http::status::forbidden, v, ka, "your token gives no access to this document\n", "text/plain"));
        return;
      }
    }
    auto room = ctx_.rooms.acquire(id);  // pinned while the text is read
    room->read_text([self = this->shared_from_this(), room, v, ka](result<std::string> text) {
      self->ctx_.rooms.release(room);
      net::post(self->stream_.get_executor(), [self, v, ka, text = std::move(text)]() mutable {
        if (text.ok())
          self->respond(make(http::status::ok, v, ka, std::move(text.value()), "text/plain; charset=utf-8"));
        else
          self->respond(make(http::status::service_unavailable, v, ka, text.error().to_string() + "\n", "text/plain"));
      });
    });
    return;
  }
  serve_file(req, target);
}

template <class Stream>
void http_session<Stream>::serve_file(const http::request<http::string_body>& req, std::string_view target) {
  const unsigned v = req.version();
  const bool ka = req.keep_alive();
  if (ctx_.config.web_root.empty()) {
    respond(make(http::status::not_found, v, ka,
                 "weft-server: no web client configured (--web-root); WebSocket endpoint is ws://host:port/\n",
                 "text/plain"));
    return;
  }
  std::string path(target);
  if (path.empty() || path[0] != '/' || path.find("..") != std::string::npos || path.find('\0') != std::string::npos) {
    respond(make(http::status::bad_request, v, ka, "bad path\n", "text/plain"));
    return;
  }
  // Editor routes (/, /d/NAME) are the single-page app.
  if (path == "/" || path.rfind("/d/", 0) == 0) path = "/index.html";
  std::ifstream in(ctx_.config.web_root + path, std::ios::binary);
  if (!in) {
    respond(make(http::status::not_found, v, ka, "not found\n", "text/plain"));
    return;
  }
  std::ostringstream body;
  body << in.rdbuf();
  auto res = make(http::status::ok, v, ka, body.str(), mime_type(path));
  if (req.method() == http::verb::head) res.body().clear();
  respond(std::move(res));
}

void start_http_session(net::ip::tcp::socket&& socket, server_context& ctx, session_list& sessions) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  connection_slot slot = ctx.connections.acquire(ec ? std::string("unknown") : ep.address().to_string());
  if (ctx.tls) {
    using tls_stream = beast::ssl_stream<beast::tcp_stream>;
    std::make_shared<http_session<tls_stream>>(tls_stream(beast::tcp_stream(std::move(socket)), *ctx.tls), ctx,
                                               sessions, std::move(slot))
        ->run();
  } else {
    std::make_shared<http_session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), ctx, sessions,
                                                      std::move(slot))
        ->run();
  }
}

}  // namespace weft::server
