#include "server/postgres_storage.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <set>

#include "server/op_versions.h"
#include "server/pg_text.h"
#include "weft/encoding.h"

namespace weft::server {

std::uint64_t content_checksum(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

namespace {

// Schema versions (table weft_schema): 1 is the first, 2 adds replica
// ownership (weft_log.owners, weft_owners; docs/encoding.md).
constexpr int schema_version = 2;
// The advisory lock held while migrating: one node at a time.
constexpr const char* migration_lock = "7470120001";

using pg_result_ptr = std::shared_ptr<pg_result>;

std::uint64_t be64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// A binary-format column as the number it holds (int8) or its bytes.
std::uint64_t col_int(pg_result* r, int row, int col) {
  return PQgetlength(r, row, col) == 8 ? be64(PQgetvalue(r, row, col)) : 0;
}
std::string col_bytes(pg_result* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}

// Version vectors as stored beside snapshots: "replica:counter,...".
std::string version_text(const version_vector& v) {
  std::string out;
  for (const auto& [r, c] : v.entries()) {
    if (!out.empty()) out += ',';
    out += std::to_string(r);
    out += ':';
    out += std::to_string(c);
  }
  return out;
}
version_vector parse_version(const std::string& s) {
  version_vector v;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t colon = s.find(':', i), comma = s.find(',', i);
    if (colon == std::string::npos) break;
    if (comma == std::string::npos) comma = s.size();
    v.set(std::stoull(s.substr(i, colon - i)), std::stoull(s.substr(colon + 1, comma - colon - 1)));
    i = comma + 1;
  }
  return v;
}

std::string random_incarnation() {
  std::random_device rd;
  std::uint64_t x = (std::uint64_t{rd()} << 32) ^ rd();
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 12; ++i) out += hex[(x >> (i * 4)) & 0xf];
  return out;
}

status corrupt(const std::string& what) {
  return status(error_code::corrupt_data, "corrupt data: " + what + " does not match its checksum");
}

}  // namespace

result<std::unique_ptr<storage>> postgres_storage::open(metrics* m, storage_options options) {
  pg_conn* conn = PQconnectdb(options.location.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = pg_one_line(PQerrorMessage(conn));
    PQfinish(conn);
    return status(error_code::invalid_argument, "I/O error: cannot connect to PostgreSQL: " + why);
  }
  // Notices ("relation already exists, skipping") are not for the log.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  std::unique_ptr<postgres_storage> st(new postgres_storage(conn, m));
  if (status migrated = st->migrate(); !migrated.ok()) return migrated;
  // A new incarnation per process: two processes (or one restarted) never
  // share an origin, so their sequence numbers never collide.
  std::string key = options.node_id + "~" + random_incarnation();
  (void)options.max_bytes;  // quotas are the database server's business
  // Progress per origin as the database holds it (shared by the region).
  auto have = st->read_progress();
  if (!have.ok()) return have.error();
  std::map<std::string, std::set<std::uint64_t>> ahead;
  {
    auto r = st->run("read held entries",
                     "SELECT origin, olsn FROM weft_log l WHERE olsn >"
                     " COALESCE((SELECT have FROM weft_origins o WHERE o.origin = l.origin), 0)",
                     {});
    if (!r.ok()) return r.error();
    pg_result* res = r.value().get();
    for (int i = 0; i < PQntuples(res); ++i) ahead[col_bytes(res, i, 0)].insert(col_int(res, i, 1));
  }
  st->start(options, std::move(key), std::move(have.value()), std::move(ahead));
  return std::unique_ptr<storage>(std::move(st));
}

postgres_storage::postgres_storage(pg_conn* conn, metrics* m) : storage(m), conn_(conn) {}

postgres_storage::~postgres_storage() {
  stop();
  PQfinish(conn_);
}

