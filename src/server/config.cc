#include "server/config.h"

#include <fmt/format.h>

#include <charconv>
#include <cstring>
#include <functional>
#include <fstream>
#include <map>
#include <sstream>

namespace weft::server {

std::string usage() {
  server_config d;
  return fmt::format(
      "usage: weft-server [flags]\n"
      "\n"
      "Hosts collaborative documents over WebSocket (ws://HOST:PORT/), persists them in\n"
      "SQLite under --data-dir (or PostgreSQL: --store), and serves on the same port:\n"
      "the web client (--web-root),\n"
      "GET /healthz, GET /metrics (Prometheus), GET /api/docs/ID/text.\n"
      "\n"
      "  --bind ADDR               listen address (default {})\n"
      "  --port N                  port, 0 for any free one (default {})\n"
      "  --data-dir DIR            database directory (default {})\n"
      "  --store DIR|postgres://USER@HOST:PORT/DB  where documents live: a directory (SQLite, as\n"
      "                            --data-dir) or PostgreSQL, shared by the nodes of a region\n"
      "  --bus redis://HOST:PORT   Redis Streams for live fan-out between nodes sharing one\n"
      "                            PostgreSQL (docs/scale-out.md); needs --store postgres://\n"
      "  --bus-stream-max N        entries kept per document stream (default 1000)\n"
      "  --web-root DIR            static files to serve (default: none)\n"
      "  --threads N               I/O threads (default: one per core)\n"
      "  --log-level L             debug, info, warn or error (default info)\n"
      "  --max-message-bytes N     largest WebSocket message accepted (default {})\n"
      "  --max-docs-per-connection N  documents one connection may open (default {})\n"
      "  --max-send-queue N        queued messages before a slow client is dropped (default {})\n"
      "  --max-snapshot-frame-bytes N  larger snapshots go to clients that asked for one as ops\n"
      "                            instead (default {}; at most 64 MiB; 0: never send snapshots)\n"
      "  --max-pending-ops N       ops a document buffers awaiting dependencies (default {})\n"
      "  --idle-unload-ms N        unload a document N ms after its last client left (default {})\n"
      "  --presence-ttl-ms N       expire presence not refreshed for N ms (default {})\n"
      "  --snapshot-every N        snapshot a document every N ops (default {})\n"
      "  --ws-idle-timeout-ms N    ping connections silent for N/2 ms, close them if still\n"
      "                            silent N/2 ms later (default {})\n"
      "  --max-messages-per-second N  sustained messages per connection (default {}); past it\n"
      "                            and the burst the connection is closed (1008)\n"
      "  --message-burst N         messages a connection may send at once (default {})\n"
      "  --max-connections-per-address N  concurrent connections per client IP, 0 = no limit (default {})\n"
      "  --max-pending-per-connection N   ops one connection may leave waiting for dependencies (default {})\n"
      "  --max-db-mb N             storage quota in MiB: past it writes are refused, not acknowledged (default: none)\n"
      "  --commit-window-ms N      let writes wait up to N ms to share a commit and its fsync; delays\n"
      "                            acknowledgements, never the delivery to others (default {} with\n"
      "                            SQLite, 0 with PostgreSQL; 0: none)\n"
      "\n"
      "access (docs/protocol.md, Authentication):\n"
      "  --auth-secret-file FILE   require tokens; accept HS256 ones signed with the key in FILE\n"
      "  --auth-secret SECRET      the same, key on the command line (visible in ps; prefer the file)\n"
      "  --auth-public-key FILE    require tokens; accept RS256 and ES256 ones that verify under an\n"
      "                            RSA or EC P-256 public key in FILE (PEM public keys or\n"
      "                            certificates; a file may hold several; repeatable)\n"
      "  --auth-jwks FILE          the same with the keys of a JWK Set (an identity provider's\n"
      "                            jwks_uri, saved), chosen by the token's kid; repeatable.\n"
      "                            Each algorithm is checked only with its own kind of key\n"
      "  --auth-deny-list FILE     refuse tokens whose jti is listed in FILE (one per line, #\n"
      "                            comments); reread every 2 s, and open connections with a\n"
      "                            listed token are then closed (replace it by renaming)\n"
      "  --auth-issuer ISS         accept only tokens whose \"iss\" is ISS (your identity provider)\n"
      "  --auth-audience AUD       accept only tokens whose \"aud\" includes AUD (this service)\n"
      "  --allow-anonymous         allow a non-loopback --bind without an --auth-* key\n"
      "  --allowed-origin ORIGIN   accept browser WebSocket upgrades only from this Origin\n"
      "                            (repeatable; default: any). Clients without Origin are unaffected\n"
      "  --tls-cert FILE --tls-key FILE  serve https:// and wss:// (PEM files)\n"
      "\n"
      "replication between nodes (docs/replication.md):\n"
      "  --node-id NAME            this node's name in the cluster (default local; letters, digits, - _ .)\n"
      "  --peer ws[s]://HOST:PORT  a node to link with (repeatable). This node dials it and keeps\n"
      "                            redialling while it is down; a link carries batches both ways.\n"
      "                            wss:// checks the peer's certificate and host name\n"
      "  --peer-ca FILE            PEM CA certificates for wss:// peers (default: the system's)\n"
      "  --peer-cert FILE --peer-key FILE  a client certificate this node presents to wss:// peers\n"
      "  --peer-client-ca FILE     with TLS, /peer links must present a client certificate chaining to\n"
      "                            these PEM CA certificates and naming (CN or DNS name) the peer's node id\n"
      "  --peer-token-file FILE    token shown to peers that require one (weft-token --peer)\n"
      "  --forget-peer NODE        at startup, forget the checkpoints of NODE, a node that left for\n"
      "                            good, so the log compacts without waiting for it (repeatable)\n"
      "  --topology all|ring|star  which links batches travel when all are up (default all);\n"
      "                            the others carry them only while a preferred route is down\n"
      "  --hub NODE                the hub of --topology star\n"
      "  --max-replication-lag-s N /healthz says degraded past this lag (default 60)\n"
      "  --peer-write-timeout-s N  close a link whose peer has not read a frame for N s (default 30)\n"
      "  --help                    this text\n",
      d.bind, d.port, d.data_dir, d.max_message_bytes, d.max_docs_per_connection, d.max_send_queue,
      d.max_snapshot_frame_bytes, d.max_pending_ops, d.idle_unload_ms, d.presence_ttl_ms, d.snapshot_every_ops, d.ws_idle_timeout_ms,
      d.max_messages_per_second, d.message_burst, d.max_connections_per_address, d.max_pending_per_connection,
      d.commit_window_ms);
}

namespace {
template <class T>
bool parse_number(std::string_view s, T& out) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > std::numeric_limits<T>::max()) return false;
  out = static_cast<T>(v);
  return true;
}
// A secret or token kept in a file: its contents without the trailing line
// break. False when it cannot be read or is empty.
bool read_key_file(std::string_view path, std::string& out) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return !out.empty();
}
}  // namespace

