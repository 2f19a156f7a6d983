// Durable storage of documents in SQLite (WAL mode, synchronous=FULL), with
// group commit: one thread drains a queue of requests and commits everything
// queued since the last commit in one transaction, so many ops share an fsync.
//
// The op batches form one ordered log per node, which is also its changes
// feed for replication (docs/replication.md): every batch has an origin (the
// node incarnation that first committed it, "node~hex") and a sequence
// number there (olsn, 1, 2, ... per origin), and the path it took (the
// origin keys of the nodes it passed through).
// A node's own batches get the next olsn of its own origin at commit; batches
// replicated from peers keep theirs. Per origin the storage tracks `have`:
// the highest olsn up to which it holds every batch durably (contiguous).
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
#include <set>
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
  std::uint64_t snapshot_seq = 0;    // log entries with lsn <= this are in the snapshot
  std::vector<std::pair<std::uint64_t, std::string>> batches;  // (lsn, encode_ops bytes), ascending
};

/// Where a replicated batch comes from (storage::append_replicated).
struct batch_origin {
  std::string key;          ///< origin incarnation, "node~hex"
  std::uint64_t olsn = 0;   ///< its sequence number at the origin (>= 1)
  std::string path;         ///< origin keys of the nodes it passed through, comma-separated, origin first
};

/// One entry of the changes feed.
struct feed_entry {
  std::string key;
  std::uint64_t olsn = 0;
  std::string doc;
  std::string path;         ///< including this node when it relayed the entry
  std::int64_t ts_ms = 0;   ///< when this node committed it (Unix ms)
  std::string batch;        ///< encode_ops bytes (possibly empty)
};

/// What read_feed() found.
struct feed_page {
  std::vector<feed_entry> entries;  ///< ascending olsn, contiguous from `after`+1
  /// Entries after `after` were compacted away: the reader cannot resume
  /// from this position (it needs a per-document version-vector exchange).
  bool compacted = false;
};

/// Per origin key, the highest contiguous olsn held durably.
using origin_vector = std::map<std::string, std::uint64_t>;

struct storage_options {
  /// Quota for the database in bytes (0: none). Past it a commit fails with
  /// "database or disk is full", exactly as when the disk fills up: the
  /// writes are refused and nothing in them is acknowledged.
  std::uint64_t max_bytes = 0;
  /// Group-commit window: a write waits up to this long for others to share
  /// its transaction and fsync. Acknowledgements wait for the commit, so this
  /// bounds their extra delay; rebroadcast to other clients does not wait.
  /// Loads, feed reads, replicated batches and flushes are never delayed.
  /// 0: commit as soon as possible.
  std::chrono::microseconds commit_window{0};
  /// This node's id (the origin of the batches it commits for its clients).
  std::string node_id = "local";
  /// Keep feed entries after their document's snapshot until every peer in
  /// record_peer_progress() has confirmed them (a node with peers). False:
  /// entries go as soon as a snapshot covers them (a node alone).
  bool retain_feed_for_peers = false;
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
  /// Durably appends an op batch of `doc` committed on this node (the next
  /// olsn of this node's origin); `done` runs after the commit, with the
  /// batch's olsn (0 when the commit failed).
  using appended_fn = std::function<void(status, std::uint64_t olsn)>;
  void append(std::string doc, std::string batch, appended_fn done);
  /// Durably appends a batch replicated from a peer, keeping its origin and
  /// olsn; this node's origin key is added to its path. An entry already held
  /// (same origin and olsn, same bytes) is not written again and succeeds;
  /// the same key with other bytes is refused alone (invalid_operation,
  /// "conflicting write"; the rest of the commit goes on).
  void append_replicated(std::string doc, batch_origin origin, std::string batch, done_fn done);
  /// Stores a snapshot covering every log entry of `doc` committed before it
  /// (the caller, the document's only writer, has them all in `snapshot`),
  /// then compacts the entries it covers (see retain_feed_for_peers).
  void put_snapshot(std::string doc, std::string snapshot, done_fn done);
  /// Reads a document (empty when it does not exist).
  void load(std::string doc, std::function<void(result<stored_document>)> done);
  /// Reads up to `max_entries` feed entries of origin `key` after olsn
  /// `after`, in olsn order, never past have(key).
  void read_feed(std::string key, std::uint64_t after, std::size_t max_entries,
                 std::function<void(result<feed_page>)> done);
  /// Where the feed of `key` resumes after a gap past `after` (the smallest
  /// olsn still held after it, at most have(key) + 1) and every document this
  /// node holds:
  /// what a peer whose checkpoint fell into the gap must exchange instead.
  struct feed_gap_info {
    std::uint64_t first_held = 0;
    std::vector<std::string> docs;
  };
  void feed_gap(std::string key, std::uint64_t after, std::function<void(result<feed_gap_info>)> done);
  /// Durably moves have(key) to at least `olsn`: the caller holds everything
  /// of `key` up to it by other means (a per-document exchange after a gap).
  void advance(std::string key, std::uint64_t olsn, done_fn done);
  /// Durably records that `peer` holds every entry of each origin up to the
  /// given olsn (its confirmation), so compaction may drop them.
  void record_peer_progress(std::string peer, origin_vector confirmed);
  /// Blocks until everything queued so far is committed.
  void flush();