status postgres_storage::failed(const char* what, pg_result* res) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string code = state ? state : "";
  std::string msg = pg_one_line(res ? PQresultErrorMessage(res) : "");
  if (msg.empty()) msg = pg_one_line(PQerrorMessage(conn_));
  last_unreachable_ = PQstatus(conn_) != CONNECTION_OK || code.rfind("08", 0) == 0 || code == "57P01" ||
                      code == "57P02" || code == "57P03";
  error_code ec = error_code::invalid_argument;
  const char* kind = "database error";
  if (last_unreachable_) {
    last_kind_ = metrics::storage_error::io;
    kind = "I/O error";
  } else if (code == "53100") {
    last_kind_ = metrics::storage_error::full;
    kind = "disk full";
    ec = error_code::limit_exceeded;
  } else if (code == "XX001" || code == "XX002") {
    last_kind_ = metrics::storage_error::corrupt;
    kind = "corrupt data";
    ec = error_code::corrupt_data;
  } else if (code == "23505") {
    last_kind_ = metrics::storage_error::conflict;
    kind = "conflicting write";
  } else if (code.rfind("53", 0) == 0 || code.rfind("58", 0) == 0) {
    last_kind_ = metrics::storage_error::io;
    kind = "I/O error";
  } else {
    last_kind_ = metrics::storage_error::other;
  }
  return status(ec, std::string(kind) + ": " + what + ": " + msg);
}

result<pg_result_ptr> postgres_storage::run(const char* what, const std::string& sql,
                                            const std::vector<const std::string*>& params,
                                            const std::vector<bool>& binary, bool binary_out) {
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size()), formats(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i]->data();
    lengths[i] = static_cast<int>(params[i]->size());
    formats[i] = i < binary.size() && binary[i] ? 1 : 0;
  }
  pg_result* res = PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                                lengths.data(), formats.data(), binary_out ? 1 : 0);
  const auto st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    status s = failed(what, res);
    PQclear(res);
    return s;
  }
  return pg_result_ptr(res, PQclear);
}

status postgres_storage::migrate() {
  // Nodes of a region may start together: one migrates, the others wait
  // for it and find the schema current.
  const std::string lock = migration_lock;
  if (auto r = run("lock schema", "SELECT pg_advisory_lock($1::bigint)", {&lock}); !r.ok()) return r.error();
  auto unlock = [&] { (void)run("unlock schema", "SELECT pg_advisory_unlock($1::bigint)", {&lock}); };
  auto fail = [&](status s) {
    (void)run("rollback", "ROLLBACK", {});
    unlock();
    return s;
  };
  if (auto r = run("create schema table", "CREATE TABLE IF NOT EXISTS weft_schema(version INTEGER NOT NULL)", {});
      !r.ok())
    return fail(r.error());
  int version = 0;
  {
    auto r = run("read schema version", "SELECT version::text FROM weft_schema", {}, {}, false);
    if (!r.ok()) return fail(r.error());
    if (PQntuples(r.value().get()) > 0) version = std::atoi(PQgetvalue(r.value().get(), 0, 0));
  }
  if (version > schema_version)
    return fail(status(error_code::unsupported_version,
                       "the database has weft schema version " + std::to_string(version) +
                           ", newer than this weft-server understands (" + std::to_string(schema_version) + ")"));
  if (version < 1) {
    if (auto r = run("begin", "BEGIN", {}); !r.ok()) return fail(r.error());
    for (const char* sql : {
             // sum: content_checksum(batch), verified on every read.
             "CREATE TABLE IF NOT EXISTS weft_log(lsn BIGSERIAL PRIMARY KEY, doc TEXT NOT NULL,"
             " origin TEXT NOT NULL, olsn BIGINT NOT NULL, path TEXT NOT NULL, ts BIGINT NOT NULL,"
             " batch BYTEA NOT NULL, sum BIGINT NOT NULL, UNIQUE(origin, olsn))",
             "CREATE INDEX IF NOT EXISTS weft_log_by_doc ON weft_log(doc, lsn)",
             "CREATE TABLE IF NOT EXISTS weft_origins(origin TEXT PRIMARY KEY, have BIGINT NOT NULL)",
             "CREATE TABLE IF NOT EXISTS weft_peer_progress(peer TEXT NOT NULL, origin TEXT NOT NULL,"
             " olsn BIGINT NOT NULL, PRIMARY KEY(peer, origin))",
             // version: the ops the snapshot holds ("replica:counter,...").
             "CREATE TABLE IF NOT EXISTS weft_snapshots(doc TEXT PRIMARY KEY, version TEXT NOT NULL,"
             " data BYTEA NOT NULL, sum BIGINT NOT NULL, origin TEXT NOT NULL, ts BIGINT NOT NULL)",
             "DELETE FROM weft_schema",
             "INSERT INTO weft_schema(version) VALUES(1)",
             "COMMIT",
         }) {
      if (auto r = run("migrate schema", sql, {}); !r.ok()) return fail(r.error());
    }
  }
  if (version < 2) {
    for (const char* sql : {
             "BEGIN",
             "ALTER TABLE weft_log ADD COLUMN IF NOT EXISTS owners TEXT NOT NULL DEFAULT ''",
             "CREATE TABLE IF NOT EXISTS weft_owners(doc TEXT NOT NULL, replica BIGINT NOT NULL,"
             " owner TEXT NOT NULL, PRIMARY KEY(doc, replica))",
             "DELETE FROM weft_schema",
             "INSERT INTO weft_schema(version) VALUES(2)",
             "COMMIT",
         }) {
      if (auto r = run("migrate schema", sql, {}); !r.ok()) return fail(r.error());
    }
  }
  unlock();
  return {};
}

