// Durable storage of documents, behind one interface with two backends:
// SQLite (sqlite_storage.h, the embedded default) and PostgreSQL
// (postgres_storage.h, shared by the nodes of a region). Both use group
// commit: one thread drains a queue of requests and commits everything queued
// since the last commit in one transaction, so many ops share an fsync. This
// class is that machinery and the bookkeeping of the feed; a backend supplies
// the statements.
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
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/metrics.h"
#include "server/replica_owners.h"
#include "weft/status.h"
#include "weft/types.h"

namespace weft::server {

/// What a document has on disk: its latest snapshot and the op batches after it.
struct stored_document {
  std::string snapshot;              // empty: no snapshot yet
  std::uint64_t snapshot_seq = 0;    // log entries with lsn <= this are in the snapshot
  std::vector<std::pair<std::uint64_t, std::string>> batches;  // (lsn, encode_ops bytes), ascending
  owner_claims owners;               // who owns which replica (replica_owners.h)
};

/// The node id of an origin key ("node~hex": the node and its incarnation).
inline std::string node_of(const std::string& key) { return key.substr(0, key.find('~')); }

/// Where a replicated batch comes from (storage::append_replicated).
struct batch_origin {
  std::string key;          ///< origin incarnation, "node~hex"
  std::uint64_t olsn = 0;   ///< its sequence number at the origin (>= 1)
  std::string path;         ///< origin keys of the nodes it passed through, comma-separated, origin first
  std::int64_t ts_ms = 0;   ///< when the sender committed it (Unix ms); not stored, judges concurrency
};

/// One entry of the changes feed.
struct feed_entry {
  std::string key;
  std::uint64_t olsn = 0;
  std::string doc;
  std::string path;         ///< including this node when it relayed the entry
  std::int64_t ts_ms = 0;   ///< when this node committed it (Unix ms)
  std::string batch;        ///< encode_ops bytes (possibly empty)
  std::string owners;       ///< owner claims first made with this batch (encode_claims text)
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
  /// Where the documents live: a directory (SQLite, `<dir>/weft.db`) or a
  /// PostgreSQL connection URI (`postgres://` or `postgresql://`).
  std::string location = "./data";
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
  /// While the database is unreachable (a backend that can reconnect), writes
  /// wait in memory up to this many bytes and are committed when it is back;
  /// past it they fail.
  std::uint64_t max_backlog_bytes = 256u << 20;
};

class storage {
 public:
  /// Opens the storage `options.location` names (see storage_options), checks
  /// its integrity and brings its schema up to date before anything is served
  /// from it. Errors: invalid_argument when it cannot be opened or reached;
  /// corrupt_data when it is damaged; unsupported_version when its schema is
  /// newer than this program.
  static result<std::unique_ptr<storage>> open(metrics* m, storage_options options);
  /// The same with `dir` as location (SQLite; kept for tests and tools).
  static result<std::unique_ptr<storage>> open(const std::string& dir, metrics* m, storage_options options = {});
  virtual ~storage();
  storage(const storage&) = delete;
  storage& operator=(const storage&) = delete;

  using done_fn = std::function<void(status)>;
  /// Durably appends an op batch of `doc` committed on this node (the next
  /// olsn of this node's origin); `done` runs after the commit, with the
  /// batch's olsn (0 when the commit failed).
  /// `owners` (encode_claims text, may be empty) are the replica ownership
  /// claims the batch introduces: stored in the same transaction, with the
  /// entry (so the feed carries them) and per document (load() returns
  /// them); a replica's first stored claim is never replaced.
  using appended_fn = std::function<void(status, std::uint64_t olsn)>;
  void append(std::string doc, std::string batch, appended_fn done, std::string owners = {});
  /// Durably appends a batch replicated from a peer, keeping its origin and
  /// olsn; this node's origin key is added to its path. An entry already held
  /// (same origin and olsn, same bytes) is not written again and succeeds;
  /// the same key with other bytes is refused alone (invalid_operation,
  /// "conflicting write"; the rest of the commit goes on). `owners` as for
  /// append(); claims that do not decode refuse the entry alone.
  void append_replicated(std::string doc, batch_origin origin, std::string batch, done_fn done,
                         std::string owners = {});
  /// Stores a snapshot of `doc` at `version` (every op the caller applied;
  /// it has no ops waiting for dependencies), then compacts the log entries
  /// it covers (see retain_feed_for_peers). With several writers (PostgreSQL)
  /// a snapshot never replaces one that holds ops it lacks, and one node at a
  /// time writes a document's snapshot.
  void put_snapshot(std::string doc, std::string snapshot, version_vector version, done_fn done);
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
  /// Durably forgets what `peer` (a node id) confirmed, for a node that left
  /// the cluster for good: compaction stops waiting for it, and every
  /// document's entries its snapshot covers and the remaining peers confirmed
  /// are compacted now. Should the node come back, its checkpoint falls into
  /// a compacted feed and it catches up by the per-document exchange.
  /// `done` gets invalid_operation when nothing was recorded for `peer` (a
  /// mistyped name, or forgotten already), and nothing changes then.
  void forget_peer(std::string peer, done_fn done);
  /// Blocks until everything queued so far is committed.
  void flush();

