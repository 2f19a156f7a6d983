#include "server/server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>
#include <vector>

#include "server/context.h"
#include "server/http_session.h"
#include "server/links_lease.h"
#include "server/log.h"
#include "server/room.h"
#include "server/websocket_session.h"

namespace weft::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
// The token verifier for the --auth-* flags (unused when none is given).
result<token_verifier> make_verifier(const server_config& c) {
  token_verifier v(c.auth_secret);
  auto read = [](const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return static_cast<bool>(in);
  };
  std::string text;
  for (const auto& f : c.auth_public_keys) {
    if (!read(f, text)) return status(error_code::invalid_argument, "--auth-public-key " + f + ": cannot read it");
    if (auto st = v.add_pem_keys(text, "--auth-public-key " + f); !st.ok()) return st;
  }
  for (const auto& f : c.auth_jwks) {
    if (!read(f, text)) return status(error_code::invalid_argument, "--auth-jwks " + f + ": cannot read it");
    if (auto st = v.add_jwks(text, "--auth-jwks " + f); !st.ok()) return st;
  }
  v.require_issuer(c.auth_issuer);
  v.require_audience(c.auth_audience);
  return v;
}

// An io_context whose pending handlers can be destroyed while its services
// (timers, sockets) still exist: with one context per thread, a handler left
// in one context may own a room whose timers belong to another, so every
// context is shut down before any is destroyed.
struct io_context_t : net::io_context {
  using net::io_context::io_context;
  void shut_down() { shutdown(); }
};
}  // namespace

struct server::impl {
  // Teardown order matters: leftover handlers in the io_context and the
  // storage thread's pending requests own rooms and sessions, whose
  // destructors touch the metrics, the session list, the context and the
  // io_context's strands. So the storage thread is joined first (its
  // completions only post into the stopped io_context), then the io_context
  // is destroyed, and the context last (see ~impl).
  server_config config;
  metrics stats;
  session_list sessions;
  std::unique_ptr<storage> store;
  // Live fan-out in a region (--bus). Destroyed after the storage thread (whose
  // commits publish) and before the io_contexts (it posts into rooms).
  std::unique_ptr<bus> region_bus;
  // One context per I/O thread (see server_context::ios); the first also
  // runs the acceptor and the liveness timer.
  std::vector<std::unique_ptr<io_context_t>> ios;
  std::unique_ptr<server_context> ctx;
  std::optional<tcp::acceptor> acceptor;
  // Drives the sessions' liveness rounds; touched only on its own strand.
  std::optional<net::steady_timer> liveness;
  bool liveness_stopped = false;
  // --auth-deny-list, reread on the liveness strand by its own timer.
  std::optional<deny_list_file> deny_list;
  std::optional<net::steady_timer> deny_list_timer;
  std::string deny_list_error;  // the last one logged: said once, not every 2 s
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::uint16_t port = 0;
  bool stopped = false;
  // On PostgreSQL: whether this node carries its region's links. Gone before
  // the replicator it tells.
  std::unique_ptr<links_lease> lease;

  ~impl() {
    lease.reset();
    if (ctx) ctx->rooms.clear();
    acceptor.reset();
    liveness.reset();
    deny_list_timer.reset();
    store.reset();
    region_bus.reset();
    for (auto& io : ios) io->shut_down();
    // The replicator's timers and links belong to the contexts' services:
    // gone before the contexts are.
    if (ctx) ctx->replication.reset();
    ios.clear();
    ctx.reset();
  }

  /// Every half idle timeout, each session checks its peer is still there.
  void schedule_liveness() {
    liveness->expires_after(std::chrono::milliseconds(std::max(1u, config.ws_idle_timeout_ms / 2)));
    liveness->async_wait([this](boost::system::error_code ec) {
      if (ec || liveness_stopped) return;
      sessions.check_all_alive();
      schedule_liveness();
    });
  }

