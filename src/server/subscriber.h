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
  /// Queues a text frame. Thread-safe; never blocks; the message is shared by
  /// all receivers of a broadcast.
  virtual void send(std::shared_ptr<const std::string> message) = 0;
};

}  // namespace weft::server
