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

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/auth.h"
#include "server/limits.h"
#include "server/send_queue.h"
#include "server/subscriber.h"
#include "weft/protocol.h"

namespace weft::server {

struct server_context;
class websocket_session;
class document_room;

/// The live sessions, so that shutdown can close them and liveness rounds
/// reach them. Thread-safe. Intrusive (the links live in the sessions): a
/// map node per connection would cost every idle connection ~50 bytes more.
class session_list {
 public:
  /// Links `s`; it unlinks itself in its destructor.
  void add(websocket_session& s);
  void remove(websocket_session& s);
  /// Asks every session to close with `reason`.
  void close_all(const std::string& reason);
  /// Asks every session to check that its peer is still there (see
  /// websocket_session::check_alive).
  void check_all_alive();
  /// Asks every session to check its token against the deny list again
  /// (see websocket_session::recheck_token).
  void recheck_tokens();
  std::size_t size();

 private:
  /// The sessions not yet being destroyed.
  std::vector<std::shared_ptr<websocket_session>> live();

  std::mutex mu_;
  websocket_session* head_ = nullptr;  // guarded by mu_, as are the sessions' links
  std::size_t size_ = 0;               // guarded by mu_
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
  bool binary() const noexcept override { return binary_.load(std::memory_order_relaxed); }
  /// The token's `sub` (auth on), whose replica ids this connection owns; null with auth off.
  const std::string* identity() const noexcept override { return identity_.get(); }
  /// Closes the connection with close code 1001 (going away) and `reason`.
  void shutdown(std::string reason);
  /// One round of liveness checking; the server calls it on every session
  /// every half --ws-idle-timeout-ms. A round with nothing heard from the
  /// peer sends a ping; a second one closes the connection. One server-wide
  /// timer instead of a pending timer per connection keeps idle connections
  /// small. Thread-safe (posts onto the connection's strand).
  void check_alive();
  /// Closes the connection (1008, an `unauthorized` error) when its token
  /// is now on the deny list. Thread-safe (posts onto the connection's strand).
  void recheck_token();

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
  /// Sends a ping; completes with on_ping_sent().
  virtual void send_ping() = 0;
  /// Closes the socket at once, without a close handshake (the peer is gone).
  virtual void abort_transport() = 0;

  /// Queues a frame; on the connection's strand.
  void enqueue(std::shared_ptr<const std::string> message);
  void on_accept(boost::beast::error_code ec);
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void on_write(boost::beast::error_code ec, std::size_t bytes);
  void on_ping_sent() { ping_in_flight_ = false; }
  /// Called by the transport for anything received, control frames included.
  void heard_from_peer() { heard_ = true; }

  /// How much buffer a connection holds while waiting for its next message.
  /// (192: a keystroke's ops message is ~150 bytes.)
  static constexpr std::size_t idle_read_bytes = 192;

  server_context& ctx_;
  boost::beast::flat_buffer buffer_;

 private:
  /// Handles one text frame; `readable` bytes from frame.data() may be read.
  void handle(std::string_view frame, std::size_t readable);
  /// Handles one binary frame (binary frames on).
  void handle_binary(std::string_view frame);
  /// With auth on: verifies `hello_token` when given (it replaces the upgrade
  /// header's), then requires a token and checks it has not expired.
  /// False: the connection is being closed with the reason.
  bool authorised(const std::string& hello_token = {});
  void reply(std::string message);
  /// Replies with an `error` message (counted in weft_errors_sent_total).
  void error(protocol::error_kind kind, const std::string& message, const std::string& doc = {});
  /// Hands ops for `doc` (open on this connection, in `room`) to the room,
  /// if the connection may edit it; `regions`: their write concern (0: none).
  void submit(const std::string& doc, document_room& room, std::vector<operation> ops, std::uint64_t regions = 0);
  void do_write();
  /// Closes with `code`/`reason` after the frame in flight and `last_message`
  /// (e.g. an error saying why); anything else queued is dropped.
  void close_with(boost::beast::websocket::close_code code, std::string reason, std::string last_message = {});
  void leave_all();
  /// The room of `doc` when this connection has it open, else null.
  document_room* room_of(std::string_view doc) const {
    for (const auto& d : docs_)
      if (d.id == doc) return d.room.get();
    return nullptr;
  }

  session_list& list_;
  friend class session_list;
  websocket_session* prev_ = nullptr;  // links in list_, guarded by its mutex
  websocket_session* next_ = nullptr;
  const std::uint64_t id_;
  // Touched only on the connection's strand:
  connection_slot slot_;
  std::unique_ptr<token_claims> claims_;  // null: not authenticated (or auth off)
  // The first token's `sub`, set once before any op is sent and never changed
  // (a later hello may refresh the token, not switch the user): rooms read it
  // from their own threads.
  std::unique_ptr<const std::string> identity_;
  rate_limiter rate_;
  send_queue queue_;
  bool accepted_ = false;  // the upgrade handshake has completed
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool hello_ = false;
  std::atomic<bool> binary_{false};  // set at hello on the strand; read by rooms
  bool heard_ = true;             // something arrived since the last liveness round
  bool pinged_ = false;           // a liveness round found silence and pinged
  bool ping_in_flight_ = false;   // Beast allows one ping at a time
  boost::beast::websocket::close_code close_code_ = boost::beast::websocket::close_code::normal;
  std::string close_reason_;
  // Documents this connection has open, with their rooms (pinned: see
  // registry.h), so a message needs no registry lookup. Few per connection
  // (at most --max-docs-per-connection): a vector is smaller than a set.
  struct open_doc {
    std::string id;
    std::shared_ptr<document_room> room;
  };
  std::vector<open_doc> docs_;
};

}  // namespace weft::server
