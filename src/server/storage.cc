#include "server/storage.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cctype>
#include <future>

#include "server/metrics.h"

namespace weft::server {

namespace {

// RAII prepared statement: owned (finalized at the end), or borrowed from
// the storage's cache (reset and unbound at the end, kept for the next use).
class stmt {
 public:
  stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  explicit stmt(sqlite3_stmt* cached) : s_(cached), rc_(cached ? SQLITE_OK : SQLITE_ERROR), owned_(false) {}
  ~stmt() {
    if (owned_) {
      sqlite3_finalize(s_);
    } else if (s_) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
  }
  stmt(const stmt&) = delete;
  stmt& operator=(const stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() const { return s_; }
  void text(int i, const std::string& v) { sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC); }
  void blob(int i, const std::string& v) { sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC); }
  void integer(int i, std::uint64_t v) { sqlite3_bind_int64(s_, i, static_cast<sqlite3_int64>(v)); }
  int step() { return sqlite3_step(s_); }
  std::string column_blob(int i) {
    const void* p = sqlite3_column_blob(s_, i);
    return std::string(static_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s_, i)));
  }
  std::uint64_t column_int(int i) { return static_cast<std::uint64_t>(sqlite3_column_int64(s_, i)); }
  std::string column_text(int i) {
    const unsigned char* p = sqlite3_column_text(s_, i);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_;
  bool owned_ = true;
};

// What kind of failure SQLite reported, from its primary result code.
metrics::storage_error kind_of(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL: return metrics::storage_error::full;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return metrics::storage_error::io;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return metrics::storage_error::corrupt;
    case SQLITE_CONSTRAINT: return metrics::storage_error::conflict;
    default: return metrics::storage_error::other;
  }
}

const char* kind_name(metrics::storage_error k) {
  switch (k) {
    case metrics::storage_error::full: return "disk full";
    case metrics::storage_error::io: return "I/O error";
    case metrics::storage_error::corrupt: return "corrupt data";
    case metrics::storage_error::conflict: return "conflicting write";
    default: return "database error";
  }
}

// An error from SQLite, named by kind first ("disk full: insert op batch:
// database or disk is full"), so that clients and logs tell a full disk from
// a failing one or from corruption.
status db_error(sqlite3* db, const char* what) {
  const auto k = kind_of(sqlite3_extended_errcode(db));
  const error_code code = k == metrics::storage_error::corrupt ? error_code::corrupt_data
                          : k == metrics::storage_error::full  ? error_code::limit_exceeded
                                                               : error_code::invalid_argument;
  return status(code, std::string(kind_name(k)) + ": " + what + ": " + sqlite3_errmsg(db));
}

}  // namespace

result<std::unique_ptr<storage>> storage::open(const std::string& dir, metrics* m, storage_options options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return status(error_code::invalid_argument, "cannot create data directory " + dir + ": " + ec.message());
  std::string path = dir + "/weft.db";
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    status s = db_error(db, ("cannot open " + path).c_str());
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<storage> st(new storage(db, m));
  st->window_ = options.commit_window;
  // A damaged file is reported and not served: a wrong document is worse than none.
  {
    stmt check(db, "PRAGMA quick_check");
    int rc = check.ok() ? check.step() : SQLITE_ERROR;
    std::string verdict = rc == SQLITE_ROW ? check.column_text(0) : sqlite3_errmsg(db);
    if (verdict != "ok")
      return status(error_code::corrupt_data, path + " is damaged (" + verdict +
                                                  "); restore it from a backup, or move it away to start empty");
  }
  if (options.max_bytes > 0) {
    stmt ps(db, "PRAGMA page_size");
    std::uint64_t page = ps.ok() && ps.step() == SQLITE_ROW ? static_cast<std::uint64_t>(ps.column_int(0)) : 4096;
    std::string sql = "PRAGMA max_page_count=" + std::to_string(std::max<std::uint64_t>(1, options.max_bytes / page));
    status q = st->exec(sql.c_str());
    if (!q.ok()) return q;
  }
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"}) {
    status s = st->exec(sql);
    if (!s.ok()) return s;
  }
  if (status s = st->migrate_and_identify(options); !s.ok()) return s;
  st->thread_ = std::thread([p = st.get()] { p->run(); });
  return st;
}

storage::storage(sqlite3* db, metrics* m) : db_(db), metrics_(m) {}

