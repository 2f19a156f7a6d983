#include "server/sqlite_storage.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cctype>

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

result<std::unique_ptr<storage>> sqlite_storage::open(metrics* m, storage_options options) {
  const std::string& dir = options.location;
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
  std::unique_ptr<sqlite_storage> st(new sqlite_storage(db, m));
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
  auto key = st->migrate_and_identify(options);
  if (!key.ok()) return key.error();
  origin_vector have;
  std::map<std::string, std::set<std::uint64_t>> ahead;
  {
    stmt o(db, "SELECT origin, have FROM origins");
    while (o.ok() && o.step() == SQLITE_ROW) have[o.column_text(0)] = o.column_int(1);
  }
  // Entries held past a gap (a crash between out-of-order commits) are
  // found again: they count once the gap fills.
  {
    stmt a(db,
           "SELECT origin, olsn FROM log l WHERE olsn > IFNULL((SELECT have FROM origins o WHERE o.origin = l.origin), 0)");
    while (a.ok() && a.step() == SQLITE_ROW) ahead[a.column_text(0)].insert(a.column_int(1));
  }
  st->start(options, std::move(key.value()), std::move(have), std::move(ahead));
  return std::unique_ptr<storage>(std::move(st));
}

sqlite_storage::sqlite_storage(sqlite3* db, metrics* m) : storage(m), db_(db) {}

namespace {
// Schema versions (PRAGMA user_version): 0 is the first format (op batches
// keyed by (doc, seq), no feed), 2 the log with origins, 3 adds replica
// ownership (the log's owners column and the owners table; docs/encoding.md).
constexpr int schema_version = 3;
}  // namespace

result<std::string> sqlite_storage::migrate_and_identify(const storage_options& options) {
  std::string own_key;
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
    own_key = options.node_id + "~" + inc.column_text(0);
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
        copy.text(1, own_key);
        if (!copy.ok() || copy.step() != SQLITE_DONE) return fail(db_error(db_, "migrate op batches"));
      }
      {
        stmt count(db_, "INSERT OR REPLACE INTO origins(origin, have) SELECT ?1, COUNT(*) FROM log WHERE origin = ?1");
        count.text(1, own_key);
        if (!count.ok() || count.step() != SQLITE_DONE) return fail(db_error(db_, "migrate origins"));
      }
      for (const char* sql : {"UPDATE snapshots SET seq = 0", "DROP TABLE ops"})
        if (status s = exec(sql); !s.ok()) return fail(s);
    }
  }
  if (version < 3) {
    for (const char* sql : {"ALTER TABLE log ADD COLUMN owners TEXT NOT NULL DEFAULT ''",
                            "CREATE TABLE IF NOT EXISTS owners(doc TEXT NOT NULL, replica INTEGER NOT NULL,"
                            " owner TEXT NOT NULL, PRIMARY KEY(doc, replica)) WITHOUT ROWID"})
      if (status s = exec(sql); !s.ok()) return fail(s);
  }
  if (status s = exec(("PRAGMA user_version = " + std::to_string(schema_version)).c_str()); !s.ok()) return fail(s);
  if (status s = exec("COMMIT"); !s.ok()) return fail(s);
  return own_key;
}

sqlite_storage::~sqlite_storage() {
  stop();
  for (auto& [sql, st] : prepared_) sqlite3_finalize(st);
  sqlite3_close(db_);
}

sqlite3_stmt* sqlite_storage::prepared(const char* sql) {
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

status sqlite_storage::error(const char* what) { return db_error(db_, what); }

status sqlite_storage::exec_prepared(const char* sql) {
  stmt s(prepared(sql));
  if (!s.ok() || s.step() != SQLITE_DONE) return db_error(db_, sql);
  return {};
}

status sqlite_storage::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown error";
    sqlite3_free(err);
    return status(error_code::invalid_argument, std::string(sql) + ": " + m);
  }
  return {};
}

metrics::storage_error sqlite_storage::last_error_kind() const { return kind_of(sqlite3_extended_errcode(db_)); }

