// weft-server settings, their defaults, and command-line parsing.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace weft::server {

enum class log_level { debug = 0, info = 1, warn = 2, error = 3 };

struct server_config {
  // ---- where --------------------------------------------------------------------
  std::string bind = "127.0.0.1";     ///< --bind: address to listen on
  std::uint16_t port = 8080;          ///< --port: 0 picks a free port
  std::string data_dir = "./data";    ///< --data-dir: SQLite database lives here
  std::string store;                  ///< --store: a directory (SQLite) or postgres://... ; empty: data_dir
  std::string bus;                    ///< --bus redis://HOST:PORT: live fan-out between nodes of a region
  std::size_t bus_stream_max = 1000;  ///< --bus-stream-max: entries kept per document stream
  std::string web_root;               ///< --web-root: static files (the web client); empty: none
  unsigned threads = 0;               ///< --threads: I/O threads; 0 = hardware concurrency
  log_level level = log_level::info;  ///< --log-level

  // ---- limits (docs/protocol.md) ---------------------------------------------------
  std::uint64_t max_message_bytes = 1u << 20;  ///< --max-message-bytes: larger frames close the connection (1009)
  std::size_t max_docs_per_connection = 64;    ///< --max-docs-per-connection
  std::size_t max_send_queue = 4096;           ///< --max-send-queue: messages queued before a slow client is dropped
  /// --max-snapshot-frame-bytes: a document whose snapshot frame would be
  /// larger is sent as ops even to a client that asked for a snapshot (a
  /// client may not read frames of any size: weft::client reads up to 64 MiB,
  /// the most this may be). 0: no snapshot frames at all.
  std::uint64_t max_snapshot_frame_bytes = 32u << 20;
  std::size_t max_pending_ops = 65536;         ///< --max-pending-ops: per document causal buffer

  std::uint64_t max_messages_per_second = 200;  ///< --max-messages-per-second: sustained rate per connection
  std::uint64_t message_burst = 2000;           ///< --message-burst: messages a connection may send at once
  std::size_t max_connections_per_address = 1024;  ///< --max-connections-per-address: 0 = unlimited
  std::size_t max_pending_per_connection = 4096;   ///< --max-pending-per-connection: ops of one connection held in a causal buffer
  std::uint64_t max_db_mb = 0;                  ///< --max-db-mb: storage quota; writes past it are refused (0 = none)
  unsigned commit_window_ms = 10;               ///< --commit-window-ms: group-commit window (delays acks, not rebroadcast)
  bool commit_window_set = false;               ///< --commit-window-ms was given (PostgreSQL defaults to 0)

  // ---- access ------------------------------------------------------------------------
  std::string auth_secret;                   ///< --auth-secret / --auth-secret-file: HS256 key; empty = no HS256
  std::vector<std::string> auth_public_keys; ///< --auth-public-key FILE (repeatable): PEM keys for RS256 / ES256
  std::vector<std::string> auth_jwks;        ///< --auth-jwks FILE (repeatable): JWK Sets for RS256 / ES256
  std::string auth_deny_list;                ///< --auth-deny-list FILE: revoked jti values, reread every 2 s
  std::string auth_issuer;                   ///< --auth-issuer ISS: tokens must carry this "iss"
  std::string auth_audience;                 ///< --auth-audience AUD: tokens' "aud" must include this
  bool allow_anonymous = false;              ///< --allow-anonymous: permit no auth on a non-loopback address
  std::vector<std::string> allowed_origins;  ///< --allowed-origin (repeatable): browser Origins allowed; empty = any
  std::string tls_cert;                      ///< --tls-cert: PEM certificate chain; with --tls-key enables TLS
  std::string tls_key;                       ///< --tls-key: PEM private key

  // ---- replication between nodes (docs/replication.md) ------------------------------
  std::string node_id = "local";             ///< --node-id: this node's name in the cluster
  std::vector<std::string> peers;            ///< --peer URL (repeatable): nodes this one dials (ws:// or wss://HOST:PORT)
  std::string peer_ca;                       ///< --peer-ca: PEM CA certificates wss:// peers must chain to (default: the system's)
  std::string peer_token;                    ///< --peer-token-file: token presented to peers (weft-token --peer)
  std::string peer_cert;                     ///< --peer-cert: PEM client certificate (chain) presented to wss:// peers
  std::string peer_key;                      ///< --peer-key: its PEM private key
  std::string peer_client_ca;                ///< --peer-client-ca: /peer links need a client certificate chaining to these
  std::vector<std::string> forget_peers;     ///< --forget-peer NODE (repeatable): drop a departed node's checkpoints at startup
  std::string topology = "all";              ///< --topology: all, ring or star (which links carry batches)
  std::string hub;                           ///< --hub NODE: the hub of a star
  unsigned max_replication_lag_s = 60;       ///< --max-replication-lag-s: past it /healthz says degraded
  unsigned peer_write_timeout_s = 30;        ///< --peer-write-timeout-s: a link whose peer reads nothing this long closes

  // ---- lifecycle ---------------------------------------------------------------------
  unsigned idle_unload_ms = 30000;        ///< --idle-unload-ms: unload a document this long after its last subscriber left
  unsigned presence_ttl_ms = 60000;       ///< --presence-ttl-ms: forget presence not refreshed for this long
  std::size_t snapshot_every_ops = 10000; ///< --snapshot-every: ops between snapshots
  unsigned ws_idle_timeout_ms = 60000;    ///< --ws-idle-timeout-ms: silent connections are pinged after N/2, closed after N (answering pings keeps them)

  // ---- test hooks: fault injection for in-process tests only --------------------------
  // No flag or file sets these, so a deployed server never has them; they let
  // tests/server/containment_test.cc make a handler throw (docs/reliability.md).
  struct test_hooks {
    std::string throw_on_open;         ///< an `open` of this document id throws in the connection's message handler
    std::string throw_on_strand_open;  ///< an `open` of this document id throws in the room's strand work (its first send)
  } test;
};

/// True when tokens are required: some key to check them with was given.
inline bool auth_required(const server_config& c) {
  return !c.auth_secret.empty() || !c.auth_public_keys.empty() || !c.auth_jwks.empty();
}

/// Where documents are stored: --store, or --data-dir.
inline const std::string& store_location(const server_config& c) { return c.store.empty() ? c.data_dir : c.store; }
/// True when that is a PostgreSQL URI.
inline bool store_is_postgres(const server_config& c) {
  const std::string& s = store_location(c);
  return s.rfind("postgres://", 0) == 0 || s.rfind("postgresql://", 0) == 0;
}

struct parse_outcome {
  std::string message;
  int exit_code;
};
/// Parses argv. Returns the config, or a message to print (help text or an
/// error, with `exit_code` 0 for --help and 2 for a bad flag).
std::variant<server_config, parse_outcome> parse_args(int argc, char** argv);

/// The --help text.
std::string usage();

}  // namespace weft::server