namespace {
// Schema versions (PRAGMA user_version): 0 is the first format (op batches
// keyed by (doc, seq), no feed), 2 the log with origins (docs/encoding.md).
constexpr int schema_version = 2;

bool valid_node_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

status storage::migrate_and_identify(const storage_options& options) {
  if (!valid_node_id(options.node_id))
    return status(error_code::invalid_argument,
                  "node id '" + options.node_id + "' must be 1-64 letters, digits, '-', '_' or '.'");
  node_id_ = options.node_id;
  retain_ = options.retain_feed_for_peers;
  int version = 0;
  {
    stmt v(db_, "PRAGMA user_version");
    if (v.ok() && v.step() == SQLITE_ROW) version = static_cast<int>(v.column_int(0));
  }
  if (version > schema_version)
    return status(error_code::unsupported_version, "the database has schema version " + std::to_string(version) +
                                                       ", newer than this weft-server understands (" +
                                                       std::to_string(schema_version) + ")");
  if (status s = exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  auto fail = [&](status s) {
    (void)exec("ROLLBACK");
    return s;
  };
  for (const char* sql : {
           "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
           "CREATE TABLE IF NOT EXISTS log(lsn INTEGER PRIMARY KEY, doc TEXT NOT NULL, origin TEXT NOT NULL,"
           " olsn INTEGER NOT NULL, path TEXT NOT NULL, ts INTEGER NOT NULL, batch BLOB NOT NULL)",
           "CREATE UNIQUE INDEX IF NOT EXISTS log_by_origin ON log(origin, olsn)",
           "CREATE INDEX IF NOT EXISTS log_by_doc ON log(doc, lsn)",
           "CREATE TABLE IF NOT EXISTS origins(origin TEXT PRIMARY KEY, have INTEGER NOT NULL) WITHOUT ROWID",
           "CREATE TABLE IF NOT EXISTS peer_progress(peer TEXT NOT NULL, origin TEXT NOT NULL,"
           " olsn INTEGER NOT NULL, PRIMARY KEY(peer, origin)) WITHOUT ROWID",
           // seq: the highest log lsn of the document the snapshot covers.
           "CREATE TABLE IF NOT EXISTS snapshots(doc TEXT PRIMARY KEY, seq INTEGER NOT NULL, data BLOB NOT NULL)"
           " WITHOUT ROWID",
           "INSERT OR IGNORE INTO meta(key, value) VALUES('incarnation', lower(hex(randomblob(6))))",
       }) {
    if (status s = exec(sql); !s.ok()) return fail(s);
  }
  {
    stmt inc(db_, "SELECT value FROM meta WHERE key = 'incarnation'");
    if (!inc.ok() || inc.step() != SQLITE_ROW) return fail(db_error(db_, "read incarnation"));
    own_key_ = node_id_ + "~" + inc.column_text(0);
  }
  if (version == 0) {
    // The first format: batches in ops(doc, seq), snapshots covering seq <=
    // N of their document (those batches deleted). Every remaining batch
    // becomes a log entry of this node's origin, in document order, and
    // snapshots cover no log entry (they covered only deleted batches).
    bool has_ops;
    {
      stmt q(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ops'");
      has_ops = q.ok() && q.step() == SQLITE_ROW;
    }
    if (has_ops) {
      {
        stmt copy(db_,
                  "INSERT INTO log(doc, origin, olsn, path, ts, batch) SELECT doc, ?1,"
                  " ROW_NUMBER() OVER (ORDER BY doc, seq), ?1, 0, batch FROM ops ORDER BY doc, seq");
        copy.text(1, own_key_);
        if (!copy.ok() || copy.step() != SQLITE_DONE) return fail(db_error(db_, "migrate op batches"));
      }
      {
        stmt count(db_, "INSERT OR REPLACE INTO origins(origin, have) SELECT ?1, COUNT(*) FROM log WHERE origin = ?1");
        count.text(1, own_key_);
        if (!count.ok() || count.step() != SQLITE_DONE) return fail(db_error(db_, "migrate origins"));
      }
      for (const char* sql : {"UPDATE snapshots SET seq = 0", "DROP TABLE ops"})
        if (status s = exec(sql); !s.ok()) return fail(s);
    }
  }
  if (status s = exec(("PRAGMA user_version = " + std::to_string(schema_version)).c_str()); !s.ok()) return fail(s);
  if (status s = exec("COMMIT"); !s.ok()) return fail(s);
  stmt o(db_, "SELECT origin, have FROM origins");
  while (o.ok() && o.step() == SQLITE_ROW) have_[o.column_text(0)] = o.column_int(1);
  staged_ = have_;
  // Entries held past a gap (a crash between out-of-order commits) are
  // found again: they count once the gap fills.
  {
    stmt a(db_,
           "SELECT origin, olsn FROM log l WHERE olsn > IFNULL((SELECT have FROM origins o WHERE o.origin = l.origin), 0)");
    while (a.ok() && a.step() == SQLITE_ROW) ahead_[a.column_text(0)].insert(a.column_int(1));
  }
  return {};
}

origin_vector storage::have() const {
  std::lock_guard<std::mutex> lock(have_mu_);
  return have_;
}

void storage::mark_held(const std::string& key, std::uint64_t n) {
  std::uint64_t& h = staged_[key];
  if (n <= h) return;
  if (n != h + 1) {
    ahead_[key].insert(n);
    return;
  }
  h = n;
  absorb_ahead(key, h);
}

void storage::absorb_ahead(const std::string& key, std::uint64_t& h) {
  auto it = ahead_.find(key);
  if (it == ahead_.end()) return;
  auto& set = it->second;
  while (!set.empty() && *set.begin() <= h + 1) {
    if (*set.begin() == h + 1) ++h;
    set.erase(set.begin());
  }
  if (set.empty()) ahead_.erase(it);
}

storage::~storage() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& [sql, st] : prepared_) sqlite3_finalize(st);
  sqlite3_close(db_);
}

sqlite3_stmt* storage::prepared(const char* sql) {
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
    sqlite3_finalize(st);
    return nullptr;
  }
  prepared_.emplace(sql, st);
  return st;
}

