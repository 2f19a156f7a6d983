#include "test_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <random>
#include <stdexcept>

#include "weft/protocol.h"

namespace weft::test {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

struct test_client::connection {
  net::io_context io;
  beast::websocket::stream<beast::tcp_stream, false> ws{io};
  beast::flat_buffer buffer;
  bool reading = false;
  bool done = false;
  beast::error_code read_ec;
};

test_client::test_client(std::uint16_t port, replica_id replica, const headers& extra_headers)
    : conn_(std::make_unique<connection>()), replica_(replica) {
  auto& ws = conn_->ws;
  if (replica_ == 0) replica_ = std::random_device{}() % 1000000000ull + 1;
  beast::get_lowest_layer(ws).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  beast::get_lowest_layer(ws).socket().set_option(tcp::no_delay(true));
  ws.set_option(beast::websocket::stream_base::decorator([extra_headers](beast::websocket::request_type& req) {
    for (const auto& [k, v] : extra_headers) req.set(k, v);
  }));
  ws.handshake("127.0.0.1:" + std::to_string(port), "/");
}

test_client::~test_client() {
  beast::error_code ec;
  if (!closed_) beast::get_lowest_layer(conn_->ws).socket().close(ec);
}

close_info test_client::close_reason() const {
  const auto& r = conn_->ws.reason();
  return close_info{static_cast<std::uint16_t>(r.code), std::string(r.reason.data(), r.reason.size())};
}

void test_client::send(const std::string& text) {
  conn_->ws.text(true);
  conn_->ws.write(net::buffer(text));
}

void test_client::send_fragmented(const std::string& text, std::size_t fragment_bytes) {
  conn_->ws.text(true);
  for (std::size_t at = 0; at < text.size(); at += fragment_bytes) {
    const std::size_t n = std::min(fragment_bytes, text.size() - at);
    conn_->ws.write_some(at + n == text.size(), net::buffer(text.data() + at, n));
  }
}

std::optional<message> test_client::recv(std::chrono::milliseconds timeout) {
  if (!backlog_.empty()) {
    message m = std::move(backlog_.front());
    backlog_.pop_front();
    return m;
  }
  if (closed_) return std::nullopt;
  connection& c = *conn_;
  if (!c.reading) {
    c.reading = true;
    c.done = false;
    c.ws.async_read(c.buffer, [&c](beast::error_code ec, std::size_t) {
      c.done = true;
      c.read_ec = ec;
    });
  }
  c.io.restart();
  c.io.run_for(timeout);
  if (!c.done) return std::nullopt;
  c.reading = false;
  if (c.read_ec) {
    closed_ = true;
    return std::nullopt;
  }
  message m;
  m.raw = beast::buffers_to_string(c.buffer.data());
  c.buffer.consume(c.buffer.size());
  if (!c.ws.got_text()) {
    m.binary = true;
    auto b = protocol::decoder::binary(m.raw, protocol::server_message_limits);
    if (auto* e = std::get_if<protocol::decode_error>(&b))
      throw std::runtime_error("the server sent an undecodable binary frame: " + e->message);
    auto& bm = std::get<protocol::binary_message>(b);
    const std::uint64_t ref = std::visit([](const auto& x) { return x.ref; }, bm);
    if (auto* s = std::get_if<protocol::binary_snapshot>(&bm)) {  // comes before the sync that names the ref
      m.type = "snapshot";
      m.snapshot_doc = s->doc;
      m.snapshot = std::move(s->bytes);
      return m;
    }
    std::string doc;
    for (const auto& [d, r] : refs_)
      if (r == ref) doc = d;
    if (doc.empty()) throw std::runtime_error("binary frame for unknown ref " + std::to_string(ref));
    if (auto* o = std::get_if<protocol::binary_ops>(&bm)) {
      m.decoded = protocol::ops_msg{doc, std::move(o->ops)};
      m.type = "ops";
    } else {
      m.decoded = protocol::ack_msg{doc, std::move(std::get<protocol::binary_ack>(bm).version)};
      m.type = "ack";
    }
    return m;
  }
  auto decoded = decoder_.server(m.raw, protocol::server_message_limits);
  if (auto* e = std::get_if<protocol::decode_error>(&decoded))
    throw std::runtime_error("the server sent an undecodable message (" + e->message + "): " + m.raw.substr(0, 200));
  m.decoded = std::move(std::get<protocol::server_message>(decoded));
  if (auto* sy = std::get_if<protocol::sync_msg>(&m.decoded); sy && sy->ref) refs_[sy->doc] = sy->ref;
  m.type = std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, protocol::welcome_msg>) return "welcome";
        else if constexpr (std::is_same_v<T, protocol::sync_msg>) return "sync";
        else if constexpr (std::is_same_v<T, protocol::ops_msg>) return "ops";
        else if constexpr (std::is_same_v<T, protocol::ack_msg>) return "ack";
        else if constexpr (std::is_same_v<T, protocol::peer_presence_msg>) return "presence";
        else if constexpr (std::is_same_v<T, protocol::closed_msg>) return "closed";
        else if constexpr (std::is_same_v<T, protocol::pong_msg>) return "pong";
        else if constexpr (std::is_same_v<T, protocol::replicated_msg>) return "replicated";
        else return "error";
      },
      m.decoded);
  return m;
}

