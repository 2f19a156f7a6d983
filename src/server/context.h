// What the server's parts share. Owned by `server`; outlives every session
// and room (see server.cc for the teardown order).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <optional>

#include "auth/auth.h"
#include "server/config.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/registry.h"
#include "server/storage.h"

namespace weft::server {

struct server_context {
  const server_config& config;
  boost::asio::io_context& io;
  storage& store;
  metrics& stats;
  room_registry rooms{*this};
  /// Set when the server requires tokens (--auth-secret*).
  std::optional<token_verifier> auth = std::nullopt;
  connection_limiter connections{config.max_connections_per_address};
  /// Set when serving TLS (--tls-cert/--tls-key).
  std::unique_ptr<boost::asio::ssl::context> tls = nullptr;
};

}  // namespace weft::server
