// Durable storage of documents in SQLite (WAL mode, synchronous=FULL), with
// group commit: one thread drains a queue of requests and commits everything
// queued since the last commit in one transaction, so many ops share an fsync.
//
// Thread-safety: all public methods may be called from any thread. Callbacks
// run on the storage thread; they must be quick (post work elsewhere).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "weft/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace weft::server {

class metrics;

/// What a document has on disk: its latest snapshot and the op batches after it.
struct stored_document {
  std::string snapshot;              // empty: no snapshot yet
  std::uint64_t snapshot_seq = 0;    // batches with seq <= this are in the snapshot
  std::vector<std::pair<std::uint64_t, std::string>> batches;  // (seq, encode_ops bytes), ascending
};

struct storage_options {
  /// Quota for the database in bytes (0: none). Past it a commit fails with
  /// "database or disk is full", exactly as when the disk fills up: the
  /// writes are refused and nothing in them is acknowledged.
  std::uint64_t max_bytes = 0;
  /// Group-commit window: a write waits up to this long for others to share
  /// its transaction and fsync. Acknowledgements wait for the commit, so this
  /// bounds their extra delay; rebroadcast to other clients does not wait.
  /// Loads and flushes are never delayed. 0: commit as soon as possible.
  std::chrono::microseconds commit_window{0};
};

class storage {
 public:
  /// Opens (creating) `<dir>/weft.db`, creating `dir` if needed, and checks
  /// its integrity (PRAGMA quick_check) before anything is served from it.
  /// Errors: invalid_argument when the directory or database cannot be
  /// opened; corrupt_data when the file is not a sound SQLite database.
  static result<std::unique_ptr<storage>> open(const std::string& dir, metrics* m, storage_options options = {});
  ~storage();  // flushes the queue, then closes the database
  storage(const storage&) = delete;
  storage& operator=(const storage&) = delete;

  using done_fn = std::function<void(status)>;
  /// Durably appends op batch `seq` of `doc`; `done` runs after the commit.
  void append(std::string doc, std::uint64_t seq, std::string batch, done_fn done);
  /// Stores a snapshot covering batches <= seq and deletes those batches.
  void put_snapshot(std::string doc, std::uint64_t seq, std::string snapshot, done_fn done);
  /// Reads a document (empty when it does not exist).
  void load(std::string doc, std::function<void(result<stored_document>)> done);
  /// Blocks until everything queued so far is committed.
  void flush();

 private:
  struct request {
    enum class kind { append, snapshot, load, barrier } type;
    std::string doc;
    std::uint64_t seq = 0;
    std::string data;
    done_fn done;
    std::function<void(result<stored_document>)> loaded;
  };
  storage(sqlite3* db, metrics* m);
  void enqueue(request r);
  void run();
  status exec(const char* sql);
  /// The statement for `sql` (a string literal: cached by address), prepared
  /// once and kept; null when it cannot be prepared. Storage thread only.
  sqlite3_stmt* prepared(const char* sql);
  /// Runs a cached statement that returns no rows.
  status exec_prepared(const char* sql);
  status write(const request& r);
  result<stored_document> read(const std::string& doc);

  sqlite3* db_;
  std::map<const char*, sqlite3_stmt*> prepared_;  // storage thread only (and the destructor)
  metrics* metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<request> queue_;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  bool urgent_ = false;        // guarded by mu_: a load or flush is queued
  std::chrono::steady_clock::time_point oldest_;  // guarded by mu_: when queue_ became non-empty
  std::chrono::microseconds window_{0};
  std::thread thread_;
};

}  // namespace weft::server