status storage::exec_prepared(const char* sql) {
  stmt s(prepared(sql));
  if (!s.ok() || s.step() != SQLITE_DONE) return db_error(db_, sql);
  return {};
}

status storage::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown error";
    sqlite3_free(err);
    return status(error_code::invalid_argument, std::string(sql) + ": " + m);
  }
  return {};
}

void storage::enqueue(request r) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool was_empty = queue_.empty();
    if (was_empty) oldest_ = std::chrono::steady_clock::now();
    // Reads wait for nobody. A replicated batch neither: it was grouped and
    // waited for its commit window on its origin already, and every ms here
    // is replication lag.
    const bool urgent = r.type == request::kind::load || r.type == request::kind::barrier ||
                        r.type == request::kind::feed || r.type == request::kind::replicated ||
                        r.type == request::kind::gap || r.type == request::kind::advance;
    // The storage thread is asleep only when the queue is empty, or when it
    // waits out the commit window (then only urgent requests need it now).
    wake = was_empty || (urgent && !urgent_);
    urgent_ = urgent_ || urgent;
    queue_.push_back(std::move(r));
  }
  if (wake) cv_.notify_one();
}

void storage::append(std::string doc, std::string batch, appended_fn done) {
  request r{request::kind::append, std::move(doc), 0, std::move(batch), {}};
  r.appended = std::move(done);
  enqueue(std::move(r));
}

void storage::append_replicated(std::string doc, batch_origin origin, std::string batch, done_fn done) {
  request r{request::kind::replicated, std::move(doc), origin.olsn, std::move(batch), std::move(done)};
  r.key = std::move(origin.key);
  r.path = std::move(origin.path);
  enqueue(std::move(r));
}

void storage::put_snapshot(std::string doc, std::string snapshot, done_fn done) {
  enqueue(request{request::kind::snapshot, std::move(doc), 0, std::move(snapshot), std::move(done)});
}

void storage::read_feed(std::string key, std::uint64_t after, std::size_t max_entries,
                        std::function<void(result<feed_page>)> done) {
  request r{request::kind::feed, std::move(key), after, {}, {}};
  r.max = max_entries;
  r.fed = std::move(done);
  enqueue(std::move(r));
}

void storage::feed_gap(std::string key, std::uint64_t after, std::function<void(result<feed_gap_info>)> done) {
  request r{request::kind::gap, std::move(key), after, {}, {}};
  r.gapped = std::move(done);
  enqueue(std::move(r));
}

void storage::advance(std::string key, std::uint64_t olsn, done_fn done) {
  request r{request::kind::advance, {}, olsn, {}, std::move(done)};
  r.key = std::move(key);
  enqueue(std::move(r));
}

