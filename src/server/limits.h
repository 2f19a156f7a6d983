// Per-client limits: concurrent connections per address, and a token bucket
// for the message rate of one connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace weft::server {

class connection_limiter;

/// One admitted connection; releases its slot when destroyed. Move-only.
class connection_slot {
 public:
  connection_slot() = default;
  connection_slot(connection_limiter* owner, std::string address) : owner_(owner), address_(std::move(address)) {}
  ~connection_slot();
  connection_slot(connection_slot&& o) noexcept : owner_(o.owner_), address_(std::move(o.address_)) { o.owner_ = nullptr; }
  connection_slot& operator=(connection_slot&& o) noexcept;
  connection_slot(const connection_slot&) = delete;
  connection_slot& operator=(const connection_slot&) = delete;
  /// False for a connection over the limit (it is answered with an error and closed).
  bool admitted() const noexcept { return owner_ != nullptr; }
  const std::string& address() const noexcept { return address_; }

 private:
  connection_limiter* owner_ = nullptr;
  std::string address_;
};

/// Counts open connections per client address. Thread-safe.
class connection_limiter {
 public:
  /// `max_per_address` 0 means unlimited.
  explicit connection_limiter(std::size_t max_per_address) : max_(max_per_address) {}
  /// A slot for a new connection from `address`; not admitted() past the limit.
  connection_slot acquire(const std::string& address);
  std::size_t max_per_address() const noexcept { return max_; }

 private:
  friend class connection_slot;
  void release(const std::string& address);
  const std::size_t max_;
  std::mutex mu_;
  std::unordered_map<std::string, std::size_t> open_;  // guarded by mu_
};

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
/// Not thread-safe (one per connection, used on its strand).
class rate_limiter {
 public:
  rate_limiter(std::uint64_t rate, std::uint64_t burst)
      : rate_(static_cast<double>(rate)), burst_(static_cast<double>(burst)), tokens_(burst_),
        last_(std::chrono::steady_clock::now()) {}
  /// Takes one token; false when none is left.
  bool take() {
    auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
    last_ = now;
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  double rate_, burst_, tokens_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace weft::server