bool postgres_storage::unreachable(const status&) const { return last_unreachable_; }

result<origin_vector> postgres_storage::read_progress() {
  auto r = run("read origins", "SELECT origin, have FROM weft_origins", {});
  if (!r.ok()) return r.error();
  origin_vector out;
  pg_result* res = r.value().get();
  for (int i = 0; i < PQntuples(res); ++i) out[col_bytes(res, i, 0)] = col_int(res, i, 1);
  return out;
}

status postgres_storage::reconnect() {
  rows_.clear();
  origins_.clear();
  begun_ = false;
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) return failed("reconnect", nullptr);
  PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
  return {};
}

status postgres_storage::ensure_begun() {
  if (begun_) return {};
  auto r = run("begin", "BEGIN", {});
  if (!r.ok()) return r.error();
  begun_ = true;
  return {};
}

status postgres_storage::tx_begin() {
  rows_.clear();
  origins_.clear();
  begun_ = false;
  return {};
}

status postgres_storage::tx_insert(const log_row& r) {
  rows_.push_back(row{r.doc, r.origin, r.olsn, r.path, r.ts_ms, r.batch, r.owners, r.claims});
  return {};
}

status postgres_storage::tx_origins(const std::vector<std::pair<std::string, std::uint64_t>>& have) {
  origins_ = have;
  return {};
}

