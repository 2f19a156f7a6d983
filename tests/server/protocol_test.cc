// The pure protocol module: parsing and encoding without sockets.
#include <gtest/gtest.h>

#include "protocol/messages.h"
#include "weft/document.h"

namespace weft::test {
namespace {

using namespace protocol;

client_message must_parse(std::string_view s) {
  simdjson::dom::parser p;
  auto r = parse_client_message(p, s);
  if (auto* e = std::get_if<parse_error>(&r)) {
    ADD_FAILURE() << s << " -> " << e->message;
    return ping_msg{};
  }
  return std::get<client_message>(r);
}

error_kind must_fail(std::string_view s) {
  simdjson::dom::parser p;
  auto r = parse_client_message(p, s);
  EXPECT_TRUE(std::holds_alternative<parse_error>(r)) << s;
  return std::holds_alternative<parse_error>(r) ? std::get<parse_error>(r).kind : error_kind::internal;
}

TEST(Protocol, OpsRoundTripThroughJson) {
  document a(1), b(2);
  std::vector<operation> ops;
  ops.push_back(a.insert(0, "héllo \"quoted\"\n\t😀").value());
  (void)b.apply(ops.back());
  ops.push_back(b.insert(3, "x").value());
  (void)a.apply(ops.back());
  ops.push_back(a.erase(1, 3).value());
  for (const auto& op : a.ops_since(version_vector{})) ops.push_back(op);  // includes a tombstone
  std::string wire = encode_ops_message("doc", ops);
  auto m = must_parse(std::string_view(wire));
  ASSERT_TRUE(std::holds_alternative<ops_msg>(m));
  EXPECT_EQ(std::get<ops_msg>(m).ops, ops);
  EXPECT_EQ(std::get<ops_msg>(m).doc, "doc");
}

TEST(Protocol, ParsesEveryClientMessage) {
  EXPECT_EQ(std::get<hello_msg>(must_parse(R"({"type":"hello","protocol":1,"client":"x"})")).protocol, 1u);
  auto o = std::get<open_msg>(must_parse(R"({"type":"open","doc":"a-b_c.d~1","version":[[5,3],[7,1]]})"));
  EXPECT_EQ(o.version.get(5), 3u);
  EXPECT_EQ(o.version.get(7), 1u);
  auto p = std::get<presence_msg>(must_parse(R"({"type":"presence","doc":"a","state":{"cursor": 4}})"));
  EXPECT_EQ(p.state_json, R"({"cursor":4})");
  EXPECT_EQ(std::get<presence_msg>(must_parse(R"({"type":"presence","doc":"a","state":null})")).state_json, "null");
  EXPECT_EQ(std::get<close_msg>(must_parse(R"({"type":"close","doc":"a"})")).doc, "a");
  EXPECT_TRUE(std::holds_alternative<ping_msg>(must_parse(R"({"type":"ping"})")));
}

TEST(Protocol, RejectsBadMessagesWithTheRightCode) {
  EXPECT_EQ(must_fail("nope"), error_kind::bad_json);
  EXPECT_EQ(must_fail("{}"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open"})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":""})"), error_kind::bad_doc_id);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a b"})"), error_kind::bad_doc_id);
  EXPECT_EQ(must_fail(R"({"type":"fly","doc":"a"})"), error_kind::unknown_type);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a","extra":1})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1],"text":"x","extra":1}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1.5],"text":"x"}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"erase","id":[1,1],"targets":[]}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"presence","doc":"a","state":[1]})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a","version":[[1,1],[1,2]]})"), error_kind::bad_message);
}

TEST(Protocol, LargeSyncIsChunkedBelowTheBudget) {
  document a(1);
  for (int i = 0; i < 50; ++i) (void)a.insert(a.length(), std::string(3000, static_cast<char>('a' + i % 26)) + "é😀");
  (void)a.erase(10, 20000);
  auto msgs = encode_sync_chunked("d", a.ops_since(version_vector{}), a.version(), 8192);
  ASSERT_GT(msgs.size(), 5u);
  document b(2);
  simdjson::dom::parser p;
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    EXPECT_LE(msgs[i].size(), 8192u + 2048u);
    auto parsed = parse_client_message(p, msgs[i]);  // same shape as a client's ops message
    if (i + 1 < msgs.size()) {
      ASSERT_TRUE(std::holds_alternative<client_message>(parsed));
      for (const auto& op : std::get<ops_msg>(std::get<client_message>(parsed)).ops) ASSERT_TRUE(b.apply(op).ok());
    } else {
      EXPECT_NE(msgs[i].find("\"type\":\"sync\""), std::string::npos);
      auto ops = parse_ops_array(p.parse(msgs[i])["ops"].value_unsafe());
      for (const auto& op : std::get<std::vector<operation>>(ops)) ASSERT_TRUE(b.apply(op).ok());
    }
  }
  EXPECT_EQ(b.text(), a.text());
  EXPECT_EQ(b.version(), a.version());
}

TEST(Protocol, EncodesServerMessages) {
  EXPECT_EQ(encode_error(error_kind::not_open, "say \"open\"", "d"),
            R"({"type":"error","code":"not_open","message":"say \"open\"","doc":"d"})");
  EXPECT_EQ(encode_closed("d"), R"({"type":"closed","doc":"d"})");
  version_vector v;
  v.set(3, 9);
  EXPECT_EQ(encode_ack("d", v), R"({"type":"ack","doc":"d","version":[[3,9]]})");
  EXPECT_EQ(encode_presence("d", 4, "null"), R"({"type":"presence","doc":"d","session":4,"state":null})");
}

}  // namespace
}  // namespace weft::test
