// Replica ids belong to someone (issue #14): with auth on, a replica id is
// owned by the token `sub` that first wrote under it, durably; ops under
// another user's replica are refused with `forbidden`. And an id used twice
// with different content is an error, never a duplicate to acknowledge.
// End to end over real WebSockets against a real weft-server and SQLite.
#include <gtest/gtest.h>

#include <string>

#include "auth/auth.h"
#include "server_fixture.h"
#include "test_client.h"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

const std::string kSecret = "ownership-test-secret-0123456789abcdef";

std::string token_for(const std::string& sub) {
  return server::token_verifier(kSecret).sign(R"({"sub":")" + sub + R"(","exp":)" +
                                              std::to_string(server::unix_now() + 3600) + R"(,"docs":{"*":"rw"}})");
}

bool has(const std::optional<message>& m, const std::string& s) { return m && m->raw.find(s) != std::string::npos; }

class OwnershipTest : public server_fixture {
 protected:
  void SetUp() override {
    server_fixture::SetUp();
    config_.auth_secret = kSecret;
  }
  /// A client of `sub` writing under `replica`, welcomed and with `doc` open.
  std::unique_ptr<test_client> user(const std::string& sub, replica_id replica, const std::string& doc) {
    auto c = std::make_unique<test_client>(port(), replica);
    auto r = c->hello_with_token(token_for(sub));
    EXPECT_TRUE(r && r->type == "welcome") << (r ? r->raw : "no reply");
    c->open(doc);
    return c;
  }
  /// The document's text as a fresh reader sees it.
  std::string server_text(const std::string& doc) {
    auto reader = user("reader", 999, doc);
    return reader->replica(doc).text();
  }
};

// The attack of the issue: Mallory writes under Alice's replica id with the
// counter Alice uses next. Refused, named; Alice's real op is then accepted
// and acknowledged, and everyone sees Alice's text.
TEST_F(OwnershipTest, NobodyWritesUnderAnotherUsersReplica) {
  start();
  const replica_id alice_replica = 4242;
  auto alice = user("alice", alice_replica, "notes");
  alice->insert("notes", 0, "hi ");
  ASSERT_TRUE(alice->wait_acked("notes"));

  auto mallory = user("mallory", alice_replica, "notes");  // the same replica id, Alice's ops synced
  ASSERT_EQ(mallory->replica("notes").text(), "hi ");
  mallory->insert("notes", 3, "forged");
  auto e = mallory->expect("error");
  ASSERT_TRUE(e);
  EXPECT_TRUE(has(e, "\"forbidden\"")) << e->raw;
  EXPECT_TRUE(has(e, std::to_string(alice_replica))) << "the error names the replica: " << e->raw;
  EXPECT_TRUE(metric_reaches("weft_forbidden_replica_ops_total", 1));

  alice->insert("notes", 3, "alice");
  ASSERT_TRUE(alice->wait_acked("notes"));
  EXPECT_EQ(server_text("notes"), "hi alice");

  // Mallory's own replica works as usual.
  auto mallory_own = user("mallory", 7, "notes");
  mallory_own->insert("notes", 0, "M:");
  ASSERT_TRUE(mallory_own->wait_acked("notes"));
  EXPECT_EQ(server_text("notes"), "M:hi alice");
}

// Ownership is durable: after a restart (the claim read back from SQLite)
// the forgery is still refused and Alice still writes.
TEST_F(OwnershipTest, OwnershipSurvivesARestart) {
  start();
  const replica_id alice_replica = 5151;
  {
    auto alice = user("alice", alice_replica, "d");
    alice->insert("d", 0, "abc");
    ASSERT_TRUE(alice->wait_acked("d"));
  }
  restart();
  {
    auto mallory = user("mallory", alice_replica, "d");
    mallory->insert("d", 3, "x");
    auto e = mallory->expect("error");
    EXPECT_TRUE(has(e, "\"forbidden\"")) << (e ? e->raw : "no error");
  }
  auto alice = user("alice", alice_replica, "d");
  alice->insert("d", 3, "d");
  ASSERT_TRUE(alice->wait_acked("d"));
  EXPECT_EQ(server_text("d"), "abcd");
}