status postgres_storage::tx_commit() {
  if (!rows_.empty() || !origins_.empty()) {
    // The batches and the progress they make in one statement: on its own
    // (no BEGIN sent) it is its own transaction, one round trip. A plain
    // INSERT: a (origin, olsn) already stored fails the commit, never
    // replaces what was acknowledged.
    std::string sql;
    std::vector<std::string> text;  // numbers as text, kept alive below
    std::size_t claims = 0;
    for (const row& r : rows_) claims += r.claims.size();
    text.reserve(rows_.size() * 3 + origins_.size() + claims);
    std::vector<const std::string*> params;
    std::vector<bool> binary;
    int n = 0;
    auto param = [&](const std::string& v, bool bin) {
      params.push_back(&v);
      binary.push_back(bin);
      return "$" + std::to_string(++n);
    };
    auto number = [&](std::uint64_t v) -> const std::string& {
      text.push_back(std::to_string(v));
      return text.back();
    };
    // Checksums are stored as the bigint with the same 64 bits.
    auto signed_number = [&](std::uint64_t v) -> const std::string& {
      text.push_back(std::to_string(static_cast<std::int64_t>(v)));
      return text.back();
    };
    sql = "WITH ";
    bool first = true;
    if (!rows_.empty()) {
      sql += "ins AS (INSERT INTO weft_log(doc, origin, olsn, path, ts, batch, sum, owners) VALUES ";
      for (const row& r : rows_) {
        if (!first) sql += ',';
        first = false;
        sql += '(' + param(r.doc, true) + "::text," + param(r.origin, true) + "::text," + param(number(r.olsn), false) +
               "::bigint," + param(r.path, true) + "::text," + param(number(static_cast<std::uint64_t>(r.ts)), false) +
               "::bigint," + param(r.batch, true) + "::bytea," +
               param(signed_number(content_checksum(r.batch)), false) + "::bigint," + param(r.owners, true) +
               "::text)";
      }
      // DO NOTHING, then checked below: a retry after a commit whose outcome
      // was lost with the connection finds its rows there.
      sql += " ON CONFLICT (origin, olsn) DO NOTHING RETURNING origin, olsn)";
      // A replica's first claim stays (another node's, committed first, too).
      bool any_claim = false;
      for (const row& r : rows_) {
        for (const auto& [replica, owner] : r.claims) {
          sql += any_claim ? "," : ", own AS (INSERT INTO weft_owners(doc, replica, owner) VALUES ";
          any_claim = true;
          sql += '(' + param(r.doc, true) + "::text," + param(number(replica), false) + "::bigint," +
                 param(owner, true) + "::text)";
        }
      }
      if (any_claim) sql += " ON CONFLICT (doc, replica) DO NOTHING RETURNING 1)";
    }
    if (!origins_.empty()) {
      if (!rows_.empty()) sql += ", ";
      sql += "up AS (INSERT INTO weft_origins(origin, have) VALUES ";
      first = true;
      for (const auto& [key, h] : origins_) {
        if (!first) sql += ',';
        first = false;
        sql += '(' + param(key, true) + "::text," + param(number(h), false) + "::bigint)";
      }
      sql += " ON CONFLICT(origin) DO UPDATE SET have = GREATEST(weft_origins.have, excluded.have) RETURNING 1)";
    }
    sql += rows_.empty() ? " SELECT NULL, NULL" : " SELECT origin, olsn FROM ins";
    auto r = run("commit op batches", sql, params, binary);
    if (!r.ok()) {
      rows_.clear();
      origins_.clear();
      return r.error();
    }
    pg_result* res = r.value().get();
    if (!rows_.empty() && static_cast<std::size_t>(PQntuples(res)) < rows_.size()) {
      // Rows already there: the same bytes are this very batch (committed by
      // an attempt whose answer was lost); other bytes are a conflict, never
      // replaced.
      std::set<std::pair<std::string, std::uint64_t>> inserted;
      for (int i = 0; i < PQntuples(res); ++i) inserted.emplace(col_bytes(res, i, 0), col_int(res, i, 1));
      std::vector<row> rows = std::move(rows_);
      rows_.clear();
      origins_.clear();
      for (const row& x : rows) {
        if (inserted.count({x.origin, x.olsn})) continue;
        auto stored = stored_batch(x.origin, x.olsn);
        if (!stored.ok()) return stored.error();
        if (!stored.value() || *stored.value() != x.batch) {
          last_kind_ = metrics::storage_error::conflict;
          last_unreachable_ = false;
          return status(error_code::invalid_argument, "conflicting write: batch " + std::to_string(x.olsn) + " of " +
                                                          x.origin + " is stored with other contents");
        }
      }
    }
    rows_.clear();
    origins_.clear();
  }
  if (begun_) {
    begun_ = false;
    auto r = run("commit", "COMMIT", {});
    if (!r.ok()) return r.error();
  }
  return {};
}

