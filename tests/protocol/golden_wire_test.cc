// Pinned wire frames (docs/protocol.md; docs/encoding.md, "Pinned formats"):
// the codec must encode a fixed set of messages to exactly the frames below,
// and every frame of every protocol version so far must still decode to its
// message. Frames are in this file (JSON as-is, binary frames in hex) so that
// a change shows in review as text.
//
// A change to protocol_version makes EncodedFramesArePinned ask for a table
// of the new version while the older tables keep being decoded.
// WEFT_UPDATE_GOLDEN=1 prints the current version's table to paste here.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "weft/document.h"
#include "weft/protocol.h"

namespace weft::test {
namespace {

using namespace protocol;

struct golden_frame {
  const char* name;
  const char* frame;  // a JSON text frame, or a binary frame in lowercase hex
};

// Protocol version 1. Never edit a row of a released version: its frames are
// what old clients and servers send.
constexpr golden_frame protocol_v1[] = {
    {"hello",
     R"golden({"type":"hello","protocol":1,"client":"weft-edit 0.1 \"golden\"","token":"tok.en","binary":true})golden"},
    {"hello-plain",
     R"golden({"type":"hello","protocol":1})golden"},
    {"open",
     R"golden({"type":"open","doc":"notes","version":[[1,18],[5004138,1],[9007199254740991,4294967294]],"regions":2})golden"},
    {"open-new",
     R"golden({"type":"open","doc":"a-b_c.d~1","version":[]})golden"},
    {"open-snapshot",
     R"golden({"type":"open","doc":"notes","version":[],"snapshot":true})golden"},
    {"ops",
     R"golden({"type":"ops","doc":"notes","ops":[{"kind":"insert","id":[1,1],"text":"héllo \"quoted\"\n\t😀\\/ 日本"},{"kind":"insert","id":[5004138,1],"left":[1,3],"right":[1,4],"text":"x"},{"kind":"erase","id":[1,23],"targets":[[1,2,2],[5004138,1,1]]},{"kind":"tombstone","id":[1,2],"left":[1,1],"count":2},{"kind":"tombstone","id":[5004138,1],"left":[1,3],"right":[1,4],"count":1},{"kind":"insert","id":[9007199254740991,1],"left":[1,4],"right":[1,5],"text":"Ω"}]})golden"},
    {"presence",
     R"golden({"type":"presence","doc":"notes","state":{"cursor":4,"name":"Åsa \"Q\""}})golden"},
    {"presence-none",
     R"golden({"type":"presence","doc":"notes","state":null})golden"},
    {"close",
     R"golden({"type":"close","doc":"notes"})golden"},
    {"ping",
     R"golden({"type":"ping"})golden"},
    {"welcome",
     R"golden({"type":"welcome","protocol":1,"server":"weft 0.1.0","max_message_bytes":1048576,"binary":true})golden"},
    {"welcome-json",
     R"golden({"type":"welcome","protocol":1,"server":"weft","max_message_bytes":65536})golden"},
    {"welcome-snapshot",
     R"golden({"type":"welcome","protocol":1,"server":"weft 0.2.0","max_message_bytes":1048576,"binary":true,"snapshot":true})golden"},
    {"sync",
     R"golden({"type":"sync","doc":"notes","ops":[{"kind":"insert","id":[1,1],"text":"héllo \"quoted\"\n\t😀\\/ 日本"},{"kind":"insert","id":[5004138,1],"left":[1,3],"right":[1,4],"text":"x"},{"kind":"erase","id":[1,23],"targets":[[1,2,2],[5004138,1,1]]},{"kind":"tombstone","id":[1,2],"left":[1,1],"count":2},{"kind":"tombstone","id":[5004138,1],"left":[1,3],"right":[1,4],"count":1},{"kind":"insert","id":[9007199254740991,1],"left":[1,4],"right":[1,5],"text":"Ω"}],"version":[[1,18],[5004138,1],[9007199254740991,4294967294]],"ref":7})golden"},
    {"sync-empty",
     R"golden({"type":"sync","doc":"notes","ops":[],"version":[]})golden"},
    {"ops-live",
     R"golden({"type":"ops","doc":"notes","ops":[{"kind":"insert","id":[9007199254740991,1],"left":[1,4],"right":[1,5],"text":"Ω"}]})golden"},
    {"ack",
     R"golden({"type":"ack","doc":"notes","version":[[1,18],[5004138,1],[9007199254740991,4294967294]]})golden"},
    {"replicated",
     R"golden({"type":"replicated","doc":"notes","version":[[1,18],[5004138,1],[9007199254740991,4294967294]],"regions":2})golden"},
    {"peer-presence",
     R"golden({"type":"presence","doc":"notes","session":17,"state":{"cursor":4,"name":"Åsa \"Q\""}})golden"},
    {"closed",
     R"golden({"type":"closed","doc":"notes"})golden"},
    {"pong",
     R"golden({"type":"pong"})golden"},
    {"error",
     R"golden({"type":"error","code":"forbidden","message":"read-only \"notes\"","doc":"notes"})golden"},
    {"error-connection",
     R"golden({"type":"error","code":"rate_limited","message":"slow down"})golden"},
    {"binary-ops",
     R"golden(01070301eab6b102ffffffffffffff0f060000011e68c3a96c6c6f202271756f746564220a09f09f98805c2f20e697a5e69cac06010100040006017801001702002902012b010a00020001020e010100040006010602010006000802cea9)golden"},
    {"binary-keystroke",
     R"golden(01ac0202ffffffffffffff0f01010600010106010802cea9)golden"},
    {"binary-ack",
     R"golden(0207030112eab6b10201ffffffffffffff0ffeffffff0f)golden"},
    {"binary-snapshot",
     R"golden(0307056e6f746573532d6279746573)golden"},
    {"ops-regions",
     R"golden({"type":"ops","doc":"notes","ops":[{"kind":"insert","id":[9007199254740991,1],"left":[1,4],"right":[1,5],"text":"Ω"}],"regions":3})golden"},
};

