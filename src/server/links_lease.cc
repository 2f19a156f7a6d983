#include "server/links_lease.h"

#include <libpq-fe.h>

#include <chrono>

#include "server/log.h"
#include "server/pg_text.h"

namespace weft::server {

namespace {
// How often the lease is tried, or checked while held.
constexpr auto lease_period = std::chrono::milliseconds(500);

/// Runs `sql` with one text parameter; true when it succeeded and, with
/// `want_true`, returned one row whose first column is true.
bool ask(pg_conn* conn, const char* sql, const std::string& param, bool want_true) {
  const char* values[1] = {param.c_str()};
  pg_result* r = PQexecParams(conn, sql, 1, nullptr, values, nullptr, nullptr, 0);
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
  if (ok && want_true) ok = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  return ok;
}
}  // namespace

links_lease::links_lease(std::string conninfo, std::string region, std::function<void(bool)> on_change)
    : conninfo_(std::move(conninfo)), region_(std::move(region)), on_change_(std::move(on_change)) {
  thread_ = std::thread([this] { run(); });
}

links_lease::~links_lease() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (conn_) PQfinish(conn_);  // releases the lock at once
}

void links_lease::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    round();
    lock.lock();
    wake_.wait_for(lock, lease_period, [this] { return stopping_; });
  }
}

void links_lease::round() {
  if (!conn_) {
    // Its own connection, with keepalives both ways: a holder cut off from
    // the database finds out (and stands down) within about 10 s, and the
    // database ends its session, freeing the lock, within about as long.
    const char* keys[] = {"dbname", "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "tcp_user_timeout", "application_name", nullptr};
    const char* values[] = {conninfo_.c_str(), "3", "1", "5", "2", "2", "10000", "weft-links-lease", nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn_) != CONNECTION_OK) {
      log(log_level::debug, "links lease: cannot connect to PostgreSQL: {}", pg_one_line(PQerrorMessage(conn_)));
      PQfinish(conn_);
      conn_ = nullptr;
      return;
    }
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
    if (!ask(conn_, "SELECT set_config('tcp_keepalives_idle', '5', false), set_config('tcp_keepalives_interval', "
                    "'2', false), set_config('tcp_keepalives_count', '2', false), $1::text",
             region_, false)) {
      lose("cannot set up its session");
      return;
    }
  }
  if (!held_) {
    if (ask(conn_, "SELECT pg_try_advisory_lock(hashtextextended('weft-links:' || $1::text, 0))", region_, true)) {
      held_ = true;
      log(log_level::info, "this node now carries the replication links of region {}", region_);
      on_change_(true);
    } else if (PQstatus(conn_) != CONNECTION_OK) {
      lose("lost its connection to PostgreSQL");
    }
    return;
  }
  // Held: the lock lives exactly as long as this session does.
  if (!ask(conn_, "SELECT $1::text IS NOT NULL", region_, true)) lose("lost its connection to PostgreSQL");
}

void links_lease::lose(const char* why) {
  const std::string detail = pg_one_line(PQerrorMessage(conn_));
  PQfinish(conn_);
  conn_ = nullptr;
  if (!held_) return;
  held_ = false;
  log(log_level::warn, "links lease of region {}: {} ({}); handing the links over", region_, why, detail);
  on_change_(false);
}

}  // namespace weft::server
