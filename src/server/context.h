// What the server's parts share. Owned by `server`; outlives every session
// and room (see server.cc for the teardown order).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "auth/auth.h"
#include "server/bus.h"
#include "server/config.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/registry.h"
#include "server/replicator.h"
#include "server/storage.h"

namespace weft::server {

struct server_context {
  const server_config& config;
  /// One I/O context per I/O thread (each run by exactly one thread): a
  /// connection lives on one of them, a document's room on one of them, and
  /// work crosses threads only where a connection and a room it uses live
  /// apart. One context shared by all threads woke the other threads for
  /// nearly every hand-off (measured: 497 against 387 µs of server CPU per
  /// keystroke with 2 threads against 1).
  std::vector<boost::asio::io_context*> ios;
  storage& store;
  metrics& stats;
  room_registry rooms{*this};
  /// Set when the server requires tokens (--auth-secret*, --auth-public-key, --auth-jwks).
  std::optional<token_verifier> auth = std::nullopt;
  connection_limiter connections{config.max_connections_per_address};
  /// Replication with other nodes (docs/replication.md); set once at start.
  std::unique_ptr<replicator> replication = nullptr;
  /// Live fan-out between the nodes of a region (--bus); null without one.
  /// Owned by the server; outlives every room's use of it.
  bus* region_bus = nullptr;
  /// Set when serving TLS (--tls-cert/--tls-key).
  std::unique_ptr<boost::asio::ssl::context> tls = nullptr;
  /// Set when some --peer is wss://: verifies peers' certificates (--peer-ca).
  std::unique_ptr<boost::asio::ssl::context> peer_tls = nullptr;

  /// The context a document's room runs on: fixed by the document id.
  boost::asio::io_context& io_for_document(std::string_view doc) const {
    return *ios[std::hash<std::string_view>{}(doc) % ios.size()];
  }
  /// The context for a new connection: round robin. Thread-safe.
  boost::asio::io_context& io_for_connection() {
    return *ios[next_connection_io.fetch_add(1, std::memory_order_relaxed) % ios.size()];
  }
  std::atomic<std::size_t> next_connection_io{0};
};

}  // namespace weft::server
