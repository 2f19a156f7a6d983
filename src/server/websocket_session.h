// One WebSocket connection: reads client messages, routes them to document
// rooms, and writes what rooms send through a bounded queue (one write in
// flight). A client that cannot keep up is disconnected with a reason
// instead of growing server memory; it resyncs when it reconnects.
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "server/subscriber.h"

namespace weft::server {

struct server_context;
class websocket_session;

/// The live sessions, so that shutdown can close them. Thread-safe.
class session_list {
 public:
  void add(const std::shared_ptr<websocket_session>& s);
  void remove(std::uint64_t id);
  /// Asks every session to close with `reason`.
  void close_all(const std::string& reason);
  std::size_t size();

 private:
  std::mutex mu_;
  std::unordered_map<std::uint64_t, std::weak_ptr<websocket_session>> sessions_;  // guarded by mu_
};

class websocket_session : public subscriber, public std::enable_shared_from_this<websocket_session> {
 public:
  websocket_session(boost::asio::ip::tcp::socket&& socket, server_context& ctx, session_list& list);
  ~websocket_session() override;

  /// Completes the upgrade `req` and starts reading.
  void run(boost::beast::http::request<boost::beast::http::string_body> req);
  std::uint64_t session_id() const noexcept override { return id_; }
  void send(std::shared_ptr<const std::string> message) override;
  /// Closes the connection with close code 1001 (going away) and `reason`.
  void shutdown(std::string reason);

 private:
  void on_accept(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void handle(std::string_view frame);
  void reply(std::string message);
  void enqueue(std::shared_ptr<const std::string> message);
  void do_write();
  void on_write(boost::beast::error_code ec, std::size_t bytes);
  void close_with(boost::beast::websocket::close_code code, std::string reason);
  void leave_all();

  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  server_context& ctx_;
  session_list& list_;
  const std::uint64_t id_;
  // Touched only on the stream's strand:
  boost::beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool hello_ = false;
  boost::beast::websocket::close_code close_code_ = boost::beast::websocket::close_code::normal;
  std::string close_reason_;
  std::set<std::string> docs_;
};

}  // namespace weft::server
