// Server counters and the commit-latency histogram, rendered in the
// Prometheus text format. Thread-safety: all methods may be called from any
// thread (atomics; the histogram takes a mutex).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace weft::server {

class metrics {
 public:
  std::atomic<std::int64_t> connections{0};        // open WebSocket connections
  std::atomic<std::int64_t> documents_loaded{0};   // rooms in memory
  std::atomic<std::uint64_t> ops_applied{0};       // operations applied by rooms
  std::atomic<std::uint64_t> messages_received{0};
  std::atomic<std::uint64_t> messages_sent{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> errors_sent{0};
  std::atomic<std::uint64_t> slow_consumers_dropped{0};
  std::atomic<std::int64_t> send_queue_depth{0};   // messages queued in all sessions
  std::atomic<std::int64_t> pending_ops{0};        // ops in all causal buffers
  std::atomic<std::uint64_t> auth_failures{0};     // refused tokens and missing ones
  std::atomic<std::uint64_t> connections_refused{0};  // over the per-address limit, bad Origin
  std::atomic<std::uint64_t> rate_limited{0};      // connections closed for their message rate
  std::atomic<std::uint64_t> idle_timeouts{0};     // connections closed for not answering a ping
  std::atomic<std::uint64_t> replicated_ops_applied{0};   // ops from other nodes applied here
  std::atomic<std::uint64_t> replicated_duplicate_ops{0}; // ops from other nodes held already
  std::atomic<std::uint64_t> concurrent_ops_merged{0};    // ops from other nodes concurrent with an edit made here
  std::atomic<std::uint64_t> internal_errors{0};   // exceptions caught at a handler's edge (bugs)
  std::atomic<std::uint64_t> id_conflicts{0};      // ops reusing held ids with other content (refused)
  std::atomic<std::uint64_t> forbidden_replica_ops{0};  // ops under a replica id the sender does not own (refused)
  std::atomic<std::uint64_t> owner_claim_conflicts{0};  // a replicated claim naming another owner than held here
  /// Storage failures by kind (weft_storage_errors_total{kind=...}): the disk
  /// is full (or over --max-db-mb), an I/O error, corrupt data (SQLite's or a
  /// stored batch's checksum), a conflicting write, anything else.
  enum class storage_error { full, io, corrupt, conflict, other };
  std::atomic<std::uint64_t> storage_errors[5] = {};
  void count(storage_error k) noexcept { ++storage_errors[static_cast<int>(k)]; }

  /// Records one group commit of `writes` requests that took `seconds`.
  void observe_commit(double seconds, std::size_t writes);
  /// The Prometheus exposition text.
  std::string render() const;

 private:
  static constexpr std::array<double, 12> bounds_{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                  0.05,   0.1,   0.2,   0.5,   1.0,  5.0};
  mutable std::mutex mu_;
  std::array<std::uint64_t, 13> buckets_{};  // guarded by mu_; last is +Inf
  double sum_ = 0;                           // guarded by mu_
  std::uint64_t count_ = 0;                  // guarded by mu_
  std::uint64_t writes_ = 0;                 // guarded by mu_
};

}  // namespace weft::server
