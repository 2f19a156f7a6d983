// Access control, limits, TLS and storage faults (issue #6), end to end
// against a real weft-server on 127.0.0.1 with a real SQLite database.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "auth/auth.h"
#include "server/server.h"
#include "server_fixture.h"
#include "test_client.h"

namespace weft::test {
namespace {

using namespace std::chrono_literals;
using server::access;
using server::token_verifier;

const std::string kSecret = "weft-test-secret-0123456789abcdef";

// Made by an independent implementation (Python's hmac/hashlib) with kSecret:
// {"sub":"vector","exp":4102444800,"docs":{"team-*":"rw","handbook":"r"}}
const std::string kVectorToken =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJ2ZWN0b3IiLCJleHAiOjQxMDI0NDQ4MDAsImRvY3MiOnsidGVhbS0qIjoicnciLCJoYW5kYm9vayI6InIifX0."
    "vCBIkzOptwpQ-92hh48V89MR8OPxWUFY7CErt8TdVEw";

std::string token(const std::string& docs_json, std::int64_t ttl = 3600, const std::string& secret = kSecret) {
  return token_verifier(secret).sign(R"({"sub":"t","exp":)" + std::to_string(server::unix_now() + ttl) +
                                     R"(,"docs":)" + docs_json + "}");
}

bool has(const std::optional<message>& m, const std::string& s) { return m && m->raw.find(s) != std::string::npos; }

// ---- tokens, without a server -------------------------------------------------------

TEST(AuthTest, GlobPatterns) {
  EXPECT_TRUE(server::glob_match("team-*", "team-a"));
  EXPECT_TRUE(server::glob_match("team-*", "team-"));
  EXPECT_FALSE(server::glob_match("team-*", "teams"));
  EXPECT_TRUE(server::glob_match("*", "anything"));
  EXPECT_TRUE(server::glob_match("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(server::glob_match("a*b*c", "aXXbYY"));
  EXPECT_TRUE(server::glob_match("handbook", "handbook"));
  EXPECT_FALSE(server::glob_match("handbook", "handbook2"));
}

TEST(AuthTest, AcceptsATokenMadeElsewhere) {
  auto r = token_verifier(kSecret).verify(kVectorToken, server::unix_now());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value().subject, "vector");
  EXPECT_EQ(r.value().rights_for("team-red"), access::write);
  EXPECT_EQ(r.value().rights_for("handbook"), access::read);
  EXPECT_EQ(r.value().rights_for("payroll"), access::none);
}

TEST(AuthTest, RefusesForgedExpiredAndMalformedTokens) {
  token_verifier v(kSecret);
  const auto now = server::unix_now();
  auto refused = [&](const std::string& t, const std::string& why) {
    auto r = v.verify(t, now);
    EXPECT_FALSE(r.ok()) << t;
    if (!r.ok()) {
      EXPECT_NE(r.error().detail().find(why), std::string::npos) << r.error().detail();
      EXPECT_EQ(r.error().detail().find(t), std::string::npos) << "the token must not be echoed";
    }
  };
  refused(token(R"({"*":"rw"})", 3600, "another-secret-another-secret-xx"), "signature");
  refused(token(R"({"*":"rw"})", -10), "expired");
  // Claims swapped for more rights under the original signature.
  std::string good = token(R"({"team-a":"r"})");
  std::string better = token(R"({"*":"rw"})", 3600, "x");
  std::string spliced = good.substr(0, good.find('.')) + better.substr(better.find('.'), better.rfind('.') - better.find('.')) +
                        good.substr(good.rfind('.'));
  refused(spliced, "signature");
  // alg "none" and other algorithms are never accepted.
  refused("eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDAsImRvY3MiOnsiKiI6InJ3In19.", "HS256");
  refused("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDAsImRvY3MiOnsiKiI6InJ3In19.c2ln", "HS256");
  refused("abc", "malformed");
  refused("a.b", "malformed");
  refused("a.b.c.d", "malformed");
  refused("a!.b.c", "malformed");
  refused(v.sign(R"({"docs":{"*":"rw"}})"), "exp");
  refused(v.sign(R"({"exp":4102444800})"), "docs");
  refused(v.sign(R"({"exp":4102444800,"docs":{"*":"admin"}})"), "rights");
  refused(v.sign(R"({"exp":4102444800,"nbf":4102444000,"docs":{"*":"rw"}})"), "nbf");
  refused(std::string(9000, 'a'), "too long");
}

// ---- a server per test -----------------------------------------------------------------

class SecurityTest : public server_fixture {
 protected:
  void SetUp() override {
    server_fixture::SetUp();
    config_.auth_secret = kSecret;
  }
  /// Stores `text` as document `doc` (acknowledged, so on disk), then stops the server.
  void store_then_stop(const std::string& doc, const std::string& text) {
    start();
    {
      test_client c(port());
      c.hello();
      c.open(doc);
      c.insert(doc, 0, text);
      ASSERT_TRUE(c.wait_acked(doc));
    }
    srv_.reset();
  }
  /// A connected client that said hello with `tok` and got welcome.
  std::unique_ptr<test_client> authed(const std::string& tok) {
    auto c = std::make_unique<test_client>(port());
    auto r = c->hello_with_token(tok);
    EXPECT_TRUE(r && r->type == "welcome") << (r ? r->raw : "no reply");
    return c;
  }
};

TEST_F(SecurityTest, AConnectionWithoutATokenIsRefused) {
  start();
  test_client c(port());
  c.send(R"({"type":"hello","protocol":1})");
  EXPECT_TRUE(has(c.recv(), "\"unauthorized\""));
  EXPECT_FALSE(c.recv(2s));
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.close_reason().code, close_code::policy_error);
}

TEST_F(SecurityTest, ExpiredForgedAndMalformedTokensAreRefused) {
  start();
  for (const std::string& bad : {token(R"({"*":"rw"})", -5), token(R"({"*":"rw"})", 3600, "not-the-server-secret-0123456789"),
                                 std::string("garbage")}) {
    test_client c(port());
    auto r = c.hello_with_token(bad);
    EXPECT_TRUE(has(r, "\"unauthorized\"")) << (r ? r->raw : "none");
    EXPECT_FALSE(c.recv(2s));
    EXPECT_TRUE(c.closed());
  }
  auto [st, metrics] = http_get(port(), "/metrics");
  EXPECT_NE(metrics.find("weft_auth_failures_total 3"), std::string::npos) << metrics;
}

TEST_F(SecurityTest, OtherDocumentsAreForbidden) {
  start();
  auto c = authed(token(R"({"team-*":"rw"})"));
  c->send(R"({"type":"open","doc":"payroll"})");
  auto e = c->expect("error");
  EXPECT_TRUE(has(e, "\"forbidden\"") && has(e, "payroll")) << (e ? e->raw : "none");
  // Ops to a document it could not open are refused too (not open).
  c->send(R"({"type":"ops","doc":"payroll","ops":[{"kind":"insert","id":[5,1],"text":"x"}]})");
  EXPECT_TRUE(has(c->expect("error"), "not_open"));
  // The connection stays usable for what the token allows.
  c->open("team-a");
  c->insert("team-a", 0, "ok");
  EXPECT_TRUE(c->wait_acked("team-a"));
  auto reader = authed(token(R"({"team-*":"r"})"));
  reader->open("team-a");
  EXPECT_EQ(reader->replica("team-a").text(), "ok");
}

TEST_F(SecurityTest, ReadOnlyClientsReceiveButCannotWrite) {
  start();
  auto writer = authed(token(R"({"notes":"rw"})"));
  auto reader = authed(token(R"({"notes":"r"})"));
  writer->open("notes");
  reader->open("notes");
  writer->insert("notes", 0, "from the writer");
  ASSERT_TRUE(writer->wait_acked("notes"));
  EXPECT_TRUE(reader->wait_text("notes", "from the writer"));
  // The reader's edit is refused and reaches no one.
  reader->insert("notes", 0, "sneaky ");
  auto e = reader->expect("error");
  EXPECT_TRUE(has(e, "\"forbidden\"") && has(e, "read-only")) << (e ? e->raw : "none");
  writer->insert("notes", 15, "!");
  ASSERT_TRUE(writer->wait_acked("notes"));
  EXPECT_TRUE(reader->wait_text("notes", "sneaky from the writer!"));  // its own replica has its edit...
  auto third = authed(token(R"({"*":"r"})"));
  third->open("notes");
  EXPECT_EQ(third->replica("notes").text(), "from the writer!");  // ...the server does not
  // Presence is allowed for readers (cursors of people who watch).
  reader->send(R"({"type":"presence","doc":"notes","state":{"name":"watcher"}})");
  EXPECT_TRUE(has(writer->expect("presence"), "watcher"));
}

TEST_F(SecurityTest, TokenInTheAuthorizationHeader) {
  start();
  test_client c(port(), 0, {{"Authorization", "Bearer " + token(R"({"d":"rw"})")}});
  c.hello();  // no token in hello: the header's counts
  c.open("d");
  c.insert("d", 0, "via header");
  EXPECT_TRUE(c.wait_acked("d"));
  auto [st, body] = try_upgrade(port(), {{"Authorization", "Bearer " + token(R"({"d":"rw"})", -1)}});
  EXPECT_EQ(st, 401);
  EXPECT_NE(body.find("expired"), std::string::npos);
  EXPECT_EQ(try_upgrade(port(), {{"Authorization", "Bearer nonsense"}}).first, 401);
}

TEST_F(SecurityTest, HttpTextApiNeedsAToken) {
  start();
  auto c = authed(token(R"({"d1":"rw"})"));
  c->open("d1");
  c->insert("d1", 0, "secret text");
  ASSERT_TRUE(c->wait_acked("d1"));
  EXPECT_EQ(http_get(port(), "/api/docs/d1/text").first, 401);
  EXPECT_EQ(http_get(port(), "/api/docs/d1/text", {{"Authorization", "Bearer " + token(R"({"d2":"r"})")}}).first, 403);
  auto [st, body] = http_get(port(), "/api/docs/d1/text", {{"Authorization", "Bearer " + token(R"({"d1":"r"})")}});
  EXPECT_EQ(st, 200);
  EXPECT_EQ(body, "secret text");
  EXPECT_EQ(http_get(port(), "/healthz").first, 200);  // health stays open for probes
}

TEST_F(SecurityTest, NonLoopbackAddressNeedsAuthOrAnExplicitChoice) {
  config_.auth_secret.clear();
  config_.bind = "0.0.0.0";
  auto refused = try_start();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().detail().find("refusing to listen on 0.0.0.0 without authentication"), std::string::npos);
  config_.allow_anonymous = true;
  auto anonymous = try_start();
  EXPECT_TRUE(anonymous.ok()) << anonymous.error().to_string();
  anonymous = status();  // stop it
  config_.allow_anonymous = false;
  config_.auth_secret = kSecret;
  auto with_auth = try_start();
  EXPECT_TRUE(with_auth.ok()) << with_auth.error().to_string();
}

TEST_F(SecurityTest, OriginAllowList) {
  config_.auth_secret.clear();
  config_.allowed_origins = {"https://editor.example"};
  start();
  EXPECT_EQ(try_upgrade(port(), {{"Origin", "https://evil.example"}}).first, 403);
  EXPECT_EQ(try_upgrade(port(), {{"Origin", "https://editor.example"}}).first, 101);
  EXPECT_EQ(try_upgrade(port(), {}).first, 101);  // native clients send no Origin
}

TEST_F(SecurityTest, FloodsAreRateLimited) {
  config_.auth_secret.clear();
  config_.max_messages_per_second = 20;
  config_.message_burst = 10;
  start();
  test_client c(port());
  c.hello();
  for (int i = 0; i < 40; ++i) c.send(R"({"type":"ping"})");
  std::optional<message> m;
  bool limited = false;
  while ((m = c.recv(2s)))
    if (has(m, "\"rate_limited\"")) limited = true;
  EXPECT_TRUE(limited);
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.close_reason().code, close_code::policy_error);
  // A client at a human pace is never limited.
  test_client calm(port());
  calm.hello();
  for (int i = 0; i < 12; ++i) {
    calm.send(R"({"type":"ping"})");
    EXPECT_TRUE(calm.expect("pong"));
    std::this_thread::sleep_for(60ms);
  }
  EXPECT_FALSE(calm.closed());
}