  /// Every 2 s the deny list is read again; when it changed, connections
  /// whose token it now lists are closed. Polling, not SIGHUP, so that an
  /// orchestrator swapping the file (a Kubernetes ConfigMap) needs no signal.
  void schedule_deny_list() {
    deny_list_timer->expires_after(std::chrono::seconds(2));
    deny_list_timer->async_wait([this](boost::system::error_code ec) {
      if (ec || liveness_stopped) return;
      auto changed = deny_list->refresh(*ctx->auth);
      if (!changed.ok()) {
        if (changed.error().detail() != deny_list_error)
          log(log_level::warn, "{}; keeping the previous list", changed.error().detail());
        deny_list_error = changed.error().detail();
      } else {
        deny_list_error.clear();
        if (changed.value()) {
          log(log_level::info, "deny list {} reread: {} token ids", deny_list->path(), deny_list->size());
          sessions.recheck_tokens();
          if (ctx->replication) ctx->replication->recheck_tokens();
        }
      }
      schedule_deny_list();
    });
  }

  void do_accept() {
    acceptor->async_accept(net::make_strand(ctx->io_for_connection()), [this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) {
        if (!acceptor->is_open() || ec == net::error::operation_aborted) return;  // stopping
        log(log_level::warn, "accept failed: {}", ec.message());
      } else {
        // Keystrokes are tiny messages: do not let Nagle's algorithm hold them back.
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        // Each connection gets its own strand (the socket's executor).
        start_http_session(std::move(socket), *ctx, sessions);
      }
      do_accept();
    });
  }
};

