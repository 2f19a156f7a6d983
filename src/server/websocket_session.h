// One WebSocket connection: reads client messages, checks them against the
// connection's rights and limits, routes them to document rooms, and writes
// what rooms send through a bounded queue (one write in flight). A client
// that cannot keep up is disconnected with a reason instead of growing server
// memory; it resyncs when it reconnects.
//
// The protocol logic is transport-independent (this class); the transport —
// plain TCP or TLS — is a template in websocket_session.cc, created through
// start_websocket_session().
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "server/auth.h"
#include "server/limits.h"
#include "server/send_queue.h"
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

/// What the HTTP side learned before the upgrade.
struct upgrade_info {
  connection_slot slot;                  ///< this connection's place under the per-address limit
  std::unique_ptr<token_claims> claims;  ///< from an Authorization header; null if none
};

/// Upgrades `stream` (a TCP socket, or a beast::ssl_stream over a tcp_stream) with
/// `req` and runs the session until the connection ends.
template <class Stream>
void start_websocket_session(Stream&& stream, boost::beast::http::request<boost::beast::http::string_body> req,
                             server_context& ctx, session_list& list, upgrade_info info);

class websocket_session : public subscriber, public std::enable_shared_from_this<websocket_session> {
 public:
  ~websocket_session() override;
  std::uint64_t session_id() const noexcept override { return id_; }
  void send(std::shared_ptr<const std::string> message) override;
  /// Closes the connection with close code 1001 (going away) and `reason`.
  void shutdown(std::string reason);

 protected:
  websocket_session(server_context& ctx, session_list& list, upgrade_info info);

  // ---- the transport (websocket_transport<Stream>) -------------------------------
  /// Posts `f` onto the connection's strand.
  virtual void post(std::function<void()> f) = 0;
  /// Reads one message into buffer_; completes with on_read().
  virtual void read_message() = 0;
  /// True when the last message read was a text frame.
  virtual bool got_text() const = 0;
  /// Writes `message` as one text frame; completes with on_write().
  virtual void write_message(const std::string& message) = 0;
  /// Sends a close frame with `code` and `reason`.
  virtual void close_transport(boost::beast::websocket::close_code code, const std::string& reason) = 0;

  void on_accept(boost::beast::error_code ec);
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void on_write(boost::beast::error_code ec, std::size_t bytes);

  /// How much buffer a connection holds while waiting for its next message.
  static constexpr std::size_t idle_read_bytes = 256;

  server_context& ctx_;
  boost::beast::flat_buffer buffer_;

 private:
  void handle(std::string_view frame);
  /// With auth on: verifies `hello_token` when given (it replaces the upgrade
  /// header's), then requires a token and checks it has not expired.
  /// False: the connection is being closed with the reason.
  bool authorised(const std::string& hello_token = {});
  void reply(std::string message);
  void enqueue(std::shared_ptr<const std::string> message);
  void do_write();
  /// Closes with `code`/`reason` after the frame in flight and `last_message`
  /// (e.g. an error saying why); anything else queued is dropped.
  void close_with(boost::beast::websocket::close_code code, std::string reason, std::string last_message = {});
  void leave_all();

  session_list& list_;
  const std::uint64_t id_;
  // Touched only on the connection's strand:
  connection_slot slot_;
  std::unique_ptr<token_claims> claims_;  // null: not authenticated (or auth off)
  rate_limiter rate_;
  send_queue queue_;
  bool accepted_ = false;  // the upgrade handshake has completed
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool hello_ = false;
  boost::beast::websocket::close_code close_code_ = boost::beast::websocket::close_code::normal;
  std::string close_reason_;
  std::set<std::string> docs_;
};

}  // namespace weft::server