TEST_F(SecurityTest, ConnectionsPerAddressAreLimited) {
  config_.auth_secret.clear();
  config_.max_connections_per_address = 3;
  start();
  auto a = std::make_unique<test_client>(port());
  test_client b(port()), c(port());
  a->hello();
  auto [st, body] = try_upgrade(port(), {});
  EXPECT_EQ(st, 429);
  EXPECT_NE(body.find("too many connections from 127.0.0.1"), std::string::npos) << body;
  a.reset();  // frees a slot
  bool admitted = false;
  for (int i = 0; i < 50 && !admitted; ++i) {
    admitted = try_upgrade(port(), {}).first == 101;
    if (!admitted) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(admitted);
}

TEST_F(SecurityTest, OneConnectionCannotFillTheCausalBuffer) {
  config_.auth_secret.clear();
  config_.max_pending_per_connection = 5;
  start();
  test_client bad(port()), good(port());
  bad.hello();
  good.hello();
  bad.open("d");
  good.open("d");
  // Ops that depend on characters that never arrive stay buffered.
  bool refused = false;
  for (int i = 0; i < 10 && !refused; ++i) {
    bad.send(R"({"type":"ops","doc":"d","ops":[{"kind":"insert","id":[777,)" + std::to_string(100 + i) +
             R"(],"left":[777,1],"text":"x"}]})");
    for (auto m = bad.recv(300ms); m; m = bad.recv(100ms))
      if (has(m, "\"limit\"") && has(m, "waiting for operations")) refused = true;
  }
  EXPECT_TRUE(refused);
  good.insert("d", 0, "still fine");
  EXPECT_TRUE(good.wait_acked("d"));
}

// ---- TLS -------------------------------------------------------------------------------

TEST_F(SecurityTest, TlsServesWssAndHttps) {
  namespace net = boost::asio;
  namespace beast = boost::beast;
  config_.auth_secret.clear();
  config_.tls_cert = WEFT_TEST_DATA_DIR "/tls/test-cert.pem";
  config_.tls_key = WEFT_TEST_DATA_DIR "/tls/test-key.pem";
  start();
  net::io_context io;
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.load_verify_file(WEFT_TEST_DATA_DIR "/tls/test-cert.pem");
  ctx.set_verify_mode(net::ssl::verify_peer);
  beast::websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(io, ctx);
  beast::get_lowest_layer(ws).connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port()));
  ws.next_layer().set_verify_callback(net::ssl::host_name_verification("127.0.0.1"));
  ws.next_layer().handshake(net::ssl::stream_base::client);
  ws.handshake("127.0.0.1", "/");
  ws.text(true);
  ws.write(net::buffer(std::string(R"({"type":"hello","protocol":1})")));
  beast::flat_buffer buf;
  ws.read(buf);
  EXPECT_NE(beast::buffers_to_string(buf.data()).find("welcome"), std::string::npos);
  buf.clear();
  ws.write(net::buffer(std::string(R"({"type":"open","doc":"tls"})")));
  ws.read(buf);
  EXPECT_NE(beast::buffers_to_string(buf.data()).find("\"sync\""), std::string::npos);
  ws.close(beast::websocket::close_code::normal);

  // HTTPS for the web client and the HTTP API.
  beast::ssl_stream<beast::tcp_stream> https(io, ctx);
  beast::get_lowest_layer(https).connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port()));
  https.handshake(net::ssl::stream_base::client);
  beast::http::request<beast::http::string_body> req{beast::http::verb::get, "/healthz", 11};
  req.set(beast::http::field::host, "127.0.0.1");
  beast::http::write(https, req);
  beast::http::response<beast::http::string_body> res;
  beast::flat_buffer hb;
  beast::http::read(https, hb, res);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "ok\n");

  // Plain ws:// to a TLS port does not get through.
  EXPECT_THROW(test_client plain(port()), std::exception);
}

