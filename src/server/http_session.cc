#include "server/http_session.h"

#include <boost/asio/post.hpp>
#include <boost/beast/websocket.hpp>

#include <fstream>
#include <sstream>

#include "protocol/messages.h"
#include "server/context.h"
#include "server/log.h"
#include "server/room.h"
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

}  // namespace

http_session::http_session(net::ip::tcp::socket&& socket, server_context& ctx, session_list& sessions)
    : stream_(std::move(socket)), ctx_(ctx), sessions_(sessions) {}

void http_session::run() {
  net::dispatch(stream_.get_executor(), beast::bind_front_handler(&http_session::do_read, shared_from_this()));
}

void http_session::do_read() {
  parser_.emplace();
  parser_->body_limit(16 * 1024);
  parser_->header_limit(16 * 1024);
  stream_.expires_after(std::chrono::seconds(30));
  http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) {
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  if (ec) return;
  if (beast::websocket::is_upgrade(parser_->get())) {
    stream_.expires_never();
    std::make_shared<websocket_session>(stream_.release_socket(), ctx_, sessions_)->run(parser_->release());
    return;
  }
  handle(parser_->release());
}

void http_session::respond(response res) {
  bool keep_alive = res.keep_alive();
  res_ = std::make_shared<response>(std::move(res));
  http::async_write(stream_, *res_, beast::bind_front_handler(&http_session::on_write, shared_from_this(), keep_alive));
}

void http_session::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
  res_.reset();
  if (ec) return;
  if (!keep_alive) {
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  do_read();
}

void http_session::handle(http::request<http::string_body> req) {
  const unsigned v = req.version();
  const bool ka = req.keep_alive();
  std::string target(req.target());
  if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    respond(make(http::status::method_not_allowed, v, ka, "only GET is served here\n", "text/plain"));
    return;
  }
  if (target == "/healthz") {
    respond(make(http::status::ok, v, ka, "ok\n", "text/plain"));
    return;
  }
  if (target == "/metrics") {
    respond(make(http::status::ok, v, ka, ctx_.stats.render(), "text/plain; version=0.0.4"));
    return;
  }
  constexpr std::string_view api = "/api/docs/";
  if (target.rfind(api, 0) == 0 && target.size() > api.size() + 5 && target.ends_with("/text")) {
    std::string id = target.substr(api.size(), target.size() - api.size() - 5);
    if (!protocol::valid_doc_id(id)) {
      respond(make(http::status::bad_request, v, ka, "bad document id\n", "text/plain"));
      return;
    }
    ctx_.rooms.acquire(id)->read_text([self = shared_from_this(), v, ka](result<std::string> text) {
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

void http_session::serve_file(const http::request<http::string_body>& req, std::string_view target) {
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

}  // namespace weft::server