status sqlite_storage::tx_begin() { return exec_prepared("BEGIN IMMEDIATE"); }

status sqlite_storage::tx_commit() { return exec_prepared("COMMIT"); }

void sqlite_storage::tx_rollback() {
  if (!sqlite3_get_autocommit(db_)) (void)exec("ROLLBACK");
}

status sqlite_storage::tx_insert(const log_row& row) {
  // A plain INSERT: an entry already stored under this key is never
  // replaced (that would silently change acknowledged history); the
  // conflict fails the commit instead.
  stmt s(prepared("INSERT INTO log(doc, origin, olsn, path, ts, batch, owners) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  if (!s.ok()) return db_error(db_, "prepare insert");
  s.text(1, row.doc);
  s.text(2, row.origin);
  s.integer(3, row.olsn);
  s.text(4, row.path);
  s.integer(5, static_cast<std::uint64_t>(row.ts_ms));
  s.blob(6, row.batch);
  s.text(7, row.owners);
  if (s.step() != SQLITE_DONE) return db_error(db_, "insert op batch");
  if (row.claims.empty()) return {};
  // The first claim of a replica stays: a later one (a peer's, replayed) never
  // takes it over.
  stmt o(prepared("INSERT OR IGNORE INTO owners(doc, replica, owner) VALUES(?1, ?2, ?3)"));
  if (!o.ok()) return db_error(db_, "prepare owner claim");
  for (const auto& [replica, owner] : row.claims) {
    o.text(1, row.doc);
    o.integer(2, replica);
    o.text(3, owner);
    if (o.step() != SQLITE_DONE) return db_error(db_, "record owner claim");
    sqlite3_reset(o.get());
  }
  return {};
}

result<std::optional<std::string>> sqlite_storage::stored_batch(const std::string& key, std::uint64_t olsn) {
  stmt q(prepared("SELECT batch FROM log WHERE origin = ?1 AND olsn = ?2"));
  if (!q.ok()) return db_error(db_, "prepare feed lookup");
  q.text(1, key);
  q.integer(2, olsn);
  int rc = q.step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(q.column_blob(0));
  if (rc != SQLITE_DONE) return db_error(db_, "feed lookup");
  return std::optional<std::string>();
}

status sqlite_storage::tx_origins(const std::vector<std::pair<std::string, std::uint64_t>>& have) {
  stmt up(prepared("INSERT INTO origins(origin, have) VALUES(?1, ?2)"
                   " ON CONFLICT(origin) DO UPDATE SET have = excluded.have"));
  if (!up.ok()) return db_error(db_, "prepare origin progress");
  for (const auto& [key, h] : have) {
    up.text(1, key);
    up.integer(2, h);
    if (up.step() != SQLITE_DONE) return db_error(db_, "record origin progress");
    sqlite3_reset(up.get());
  }
  return {};
}

status sqlite_storage::tx_peer_progress(const std::string& peer, const origin_vector& confirmed) {
  stmt s(prepared("INSERT INTO peer_progress(peer, origin, olsn) VALUES(?1, ?2, ?3)"
                  " ON CONFLICT(peer, origin) DO UPDATE SET olsn = max(olsn, excluded.olsn)"));
  if (!s.ok()) return db_error(db_, "prepare peer progress");
  for (const auto& [key, n] : confirmed) {
    s.text(1, peer);
    s.text(2, key);
    s.integer(3, n);
    if (s.step() != SQLITE_DONE) return db_error(db_, "record peer progress");
    sqlite3_reset(s.get());
  }
  return {};
}

result<std::uint64_t> sqlite_storage::tx_forget_peer(const std::string& peer) {
  stmt s(prepared("DELETE FROM peer_progress WHERE peer = ?1"));
  if (!s.ok()) return db_error(db_, "prepare forget peer");
  s.text(1, peer);
  if (s.step() != SQLITE_DONE) return db_error(db_, "forget peer");
  return static_cast<std::uint64_t>(sqlite3_changes(db_));
}

status sqlite_storage::tx_compact_all(bool retain_for_peers) {
  std::vector<std::string> docs;
  {
    stmt s(prepared("SELECT doc FROM snapshots"));
    if (!s.ok()) return db_error(db_, "prepare snapshot list");
    while (s.step() == SQLITE_ROW) docs.push_back(s.column_text(0));
  }
  for (const auto& doc : docs)
    if (status st = compact(doc, retain_for_peers); !st.ok()) return st;
  return {};
}

status sqlite_storage::tx_snapshot(const std::string& doc, const std::string& data, const version_vector&,
                                   bool retain_for_peers) {
  // This node is the document's only writer: the snapshot covers every log
  // entry of it committed so far, whatever their op ids.
  {
    stmt s(prepared("INSERT OR REPLACE INTO snapshots(doc, seq, data)"
                    " VALUES(?1, (SELECT IFNULL(MAX(lsn), 0) FROM log WHERE doc = ?1), ?2)"));
    if (!s.ok()) return db_error(db_, "prepare snapshot");
    s.text(1, doc);
    s.blob(2, data);
    if (s.step() != SQLITE_DONE) return db_error(db_, "write snapshot");
  }
  return compact(doc, retain_for_peers);
}

status sqlite_storage::compact(const std::string& doc, bool retain_for_peers) {
  // Alone, a snapshot's entries go at once. With peers, an entry also waits
  // until every peer known here has confirmed it: a peer resumes from its
  // checkpoint, and an entry gone before it got it would need a per-document
  // exchange instead.
  const char* sql = retain_for_peers
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

result<std::optional<std::uint64_t>> sqlite_storage::first_stored_after(const std::string& key, std::uint64_t after) {
  stmt m(prepared("SELECT MIN(olsn) FROM log WHERE origin = ?1 AND olsn > ?2"));
  if (!m.ok()) return db_error(db_, "prepare gap read");
  m.text(1, key);
  m.integer(2, after);
  int rc = m.step();
  if (rc != SQLITE_ROW) return db_error(db_, "gap read");
  if (sqlite3_column_type(m.get(), 0) == SQLITE_NULL) return std::optional<std::uint64_t>();
  return std::optional<std::uint64_t>(m.column_int(0));
}

result<std::vector<std::string>> sqlite_storage::list_documents() {
  std::vector<std::string> docs;
  stmt d(prepared("SELECT doc FROM snapshots UNION SELECT DISTINCT doc FROM log ORDER BY 1"));
  if (!d.ok()) return db_error(db_, "prepare document list");
  int rc;
  while ((rc = d.step()) == SQLITE_ROW) docs.push_back(d.column_text(0));
  if (rc != SQLITE_DONE) return db_error(db_, "list documents");
  return docs;
}

result<std::vector<feed_entry>> sqlite_storage::read_feed_rows(const std::string& key, std::uint64_t after,
                                                               std::uint64_t upto, std::size_t max) {
  std::vector<feed_entry> out;
  stmt s(prepared("SELECT olsn, doc, path, ts, batch, owners FROM log WHERE origin = ?1 AND olsn > ?2 AND olsn <= ?3"
                  " ORDER BY olsn LIMIT ?4"));
  if (!s.ok()) return db_error(db_, "prepare feed read");
  s.text(1, key);
  s.integer(2, after);
  s.integer(3, upto);
  s.integer(4, max);
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back(feed_entry{key, s.column_int(0), s.column_text(1), s.column_text(2),
                             static_cast<std::int64_t>(s.column_int(3)), s.column_blob(4), s.column_text(5)});
  if (rc != SQLITE_DONE) return db_error(db_, "read feed");
  return out;
}

result<stored_document> sqlite_storage::read_document(const std::string& doc) {
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
  stmt w(prepared("SELECT replica, owner FROM owners WHERE doc = ?1"));
  if (!w.ok()) return db_error(db_, "prepare owners read");
  w.text(1, doc);
  while ((rc = w.step()) == SQLITE_ROW) out.owners.emplace_back(w.column_int(0), w.column_text(1));
  if (rc != SQLITE_DONE) return db_error(db_, "read owners");
  return out;
}

}  // namespace weft::server