// A batch mixing a session's own ops with another user's: only the other
// user's are refused.
TEST_F(OwnershipTest, OnlyTheForeignOpsOfABatchAreRefused) {
  start();
  auto alice = user("alice", 11, "mix");
  alice->insert("mix", 0, "A");
  ASSERT_TRUE(alice->wait_acked("mix"));
  auto bob = user("bob", 12, "mix");
  document forger(11);  // Bob holding Alice's replica id
  for (const auto& op : bob->replica("mix").ops_since(version_vector{})) ASSERT_TRUE(forger.apply(op).ok());
  auto forged = forger.insert(1, "!");
  ASSERT_TRUE(forged.ok());
  operation own = bob->insert("mix", 1, "B");  // sent on its own already; sent again with the forgery below
  bob->send_ops("mix", {own, forged.value()});
  auto e = bob->expect("error");
  EXPECT_TRUE(has(e, "\"forbidden\"") && has(e, "1 op was refused")) << (e ? e->raw : "no error");
  ASSERT_TRUE(bob->wait_acked("mix"));
  EXPECT_EQ(server_text("mix"), "AB");
}

// Without ownership (auth off, the development mode), a client can still
// never make the server acknowledge an op it does not hold: the second use
// of an id with other content is an error, counted, never acknowledged.
// One connection is one user: a later hello may refresh the token, never
// switch to another `sub` (rooms hold the identity the ops are checked
// against).
TEST_F(OwnershipTest, AConnectionCannotSwitchUsers) {
  start();
  auto alice = user("alice", 21, "who");
  alice->insert("who", 0, "a");
  ASSERT_TRUE(alice->wait_acked("who"));
  auto refused = alice->hello_with_token(token_for("bob"));
  ASSERT_TRUE(refused);
  EXPECT_TRUE(has(refused, "\"forbidden\"") && has(refused, "another user")) << refused->raw;
  auto refreshed = alice->hello_with_token(token_for("alice"));
  EXPECT_TRUE(refreshed && refreshed->type == "welcome") << (refreshed ? refreshed->raw : "no reply");
  alice->insert("who", 1, "b");
  ASSERT_TRUE(alice->wait_acked("who"));
  EXPECT_EQ(server_text("who"), "ab");
}

class IdConflictTest : public server_fixture {};

TEST_F(IdConflictTest, ASecondUseOfAnIdWithOtherContentIsAnError) {
  start();
  const replica_id shared = 31337;
  test_client first(port(), shared);
  first.hello();
  first.open("doc");
  first.insert("doc", 0, "hello");
  ASSERT_TRUE(first.wait_acked("doc"));
  // A second client under the same replica id, unaware of the first one's ops
  // (a cloned replica, or someone forging): same ids, other text.
  test_client second(port(), shared);
  second.hello();
  document clone(shared);
  auto op = clone.insert(0, "HELLO");
  ASSERT_TRUE(op.ok());
  second.open("doc");
  const std::uint64_t acked_before = second.acked("doc");
  second.send_ops("doc", {op.value()});
  auto e = second.expect("error");
  ASSERT_TRUE(e);
  EXPECT_TRUE(has(e, "id conflict")) << e->raw;
  EXPECT_FALSE(has(e, "hello")) << "the error need not echo text";
  EXPECT_TRUE(metric_reaches("weft_id_conflicts_total", 1));
  // No ack for it came before the error or after it, and the document is unchanged.
  second.barrier("doc");
  EXPECT_EQ(second.acked("doc"), acked_before);
  test_client reader(port(), 77);
  reader.hello();
  reader.open("doc");
  EXPECT_EQ(reader.replica("doc").text(), "hello");
}

}  // namespace
}  // namespace weft::test