  /// This node's origin key ("node~hex").
  const std::string& origin_key() const noexcept { return own_key_; }
  /// Per origin, the highest olsn up to which every entry is durable here.
  /// Thread-safe (a copy).
  origin_vector have() const;
  /// Called on the storage thread after each commit that advanced have()
  /// for some origins (their keys). Set once, before use; must be quick.
  void on_advanced(std::function<void(const std::vector<std::string>&)> f) { on_advanced_ = std::move(f); }
  /// Called on the storage thread when the database becomes unreachable
  /// (an error: writes now wait, nothing is acknowledged) and when it is
  /// reachable again (ok: the waiting writes were committed). Set once,
  /// before use; must be quick.
  void on_availability(std::function<void(status)> f) { on_availability_ = std::move(f); }
  /// False while the database cannot be reached and writes wait for it.
  /// Thread-safe.
  bool reachable() const {
    std::lock_guard<std::mutex> lock(mu_);
    return !unreachable_;
  }
  /// Which backend this is ("sqlite", "postgres").
  virtual const char* backend() const noexcept = 0;

 protected:
  /// One row of the log, as a backend writes it.
  struct log_row {
    const std::string& doc;
    const std::string& origin;
    std::uint64_t olsn;
    const std::string& path;
    std::int64_t ts_ms;
    const std::string& batch;
    const std::string& owners;   ///< encode_claims text of `claims`
    const owner_claims& claims;  ///< to record per document (first claim wins)
  };
  explicit storage(metrics* m) : metrics_(m) {}
  /// Starts the storage thread; called by open() once the backend is ready.
  /// `own_key` is this node's origin; `have` and `ahead` what the database
  /// holds per origin (contiguous, and past a gap).
  void start(const storage_options& options, std::string own_key, origin_vector have,
             std::map<std::string, std::set<std::uint64_t>> ahead);
  /// Stops and joins the storage thread (after the queue drains). A backend's
  /// destructor calls it before closing its connection.
  void stop();

  // The backend: all called on the storage thread only. Errors name what
  // failed; last_error_kind() classifies the last one for the metrics.
  virtual status tx_begin() = 0;
  /// Inserts a log entry in the open transaction. A backend may defer the
  /// write to tx_commit(); an entry already stored under (origin, olsn) must
  /// make the commit fail, never replace it.
  virtual status tx_insert(const log_row& row) = 0;
  /// The stored bytes of entry (key, olsn), nullopt when not stored.
  virtual result<std::optional<std::string>> stored_batch(const std::string& key, std::uint64_t olsn) = 0;
  virtual status tx_snapshot(const std::string& doc, const std::string& data, const version_vector& version,
                             bool retain_for_peers) = 0;
  virtual status tx_peer_progress(const std::string& peer, const origin_vector& confirmed) = 0;
  /// Deletes `peer`'s progress rows; returns how many there were.
  virtual result<std::uint64_t> tx_forget_peer(const std::string& peer) = 0;
  /// Compacts every document as tx_snapshot() compacts one, against the
  /// snapshot already stored (documents without one are left alone).
  virtual status tx_compact_all(bool retain_for_peers) = 0;
  virtual status tx_origins(const std::vector<std::pair<std::string, std::uint64_t>>& have) = 0;
  virtual status tx_commit() = 0;
  virtual void tx_rollback() = 0;
  virtual result<stored_document> read_document(const std::string& doc) = 0;
  /// Entries of `key` with olsn in (after, upto], ascending, at most `max`.
  virtual result<std::vector<feed_entry>> read_feed_rows(const std::string& key, std::uint64_t after,
                                                         std::uint64_t upto, std::size_t max) = 0;
  /// The smallest olsn of `key` stored after `after` (nullopt: none).
  virtual result<std::optional<std::uint64_t>> first_stored_after(const std::string& key, std::uint64_t after) = 0;
  virtual result<std::vector<std::string>> list_documents() = 0;
  virtual metrics::storage_error last_error_kind() const = 0;
  /// True when `failure` means the database cannot be reached (it may come
  /// back): the transaction is retried after reconnect() instead of failing.
  virtual bool unreachable(const status& failure) const { (void)failure; return false; }
  /// How often progress written by other writers of the database is read
  /// (read_progress); 0: never (this node is its only writer).
  virtual std::chrono::milliseconds progress_poll_interval() const { return std::chrono::milliseconds(0); }
  /// Every origin's progress as the database holds it.
  virtual result<origin_vector> read_progress() { return origin_vector{}; }
  /// Tries to connect again; ok when the database answers.
  virtual status reconnect() { return status(error_code::invalid_argument, "cannot reconnect"); }

