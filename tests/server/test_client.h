// A small synchronous WebSocket client for end-to-end tests against a real
// weft-server on 127.0.0.1, holding its own replica of each opened document.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "weft/document.h"
#include "weft/protocol.h"

namespace weft::test {

/// WebSocket close codes (RFC 6455) the tests expect.
namespace close_code {
constexpr std::uint16_t going_away = 1001, policy_error = 1008, too_big = 1009, try_again_later = 1013;
}

/// How the server closed a connection.
struct close_info {
  std::uint16_t code = 0;
  std::string reason;
};

/// A server message: its JSON and what the protocol codec decoded from it.
struct message {
  std::string raw;
  std::string type;
  protocol::server_message decoded;  // binary frames too, with their ref resolved to the document
  bool binary = false;               // came as a binary frame
  std::string snapshot;              // type "snapshot" (a binary snapshot frame): its snapshot bytes
  std::string snapshot_doc;          // and the document it names
  bool absorbed = false;  // ops/sync/ack already applied to the replicas
};

class test_client {
 public:
  using headers = std::vector<std::pair<std::string, std::string>>;
  /// Connects to ws://127.0.0.1:port/, sending `extra_headers` with the
  /// upgrade request. Throws on failure (tests only).
  explicit test_client(std::uint16_t port, replica_id replica = 0, const headers& extra_headers = {});
  ~test_client();

  /// Sends a text frame.
  void send(const std::string& text);
  /// Sends `text` as one message split into frames of `fragment_bytes`.
  void send_fragmented(const std::string& text, std::size_t fragment_bytes);
  /// Next message, or nullopt after `timeout` (or when the connection closed).
  std::optional<message> recv(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// Next message of `type`, applying "ops"/"sync" messages for replicas on
  /// the way; other messages are kept for later recv() calls.
  std::optional<message> expect(const std::string& type, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  bool closed() const { return closed_; }
  /// Close code and reason after the server closed the connection.
  close_info close_reason() const;

  // ---- protocol helpers ---------------------------------------------------------
  /// Sends hello (asking for binary frames when `binary`) and waits for welcome.
  void hello(bool binary = false);
  /// Sends hello with an access token; returns the reply (welcome or error).
  std::optional<message> hello_with_token(const std::string& token);
  /// Opens `doc` with this client's replica version; waits for "sync" and
  /// applies it; sends back what the server lacks.
  void open(const std::string& doc, std::chrono::milliseconds timeout = std::chrono::seconds(5),
            std::uint64_t regions = 0);
  /// Local edit on the replica of `doc`; sends the op; returns it.
  operation insert(const std::string& doc, std::uint64_t pos, const std::string& text);
  operation erase(const std::string& doc, std::uint64_t pos, std::uint64_t n);
  void send_ops(const std::string& doc, const std::vector<operation>& ops);
  /// Sends ops as a binary frame (binary frames on, `doc` synced).
  void send_binary_ops(const std::string& doc, const std::vector<operation>& ops);
  /// Sends raw bytes as one binary frame.
  void send_binary(const std::string& bytes);
  /// The ref the server gave `doc` in its sync (0: none).
  std::uint64_t ref(const std::string& doc) { return refs_[doc]; }
  /// Reads until the server acknowledged this replica's ops of `doc` up to its
  /// current counter.
  bool wait_acked(const std::string& doc, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// Applies incoming ops until the replica of `doc` has `text` (or timeout).
  bool wait_text(const std::string& doc, const std::string& text,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5));
  document& replica(const std::string& doc);
  replica_id replica_id_value() const { return replica_; }
  /// Ops received in "ops" messages for `doc`, in arrival order.
  const std::vector<operation>& received(const std::string& doc) { return received_[doc]; }
  std::uint64_t acked(const std::string& doc) { return acked_[doc]; }
  /// How many ack messages for `doc` went through expect() so far.
  int acks_seen(const std::string& doc) { return acks_seen_[doc]; }
  /// Re-sends open for `doc` and waits for its sync: everything the server
  /// had to say about `doc` before (acks, ops) has then been read.
  void barrier(const std::string& doc);

 private:
  void absorb(const message& m);
  struct connection;  // Beast and Asio stay out of the tests' headers (compile time)
  std::unique_ptr<connection> conn_;
  bool closed_ = false;
  std::deque<message> backlog_;
  protocol::decoder decoder_;
  replica_id replica_;
  std::map<std::string, document> docs_;
  std::map<std::string, std::vector<operation>> received_;
  std::map<std::string, std::uint64_t> acked_;
  std::map<std::string, int> acks_seen_;
  std::map<std::string, std::uint64_t> refs_;
};

/// The version vector the server on `port` holds for `doc` (a fresh replica
/// opened with an empty version receives everything).
version_vector server_version(std::uint16_t port, const std::string& doc);

/// GET http://127.0.0.1:port/target; returns (status, body).
std::pair<int, std::string> http_get(std::uint16_t port, const std::string& target,
                                     const test_client::headers& extra_headers = {});
/// `method` ("GET", "POST", ...) http://127.0.0.1:port/target, without a body; returns (status, body).
std::pair<int, std::string> http_request(std::uint16_t port, const std::string& method, const std::string& target,
                                         const test_client::headers& extra_headers = {});

/// Polls `cond` every 20 ms until it holds (true) or `timeout` passes (false).
template <class F>
bool eventually(F cond, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

/// Attempts a WebSocket upgrade with `extra_headers`; returns the HTTP status
/// of the answer (101 when it was accepted) and its body.
std::pair<int, std::string> try_upgrade(std::uint16_t port, const test_client::headers& extra_headers);

}  // namespace weft::test