void storage::record_peer_progress(std::string peer, origin_vector confirmed) {
  request r{request::kind::progress, std::move(peer), 0, {}, {}};
  r.progress = std::move(confirmed);
  enqueue(std::move(r));
}

void storage::load(std::string doc, std::function<void(result<stored_document>)> done) {
  enqueue(request{request::kind::load, std::move(doc), 0, {}, {}, std::move(done)});
}

void storage::flush() {
  std::promise<void> p;
  auto f = p.get_future();
  enqueue(request{request::kind::barrier, {}, 0, {}, [&p](status) { p.set_value(); }});
  f.wait();
}

status storage::write(request& r, status& refusal) {
  switch (r.type) {
    case request::kind::append: {
      // A plain INSERT: an entry already stored under this key is never
      // replaced (that would silently change acknowledged history); the
      // conflict fails the commit instead.
      std::uint64_t olsn;
      olsn = staged_[own_key_] + 1;
      stmt s(prepared("INSERT INTO log(doc, origin, olsn, path, ts, batch) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"));
      if (!s.ok()) return db_error(db_, "prepare insert");
      s.text(1, r.doc);
      s.text(2, own_key_);
      s.integer(3, olsn);
      s.text(4, own_key_);
      s.integer(5, static_cast<std::uint64_t>(unix_ms()));
      s.blob(6, r.data);
      if (s.step() != SQLITE_DONE) return db_error(db_, "insert op batch");
      mark_held(own_key_, olsn);
      r.seq = olsn;
      return {};
    }
    case request::kind::replicated: {
      bool held;
      {
        auto h = staged_.find(r.key);
        auto a = ahead_.find(r.key);
        held = (h != staged_.end() && r.seq <= h->second) || (a != ahead_.end() && a->second.count(r.seq));
      }
      if (held) {
        // Replayed after a reconnect or through a second route: the same
        // bytes are fine, other bytes under the same key are a bug or a
        // forgery and must not pass as the same batch.
        stmt q(prepared("SELECT batch FROM log WHERE origin = ?1 AND olsn = ?2"));
        if (!q.ok()) return db_error(db_, "prepare feed lookup");
        q.text(1, r.key);
        q.integer(2, r.seq);
        int rc = q.step();
        if (rc == SQLITE_ROW && q.column_blob(0) != r.data) {
          // Refused on its own: the rest of the group commit goes on.
          refusal = status(error_code::invalid_operation, "conflicting write: batch " + std::to_string(r.seq) +
                                                             " of " + r.key + " arrived with other contents than stored");
          if (metrics_) metrics_->count(metrics::storage_error::conflict);
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(db_, "feed lookup");
        return {};
      }
      stmt s(prepared("INSERT INTO log(doc, origin, olsn, path, ts, batch) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"));
      if (!s.ok()) return db_error(db_, "prepare insert");
      std::string path = r.path.empty() ? own_key_ : r.path + "," + own_key_;
      s.text(1, r.doc);
      s.text(2, r.key);
      s.integer(3, r.seq);
      s.text(4, path);
      s.integer(5, static_cast<std::uint64_t>(unix_ms()));
      s.blob(6, r.data);
      if (s.step() != SQLITE_DONE) return db_error(db_, "insert replicated batch");
      mark_held(r.key, r.seq);
      return {};
    }
    case request::kind::advance: {
      std::uint64_t& h = staged_[r.key];
      if (r.seq > h) h = r.seq;
      absorb_ahead(r.key, h);
      return {};
    }
    case request::kind::progress: {
      stmt s(prepared("INSERT INTO peer_progress(peer, origin, olsn) VALUES(?1, ?2, ?3)"
                      " ON CONFLICT(peer, origin) DO UPDATE SET olsn = max(olsn, excluded.olsn)"));
      if (!s.ok()) return db_error(db_, "prepare peer progress");
      for (const auto& [key, n] : r.progress) {
        s.text(1, r.doc);
        s.text(2, key);
        s.integer(3, n);
        if (s.step() != SQLITE_DONE) return db_error(db_, "record peer progress");
        sqlite3_reset(s.get());
      }
      return {};
    }
    case request::kind::snapshot: {
      stmt s(prepared("INSERT OR REPLACE INTO snapshots(doc, seq, data)"
                      " VALUES(?1, (SELECT IFNULL(MAX(lsn), 0) FROM log WHERE doc = ?1), ?2)"));
      if (!s.ok()) return db_error(db_, "prepare snapshot");
      s.text(1, r.doc);
      s.blob(2, r.data);
      if (s.step() != SQLITE_DONE) return db_error(db_, "write snapshot");
      return compact(r.doc);
    }
    default:
      return {};
  }
}

status storage::compact(const std::string& doc) {
  // Alone, a snapshot's entries go at once. With peers, an entry also waits
  // until every peer known here has confirmed it: a peer resumes from its
  // checkpoint, and an entry gone before it got it would need a per-document
  // exchange instead.
  const char* sql = retain_
                        ? "DELETE FROM log WHERE doc = ?1 AND lsn <= (SELECT seq FROM snapshots WHERE doc = ?1)"
                          " AND (SELECT COUNT(*) FROM peer_progress p WHERE p.origin = log.origin AND p.olsn >= log.olsn)"
                          " = (SELECT COUNT(DISTINCT peer) FROM peer_progress)"
                          " AND EXISTS (SELECT 1 FROM peer_progress)"
                        : "DELETE FROM log WHERE doc = ?1 AND lsn <= (SELECT seq FROM snapshots WHERE doc = ?1)";
  stmt d(prepared(sql));
  if (!d.ok()) return db_error(db_, "prepare compaction");
  d.text(1, doc);
  if (d.step() != SQLITE_DONE) return db_error(db_, "compact log");
  return {};
}

result<storage::feed_gap_info> storage::feed_gap_now(const std::string& key, std::uint64_t after) {
  feed_gap_info out;
  std::uint64_t have;
  {
    auto h = staged_.find(key);
    have = h == staged_.end() ? 0 : h->second;
  }
  // The first entry still held after the reader's position (compaction goes
  // document by document: the holes need not be a prefix), never past what
  // is held contiguously.
  out.first_held = have + 1;
  stmt m(prepared("SELECT MIN(olsn) FROM log WHERE origin = ?1 AND olsn > ?2"));
  if (!m.ok()) return db_error(db_, "prepare gap read");
  m.text(1, key);
  m.integer(2, after);
  if (m.step() == SQLITE_ROW && sqlite3_column_type(m.get(), 0) != SQLITE_NULL)
    out.first_held = std::min(out.first_held, m.column_int(0));
  stmt d(prepared("SELECT doc FROM snapshots UNION SELECT DISTINCT doc FROM log ORDER BY 1"));
  if (!d.ok()) return db_error(db_, "prepare document list");
  int rc;
  while ((rc = d.step()) == SQLITE_ROW) out.docs.push_back(d.column_text(0));
  if (rc != SQLITE_DONE) return db_error(db_, "list documents");
  return out;
}

result<feed_page> storage::read_feed_now(const std::string& key, std::uint64_t after, std::size_t max) {
  feed_page page;
  std::uint64_t upto;
  {
    auto h = staged_.find(key);
    upto = h == staged_.end() ? 0 : h->second;
  }
  if (after >= upto) return page;
  stmt s(prepared("SELECT olsn, doc, path, ts, batch FROM log WHERE origin = ?1 AND olsn > ?2 AND olsn <= ?3"
                  " ORDER BY olsn LIMIT ?4"));
  if (!s.ok()) return db_error(db_, "prepare feed read");
  s.text(1, key);
  s.integer(2, after);
  s.integer(3, upto);
  s.integer(4, max);
  int rc;
  std::uint64_t next = after + 1;
  while ((rc = s.step()) == SQLITE_ROW) {
    std::uint64_t olsn = s.column_int(0);
    if (olsn != next) break;  // compacted below here
    page.entries.push_back(feed_entry{key, olsn, s.column_text(1), s.column_text(2),
                                      static_cast<std::int64_t>(s.column_int(3)), s.column_blob(4)});
    ++next;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(db_, "read feed");
  if (page.entries.empty()) page.compacted = true;
  return page;
}

result<stored_document> storage::read(const std::string& doc) {
  stored_document out;
  stmt s(prepared("SELECT seq, data FROM snapshots WHERE doc = ?1"));
  if (!s.ok()) return db_error(db_, "prepare snapshot read");
  s.text(1, doc);
  int rc = s.step();
  if (rc == SQLITE_ROW) {
    out.snapshot_seq = s.column_int(0);
    out.snapshot = s.column_blob(1);
  } else if (rc != SQLITE_DONE) {
    return db_error(db_, "read snapshot");
  }
  stmt o(prepared("SELECT lsn, batch FROM log WHERE doc = ?1 AND lsn > ?2 ORDER BY lsn"));
  if (!o.ok()) return db_error(db_, "prepare ops read");
  o.text(1, doc);
  o.integer(2, out.snapshot_seq);
  while ((rc = o.step()) == SQLITE_ROW) out.batches.emplace_back(o.column_int(0), o.column_blob(1));
  if (rc != SQLITE_DONE) return db_error(db_, "read ops");
  return out;
}

void storage::run() {
  std::vector<request> work;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      // Let more writes join this commit, up to the window.
      if (window_.count() > 0 && !urgent_ && !stopping_)
        cv_.wait_until(lock, oldest_ + window_, [&] { return stopping_ || urgent_; });
      urgent_ = false;
      work.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    }
    // Loads are answered in queue order relative to writes: a load queued
    // after a write sees it. Writes between loads share one transaction.
    std::size_t i = 0;
    while (i < work.size()) {
      if (work[i].type == request::kind::load) {
        auto r = read(work[i].doc);
        if (!r.ok() && metrics_) metrics_->count(kind_of(sqlite3_extended_errcode(db_)));
        work[i].loaded(std::move(r));
        ++i;
        continue;
      }
      if (work[i].type == request::kind::feed) {
        work[i].fed(read_feed_now(work[i].doc, work[i].seq, work[i].max));
        ++i;
        continue;
      }
      if (work[i].type == request::kind::gap) {
        work[i].gapped(feed_gap_now(work[i].doc, work[i].seq));
        ++i;
        continue;
      }
      auto is_read = [](const request& r) {
        return r.type == request::kind::load || r.type == request::kind::feed || r.type == request::kind::gap;
      };
      std::size_t j = i;
      while (j < work.size() && !is_read(work[j])) ++j;
      auto t0 = std::chrono::steady_clock::now();
      // What the transaction does to the progress it is undone with it.
      // The transaction works on staged_; have() shows it only once it
      // committed (a peer told "held" must never lose it in a crash).
      origin_vector have_before = staged_;
      std::map<std::string, std::set<std::uint64_t>> ahead_before = ahead_;
      status st = exec_prepared("BEGIN IMMEDIATE");
      std::size_t writes = 0;
      std::vector<status> refusals(j - i);
      for (std::size_t k = i; k < j && st.ok(); ++k) {
        if (work[k].type == request::kind::barrier) continue;
        st = write(work[k], refusals[k - i]);
        ++writes;
      }
      std::vector<std::string> advanced;
      if (st.ok()) {
        for (const auto& [key, h] : staged_) {
          auto b = have_before.find(key);
          if (h > (b == have_before.end() ? 0 : b->second)) advanced.push_back(key);
        }
      }
      if (st.ok() && !advanced.empty()) {
        stmt up(prepared("INSERT INTO origins(origin, have) VALUES(?1, ?2)"
                         " ON CONFLICT(origin) DO UPDATE SET have = excluded.have"));
        for (const auto& key : advanced) {
          up.text(1, key);
          up.integer(2, staged_[key]);
          if (up.step() != SQLITE_DONE) {
            st = db_error(db_, "record origin progress");
            break;
          }
          sqlite3_reset(up.get());
        }
      }
      if (st.ok()) {
        st = exec_prepared("COMMIT");
      }
      if (st.ok() && !advanced.empty()) {
        std::lock_guard<std::mutex> lock(have_mu_);
        have_ = staged_;
      }
      if (!st.ok()) {
        staged_ = std::move(have_before);
        ahead_ = std::move(ahead_before);
        advanced.clear();
      }
      if (!st.ok() && metrics_) metrics_->count(kind_of(sqlite3_extended_errcode(db_)));
      if (!st.ok() && !sqlite3_get_autocommit(db_)) (void)exec("ROLLBACK");
      auto dt = std::chrono::steady_clock::now() - t0;
      if (metrics_ && writes > 0) metrics_->observe_commit(std::chrono::duration<double>(dt).count(), writes);
      for (std::size_t k = i; k < j; ++k) {
        if (work[k].done) work[k].done(st.ok() && !refusals[k - i].ok() ? refusals[k - i] : st);
        if (work[k].appended) work[k].appended(st, st.ok() ? work[k].seq : 0);
      }
      if (!advanced.empty() && on_advanced_) on_advanced_(advanced);
      i = j;
    }
    work.clear();
  }
}

}  // namespace weft::server