  metrics* metrics_;

 private:
  struct request {
    enum class kind { append, replicated, snapshot, load, barrier, feed, progress, gap, advance, forget } type;
    std::string doc;  // for `feed`: the origin key; for `progress`, `forget`: the peer
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
    version_vector version = {};  // snapshot
    std::string owners = {};      // append, replicated: encode_claims text
  };
  /// Marks olsn `n` of `key` held; advances staged_ over contiguous entries.
  void mark_held(const std::string& key, std::uint64_t n);
  /// Moves `h` (staged_[key]) over the held entries of `key` that now follow it.
  void absorb_ahead(const std::string& key, std::uint64_t& h);
  result<feed_page> read_feed_now(const std::string& key, std::uint64_t after, std::size_t max);
  result<feed_gap_info> feed_gap_now(const std::string& key, std::uint64_t after);
  void enqueue(request r);
  void run();
  /// Answers a read request (load, feed, gap).
  void answer(request& r);
  /// Runs work[i, j) (writes) as one transaction; fills `refusals`.
  status transact(std::vector<request>& work, std::size_t i, std::size_t j, std::vector<status>& refusals,
                  std::vector<std::string>& advanced, std::size_t& writes);
  /// While the database is unreachable: answers reads with an error, waits,
  /// reconnects and retries the transaction until it commits, fails for
  /// another reason, or the storage stops.
  status retry_until_reachable(status failure, std::vector<request>& work, std::size_t i, std::size_t j,
                               std::vector<status>& refusals, std::vector<std::string>& advanced,
                               std::size_t& writes);
  /// Moves have() up to what other writers of a shared database committed.
  void poll_progress();
  /// One request inside the open transaction. An error fails the whole
  /// commit; `refusal` refuses this request alone.
  status write(request& r, status& refusal);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<request> queue_;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  bool urgent_ = false;        // guarded by mu_: a load or flush is queued
  bool unreachable_ = false;   // guarded by mu_: the database is unreachable; writes wait
  std::uint64_t backlog_bytes_ = 0;  // guarded by mu_: bytes of writes queued or retried
  std::uint64_t max_backlog_ = 0;
  std::chrono::steady_clock::time_point oldest_;  // guarded by mu_: when queue_ became non-empty
  std::chrono::microseconds window_{0};
  std::chrono::steady_clock::time_point last_poll_{};  // storage thread only
  std::string own_key_;
  bool retain_ = false;
  // Replication progress, storage thread only except have_ (also under have_mu_).
  mutable std::mutex have_mu_;
  origin_vector have_;    // guarded by have_mu_: staged_ as of the last commit
  origin_vector staged_;  // storage thread only: have, with the open transaction's writes
  std::map<std::string, std::set<std::uint64_t>> ahead_;  // storage thread only: held entries past staged_
  std::function<void(const std::vector<std::string>&)> on_advanced_;
  std::function<void(status)> on_availability_;
  std::thread thread_;
};

/// Validates a node id: 1-64 letters, digits, '-', '_' or '.'.
bool valid_node_id(const std::string& id);
/// Milliseconds since the Unix epoch.
std::int64_t unix_ms();

}  // namespace weft::server
