// What the server's parts share. Owned by `server`; outlives every session
// and room (see server.cc for the teardown order).
#pragma once

#include <boost/asio/io_context.hpp>

#include "server/config.h"
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
};

}  // namespace weft::server
