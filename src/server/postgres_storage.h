// The shared storage backend: PostgreSQL through libpq, for several nodes of
// one region (docs/scale-out.md). Every node writes its own batches under its
// own origin key (node id plus a random incarnation per process), so two
// nodes writing one document never touch each other's rows. A group commit is
// one statement (its own transaction) in the common case. Every batch and
// snapshot carries a checksum that is verified when it is read. The schema
// is versioned (table weft_schema) and migrated under an advisory lock, so
// nodes starting together migrate once. When the server cannot be reached,
// writes wait (storage.h, max_backlog_bytes) and are committed on reconnect.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/storage.h"

struct pg_conn;
struct pg_result;

namespace weft::server {

class postgres_storage final : public storage {
 public:
  /// Connects to `options.location` (a libpq URI), checks and migrates the
  /// schema. Errors: invalid_argument when the server cannot be reached or
  /// refuses; unsupported_version when the schema is newer than this program.
  static result<std::unique_ptr<storage>> open(metrics* m, storage_options options);
  ~postgres_storage() override;
  const char* backend() const noexcept override { return "postgres"; }

 private:
  postgres_storage(pg_conn* conn, metrics* m);
  struct row {
    std::string doc, origin;
    std::uint64_t olsn;
    std::string path;
    std::int64_t ts;
    std::string batch;
    std::string owners;
    owner_claims claims;
  };
  /// Runs `sql` with text parameters (binary for those marked in `binary`);
  /// the result or an error naming `what`. Binary results when `binary_out`.
  result<std::shared_ptr<pg_result>> run(const char* what, const std::string& sql,
                                         const std::vector<const std::string*>& params,
                                         const std::vector<bool>& binary = {}, bool binary_out = true);
  status failed(const char* what, pg_result* res);
  status ensure_begun();
  /// Brings the schema to the current version (under an advisory lock).
  status migrate();

  status tx_begin() override;
  status tx_insert(const log_row& row) override;
  result<std::optional<std::string>> stored_batch(const std::string& key, std::uint64_t olsn) override;
  status tx_snapshot(const std::string& doc, const std::string& data, const version_vector& version,
                     bool retain_for_peers) override;
  status tx_peer_progress(const std::string& peer, const origin_vector& confirmed) override;
  result<std::uint64_t> tx_forget_peer(const std::string& peer) override;
  status tx_compact_all(bool retain_for_peers) override;
  /// Takes `doc`'s advisory lock for the open transaction, unless another
  /// node holds it (false): one node at a time snapshots or compacts it.
  result<bool> try_lock_document(const std::string& doc);
  /// Drops `doc`'s log entries `version` covers (and, with
  /// `retain_for_peers`, every peer confirmed); the caller holds the
  /// document's advisory lock.
  status compact_locked(const std::string& doc, const version_vector& version, bool retain_for_peers);
  status tx_origins(const std::vector<std::pair<std::string, std::uint64_t>>& have) override;
  status tx_commit() override;
  void tx_rollback() override;
  result<stored_document> read_document(const std::string& doc) override;
  result<std::vector<feed_entry>> read_feed_rows(const std::string& key, std::uint64_t after, std::uint64_t upto,
                                                 std::size_t max) override;
  result<std::optional<std::uint64_t>> first_stored_after(const std::string& key, std::uint64_t after) override;
  result<std::vector<std::string>> list_documents() override;
  metrics::storage_error last_error_kind() const override { return last_kind_; }
  bool unreachable(const status& failure) const override;
  std::chrono::milliseconds progress_poll_interval() const override { return std::chrono::milliseconds(200); }
  result<origin_vector> read_progress() override;
  status reconnect() override;

  pg_conn* conn_;
  // The open transaction (storage thread only): rows and progress written
  // at commit; begun_ when an explicit BEGIN was sent (snapshots, progress).
  std::vector<row> rows_;
  std::vector<std::pair<std::string, std::uint64_t>> origins_;
  bool begun_ = false;
  metrics::storage_error last_kind_ = metrics::storage_error::other;
  bool last_unreachable_ = false;
};

/// The checksum stored beside every batch and snapshot (64-bit FNV-1a).
std::uint64_t content_checksum(std::string_view bytes);

}  // namespace weft::server