void postgres_storage::tx_rollback() {
  rows_.clear();
  origins_.clear();
  begun_ = false;
  if (PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE)
    (void)run("rollback", "ROLLBACK", {});
}

result<std::optional<std::string>> postgres_storage::stored_batch(const std::string& key, std::uint64_t olsn) {
  const std::string n = std::to_string(olsn);
  auto r = run("feed lookup", "SELECT batch, sum FROM weft_log WHERE origin = $1::text AND olsn = $2::bigint",
               {&key, &n}, {true, false});
  if (!r.ok()) return r.error();
  pg_result* res = r.value().get();
  if (PQntuples(res) == 0) return std::optional<std::string>();
  std::string b = col_bytes(res, 0, 0);
  if (col_int(res, 0, 1) != content_checksum(b)) {
    last_kind_ = metrics::storage_error::corrupt;
    return corrupt("batch " + n + " of " + key);
  }
  return std::optional<std::string>(std::move(b));
}

status postgres_storage::tx_peer_progress(const std::string& peer, const origin_vector& confirmed) {
  if (status s = ensure_begun(); !s.ok()) return s;
  for (const auto& [key, n] : confirmed) {
    const std::string num = std::to_string(n);
    auto r = run("record peer progress",
                 "INSERT INTO weft_peer_progress(peer, origin, olsn) VALUES($1::text, $2::text, $3::bigint)"
                 " ON CONFLICT(peer, origin) DO UPDATE SET olsn = GREATEST(weft_peer_progress.olsn, excluded.olsn)",
                 {&peer, &key, &num}, {true, true, false});
    if (!r.ok()) return r.error();
  }
  return {};
}

result<bool> postgres_storage::try_lock_document(const std::string& doc) {
  auto r = run("lock document", "SELECT pg_try_advisory_xact_lock(hashtextextended('weft-doc:' || $1::text, 0))",
               {&doc}, {true}, false);
  if (!r.ok()) return r.error();
  return std::strcmp(PQgetvalue(r.value().get(), 0, 0), "t") == 0;
}

status postgres_storage::tx_snapshot(const std::string& doc, const std::string& data, const version_vector& version,
                                     bool retain_for_peers) {
  if (status s = ensure_begun(); !s.ok()) return s;
  // One node at a time snapshots and compacts a document; a node that finds
  // another at it skips its turn (the next snapshot comes soon enough).
  {
    auto locked = try_lock_document(doc);
    if (!locked.ok()) return locked.error();
    if (!locked.value()) return {};
  }
  // A snapshot never replaces one holding ops it lacks: the entries that
  // one covered are gone from the log.
  {
    auto r = run("read snapshot version", "SELECT version FROM weft_snapshots WHERE doc = $1::text", {&doc}, {true});
    if (!r.ok()) return r.error();
    if (PQntuples(r.value().get()) > 0 && !version.includes(parse_version(col_bytes(r.value().get(), 0, 0))))
      return {};
  }
  {
    const std::string v = version_text(version), sum = std::to_string(static_cast<std::int64_t>(content_checksum(data))),
                      ts = std::to_string(unix_ms()), origin = origin_key();
    auto r = run("write snapshot",
                 "INSERT INTO weft_snapshots(doc, version, data, sum, origin, ts)"
                 " VALUES($1::text, $2::text, $3::bytea, $4::bigint, $5::text, $6::bigint)"
                 " ON CONFLICT(doc) DO UPDATE SET version = excluded.version, data = excluded.data,"
                 " sum = excluded.sum, origin = excluded.origin, ts = excluded.ts",
                 {&doc, &v, &data, &sum, &origin, &ts}, {true, true, true, false, true, false});
    if (!r.ok()) return r.error();
  }
  return compact_locked(doc, version, retain_for_peers);
}

