// The embedded storage backend: SQLite in WAL mode with synchronous=FULL, one
// file `<dir>/weft.db` (schema in docs/encoding.md). One node alone writes
// it, so a snapshot covers every log entry of its document committed before
// it.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "server/storage.h"

struct sqlite3;
struct sqlite3_stmt;

namespace weft::server {

class sqlite_storage final : public storage {
 public:
  /// Opens (creating) `<options.location>/weft.db`, creating the directory if
  /// needed, and checks its integrity (PRAGMA quick_check) before anything is
  /// served from it. Errors: invalid_argument when the directory or database
  /// cannot be opened; corrupt_data when the file is not a sound SQLite
  /// database; unsupported_version when its schema is newer than this program.
  static result<std::unique_ptr<storage>> open(metrics* m, storage_options options);
  ~sqlite_storage() override;  // flushes the queue, then closes the database
  const char* backend() const noexcept override { return "sqlite"; }

 private:
  sqlite_storage(sqlite3* db, metrics* m);
  /// Brings the schema to the current version; returns this node's origin key.
  result<std::string> migrate_and_identify(const storage_options& options);
  status exec(const char* sql);
  /// The statement for `sql` (a string literal: cached by address), prepared
  /// once and kept; null when it cannot be prepared. Storage thread only.
  sqlite3_stmt* prepared(const char* sql);
  /// Runs a cached statement that returns no rows.
  status exec_prepared(const char* sql);
  status error(const char* what);

  status tx_begin() override;
  status tx_insert(const log_row& row) override;
  result<std::optional<std::string>> stored_batch(const std::string& key, std::uint64_t olsn) override;
  status tx_snapshot(const std::string& doc, const std::string& data, const version_vector& version,
                     bool retain_for_peers) override;
  status tx_peer_progress(const std::string& peer, const origin_vector& confirmed) override;
  result<std::uint64_t> tx_forget_peer(const std::string& peer) override;
  status tx_compact_all(bool retain_for_peers) override;
  /// Drops `doc`'s log entries its snapshot covers (and, with
  /// `retain_for_peers`, every peer confirmed).
  status compact(const std::string& doc, bool retain_for_peers);
  status tx_origins(const std::vector<std::pair<std::string, std::uint64_t>>& have) override;
  status tx_commit() override;
  void tx_rollback() override;
  result<stored_document> read_document(const std::string& doc) override;
  result<std::vector<feed_entry>> read_feed_rows(const std::string& key, std::uint64_t after, std::uint64_t upto,
                                                 std::size_t max) override;
  result<std::optional<std::uint64_t>> first_stored_after(const std::string& key, std::uint64_t after) override;
  result<std::vector<std::string>> list_documents() override;
  metrics::storage_error last_error_kind() const override;

  sqlite3* db_;
  std::map<const char*, sqlite3_stmt*> prepared_;  // storage thread only (and the destructor)
};

}  // namespace weft::server