std::variant<server_config, parse_outcome> parse_args(int argc, char** argv) {
  server_config c;
  using setter = std::function<bool(std::string_view)>;
  std::map<std::string, setter, std::less<>> flags = {
      {"--bind", [&](std::string_view v) { c.bind = std::string(v); return !v.empty(); }},
      {"--port", [&](std::string_view v) { return parse_number(v, c.port); }},
      {"--data-dir", [&](std::string_view v) { c.data_dir = std::string(v); return !v.empty(); }},
      {"--web-root", [&](std::string_view v) { c.web_root = std::string(v); return true; }},
      {"--threads", [&](std::string_view v) { return parse_number(v, c.threads); }},
      {"--log-level",
       [&](std::string_view v) {
         if (v == "debug") c.level = log_level::debug;
         else if (v == "info") c.level = log_level::info;
         else if (v == "warn") c.level = log_level::warn;
         else if (v == "error") c.level = log_level::error;
         else return false;
         return true;
       }},
      {"--max-message-bytes", [&](std::string_view v) { return parse_number(v, c.max_message_bytes) && c.max_message_bytes >= 1024; }},
      {"--max-docs-per-connection", [&](std::string_view v) { return parse_number(v, c.max_docs_per_connection) && c.max_docs_per_connection > 0; }},
      {"--max-send-queue", [&](std::string_view v) { return parse_number(v, c.max_send_queue) && c.max_send_queue > 0; }},
      // weft::client reads frames of up to 64 MiB: a larger cap would make it
      // fail to read the snapshot and reconnect, again and again.
      {"--max-snapshot-frame-bytes", [&](std::string_view v) {
         return parse_number(v, c.max_snapshot_frame_bytes) && c.max_snapshot_frame_bytes <= (64u << 20);
       }},
      {"--max-pending-ops", [&](std::string_view v) { return parse_number(v, c.max_pending_ops); }},
      {"--idle-unload-ms", [&](std::string_view v) { return parse_number(v, c.idle_unload_ms); }},
      {"--presence-ttl-ms", [&](std::string_view v) { return parse_number(v, c.presence_ttl_ms) && c.presence_ttl_ms > 0; }},
      {"--snapshot-every", [&](std::string_view v) { return parse_number(v, c.snapshot_every_ops) && c.snapshot_every_ops > 0; }},
      {"--ws-idle-timeout-ms", [&](std::string_view v) { return parse_number(v, c.ws_idle_timeout_ms) && c.ws_idle_timeout_ms > 0; }},
      {"--max-messages-per-second", [&](std::string_view v) { return parse_number(v, c.max_messages_per_second) && c.max_messages_per_second > 0; }},
      {"--message-burst", [&](std::string_view v) { return parse_number(v, c.message_burst) && c.message_burst > 0; }},
      {"--max-connections-per-address", [&](std::string_view v) { return parse_number(v, c.max_connections_per_address); }},
      {"--max-pending-per-connection", [&](std::string_view v) { return parse_number(v, c.max_pending_per_connection) && c.max_pending_per_connection > 0; }},
      {"--max-db-mb", [&](std::string_view v) { return parse_number(v, c.max_db_mb); }},
      {"--commit-window-ms", [&](std::string_view v) { c.commit_window_set = true; return parse_number(v, c.commit_window_ms) && c.commit_window_ms <= 1000; }},
      {"--store", [&](std::string_view v) { c.store = std::string(v); return !v.empty(); }},
      {"--bus", [&](std::string_view v) { c.bus = std::string(v); return v.starts_with("redis://") && v.size() > 8; }},
      {"--bus-stream-max", [&](std::string_view v) { return parse_number(v, c.bus_stream_max) && c.bus_stream_max >= 10; }},
      {"--auth-secret", [&](std::string_view v) { c.auth_secret = std::string(v); return !v.empty(); }},
      {"--auth-secret-file", [&](std::string_view v) { return read_key_file(v, c.auth_secret); }},
      {"--auth-public-key", [&](std::string_view v) { c.auth_public_keys.emplace_back(v); return !v.empty(); }},
      {"--auth-jwks", [&](std::string_view v) { c.auth_jwks.emplace_back(v); return !v.empty(); }},
      {"--auth-deny-list", [&](std::string_view v) { c.auth_deny_list = std::string(v); return !v.empty(); }},
      {"--auth-issuer", [&](std::string_view v) { c.auth_issuer = std::string(v); return !v.empty(); }},
      {"--auth-audience", [&](std::string_view v) { c.auth_audience = std::string(v); return !v.empty(); }},
      {"--allowed-origin", [&](std::string_view v) { c.allowed_origins.emplace_back(v); return !v.empty(); }},
      {"--tls-cert", [&](std::string_view v) { c.tls_cert = std::string(v); return !v.empty(); }},
      {"--tls-key", [&](std::string_view v) { c.tls_key = std::string(v); return !v.empty(); }},
      {"--node-id", [&](std::string_view v) { c.node_id = std::string(v); return !v.empty(); }},
      {"--peer",
       [&](std::string_view v) {
         c.peers.emplace_back(v);
         return (v.starts_with("ws://") && v.size() > 5) || (v.starts_with("wss://") && v.size() > 6);
       }},
      {"--peer-token-file", [&](std::string_view v) { return read_key_file(v, c.peer_token); }},
      {"--forget-peer", [&](std::string_view v) { c.forget_peers.emplace_back(v); return !v.empty(); }},
      {"--peer-ca", [&](std::string_view v) { c.peer_ca = std::string(v); return !v.empty(); }},
      {"--peer-cert", [&](std::string_view v) { c.peer_cert = std::string(v); return !v.empty(); }},
      {"--peer-key", [&](std::string_view v) { c.peer_key = std::string(v); return !v.empty(); }},
      {"--peer-client-ca", [&](std::string_view v) { c.peer_client_ca = std::string(v); return !v.empty(); }},
      {"--topology",
       [&](std::string_view v) {
         c.topology = std::string(v);
         return v == "all" || v == "ring" || v == "star";
       }},
      {"--hub", [&](std::string_view v) { c.hub = std::string(v); return !v.empty(); }},
      {"--max-replication-lag-s", [&](std::string_view v) { return parse_number(v, c.max_replication_lag_s) && c.max_replication_lag_s > 0; }},
      {"--peer-write-timeout-s", [&](std::string_view v) { return parse_number(v, c.peer_write_timeout_s) && c.peer_write_timeout_s > 0; }},
  };
  // Flags without a value.
  std::map<std::string, std::function<void()>, std::less<>> switches = {
      {"--allow-anonymous", [&] { c.allow_anonymous = true; }},
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return parse_outcome{usage(), 0};
    if (auto sw = switches.find(arg); sw != switches.end()) {
      sw->second();
      continue;
    }
    std::string_view value;
    std::string_view name = arg;
    auto eq = arg.find('=');
    if (eq != std::string_view::npos) name = arg.substr(0, eq);
    auto it = flags.find(name);
    if (it == flags.end()) return parse_outcome{fmt::format("weft-server: unknown flag {}\n\n{}", name, usage()), 2};
    if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return parse_outcome{fmt::format("weft-server: {} needs a value\n", arg), 2};
    }
    if (!it->second(value)) {
      // Never echo a secret back.
      std::string_view shown = name == "--auth-secret" ? "(hidden)" : value;
      return parse_outcome{fmt::format("weft-server: bad value for {}: \"{}\"\n", name, shown), 2};
    }
  }
  if (c.topology == "star" && c.hub.empty())
    return parse_outcome{"weft-server: --topology star needs --hub NODE\n", 2};
  if (!c.bus.empty() && !store_is_postgres(c))
    return parse_outcome{"weft-server: --bus needs --store postgres://...: nodes resync missed entries from the shared database\n", 2};
  if (store_is_postgres(c) && !c.commit_window_set) c.commit_window_ms = 0;
  if (!c.auth_deny_list.empty() && !auth_required(c))
    return parse_outcome{"weft-server: --auth-deny-list needs tokens: --auth-secret-file, --auth-public-key or --auth-jwks\n", 2};
  if (c.tls_cert.empty() != c.tls_key.empty())
    return parse_outcome{"weft-server: --tls-cert and --tls-key go together\n", 2};
  if (c.peer_cert.empty() != c.peer_key.empty())
    return parse_outcome{"weft-server: --peer-cert and --peer-key go together\n", 2};
  if (!c.peer_client_ca.empty() && c.tls_cert.empty())
    return parse_outcome{"weft-server: --peer-client-ca needs --tls-cert and --tls-key: client certificates come over TLS\n", 2};
  return c;
}

}  // namespace weft::server
