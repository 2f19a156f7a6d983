#include "server/storage.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
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
  for (const char* sql : {
           "PRAGMA journal_mode=WAL",
           "PRAGMA synchronous=FULL",
           "CREATE TABLE IF NOT EXISTS ops(doc TEXT NOT NULL, seq INTEGER NOT NULL, batch BLOB NOT NULL,"
           " PRIMARY KEY(doc, seq)) WITHOUT ROWID",
           "CREATE TABLE IF NOT EXISTS snapshots(doc TEXT PRIMARY KEY, seq INTEGER NOT NULL, data BLOB NOT NULL)"
           " WITHOUT ROWID",
       }) {
    status s = st->exec(sql);
    if (!s.ok()) return s;
  }
  st->thread_ = std::thread([p = st.get()] { p->run(); });
  return st;
}

storage::storage(sqlite3* db, metrics* m) : db_(db), metrics_(m) {}

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
    const bool urgent = r.type == request::kind::load || r.type == request::kind::barrier;
    // The storage thread is asleep only when the queue is empty, or when it
    // waits out the commit window (then only urgent requests need it now).
    wake = was_empty || (urgent && !urgent_);
    urgent_ = urgent_ || urgent;
    queue_.push_back(std::move(r));
  }
  if (wake) cv_.notify_one();
}

void storage::append(std::string doc, std::uint64_t seq, std::string batch, done_fn done) {
  enqueue(request{request::kind::append, std::move(doc), seq, std::move(batch), std::move(done), {}});
}

void storage::put_snapshot(std::string doc, std::uint64_t seq, std::string snapshot, done_fn done) {
  enqueue(request{request::kind::snapshot, std::move(doc), seq, std::move(snapshot), std::move(done), {}});
}

void storage::load(std::string doc, std::function<void(result<stored_document>)> done) {
  enqueue(request{request::kind::load, std::move(doc), 0, {}, {}, std::move(done)});
}

void storage::flush() {
  std::promise<void> p;
  auto f = p.get_future();
  enqueue(request{request::kind::barrier, {}, 0, {}, [&p](status) { p.set_value(); }, {}});
  f.wait();
}

status storage::write(const request& r) {
  if (r.type == request::kind::append) {
    // A plain INSERT: a batch already stored under this key is never
    // replaced (that would silently change acknowledged history); the
    // conflict fails the commit instead.
    stmt s(prepared("INSERT INTO ops(doc, seq, batch) VALUES(?1, ?2, ?3)"));
    if (!s.ok()) return db_error(db_, "prepare insert");
    s.text(1, r.doc);
    s.integer(2, r.seq);
    s.blob(3, r.data);
    if (s.step() != SQLITE_DONE) return db_error(db_, "insert op batch");
    return {};
  }
  stmt s(prepared("INSERT OR REPLACE INTO snapshots(doc, seq, data) VALUES(?1, ?2, ?3)"));
  if (!s.ok()) return db_error(db_, "prepare snapshot");
  s.text(1, r.doc);
  s.integer(2, r.seq);
  s.blob(3, r.data);
  if (s.step() != SQLITE_DONE) return db_error(db_, "write snapshot");
  stmt d(prepared("DELETE FROM ops WHERE doc = ?1 AND seq <= ?2"));
  if (!d.ok()) return db_error(db_, "prepare delete");
  d.text(1, r.doc);
  d.integer(2, r.seq);
  if (d.step() != SQLITE_DONE) return db_error(db_, "delete snapshotted ops");
  return {};
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
  stmt o(prepared("SELECT seq, batch FROM ops WHERE doc = ?1 AND seq > ?2 ORDER BY seq"));
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
      std::size_t j = i;
      while (j < work.size() && work[j].type != request::kind::load) ++j;
      auto t0 = std::chrono::steady_clock::now();
      status st = exec_prepared("BEGIN IMMEDIATE");
      std::size_t writes = 0;
      for (std::size_t k = i; k < j && st.ok(); ++k) {
        if (work[k].type == request::kind::barrier) continue;
        st = write(work[k]);
        ++writes;
      }
      if (st.ok()) {
        st = exec_prepared("COMMIT");
      }
      if (!st.ok() && metrics_) metrics_->count(kind_of(sqlite3_extended_errcode(db_)));
      if (!st.ok() && !sqlite3_get_autocommit(db_)) (void)exec("ROLLBACK");
      auto dt = std::chrono::steady_clock::now() - t0;
      if (metrics_ && writes > 0) metrics_->observe_commit(std::chrono::duration<double>(dt).count(), writes);
      for (std::size_t k = i; k < j; ++k)
        if (work[k].done) work[k].done(st);
      i = j;
    }
    work.clear();
  }
}

}  // namespace weft::server