void test_client::absorb(const message& m) {
  if (m.absorbed) return;
  if (auto* a = std::get_if<protocol::ack_msg>(&m.decoded)) {
    acked_[a->doc] = std::max(acked_[a->doc], a->version.get(replica_));
    ++acks_seen_[a->doc];
  } else if (auto* o = std::get_if<protocol::ops_msg>(&m.decoded)) {
    for (const auto& op : o->ops) {
      (void)replica(o->doc).apply(op);
      received_[o->doc].push_back(op);
    }
  } else if (auto* sy = std::get_if<protocol::sync_msg>(&m.decoded)) {
    for (const auto& op : sy->ops) (void)replica(sy->doc).apply(op);
  }
}

std::optional<message> test_client::expect(const std::string& type, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::deque<message> skipped;
  std::optional<message> found;
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto m = recv(left);
    if (!m) break;
    absorb(*m);
    m->absorbed = true;
    if (m->type == type) {
      found = std::move(m);
      break;
    }
    skipped.push_back(std::move(*m));
  }
  for (auto it = skipped.rbegin(); it != skipped.rend(); ++it) backlog_.push_front(std::move(*it));
  return found;
}

void test_client::hello(bool binary) {
  send(protocol::encode_hello({protocol::protocol_version, "test", {}, binary}));
  if (!expect("welcome")) throw std::runtime_error("no welcome");
}

std::optional<message> test_client::hello_with_token(const std::string& token) {
  send(protocol::encode_hello({protocol::protocol_version, "test", token}));
  return recv();
}

document& test_client::replica(const std::string& doc) {
  auto it = docs_.find(doc);
  if (it == docs_.end()) it = docs_.emplace(doc, document(replica_)).first;
  return it->second;
}

void test_client::open(const std::string& doc, std::chrono::milliseconds timeout, std::uint64_t regions) {
  send(protocol::encode_open(doc, replica(doc).version(), regions));
  auto sync = expect("sync", timeout);
  if (!sync) throw std::runtime_error("no sync for " + doc);
  // Send what the server lacks (it may have lost unacknowledged ops).
  const version_vector& server = std::get<protocol::sync_msg>(sync->decoded).version;
  auto missing = replica(doc).ops_since(server);
  if (!missing.empty()) send_ops(doc, missing);
}

void test_client::barrier(const std::string& doc) {
  // The document's room handles messages in order, so its answer to this
  // open comes after everything it sent before.
  send(protocol::encode_open(doc, replica(doc).version()));
  if (!expect("sync")) throw std::runtime_error("no sync for " + doc);
}

void test_client::send_binary(const std::string& bytes) {
  conn_->ws.binary(true);
  conn_->ws.write(net::buffer(bytes));
}

void test_client::send_binary_ops(const std::string& doc, const std::vector<operation>& ops) {
  if (!refs_[doc]) throw std::runtime_error("no ref for " + doc + ": binary frames off or not synced");
  send_binary(protocol::encode_binary_ops(refs_[doc], ops));
}

void test_client::send_ops(const std::string& doc, const std::vector<operation>& ops) {
  send(protocol::encode_ops(doc, ops));
}

operation test_client::insert(const std::string& doc, std::uint64_t pos, const std::string& text) {
  auto op = replica(doc).insert(pos, text);
  if (!op.ok()) throw std::runtime_error(op.error().to_string());
  send_ops(doc, {op.value()});
  return op.value();
}

operation test_client::erase(const std::string& doc, std::uint64_t pos, std::uint64_t n) {
  auto op = replica(doc).erase(pos, n);
  if (!op.ok()) throw std::runtime_error(op.error().to_string());
  send_ops(doc, {op.value()});
  return op.value();
}

bool test_client::wait_acked(const std::string& doc, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::uint64_t want = replica(doc).version().get(replica_);
  while (acked_[doc] < want && std::chrono::steady_clock::now() < deadline) {
    auto m = expect("ack", std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (!m) break;
  }
  return acked_[doc] >= want;
}

bool test_client::wait_text(const std::string& doc, const std::string& text, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::deque<message> skipped;
  while (replica(doc).text() != text && std::chrono::steady_clock::now() < deadline) {
    auto m = recv(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (!m) break;
    absorb(*m);
    m->absorbed = true;
    skipped.push_back(std::move(*m));
  }
  for (auto it = skipped.rbegin(); it != skipped.rend(); ++it) backlog_.push_front(std::move(*it));
  return replica(doc).text() == text;
}

version_vector server_version(std::uint16_t port, const std::string& doc) {
  test_client c(port);
  c.hello();
  c.open(doc, std::chrono::seconds(30));
  return c.replica(doc).version();
}

std::pair<int, std::string> http_get(std::uint16_t port, const std::string& target,
                                     const test_client::headers& extra_headers) {
  return http_request(port, "GET", target, extra_headers);
}

std::pair<int, std::string> http_request(std::uint16_t port, const std::string& method, const std::string& target,
                                         const test_client::headers& extra_headers) {
  namespace http = beast::http;
  net::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : extra_headers) req.set(k, v);
  req.keep_alive(false);
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return {static_cast<int>(res.result_int()), res.body()};
}

std::pair<int, std::string> try_upgrade(std::uint16_t port, const test_client::headers& extra_headers) {
  net::io_context io;
  beast::websocket::stream<beast::tcp_stream> ws(io);
  beast::get_lowest_layer(ws).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  ws.set_option(beast::websocket::stream_base::decorator([extra_headers](beast::websocket::request_type& req) {
    for (const auto& [k, v] : extra_headers) req.set(k, v);
  }));
  beast::websocket::response_type res;
  beast::error_code ec;
  ws.handshake(res, "127.0.0.1:" + std::to_string(port), "/", ec);
  return {static_cast<int>(res.result_int()), res.body()};
}

}  // namespace weft::test
