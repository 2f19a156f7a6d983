// One plain HTTP connection: static files of the web client, /healthz,
// /metrics, /api/docs/{id}/text, and the upgrade to a WebSocket session.
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <memory>
#include <optional>

namespace weft::server {

struct server_context;
class session_list;

class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(boost::asio::ip::tcp::socket&& socket, server_context& ctx, session_list& sessions);
  void run();

 private:
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t);
  void respond(boost::beast::http::response<boost::beast::http::string_body> res);
  void on_write(bool keep_alive, boost::beast::error_code ec, std::size_t);
  void handle(boost::beast::http::request<boost::beast::http::string_body> req);
  void serve_file(const boost::beast::http::request<boost::beast::http::string_body>& req, std::string_view target);

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  server_context& ctx_;
  session_list& sessions_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::shared_ptr<boost::beast::http::response<boost::beast::http::string_body>> res_;
};

}  // namespace weft::server
