// Which node of a region carries the region's replication links
// (docs/scale-out.md, "Regions and scale-out together"): whichever holds a
// PostgreSQL session advisory lock named after the region. Every node of a
// region on PostgreSQL competes for it; the holder dials the --peer URLs and
// accepts /peer links, the others stand by and take over within about a
// second of the lock coming free (the holder stopped, crashed, or lost the
// database). The checkpoints are in the shared database, so the next holder
// resumes where the last one stopped.
//
// The lease runs on its own thread with its own connection, so a busy or
// waiting storage connection never delays a hand-over.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

struct pg_conn;

namespace weft::server {

class links_lease {
 public:
  /// Starts competing for the links of `region` in the database `conninfo`
  /// (a libpq URI). `on_change(true)` runs when this node takes the lease,
  /// `on_change(false)` when it loses it (its connection to the database
  /// failed: another node may hold it now). Both run on the lease's thread,
  /// which waits for them; they must be quick. Never fails: an unreachable
  /// database only means the lease is not held and is tried again.
  links_lease(std::string conninfo, std::string region, std::function<void(bool)> on_change);
  /// Stops competing; the lease (if held) is released with the connection.
  /// `on_change` is not called from then on.
  ~links_lease();
  links_lease(const links_lease&) = delete;
  links_lease& operator=(const links_lease&) = delete;

  /// Whether this node holds the lease now. Thread-safe.
  bool held() const noexcept { return held_.load(); }

 private:
  void run();
  /// One round: connects if need be, then tries the lock or checks that the
  /// connection (and so the lock) still lives.
  void round();
  void lose(const char* why);

  const std::string conninfo_, region_;
  const std::function<void(bool)> on_change_;
  pg_conn* conn_ = nullptr;  // the lease's thread only
  std::atomic<bool> held_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace weft::server