status postgres_storage::compact_locked(const std::string& doc, const version_vector& version, bool retain_for_peers) {
  // Compaction: other nodes write this document too, so what the snapshot
  // covers is decided by op ids, entry by entry, not by log position. With
  // peers, an entry also waits until every peer known here confirmed it.
  const char* sql = retain_for_peers
                        ? "SELECT lsn, batch FROM weft_log l WHERE doc = $1::text AND EXISTS"
                          " (SELECT 1 FROM weft_peer_progress) AND (SELECT COUNT(*) FROM weft_peer_progress p"
                          " WHERE p.origin = l.origin AND p.olsn >= l.olsn) ="
                          " (SELECT COUNT(DISTINCT peer) FROM weft_peer_progress)"
                        : "SELECT lsn, batch FROM weft_log WHERE doc = $1::text";
  auto r = run("read entries to compact", sql, {&doc}, {true});
  if (!r.ok()) return r.error();
  pg_result* res = r.value().get();
  std::string covered = "{";
  for (int i = 0; i < PQntuples(res); ++i) {
    auto ops = decode_ops(col_bytes(res, i, 1));
    if (!ops.ok()) continue;  // reported when the document loads; never dropped here
    if (!version.includes(ids_of(ops.value()))) continue;
    if (covered.size() > 1) covered += ',';
    covered += std::to_string(col_int(res, i, 0));
  }
  covered += '}';
  if (covered.size() > 2) {
    auto d = run("compact log", "DELETE FROM weft_log WHERE lsn = ANY($1::bigint[])", {&covered}, {false});
    if (!d.ok()) return d.error();
  }
  return {};
}

result<std::uint64_t> postgres_storage::tx_forget_peer(const std::string& peer) {
  if (status s = ensure_begun(); !s.ok()) return s;
  auto r = run("forget peer", "DELETE FROM weft_peer_progress WHERE peer = $1::text", {&peer}, {true}, false);
  if (!r.ok()) return r.error();
  const char* n = PQcmdTuples(r.value().get());
  return static_cast<std::uint64_t>(n && *n ? std::strtoull(n, nullptr, 10) : 0);
}

status postgres_storage::tx_compact_all(bool retain_for_peers) {
  if (status s = ensure_begun(); !s.ok()) return s;
  auto r = run("read snapshot versions", "SELECT doc, version FROM weft_snapshots", {});
  if (!r.ok()) return r.error();
  pg_result* res = r.value().get();
  for (int i = 0; i < PQntuples(res); ++i) {
    const std::string doc = col_bytes(res, i, 0);
    // Skipped while another node snapshots or compacts it, as in tx_snapshot().
    auto locked = try_lock_document(doc);
    if (!locked.ok()) return locked.error();
    if (!locked.value()) continue;
    if (status s = compact_locked(doc, parse_version(col_bytes(res, i, 1)), retain_for_peers); !s.ok()) return s;
  }
  return {};
}

