// One HTTP connection (plain or TLS): static files of the web client,
// /healthz, /metrics, /api/docs/{id}/text, and the checks before an upgrade
// to a WebSocket session (per-address limit, Origin allow-list, an
// Authorization header's token).
#pragma once

#include <boost/asio/ip/tcp.hpp>

namespace weft::server {

struct server_context;
class session_list;

/// Serves the accepted `socket` until it closes or upgrades. With ctx.tls set
/// it first runs the TLS handshake.
void start_http_session(boost::asio::ip::tcp::socket&& socket, server_context& ctx, session_list& sessions);

}  // namespace weft::server