result<std::unique_ptr<server>> server::start(server_config config) {
  auto p = std::make_unique<impl>();
  p->config = std::move(config);
  set_log_level(p->config.level);

  boost::system::error_code ec;
  auto addr = net::ip::make_address(p->config.bind, ec);
  if (ec) return status(error_code::invalid_argument, "bad --bind address " + p->config.bind + ": " + ec.message());
  // Reachable from other machines and open to anyone is a choice to make
  // explicitly, never a default.
  if (!addr.is_loopback() && !auth_required(p->config) && !p->config.allow_anonymous)
    return status(error_code::invalid_argument,
                  "refusing to listen on " + p->config.bind +
                      " without authentication: anyone who reaches it could read and edit every document. "
                      "Use --auth-secret-file FILE (or --auth-public-key / --auth-jwks), or --allow-anonymous if "
                      "that is really intended");
  // Keys are checked before storage is touched: a wrong file fails the start.
  auto verifier = make_verifier(p->config);
  if (!verifier.ok()) return verifier.error();
  if (!p->config.auth_deny_list.empty()) {
    p->deny_list.emplace(p->config.auth_deny_list);
    auto read = p->deny_list->refresh(verifier.value());
    if (!read.ok()) return read.error();
  }

  // TLS 1.2 and later, serving and dialling alike.
  auto tls_context = [](net::ssl::context::method m) {
    auto c = std::make_unique<net::ssl::context>(m);
    c->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 | net::ssl::context::no_sslv3 |
                   net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
    return c;
  };
  std::unique_ptr<net::ssl::context> tls;
  if (!p->config.tls_cert.empty()) {
    tls = tls_context(net::ssl::context::tls_server);
    tls->use_certificate_chain_file(p->config.tls_cert, ec);
    if (ec) return status(error_code::invalid_argument, "--tls-cert " + p->config.tls_cert + ": " + ec.message());
    tls->use_private_key_file(p->config.tls_key, net::ssl::context::pem, ec);
    if (ec) return status(error_code::invalid_argument, "--tls-key " + p->config.tls_key + ": " + ec.message());
    if (!p->config.peer_client_ca.empty()) {
      // Client certificates are asked for, not required, at the handshake
      // (browsers connect here too); a /peer upgrade without a verified one
      // is refused (http_session). The CA names tell clients which to send.
      tls->set_verify_mode(net::ssl::verify_peer);
      tls->load_verify_file(p->config.peer_client_ca, ec);
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(p->config.peer_client_ca.c_str());
      if (ec || !names)
        return status(error_code::invalid_argument,
                      "--peer-client-ca " + p->config.peer_client_ca + ": " + (ec ? ec.message() : "no certificates"));
      SSL_CTX_set_client_CA_list(tls->native_handle(), names);
    }
  }
  // Dialling wss:// peers: their certificates must chain to --peer-ca (or
  // the system's CAs) and name the host dialled (checked per link).
  std::unique_ptr<net::ssl::context> peer_tls;
  if (std::any_of(p->config.peers.begin(), p->config.peers.end(),
                  [](const std::string& u) { return u.starts_with("wss://"); })) {
    peer_tls = tls_context(net::ssl::context::tls_client);
    peer_tls->set_verify_mode(net::ssl::verify_peer);
    if (!p->config.peer_ca.empty())
      peer_tls->load_verify_file(p->config.peer_ca, ec);
    else
      peer_tls->set_default_verify_paths(ec);
    if (ec)
      return status(error_code::invalid_argument,
                    (p->config.peer_ca.empty() ? std::string("the system's CA certificates")
                                               : "--peer-ca " + p->config.peer_ca) +
                        ": " + ec.message());
    if (!p->config.peer_cert.empty()) {
      peer_tls->use_certificate_chain_file(p->config.peer_cert, ec);
      if (ec) return status(error_code::invalid_argument, "--peer-cert " + p->config.peer_cert + ": " + ec.message());
      peer_tls->use_private_key_file(p->config.peer_key, net::ssl::context::pem, ec);
      if (ec) return status(error_code::invalid_argument, "--peer-key " + p->config.peer_key + ": " + ec.message());
    }
  }

  storage_options so;
  so.max_bytes = p->config.max_db_mb << 20;
  so.commit_window = std::chrono::milliseconds(p->config.commit_window_ms);
  so.node_id = p->config.node_id;
  so.retain_feed_for_peers = !p->config.peers.empty() || p->config.node_id != "local";
  so.location = store_location(p->config);
  auto st = storage::open(&p->stats, so);
  if (!st.ok()) return st.error();
  p->store = std::move(st.value());
  // Before any link can confirm anything: a departed node's checkpoints go,
  // and with them what compaction was keeping for it alone.
  for (const auto& gone : p->config.forget_peers) {
    if (gone == p->config.node_id)
      return status(error_code::invalid_argument, "--forget-peer " + gone + ": that is this node");
    std::promise<status> forgotten;
    p->store->forget_peer(gone, [&forgotten](status s) { forgotten.set_value(std::move(s)); });
    status s = forgotten.get_future().get();
    if (s.code() == error_code::invalid_operation) {
      log(log_level::warn, "--forget-peer {}: {} (forgotten already, or a mistyped name)", gone, s.detail());
    } else if (!s.ok()) {
      return status(s.code(), "--forget-peer " + gone + ": " + s.detail());
    } else {
      log(log_level::info, "forgot peer {}: the log no longer keeps entries for it", gone);
    }
  }
  if (!p->config.bus.empty()) {
    bus_options bo;
    if (!bus::parse_url(p->config.bus, bo))
      return status(error_code::invalid_argument, "bad --bus " + p->config.bus + " (redis://HOST:PORT)");
    bo.node_key = p->store->origin_key();
    bo.stream_max = p->config.bus_stream_max;
    p->region_bus = std::make_unique<bus>(bo);
  }
  const unsigned n = p->config.threads ? p->config.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<net::io_context*> ios;
  for (unsigned i = 0; i < n; ++i) {
    p->ios.push_back(std::make_unique<io_context_t>(1));  // one thread runs it
    ios.push_back(p->ios.back().get());
  }
  p->ctx.reset(new server_context{p->config, std::move(ios), *p->store, p->stats});
  if (auth_required(p->config)) p->ctx->auth.emplace(std::move(verifier.value()));
  p->ctx->tls = std::move(tls);
  p->ctx->peer_tls = std::move(peer_tls);
  p->ctx->replication = std::make_unique<replicator>(*p->ctx);
  p->ctx->region_bus = p->region_bus.get();
  p->store->on_availability([ctx = p->ctx.get()](status st) {
    if (st.ok())
      log(log_level::info, "storage is reachable again; waiting edits are committed");
    else
      log(log_level::error, "{}", st.detail());
    ctx->rooms.for_each([&](const std::shared_ptr<document_room>& r) { r->storage_availability(st); });
  });
  p->store->on_advanced([r = p->ctx->replication.get()](const std::vector<std::string>& keys) { r->feed_advanced(keys); });
  p->acceptor.emplace(*p->ios[0]);

  tcp::endpoint ep(addr, p->config.port);
  p->acceptor->open(ep.protocol(), ec);
  if (!ec) p->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) p->acceptor->bind(ep, ec);
  if (!ec) p->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return status(error_code::invalid_argument,
                  "cannot listen on " + p->config.bind + ":" + std::to_string(p->config.port) + ": " + ec.message());
  p->port = p->acceptor->local_endpoint().port();
  for (auto& io : p->ios) p->work.emplace_back(io->get_executor());
  p->do_accept();
  p->liveness.emplace(net::make_strand(*p->ios[0]));
  p->schedule_liveness();
  if (p->deny_list) {
    p->deny_list_timer.emplace(p->liveness->get_executor());
    p->schedule_deny_list();
  }
  // On PostgreSQL, several nodes may form one region: only the one holding
  // the region's lease carries its links (docs/scale-out.md).
  const bool shared_store = p->store->backend() == std::string_view("postgres");
  if (shared_store) p->ctx->replication->set_leading(false);
  p->ctx->replication->start();  // before the threads: its dialler list is fixed from then on
  if (shared_store)
    p->lease = std::make_unique<links_lease>(store_location(p->config), p->config.node_id,
                                             [r = p->ctx->replication.get()](bool held) { r->set_leading(held); });
  if (p->region_bus) p->region_bus->start();
  for (auto& io : p->ios) p->threads.emplace_back([io = io.get()] { io->run(); });
  log(log_level::info, "weft-server {} listening on {}:{} ({} {}{}, {} threads{}{}{})", p->store->origin_key(),
      p->config.bind, p->port, p->store->backend(), p->store->backend() == std::string_view("postgres") ? "" : store_location(p->config),
      p->region_bus ? ", bus " + p->config.bus : "", n, p->config.web_root.empty() ? "" : ", web root " + p->config.web_root,
      p->ctx->tls ? ", TLS" : "", p->ctx->auth ? ", tokens required" : ", no authentication");
  return std::unique_ptr<server>(new server(std::move(p)));
}

server::server(std::unique_ptr<impl> p) : p_(std::move(p)) {}
std::uint16_t server::port() const noexcept { return p_->port; }

void server::stop() {
  if (p_->stopped) return;
  p_->stopped = true;
  net::post(*p_->ios[0], [p = p_.get()] {
    boost::system::error_code ec;
    p->acceptor->close(ec);
  });
  net::post(p_->liveness->get_executor(), [p = p_.get()] {
    p->liveness_stopped = true;
    p->liveness->cancel();
    if (p->deny_list_timer) p->deny_list_timer->cancel();
  });
  p_->lease.reset();  // another node of the region may take the links at once
  p_->ctx->replication->stop();
  p_->sessions.close_all("server shutting down");
  // Give sessions a moment to send their close frames.
  for (int i = 0; i < 100 && p_->sessions.size() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  p_->store->flush();
  p_->work.clear();
  for (auto& io : p_->ios) io->stop();
  for (auto& t : p_->threads) t.join();
  p_->threads.clear();
  log(log_level::info, "weft-server stopped");
}

server::~server() { stop(); }

}  // namespace weft::server