result<stored_document> postgres_storage::read_document(const std::string& doc) {
  // One consistent view of snapshot and log (a compaction commits both).
  if (auto r = run("begin read", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", {}); !r.ok()) return r.error();
  auto fail = [&](status s) -> result<stored_document> {
    if (PQstatus(conn_) == CONNECTION_OK) (void)run("rollback", "ROLLBACK", {});
    return s;
  };
  stored_document out;
  {
    auto r = run("read snapshot", "SELECT data, sum FROM weft_snapshots WHERE doc = $1::text", {&doc}, {true});
    if (!r.ok()) return fail(r.error());
    pg_result* res = r.value().get();
    if (PQntuples(res) > 0) {
      out.snapshot = col_bytes(res, 0, 0);
      if (col_int(res, 0, 1) != content_checksum(out.snapshot)) {
        last_kind_ = metrics::storage_error::corrupt;
        return fail(corrupt("the snapshot of " + doc));
      }
    }
  }
  {
    // Every entry left: with several writers, log order is not commit order,
    // so none can be assumed in the snapshot by position (ops it holds
    // already apply as duplicates).
    auto r = run("read ops", "SELECT lsn, batch, sum FROM weft_log WHERE doc = $1::text ORDER BY lsn", {&doc}, {true});
    if (!r.ok()) return fail(r.error());
    pg_result* res = r.value().get();
    out.batches.reserve(static_cast<std::size_t>(PQntuples(res)));
    for (int i = 0; i < PQntuples(res); ++i) {
      std::string b = col_bytes(res, i, 1);
      if (col_int(res, i, 2) != content_checksum(b)) {
        last_kind_ = metrics::storage_error::corrupt;
        return fail(corrupt("op batch " + std::to_string(col_int(res, i, 0)) + " of " + doc));
      }
      out.batches.emplace_back(col_int(res, i, 0), std::move(b));
    }
  }
  {
    auto r = run("read owners", "SELECT replica, owner FROM weft_owners WHERE doc = $1::text", {&doc}, {true});
    if (!r.ok()) return fail(r.error());
    pg_result* res = r.value().get();
    for (int i = 0; i < PQntuples(res); ++i) out.owners.emplace_back(col_int(res, i, 0), col_bytes(res, i, 1));
  }
  if (auto r = run("end read", "COMMIT", {}); !r.ok()) return r.error();
  return out;
}

result<std::vector<feed_entry>> postgres_storage::read_feed_rows(const std::string& key, std::uint64_t after,
                                                                 std::uint64_t upto, std::size_t max) {
  const std::string a = std::to_string(after), u = std::to_string(upto), m = std::to_string(max);
  auto r = run("read feed",
               "SELECT olsn, doc, path, ts, batch, sum, owners FROM weft_log WHERE origin = $1::text"
               " AND olsn > $2::bigint"
               " AND olsn <= $3::bigint ORDER BY olsn LIMIT $4::bigint",
               {&key, &a, &u, &m}, {true, false, false, false});
  if (!r.ok()) return r.error();
  pg_result* res = r.value().get();
  std::vector<feed_entry> out;
  for (int i = 0; i < PQntuples(res); ++i) {
    feed_entry e{key, col_int(res, i, 0), col_bytes(res, i, 1), col_bytes(res, i, 2),
                 static_cast<std::int64_t>(col_int(res, i, 3)), col_bytes(res, i, 4), col_bytes(res, i, 6)};
    if (col_int(res, i, 5) != content_checksum(e.batch)) {
      last_kind_ = metrics::storage_error::corrupt;
      return corrupt("batch " + std::to_string(e.olsn) + " of " + key);
    }
    out.push_back(std::move(e));
  }
  return out;
}

result<std::optional<std::uint64_t>> postgres_storage::first_stored_after(const std::string& key,
                                                                          std::uint64_t after) {
  const std::string a = std::to_string(after);
  auto r = run("gap read", "SELECT MIN(olsn) FROM weft_log WHERE origin = $1::text AND olsn > $2::bigint", {&key, &a},
               {true, false});
  if (!r.ok()) return r.error();
  if (PQgetisnull(r.value().get(), 0, 0)) return std::optional<std::uint64_t>();
  return std::optional<std::uint64_t>(col_int(r.value().get(), 0, 0));
}

result<std::vector<std::string>> postgres_storage::list_documents() {
  auto r = run("list documents", "SELECT doc FROM weft_snapshots UNION SELECT DISTINCT doc FROM weft_log ORDER BY 1",
               {});
  if (!r.ok()) return r.error();
  std::vector<std::string> docs;
  for (int i = 0; i < PQntuples(r.value().get()); ++i) docs.push_back(col_bytes(r.value().get(), i, 0));
  return docs;
}

}  // namespace weft::server
