// One connection to Redis through hiredis's asynchronous API, driven by an
// Asio io_context: a small adapter over hiredis's read/write hooks (hiredis
// parses RESP; no parser of ours). Used by the bus (bus.h).
//
// Thread-safety: none; every call, and every callback, runs on the thread of
// the io_context given to connect().
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct redisAsyncContext;
struct redisReply;

namespace weft::server {

class redis_connection : public std::enable_shared_from_this<redis_connection> {
 public:
  /// A command's reply; null when the connection was lost before it came.
  using reply_fn = std::function<void(redisReply*)>;
  /// Called once: connected (empty) or why not / why the connection ended.
  using closed_fn = std::function<void(const std::string& why)>;

  /// Starts connecting to host:port. `on_up` runs once connected;
  /// `on_closed` runs once when connecting failed or the connection ended
  /// (not after close()).
  static std::shared_ptr<redis_connection> connect(boost::asio::io_context& io, const std::string& host, int port,
                                                   std::function<void()> on_up, closed_fn on_closed);
  ~redis_connection();

  /// Sends a command (binary-safe arguments); false when not connected.
  bool command(const std::vector<std::string_view>& args, reply_fn cb);
  /// Ends the connection now; pending replies get null, on_closed is not
  /// called. Not from inside a reply callback of this connection.
  void close();
  bool up() const noexcept { return up_; }

 private:
  explicit redis_connection(boost::asio::io_context& io);
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void add_read(void* self);
  static void del_read(void* self);
  static void add_write(void* self);
  static void del_write(void* self);
  static void cleanup(void* self);
  /// What hiredis wants in one direction, and whether a wait is outstanding.
  struct direction {
    bool wanted = false;
    bool armed = false;
  };
  /// Waits for the socket to be ready for `wait`, then lets hiredis
  /// `handle` it, for as long as hiredis wants that direction.
  void arm(direction& d, boost::asio::posix::stream_descriptor::wait_type wait, void (*handle)(redisAsyncContext*));
  void ended(const std::string& why);

  boost::asio::io_context& io_;
  boost::asio::posix::stream_descriptor socket_;
  redisAsyncContext* ac_ = nullptr;  // null once hiredis freed it
  std::shared_ptr<redis_connection> self_;  // keeps this alive while ac_ lives
  direction read_, write_;
  bool up_ = false;
  bool closing_ = false;
  std::function<void()> on_up_;
  closed_fn on_closed_;
};

}  // namespace weft::server