// ---- storage faults ----------------------------------------------------------------------

void sql(const std::filesystem::path& db, const std::string& statement) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(h, statement.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(h);
}

TEST_F(SecurityTest, ACorruptBatchIsReportedAndNeverServed) {
  config_.auth_secret.clear();
  ASSERT_NO_FATAL_FAILURE(store_then_stop("fragile", "precious words"));
  // Flip one byte in the middle of the stored batch: its checksum no longer matches.
  sql(dir_ / "weft.db",
      "UPDATE log SET batch = substr(batch, 1, 10) || char((unicode(substr(batch, 11, 1)) + 1) % 128) || "
      "substr(batch, 12) WHERE doc = 'fragile'");
  start();
  test_client c(port());
  c.hello();
  c.send(R"({"type":"open","doc":"fragile"})");
  auto e = c.expect("error");
  EXPECT_TRUE(has(e, "\"storage\"") && has(e, "corrupt")) << (e ? e->raw : "none");
  auto [st, body] = http_get(port(), "/api/docs/fragile/text");
  EXPECT_EQ(st, 503);
  EXPECT_NE(body.find("corrupt"), std::string::npos);
  EXPECT_GE(metric("weft_storage_errors_total{kind=\"corrupt\"}"), 1);
  EXPECT_EQ(metric("weft_storage_errors_total{kind=\"full\"}"), 0);
  // Other documents are unaffected.
  c.open("sturdy");
  c.insert("sturdy", 0, "fine");
  EXPECT_TRUE(c.wait_acked("sturdy"));
}

