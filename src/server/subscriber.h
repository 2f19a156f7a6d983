// What a document room needs from a connection: an id and a way to send.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace weft::server {

class subscriber {
 public:
  virtual ~subscriber() = default;
  /// Unique per connection for the server's lifetime.
  virtual std::uint64_t session_id() const noexcept = 0;
  /// Queues a frame: a JSON text frame, or a binary frame (protocol.h; it
  /// never starts with '{'). Thread-safe; never blocks; the message is shared
  /// by all receivers of a broadcast.
  virtual void send(std::shared_ptr<const std::string> message) = 0;
  /// True when the connection asked for binary frames (ops and acks of open
  /// documents are then sent as such). Fixed once the connection is welcomed.
  virtual bool binary() const noexcept = 0;
  /// The identity whose replica ids this connection may write under (the
  /// token's `sub`), or null when ownership is not enforced for it: auth is
  /// off (docs/protocol.md, "Replica ownership"). Fixed for the connection's
  /// lifetime; the pointer stays valid while the subscriber lives.
  virtual const std::string* identity() const noexcept { return nullptr; }
};

}  // namespace weft::server