  /// This node's origin key ("node~hex", fixed when the database was made).
  const std::string& origin_key() const noexcept { return own_key_; }
  /// Per origin, the highest olsn up to which every entry is durable here.
  /// Thread-safe (a copy).
  origin_vector have() const;
  /// Called on the storage thread after each commit that advanced have()
  /// for some origins (their keys). Set once, before use; must be quick.
  void on_advanced(std::function<void(const std::vector<std::string>&)> f) { on_advanced_ = std::move(f); }

 private:
  struct request {
    enum class kind { append, replicated, snapshot, load, barrier, feed, progress, gap, advance } type;
    std::string doc;  // for `feed`: the origin key; for `progress`: the peer
    std::uint64_t seq = 0;  // for `feed`: after; for `replicated`: olsn
    std::string data;
    done_fn done;
    std::function<void(result<stored_document>)> loaded = {};
    std::string key = {};   // replicated: origin key
    std::string path = {};  // replicated: path so far
    std::size_t max = 0;    // feed: most entries
    std::function<void(result<feed_page>)> fed = {};
    origin_vector progress = {};
    std::function<void(result<feed_gap_info>)> gapped = {};
    appended_fn appended = {};
  };
  storage(sqlite3* db, metrics* m);
  status migrate_and_identify(const storage_options& options);
  /// Marks olsn `n` of `key` held; advances have_ over contiguous entries.
  void mark_held(const std::string& key, std::uint64_t n);
  /// Moves `h` (staged_[key]) over the held entries of `key` that now follow it.
  void absorb_ahead(const std::string& key, std::uint64_t& h);
  result<feed_page> read_feed_now(const std::string& key, std::uint64_t after, std::size_t max);
  result<feed_gap_info> feed_gap_now(const std::string& key, std::uint64_t after);
  status compact(const std::string& doc);
  void enqueue(request r);
  void run();
  status exec(const char* sql);
  /// The statement for `sql` (a string literal: cached by address), prepared
  /// once and kept; null when it cannot be prepared. Storage thread only.
  sqlite3_stmt* prepared(const char* sql);
  /// Runs a cached statement that returns no rows.
  status exec_prepared(const char* sql);
  /// One request inside the open transaction. An error fails the whole
  /// commit; `refusal` refuses this request alone.
  status write(request& r, status& refusal);
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
  std::string node_id_;
  std::string own_key_;
  bool retain_ = false;
  // Replication progress, storage thread only except have_ (also under have_mu_).
  mutable std::mutex have_mu_;
  origin_vector have_;    // guarded by have_mu_: staged_ as of the last commit
  origin_vector staged_;  // storage thread only: have, with the open transaction's writes
  std::map<std::string, std::set<std::uint64_t>> ahead_;  // storage thread only: held entries past staged_
  std::function<void(const std::vector<std::string>&)> on_advanced_;
  std::thread thread_;
};

}  // namespace weft::server