const std::map<std::uint64_t, std::span<const golden_frame>> golden_by_version = {
    {1, protocol_v1},
};

using wire_message = std::variant<client_message, server_message, binary_message>;

struct pinned {
  std::string name;
  wire_message message;
  std::string frame;  // as the codec's dedicated encoder writes it (hex for binary frames)
};

std::string hex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : bytes) {
    out += digits[ch >> 4];
    out += digits[ch & 15];
  }
  return out;
}

std::string unhex(std::string_view h) {
  std::string out;
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<char>(nibble(h[i]) << 4 | nibble(h[i + 1])));
  return out;
}

// Ops of every kind, with JSON escapes, 2- to 4-byte UTF-8 and the largest
// replica id and counter. Fixed forever: the tables above encode them.
std::vector<operation> golden_ops() {
  document a(1), b(0x4c5b6a), c(max_replica_id);
  std::vector<operation> ops;
  ops.push_back(a.insert(0, "héllo \"quoted\"\n\t😀\\/ 日本").value());
  (void)b.apply(ops.back());
  ops.push_back(b.insert(3, "x").value());
  (void)a.apply(ops.back());
  ops.push_back(a.erase(1, 3).value());
  for (const auto& op : a.ops_since(version_vector{}))
    if (op.kind == op_kind::tombstone) ops.push_back(op);
  for (const auto& op : ops) (void)c.apply(op);
  ops.push_back(c.insert(2, "Ω").value());
  return ops;
}

version_vector golden_version() {
  version_vector v;
  v.set(1, 18);
  v.set(0x4c5b6a, 1);
  v.set(max_replica_id, max_counter);
  return v;
}

std::vector<pinned> messages() {
  const std::vector<operation> ops = golden_ops();
  const std::span<const operation> keystroke(&ops.back(), 1);
  const version_vector v = golden_version();
  const std::string state = R"({"cursor":4,"name":"Åsa \"Q\""})";
  std::vector<pinned> out;
  auto client = [&](const char* name, client_message m, std::string frame) {
    out.push_back({name, std::move(m), std::move(frame)});
  };
  auto server = [&](const char* name, server_message m, std::string frame) {
    out.push_back({name, std::move(m), std::move(frame)});
  };
  auto binary = [&](const char* name, binary_message m, const std::string& frame) {
    out.push_back({name, std::move(m), hex(frame)});
  };
  client("hello", hello_msg{1, "weft-edit 0.1 \"golden\"", "tok.en", true},
         encode_hello(hello_msg{1, "weft-edit 0.1 \"golden\"", "tok.en", true}));
  client("hello-plain", hello_msg{1, {}, {}, false}, encode_hello(hello_msg{1, {}, {}, false}));
  client("open", open_msg{"notes", v, 2}, encode_open("notes", v, 2));
  client("open-new", open_msg{"a-b_c.d~1", {}, 0}, encode_open("a-b_c.d~1", {}));
  client("open-snapshot", open_msg{"notes", {}, 0, true}, encode_open("notes", {}, 0, true));
  client("ops", ops_msg{"notes", ops}, encode_ops("notes", ops));
  client("ops-regions", ops_msg{"notes", {keystroke.begin(), keystroke.end()}, 3}, encode_ops("notes", keystroke, 3));
  client("presence", presence_msg{"notes", state}, encode_presence("notes", state));
  client("presence-none", presence_msg{"notes", "null"}, encode_presence("notes", "null"));
  client("close", close_msg{"notes"}, encode_close("notes"));
  client("ping", ping_msg{}, encode_ping());
  server("welcome", welcome_msg{1, "weft 0.1.0", 1048576, true}, encode_welcome("weft 0.1.0", 1048576, true));
  server("welcome-json", welcome_msg{1, "weft", 65536, false}, encode_welcome("weft", 65536));
  server("welcome-snapshot", welcome_msg{1, "weft 0.2.0", 1048576, true, true},
         encode_welcome("weft 0.2.0", 1048576, true, true));
  server("sync", sync_msg{"notes", ops, v, 7}, encode_sync("notes", ops, v, 7));
  server("sync-empty", sync_msg{"notes", {}, {}, 0}, encode_sync("notes", {}, {}));
  server("ops-live", ops_msg{"notes", {keystroke.begin(), keystroke.end()}}, encode_ops("notes", keystroke));
  server("ack", ack_msg{"notes", v}, encode_ack("notes", v));
  server("replicated", replicated_msg{"notes", v, 2}, encode_replicated("notes", v, 2));
  server("peer-presence", peer_presence_msg{"notes", 17, state}, encode_peer_presence("notes", 17, state));
  server("closed", closed_msg{"notes"}, encode_closed("notes"));
  server("pong", pong_msg{}, encode_pong());
  server("error", error_msg{error_kind::forbidden, "forbidden", "read-only \"notes\"", "notes"},
         encode_error(error_kind::forbidden, "read-only \"notes\"", "notes"));
  server("error-connection", error_msg{error_kind::rate_limited, "rate_limited", "slow down", ""},
         encode_error(error_kind::rate_limited, "slow down"));
  binary("binary-ops", binary_ops{7, ops}, encode_binary_ops(7, ops));
  binary("binary-keystroke", binary_ops{300, {keystroke.begin(), keystroke.end()}}, encode_binary_ops(300, keystroke));
  binary("binary-ack", binary_ack{7, v}, encode_binary_ack(7, v));
  binary("binary-snapshot", binary_snapshot{7, "notes", "S-bytes"}, encode_binary_snapshot(7, "notes", "S-bytes"));
  return out;
}

