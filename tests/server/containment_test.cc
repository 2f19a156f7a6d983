// Containment (docs/reliability.md): an exception that escapes the handling
// of one message is that message's `internal` error, counted in
// weft_internal_errors_total and logged; the connection, its other
// documents, other connections and the server go on. The faults come from
// server_config::test hooks (in-process only), the traffic over real
// WebSockets.
//
// An exception that is not contained ends the server's process, here the
// test's: so each scenario runs in a child process (a gtest death test that
// expects a clean exit, in the "threadsafe" style that re-runs this test
// there). A crash is then this test's failure, with the child's output, not
// the end of the whole test binary; alarm() bounds a child that hangs.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>

#include "server_fixture.h"

namespace weft::test {
namespace {

class containment : public server_fixture {
 protected:
  void SetUp() override {
    server_fixture::SetUp();
    GTEST_FLAG_SET(death_test_style, "threadsafe");
  }

  /// The child's side: runs `scenario` (which starts the server), stops the
  /// server and exits 0 when no assertion failed.
  [[noreturn]] void child(const std::function<void()>& scenario) {
    ::alarm(60);  // SIGALRM: a hang is a failure too
    scenario();
    srv_.reset();
    std::filesystem::remove_all(dir_);
    const bool failed = ::testing::Test::HasFailure();
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(failed ? 1 : 0);
  }

  /// Sends open for `doc` (any version) without waiting for its sync.
  static void send_open(test_client& c, const std::string& doc) { c.send(protocol::encode_open(doc, {}, 0)); }

  /// The error the server answers `c` with next (nullopt after 5 s).
  static std::optional<protocol::error_msg> next_error(test_client& c) {
    auto m = c.expect("error");
    if (!m) return std::nullopt;
    return std::get<protocol::error_msg>(m->decoded);
  }
};

// A throw in the message handler (open of the hooked document): an `internal`
// error to that connection, counted; the same connection, its open
// documents and other connections keep working.
TEST_F(containment, ThrowInMessageHandlerIsAnInternalErrorAndEverythingGoesOn) {
  EXPECT_EXIT(child([&] {
    config_.test.throw_on_open = "boom";
    start();
    ASSERT_EQ(metric("weft_internal_errors_total"), 0);
    test_client a(port()), b(port());
    a.hello();
    b.hello();
    a.open("calm");
    b.open("calm");

    send_open(a, "boom");
    auto e = next_error(a);
    ASSERT_TRUE(e) << "no error for the open that threw";
    EXPECT_EQ(e->kind, protocol::error_kind::internal) << e->code << ": " << e->message;
    EXPECT_NE(e->message.find("test hook: throw_on_open"), std::string::npos) << e->message;
    EXPECT_EQ(metric("weft_internal_errors_total"), 1);

    // The same connection: its open document still takes and delivers edits,
    // and it can open another one.
    a.insert("calm", 0, "still here");
    EXPECT_TRUE(a.wait_acked("calm"));
    EXPECT_TRUE(b.wait_text("calm", "still here"));
    a.open("other");
    a.insert("other", 0, "x");
    EXPECT_TRUE(a.wait_acked("other"));
    // A new connection, and the server's HTTP side.
    test_client c(port());
    c.hello();
    c.open("calm");
    EXPECT_EQ(c.replica("calm").text(), "still here");
    EXPECT_EQ(http_get(port(), "/api/docs/calm/text"), std::make_pair(200, std::string("still here")));
    // Every time: each throw is its own error and is counted.
    send_open(c, "boom");
    e = next_error(c);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, protocol::error_kind::internal);
    EXPECT_EQ(metric("weft_internal_errors_total"), 2);
    EXPECT_EQ(metric("weft_connections"), 3);
  }),
              ::testing::ExitedWithCode(0), "");
}

// A throw in a room's strand work (the room's first send to a joining
// connection, on a loaded room): caught at the strand's edge, counted; the
// room, the connection and the server keep working.
TEST_F(containment, ThrowInRoomStrandWorkIsCountedAndTheRoomGoesOn) {
  EXPECT_EXIT(child([&] {
    config_.test.throw_on_strand_open = "boom";
    start();
    // Load the room first (over HTTP), so the join runs as strand work of a
    // ready room (see the next test for a room still loading).
    ASSERT_EQ(http_get(port(), "/api/docs/boom/text").first, 200);
    test_client a(port()), b(port());
    a.hello();
    b.hello();
    send_open(a, "boom");
    EXPECT_TRUE(metric_reaches("weft_internal_errors_total", 1)) << metric("weft_internal_errors_total");

    // The room goes on: it takes the connection's ops and acknowledges them
    // (through the same subscriber that threw), and serves its text.
    a.insert("boom", 0, "after the throw");
    EXPECT_TRUE(a.wait_acked("boom"));
    EXPECT_EQ(http_get(port(), "/api/docs/boom/text"), std::make_pair(200, std::string("after the throw")));
    // The connection and others go on.
    a.open("calm");
    b.open("calm");
    a.insert("calm", 0, "ok");
    EXPECT_TRUE(b.wait_text("calm", "ok"));
    EXPECT_EQ(metric("weft_internal_errors_total"), 1);
  }),
              ::testing::ExitedWithCode(0), "");
}

// The same throw while the room is still loading: the join waits for the
// load and then runs from document_room::loaded() as queued work, which is
// contained one action at a time like any other strand work.
TEST_F(containment, ThrowInStrandWorkQueuedWhileTheRoomLoadsIsContained) {
  EXPECT_EXIT(child([&] {
    config_.test.throw_on_strand_open = "boom";
    start();
    test_client a(port());
    a.hello();
    send_open(a, "boom");  // a fresh room: the join is queued until it has loaded
    EXPECT_TRUE(metric_reaches("weft_internal_errors_total", 1)) << metric("weft_internal_errors_total");
    a.insert("boom", 0, "after the throw");
    EXPECT_TRUE(a.wait_acked("boom"));
    test_client b(port());
    b.hello();
    b.open("calm");
  }),
              ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace weft::test
