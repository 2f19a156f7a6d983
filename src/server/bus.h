// Live fan-out between the nodes of one region over Redis Streams
// (docs/scale-out.md). Each document has one stream, "weft:doc:<id>". A node
// appends every batch it committed to PostgreSQL to that stream (so every
// entry is durable before anyone sees it, and any node may acknowledge what
// it relays), and reads the streams of the documents it has open. Streams
// are capped (XADD MAXLEN ~): what a slow reader misses is in PostgreSQL, and
// the reader finds out and resyncs the document from there:
//   - a gap in a node's per-document sequence numbers (a publish was lost);
//   - the stream trimmed past the reader's position (XINFO max-deleted-entry-id);
//   - a lost connection to Redis (a restart loses streams without persistence).
// One reader connection serves every open document with one blocking XREAD
// over all their streams; entries are handed to each document's own strand,
// so a busy or slow document never holds up another.
//
// Thread-safety: all public methods may be called from any thread; the bus
// runs on its own thread. Listener calls come from the bus thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

namespace weft::server {

class redis_connection;

/// What a document's room hears from the bus.
class bus_listener {
 public:
  virtual ~bus_listener() = default;
  /// A batch another node committed (encode_ops bytes), with the replica
  /// ownership claims it introduced (encode_claims text, usually empty).
  virtual void bus_batch(std::string batch, std::string owners) = 0;
  /// Entries were missed: reread the document from storage.
  virtual void bus_resync() = 0;
};

struct bus_options {
  std::string host = "127.0.0.1";
  int port = 6379;
  /// This node's origin key: entries it published come back to it, and are skipped.
  std::string node_key;
  /// Entries kept per stream (approximately; XADD MAXLEN ~).
  std::size_t stream_max = 1000;
  /// A stream nobody published to for this long is deleted by Redis.
  std::chrono::seconds stream_ttl{24 * 3600};
  /// How often each open stream's trimming and length are checked.
  std::chrono::milliseconds check_every{2000};
};

/// Bus counters, rendered with the server's metrics (weft_bus_*).
struct bus_stats {
  std::atomic<std::int64_t> connected{0};
  std::atomic<std::int64_t> streams{0};           ///< streams read (documents open here)
  std::atomic<std::uint64_t> stream_entries{0};   ///< their total length at the last check
  std::atomic<std::uint64_t> stream_entries_max{0};  ///< the longest at the last check
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> publish_dropped{0};  ///< not published (Redis unreachable)
  std::atomic<std::uint64_t> received{0};         ///< entries of other nodes handed to rooms
  std::atomic<std::uint64_t> resyncs_gap{0};
  std::atomic<std::uint64_t> resyncs_trimmed{0};
  std::atomic<std::uint64_t> resyncs_reconnect{0};
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> lag_ms_last{0};      ///< XADD to receipt, last entry
  std::atomic<std::uint64_t> lag_ms_max{0};       ///< the largest since the last scrape
  /// Prometheus text for these.
  std::string render();
};

class bus {
 public:
  /// Parses "redis://HOST:PORT" (port 6379 when absent). False when malformed.
  static bool parse_url(const std::string& url, bus_options& out);

  explicit bus(bus_options options);
  ~bus();  // stops the thread; connections close
  bus(const bus&) = delete;
  bus& operator=(const bus&) = delete;

  /// Starts the bus thread and connects (reconnecting by itself).
  void start();
  /// Reads `doc`'s stream for `listener` from now on (replacing an earlier
  /// listener of `doc`) until the listener is gone. `positioned` runs (on
  /// the bus thread) once the read position is fixed: everything committed
  /// after that point arrives, so the caller loads the document from storage
  /// then. While Redis is unreachable, `positioned` runs at once, and the
  /// listener gets bus_resync() after the connection is back.
  void subscribe(const std::string& doc, std::weak_ptr<bus_listener> listener, std::function<void()> positioned);
  /// Appends a batch this node committed for `doc` to its stream, with the
  /// ownership claims committed with it (encode_claims text; may be empty).
  void publish(const std::string& doc, std::string batch, std::string owners = {});

  bus_stats& stats() noexcept { return stats_; }

 private:
  struct stream_id {
    std::uint64_t ms = 0, seq = 0;
    static stream_id parse(std::string_view s);
    std::string text() const { return std::to_string(ms) + "-" + std::to_string(seq); }
    friend auto operator<=>(const stream_id&, const stream_id&) = default;
  };
  struct subscription {
    std::uint64_t token = 0;
    std::weak_ptr<bus_listener> listener;
    stream_id last;                 // read position
    bool positioned = false;        // last is valid
    std::function<void()> on_positioned;
    std::map<std::string, std::uint64_t> seen;  // per publishing node: last sequence number
    stream_id resynced_for;         // max-deleted-entry-id already resynced for
    std::uint64_t next_seq = 1;     // our own entries' sequence numbers
    bool dropped = false;           // a publish of ours was lost: others must resync
    std::uint64_t published = 0;
  };
  static std::string key_of(const std::string& doc) { return "weft:doc:" + doc; }
  void connect();
  void connection_lost(const std::string& why);
  void both_up();
  void position(const std::string& doc, bool resync);
  void read_loop();
  void wake_reader();
  void handle_entries(const std::string& doc, void* entries);
  void resync(subscription& s, std::atomic<std::uint64_t>& counter);
  void check_streams();
  void do_publish(const std::string& doc, std::string batch, const std::string& owners);

  bus_options options_;
  boost::asio::io_context io_{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{io_.get_executor()};
  boost::asio::steady_timer retry_timer_{io_};
  boost::asio::steady_timer check_timer_{io_};
  std::thread thread_;
  bus_stats stats_;
  std::atomic<std::uint64_t> next_token_{1};
  // Bus thread only:
  std::shared_ptr<redis_connection> commands_, reader_;
  bool up_ = false;               // both connections up
  long long reader_client_id_ = -1;
  bool read_in_flight_ = false;
  bool read_blocking_ = false;
  bool set_changed_ = false;
  std::chrono::milliseconds backoff_{100};
  std::unordered_map<std::string, subscription> subs_;
};

}  // namespace weft::server