const pinned* find_pinned(const std::vector<pinned>& all, std::string_view name) {
  for (const auto& p : all)
    if (p.name == name) return &p;
  return nullptr;
}

std::string cpp_row(const pinned& p) {
  return "    {\"" + p.name + "\",\n     R\"golden(" + p.frame + ")golden\"},\n";
}

TEST(GoldenWire, EncodedFramesArePinned) {
  const std::vector<pinned> all = messages();
  if (const char* u = std::getenv("WEFT_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::printf("constexpr golden_frame protocol_v%llu[] = {\n", static_cast<unsigned long long>(protocol_version));
    for (const auto& p : all) std::printf("%s", cpp_row(p).c_str());
    std::printf("};\n");
    return;
  }
  auto table = golden_by_version.find(protocol_version);
  ASSERT_TRUE(table != golden_by_version.end())
      << "protocol version " << protocol_version << " has no golden frames: add protocol_v" << protocol_version
      << " (WEFT_UPDATE_GOLDEN=1 prints it) and keep the older tables";
  for (const auto& p : all) {
    SCOPED_TRACE(p.name);
    // The generic encoders write what the dedicated ones do.
    if (auto* c = std::get_if<client_message>(&p.message)) {
      EXPECT_EQ(encode(*c), p.frame);
    } else if (auto* s = std::get_if<server_message>(&p.message)) {
      EXPECT_EQ(encode(*s), p.frame);
    }
    const golden_frame* g = nullptr;
    for (const auto& row : table->second)
      if (p.name == row.name) g = &row;
    ASSERT_NE(g, nullptr) << "no golden frame named " << p.name << "; expected:\n" << cpp_row(p);
    EXPECT_EQ(p.frame, g->frame) << "the frame changed under protocol version " << protocol_version
                                 << ": old peers read the old one (docs/encoding.md, \"Pinned formats\")";
  }
  EXPECT_EQ(table->second.size(), all.size()) << "a golden frame names no message";
}

TEST(GoldenWire, EveryVersionsFramesStillDecode) {
  const std::vector<pinned> all = messages();
  decoder d;
  for (const auto& [version, table] : golden_by_version) {
    for (const auto& row : table) {
      SCOPED_TRACE("protocol_v" + std::to_string(version) + " " + row.name);
      const pinned* p = find_pinned(all, row.name);
      ASSERT_NE(p, nullptr);
      if (auto* c = std::get_if<client_message>(&p->message)) {
        auto r = d.client(row.frame);
        ASSERT_TRUE(std::holds_alternative<client_message>(r)) << std::get<decode_error>(r).message;
        EXPECT_EQ(std::get<client_message>(r), *c);
      } else if (auto* s = std::get_if<server_message>(&p->message)) {
        auto r = d.server(row.frame);
        ASSERT_TRUE(std::holds_alternative<server_message>(r)) << std::get<decode_error>(r).message;
        EXPECT_EQ(std::get<server_message>(r), *s);
      } else {
        const std::string frame = unhex(row.frame);
        ASSERT_EQ(hex(frame), row.frame) << "not lowercase hex";
        auto r = decoder::binary(frame);
        ASSERT_TRUE(std::holds_alternative<binary_message>(r)) << std::get<decode_error>(r).message;
        EXPECT_EQ(std::get<binary_message>(r), std::get<binary_message>(p->message));
      }
    }
  }
}

}  // namespace
}  // namespace weft::test