TEST_F(SecurityTest, ADamagedDatabaseFileStopsTheServerFromStarting) {
  config_.auth_secret.clear();
  ASSERT_NO_FATAL_FAILURE(store_then_stop("x", "some text to store"));
  {
    std::fstream f(dir_ / "weft.db", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f << "this is not an SQLite header at all";
  }
  auto r = try_start();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), error_code::corrupt_data) << r.error().to_string();
  EXPECT_NE(r.error().detail().find("damaged"), std::string::npos) << r.error().detail();
}

TEST_F(SecurityTest, AFullDiskRefusesWritesAndAcknowledgesOnlyWhatIsStored) {
  config_.auth_secret.clear();
  config_.max_db_mb = 1;
  start();
  test_client c(port(), 4242);
  c.hello();
  c.open("big");
  const std::string chunk(2000, 'x');
  bool storage_error = false, disk_full_named = false;
  std::uint64_t sent = 0;
  for (int i = 0; i < 2000 && !storage_error; ++i) {
    c.insert("big", 0, chunk);
    sent += chunk.size();
    for (auto m = c.recv(0ms); m; m = c.recv(0ms))
      if (has(m, "\"storage\"")) {
        storage_error = true;
        if (has(m, "disk full")) disk_full_named = true;
      }
    if (i % 50 == 49) c.wait_acked("big", 2s);
  }
  ASSERT_TRUE(storage_error) << "1 MiB quota never reached after " << sent << " bytes";
  // Told apart from an I/O error or corruption, for the client and the operator.
  EXPECT_GE(metric("weft_storage_errors_total{kind=\"full\"}"), 1);
  EXPECT_EQ(metric("weft_storage_errors_total{kind=\"corrupt\"}"), 0);
  // The room retries storing (docs/reliability.md): a retry's smaller batch
  // may still fit, so some later edits can be acknowledged; 200 kB more on a
  // full 1 MiB quota cannot all be. Every refusal says why.
  for (int i = 0; i < 100; ++i) {
    c.insert("big", 0, chunk);
    sent += chunk.size();
    for (auto m = c.recv(0ms); m; m = c.recv(0ms))
      if (has(m, "\"storage\"") && has(m, "disk full")) disk_full_named = true;
  }
  EXPECT_FALSE(c.wait_acked("big", 3s)) << "everything was acknowledged past a full quota";
  for (auto m = c.recv(0ms); m; m = c.recv(0ms))
    if (has(m, "\"storage\"") && has(m, "disk full")) disk_full_named = true;
  EXPECT_TRUE(disk_full_named);
  const std::uint64_t acked_before = c.acked("big");
  EXPECT_LT(acked_before, sent);

  // Everything acknowledged is on disk: restart without the quota and look.
  srv_.reset();
  config_.max_db_mb = 0;
  start();
  test_client reader(port());
  reader.hello();
  reader.open("big");
  EXPECT_GE(reader.replica("big").version().get(4242), acked_before);
}

}  // namespace
}  // namespace weft::test
