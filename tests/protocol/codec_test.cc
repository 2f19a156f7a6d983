// The protocol codec (include/weft/protocol.h) without sockets: every message
// in both directions round-trips, bad frames get the right error kind, and
// the op parser is as strict as JSON.
#include <gtest/gtest.h>

#include "protocol/op_json_reader.h"
#include "protocol/peer_messages.h"
#include "weft/document.h"
#include "weft/protocol.h"

namespace weft::test {
namespace {

using namespace protocol;

client_message must_decode(std::string_view s) {
  decoder d;
  auto r = d.client(s);
  if (auto* e = std::get_if<decode_error>(&r)) {
    ADD_FAILURE() << s << " -> " << e->message;
    return ping_msg{};
  }
  return std::get<client_message>(r);
}

server_message must_decode_server(std::string_view s) {
  decoder d;
  auto r = d.server(s);
  if (auto* e = std::get_if<decode_error>(&r)) {
    ADD_FAILURE() << s << " -> " << e->message;
    return pong_msg{};
  }
  return std::get<server_message>(r);
}

error_kind must_fail(std::string_view s) {
  decoder d;
  auto r = d.client(s);
  EXPECT_TRUE(std::holds_alternative<decode_error>(r)) << s;
  return std::holds_alternative<decode_error>(r) ? std::get<decode_error>(r).kind : error_kind::internal;
}

std::vector<operation> sample_ops() {
  document a(1), b(2);
  std::vector<operation> ops;
  ops.push_back(a.insert(0, "héllo \"quoted\"\n\t😀\\/").value());
  (void)b.apply(ops.back());
  ops.push_back(b.insert(3, "x").value());
  (void)a.apply(ops.back());
  ops.push_back(a.erase(1, 3).value());
  for (const auto& op : a.ops_since(version_vector{})) ops.push_back(op);  // includes a tombstone
  return ops;
}

TEST(Codec, OpsRoundTripThroughJson) {
  auto ops = sample_ops();
  std::string wire = encode_ops("doc", ops);
  auto m = must_decode(wire);
  ASSERT_TRUE(std::holds_alternative<ops_msg>(m));
  EXPECT_EQ(std::get<ops_msg>(m).ops, ops);
  EXPECT_EQ(std::get<ops_msg>(m).doc, "doc");
}

TEST(Codec, EveryClientMessageRoundTrips) {
  version_vector v;
  v.set(5, 3);
  v.set((std::uint64_t{1} << 53) - 1, 4294967294u);
  const std::vector<client_message> all = {
      hello_msg{1, "my editor \"2\"", "tok.en", false}, hello_msg{1, {}, {}, true}, open_msg{"a-b_c.d~1", v}, open_msg{"x", {}}, open_msg{"x", v, 3},
      open_msg{"x", {}, 0, true},
      ops_msg{"d", sample_ops()}, ops_msg{"d", sample_ops(), 2}, presence_msg{"d", R"({"cursor":4,"name":"Ada"})"}, presence_msg{"d", "null"},
      close_msg{"d"}, ping_msg{}};
  for (const auto& m : all) {
    std::string wire = encode(m);
    EXPECT_EQ(must_decode(wire), m) << wire;
  }
}

TEST(Codec, EveryServerMessageRoundTrips) {
  version_vector v;
  v.set(7, 12);
  v.set(3, 44);
  const std::vector<server_message> all = {
      welcome_msg{1, "weft 0.1.0", 1048576, false},
      welcome_msg{1, "weft 0.1.0", 1048576, true},
      welcome_msg{1, "weft 0.1.0", 1048576, true, true},
      sync_msg{"notes", sample_ops(), v, 0},
      sync_msg{"notes", {}, {}, 9},
      ops_msg{"notes", sample_ops()},
      ack_msg{"notes", v},
      peer_presence_msg{"notes", 17, R"({"name":"Ada","anchor":4})"},
      peer_presence_msg{"notes", 17, "null"},
      closed_msg{"notes"},
      replicated_msg{"notes", v, 2},
      pong_msg{},
      error_msg{error_kind::not_open, "not_open", "say \"open\"", "d"},
      error_msg{error_kind::internal, "some_future_code", "from a newer server", ""},
  };
  for (const auto& m : all) {
    std::string wire = encode(m);
    EXPECT_EQ(must_decode_server(wire), m) << wire;
  }
}

TEST(Codec, ParsesEveryClientMessage) {
  EXPECT_EQ(std::get<hello_msg>(must_decode(R"({"type":"hello","protocol":1,"client":"x"})")).protocol, 1u);
  auto o = std::get<open_msg>(must_decode(R"({"type":"open","doc":"a-b_c.d~1","version":[[5,3],[7,1]]})"));
  EXPECT_EQ(o.version.get(5), 3u);
  EXPECT_EQ(o.version.get(7), 1u);
  EXPECT_TRUE(std::get<open_msg>(must_decode(R"({"type":"open","doc":"a","version":null})")).version.empty());
  auto p = std::get<presence_msg>(must_decode(R"({"type":"presence","doc":"a","state":{"cursor": 4}})"));
  EXPECT_EQ(p.state_json, R"({"cursor":4})");
  EXPECT_EQ(std::get<presence_msg>(must_decode(R"({"type":"presence","doc":"a","state":null})")).state_json, "null");
  EXPECT_EQ(std::get<close_msg>(must_decode(R"({ "doc" : "a" , "type" : "close" })")).doc, "a");
  EXPECT_TRUE(std::holds_alternative<ping_msg>(must_decode(R"({"type":"ping"})")));
  EXPECT_TRUE(std::holds_alternative<ping_msg>(must_decode(R"({"type":"ping","id":[1,{"a":2}]})")));
  // Insert and tombstone origins may be null (start / end of the document).
  auto ops = std::get<ops_msg>(
      must_decode(R"({"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1],"left":null,"right":null,"text":"x"}]})"));
  ASSERT_EQ(ops.ops.size(), 1u);
  EXPECT_FALSE(ops.ops[0].origin_left);
}

TEST(Codec, RejectsBadMessagesWithTheRightCode) {
  EXPECT_EQ(must_fail("nope"), error_kind::bad_json);
  EXPECT_EQ(must_fail(""), error_kind::bad_json);
  EXPECT_EQ(must_fail(R"({"type":"ping"} {})"), error_kind::bad_json);
  EXPECT_EQ(must_fail("[1]"), error_kind::bad_message);
  EXPECT_EQ(must_fail("{}"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open"})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":""})"), error_kind::bad_doc_id);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a b"})"), error_kind::bad_doc_id);
  EXPECT_EQ(must_fail(R"({"type":"fly","doc":"a"})"), error_kind::unknown_type);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a","extra":1})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a","doc":"b"})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a","":1})"), error_kind::bad_message);  // found by fuzz_protocol
  EXPECT_EQ(must_fail(R"({"type":"hello","protocol":"1"})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"hello","protocol":1,"client":5})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"hello"})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a","regions":17})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a","regions":"2"})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a","snapshot":1})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[],"snapshot":true})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[],"regions":17})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[],"regions":true})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a"})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":{}})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1],"text":"x","extra":1}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1.5],"text":"x"}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,01],"text":"x"}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1],"id":[1,2],"text":"x"}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1],"text":""}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"erase","id":[1,1],"targets":[]}]})"),
            error_kind::bad_message);
  // An erase has no origins: not even null ones (the two parsers once disagreed here).
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"erase","id":[1,2],"left":null,"targets":[[1,1,1]]}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"tombstone","id":[1,1],"count":4294967295}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"a","ops":[{"kind":"insert","id":[9007199254740992,1],"text":"x"}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"presence","doc":"a","state":[1]})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"presence","doc":"a"})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a","version":[[1,1],[1,2]]})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"open","doc":"a","version":[[1,0]]})"), error_kind::bad_message);
  EXPECT_EQ(must_fail("{\"type\":\"open\",\"doc\":\"a\xff\"}"), error_kind::bad_json);
  // Values the decoder skips must still be JSON (review finding).
  EXPECT_EQ(must_fail(R"({"type":"ping","id":[}})"), error_kind::bad_json);
  EXPECT_EQ(must_fail(R"({"type":"ping","id":tru})"), error_kind::bad_json);
  EXPECT_EQ(must_fail(R"({"type":"ping","id":"\q"})"), error_kind::bad_json);
  decoder d;
  EXPECT_TRUE(std::holds_alternative<decode_error>(d.server(R"({"type":"pong","x":{]})")));
}

TEST(Codec, BinaryFramesRoundTrip) {
  version_vector v;
  v.set(7, 12);
  v.set((std::uint64_t{1} << 53) - 1, 4294967294u);
  const std::vector<binary_message> all = {binary_ops{1, sample_ops()}, binary_ops{300, {sample_ops()[1]}},
                                           binary_ack{5, v}, binary_ack{5, {}}};
  for (const auto& m : all) {
    std::string frame = std::visit(
        [](const auto& x) -> std::string {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, binary_ops>) return encode_binary_ops(x.ref, x.ops);
          else if constexpr (std::is_same_v<T, binary_ack>) return encode_binary_ack(x.ref, x.version);
          else return encode_binary_snapshot(x.ref, x.doc, x.bytes);
        },
        m);
    ASSERT_NE(frame[0], '{');
    auto d = decoder::binary(frame);
    ASSERT_TRUE(std::holds_alternative<binary_message>(d)) << std::get<decode_error>(d).message;
    EXPECT_EQ(std::get<binary_message>(d), m);
    // Every cut is refused, never misread.
    for (std::size_t n = 0; n < frame.size(); ++n)
      EXPECT_TRUE(std::holds_alternative<decode_error>(decoder::binary(frame.substr(0, n)))) << n;
  }
  EXPECT_TRUE(std::holds_alternative<decode_error>(decoder::binary(std::string("\x09\x01", 2))));  // unknown kind
  EXPECT_TRUE(std::holds_alternative<decode_error>(decoder::binary(std::string("\x01\x00", 2))));  // ref 0
}

TEST(Codec, SnapshotFramesRoundTripAndTheirHeadersAreChecked) {
  document d(7);
  (void)d.insert(0, "hello");
  const std::string snap = d.encode_snapshot();
  const std::string frame = encode_binary_snapshot(300, "notes~1", snap);
  auto r = decoder::binary(frame);
  ASSERT_TRUE(std::holds_alternative<binary_message>(r)) << std::get<decode_error>(r).message;
  EXPECT_EQ(std::get<binary_message>(r), binary_message(binary_snapshot{300, "notes~1", snap}));
  // Cuts inside the kind, ref, id length, id or before the first snapshot
  // byte are refused (the snapshot's own checksum guards the rest, when loaded).
  const std::size_t head = 1 + 2 + 1 + 7;
  for (std::size_t n = 0; n <= head; ++n)
    EXPECT_TRUE(std::holds_alternative<decode_error>(decoder::binary(frame.substr(0, n)))) << n;
  EXPECT_TRUE(std::holds_alternative<decode_error>(decoder::binary(encode_binary_snapshot(1, "bad id!", snap))));
  EXPECT_TRUE(std::holds_alternative<decode_error>(decoder::binary(encode_binary_snapshot(0, "notes", snap))));
}

TEST(Codec, AKeystrokeRebroadcastFitsIn40BytesOnTheWire) {
  // A typist with a random 53-bit replica id, deep into a document, typing
  // between someone else's characters (so the insert has both origins).
  document other((std::uint64_t{1} << 52) + 12345), typist((std::uint64_t{1} << 53) - 77);
  (void)typist.apply(other.insert(0, std::string(5000, 'x')).value());
  for (int i = 0; i < 3000; ++i) (void)typist.insert(100 + static_cast<std::uint64_t>(i), "y");
  auto key = typist.insert(2000, "z").value();
  ASSERT_TRUE(key.origin_left && key.origin_right);
  const std::string frame = encode_binary_ops(70000, std::span<const operation>(&key, 1));
  const std::size_t on_wire = frame.size() + 2;  // a server frame under 126 bytes has a 2-byte header
  EXPECT_LE(on_wire, 40u) << "binary keystroke frame of " << on_wire << " bytes";
  const std::string json = encode_ops("notes", std::span<const operation>(&key, 1));
  EXPECT_GT(json.size(), 3 * frame.size());  // what binary frames save
}

TEST(Codec, BinaryIsNegotiatedInHelloAndWelcome) {
  auto h = std::get<hello_msg>(must_decode(R"({"type":"hello","protocol":1,"binary":true})"));
  EXPECT_TRUE(h.binary);
  EXPECT_EQ(must_fail(R"({"type":"hello","protocol":1,"binary":1})"), error_kind::bad_message);
  auto w = std::get<welcome_msg>(must_decode_server(encode_welcome("weft", 10, true)));
  EXPECT_TRUE(w.binary);
  auto s = std::get<sync_msg>(must_decode_server(encode_sync("d", {}, {}, 42)));
  EXPECT_EQ(s.ref, 42u);
}

TEST(Codec, MinusZeroIsZeroAsInEveryJsonReader) {  // both found by fuzz_protocol against a DOM reader
  EXPECT_EQ(std::get<hello_msg>(must_decode(R"({"type":"hello","protocol":-0})")).protocol, 0u);
  auto m = std::get<ops_msg>(must_decode(R"({"type":"ops","doc":"d","ops":[{"kind":"erase","id":[8,1],"targets":[[-0,1,2]]}]})"));
  EXPECT_EQ(m.ops[0].targets[0].replica, 0u);
  EXPECT_EQ(must_fail(R"({"type":"hello","protocol":-1})"), error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"d","ops":[{"kind":"insert","id":[-1,1],"text":"x"}]})"),
            error_kind::bad_message);
  EXPECT_EQ(must_fail(R"({"type":"ops","doc":"d","ops":[{"kind":"insert","id":[-0.0,1],"text":"x"}]})"),
            error_kind::bad_message);
}

TEST(Codec, HelloClientNameIsCutAtACharacterBoundary) {
  std::string name(199, 'a');
  name += "é";  // bytes 199 and 200
  auto h = std::get<hello_msg>(must_decode(encode_hello({1, name, {}})));
  EXPECT_EQ(h.client, std::string(199, 'a'));
}

TEST(Codec, LimitsGiveTooLarge) {
  decoder d;
  decode_limits small;
  small.max_ops_per_message = 1;
  small.max_presence_bytes = 10;
  auto two = encode_ops("a", std::vector<operation>(2, sample_ops()[1]));
  EXPECT_EQ(std::get<decode_error>(d.client(two, small)).kind, error_kind::too_large);
  EXPECT_EQ(std::get<decode_error>(d.client(R"({"type":"presence","doc":"a","state":{"name":"Ada Lovelace"}})", small)).kind,
            error_kind::too_large);
}

TEST(Codec, ErrorsNameTheDocument) {
  decoder d;
  auto r = d.client(R"({"type":"ops","doc":"notes","ops":[{"kind":"nope"}]})");
  ASSERT_TRUE(std::holds_alternative<decode_error>(r));
  EXPECT_EQ(std::get<decode_error>(r).doc, "notes");
}

TEST(Codec, ParsesInPlaceWhenPaddedAndCopiesOtherwise) {
  std::string wire = encode_ops("doc", sample_ops());
  std::string padded = wire + std::string(decoder::padding, 'x');  // garbage after the frame is never read as JSON
  decoder d;
  auto a = d.client(std::string_view(padded.data(), wire.size()), {}, padded.size());
  auto b = d.client(wire);
  ASSERT_TRUE(std::holds_alternative<client_message>(a));
  ASSERT_TRUE(std::holds_alternative<client_message>(b));
  EXPECT_EQ(std::get<client_message>(a), std::get<client_message>(b));
}

TEST(Codec, ServerMessagesFromANewerServerKeepWorking) {
  // Unknown fields in server messages are ignored (a client must not break
  // when the server adds one); known fields are still checked.
  auto m = must_decode_server(R"({"type":"ack","doc":"d","version":[[3,9]],"region":"eu"})");
  EXPECT_EQ(std::get<ack_msg>(m).version.get(3), 9u);
  // Also a field known from other messages (a pong echoing ping's id, a ref on ops).
  EXPECT_TRUE(std::holds_alternative<pong_msg>(must_decode_server(R"({"type":"pong","id":[1,"x"]})")));
  EXPECT_EQ(std::get<ops_msg>(must_decode_server(R"({"type":"ops","doc":"d","ops":[],"ref":4})")).doc, "d");
  decoder d;
  EXPECT_TRUE(std::holds_alternative<decode_error>(d.server(R"({"type":"ack","doc":"d","version":5})")));
  EXPECT_TRUE(std::holds_alternative<decode_error>(d.server(R"({"type":"sync","doc":"d","ops":[]})")));
}

TEST(Codec, LargeSyncIsChunkedBelowTheBudget) {
  document a(1);
  for (int i = 0; i < 50; ++i) (void)a.insert(a.length(), std::string(3000, static_cast<char>('a' + i % 26)) + "é😀");
  (void)a.erase(10, 20000);
  auto msgs = encode_sync_chunked("d", a.ops_since(version_vector{}), a.version(), 8192);
  ASSERT_GT(msgs.size(), 5u);
  document b(2);
  decoder d;
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    EXPECT_LE(msgs[i].size(), 8192u + 2048u);
    auto parsed = d.server(msgs[i]);
    ASSERT_TRUE(std::holds_alternative<server_message>(parsed));
    auto& m = std::get<server_message>(parsed);
    const std::vector<operation>& ops =
        i + 1 < msgs.size() ? std::get<ops_msg>(m).ops : std::get<sync_msg>(m).ops;
    for (const auto& op : ops) ASSERT_TRUE(b.apply(op).ok());
    if (i + 1 == msgs.size()) {
      EXPECT_EQ(std::get<sync_msg>(m).version, a.version());
    }
  }
  EXPECT_EQ(b.text(), a.text());
  EXPECT_EQ(b.version(), a.version());
}

TEST(Codec, LargeOpsAreChunkedBelowEveryLimit) {
  // A long paste and an erase with 70,000 targets (a backspace run over
  // another replica's characters), far over 10,000 ops and 1 MiB.
  document a(1), b(2);
  (void)b.apply(a.insert(0, std::string(140000, 'x')).value());
  std::vector<operation> ops;
  ops.push_back(b.insert(0, std::string(300000, 'y') + "é").value());
  std::vector<operation> erases;
  for (std::uint64_t i = 0; i < 70000; ++i) erases.push_back(b.erase(300001 + i, 1).value());
  // One erase op with one target per deleted character, as ops_since may
  // merge them: the hardest case for the chunker.
  operation big_erase;
  big_erase.kind = op_kind::erase;
  big_erase.id = erases.front().id;
  for (const auto& e : erases) big_erase.targets.insert(big_erase.targets.end(), e.targets.begin(), e.targets.end());
  ops.push_back(big_erase);
  for (int binary = 0; binary < 2; ++binary) {
    auto frames = binary ? encode_binary_ops_chunked(9, ops, 64 * 1024, 1000) : encode_ops_chunked("d", ops, 64 * 1024, 1000);
    ASSERT_GT(frames.size(), 5u);
    document c(3);
    for (const auto& op : a.ops_since(version_vector{})) (void)c.apply(op);
    decoder d;
    decode_limits limits;
    limits.max_ops_per_message = 1000;
    for (const auto& f : frames) {
      EXPECT_LE(f.size(), 64u * 1024 + 4096);
      std::vector<operation> got;
      if (binary) {
        auto m = decoder::binary(f, limits);
        ASSERT_TRUE(std::holds_alternative<binary_message>(m)) << std::get<decode_error>(m).message;
        got = std::get<binary_ops>(std::get<binary_message>(m)).ops;
      } else {
        auto m = d.client(f, limits);
        ASSERT_TRUE(std::holds_alternative<client_message>(m)) << std::get<decode_error>(m).message;
        got = std::get<ops_msg>(std::get<client_message>(m)).ops;
      }
      for (const auto& op : got) ASSERT_TRUE(c.apply(op).ok());
    }
    EXPECT_EQ(c.length(), b.length());
    EXPECT_TRUE(c.text() == b.text());  // not EXPECT_EQ: 300 kB of text in a failure message
    EXPECT_TRUE(c.version() == b.version());
    EXPECT_EQ(c.pending_ops(), 0u);
  }
  EXPECT_TRUE(encode_ops_chunked("d", {}, 1000).empty());
}

TEST(Codec, EncodesServerMessagesExactly) {
  EXPECT_EQ(encode_error(error_kind::not_open, "say \"open\"", "d"),
            R"({"type":"error","code":"not_open","message":"say \"open\"","doc":"d"})");
  EXPECT_EQ(encode_closed("d"), R"({"type":"closed","doc":"d"})");
  version_vector v;
  v.set(3, 9);
  EXPECT_EQ(encode_ack("d", v), R"({"type":"ack","doc":"d","version":[[3,9]]})");
  EXPECT_EQ(encode_peer_presence("d", 4, "null"), R"({"type":"presence","doc":"d","session":4,"state":null})");
  EXPECT_EQ(encode_welcome("weft", 10), R"({"type":"welcome","protocol":1,"server":"weft","max_message_bytes":10})");
  EXPECT_EQ(encode_open("n\"x", v), R"({"type":"open","doc":"n\"x","version":[[3,9]]})");  // escaped
}

TEST(Codec, ErrorKindNamesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(error_kind::rate_limited); ++i) {
    error_kind k = static_cast<error_kind>(i), back;
    ASSERT_TRUE(error_kind_from_name(error_kind_name(k), &back));
    EXPECT_EQ(back, k);
  }
  error_kind k;
  EXPECT_FALSE(error_kind_from_name("nope", &k));
}

// The public JSON string functions (weft-edit's script arguments and presence
// names go through them): the encoders' escaping, the op reader's string rules.
TEST(Codec, JsonStringsAreWrittenAndReadByTheCodecsRules) {
  auto lit = [](std::string_view s) {
    std::string out = "x";  // appends
    append_json_string(out, s);
    return out.substr(1);
  };
  auto read = [](std::string_view json, std::string* out) { return read_json_string(json, out); };

  // Writing: the encoders' escapes; round trips through the reader.
  EXPECT_EQ(lit("a\"b\\c/"), R"("a\"b\\c/")");
  EXPECT_EQ(lit("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(lit(std::string_view("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
  EXPECT_EQ(lit("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80"), "\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\"");
  EXPECT_EQ(lit("n\"x"), encode_close("n\"x").substr(22, 6));  // {"type":"close","doc":"n\"x"}
  std::string all;
  for (int c = 1; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  for (std::string s : {std::string(), std::string("plain"), std::string("\0mid\0", 5), all,
                        std::string("\xf4\x8f\xbf\xbf \xef\xbf\xbf q\"\\")}) {
    std::string json = lit(s), back = "junk";
    EXPECT_EQ(read(json, &back), json.size()) << json;
    EXPECT_EQ(back, s) << json;
  }

  // Reading: every RFC 8259 escape, \u in either case, surrogate pairs.
  std::string out;
  EXPECT_EQ(read(R"("\"\\\/\b\f\n\r\t")", &out), 18u);
  EXPECT_EQ(out, "\"\\/\b\f\n\r\t");
  EXPECT_EQ(read(R"("\u0041\u00e9\u00E9\u2713\uFFFF")", &out), 32u);
  EXPECT_EQ(out, "A\xc3\xa9\xc3\xa9\xe2\x9c\x93\xef\xbf\xbf");
  EXPECT_EQ(read(R"("\u0000")", &out), 8u);
  EXPECT_EQ(out, std::string(1, '\0'));
  EXPECT_EQ(read(R"("\ud83d\ude00!")", &out), 15u);
  EXPECT_EQ(out, "\xf0\x9f\x98\x80!");
  EXPECT_EQ(read(R"("\uDBFF\uDFFF")", &out), 14u);
  EXPECT_EQ(out, "\xf4\x8f\xbf\xbf");
  EXPECT_EQ(read("\"\x7f\"", &out), 3u);  // DEL is no control character for JSON
  EXPECT_EQ(out, "\x7f");

  // The return value: leading white space and the literal; what follows is not read.
  EXPECT_EQ(read(" \t\r\n\"ab\" rest", &out), 8u);
  EXPECT_EQ(out, "ab");
  EXPECT_EQ(read(R"("a""b")", &out), 3u);
  EXPECT_EQ(out, "a");
  EXPECT_EQ(read(R"("" 5000)", &out), 2u);
  EXPECT_EQ(out, "");

  // Refused, with *out untouched: no literal at the start, unterminated, bad
  // escapes, lone or broken surrogates, raw control characters, invalid UTF-8.
  for (std::string_view bad : {
           "", " ", "abc", "'a'", "x\"a\"", "\v\"a\"", "\"abc", "\"abc\\\"", "\"abc\\",
           R"("\x41")", R"("\U0041")", R"("\'")", R"("\u12")", R"("\u12g4")", R"("\u 123")",
           R"("\ud83d")", R"("\ude00")", R"("\ud83dx")", R"("\ud83d\u0041")", R"("\ud83d\ud83d")",
           R"("\ude00\ud83d")", R"("\ud83d\n")",
           "\"a\nb\"", "\"a\tb\"", "\"\x01\"", "\"\x1f\"", "\"ok\\n\rno\"",
           "\"\xff\"", "\"\xc3\"", "\"\xc3(\"", "\"\xc0\xaf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"",
           "\"\xf4\x90\x80\x80\"", "\"\xf8\x88\x80\x80\x80\"", "\"\\u00e9\xff\"", "\"\xe2\x9c\""}) {
    std::string kept = "kept";
    EXPECT_EQ(read(bad, &kept), 0u) << bad;
    EXPECT_EQ(kept, "kept") << bad;
  }

  // A field of an object: top level only, the last one wins, strings only.
  auto field = [](std::string_view json, std::string_view key = "name") -> std::string {
    std::string v = "unset";
    bool ok = read_json_string_field(json, key, &v);
    EXPECT_EQ(ok, v != "unset") << json;  // untouched when false
    return ok ? v : "<none>";
  };
  EXPECT_EQ(field(R"({"name":"ann","color":"#e6194b","anchor":3,"head":3})"), "ann");
  EXPECT_EQ(field(R"({"name":"ann","color":"#e6194b"})", "color"), "#e6194b");
  EXPECT_EQ(field(" {\n \"name\" : \"ann\" \t} \n"), "ann");
  EXPECT_EQ(field(R"({"name":"a\"b\u00e9\ud83d\ude00"})"), "a\"b\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(field(R"({"na\u006De":"escaped key"})"), "escaped key");
  EXPECT_EQ(field(R"({"name":""})"), "");
  EXPECT_EQ(field(R"({"":"empty key"})", ""), "empty key");
  // Nested objects and arrays are skipped, not searched.
  EXPECT_EQ(field(R"({"user":{"name":"inner"},"name":"outer"})"), "outer");
  EXPECT_EQ(field(R"({"name":"outer","user":{"name":"inner"}})"), "outer");
  EXPECT_EQ(field(R"({"user":{"name":"inner"}})"), "<none>");
  EXPECT_EQ(field(R"({"a":[{"name":"x"}],"b":[["name","y"]]})"), "<none>");
  EXPECT_EQ(field(R"({"a":"name","b":"x"})"), "<none>");  // a value, not a key
  EXPECT_EQ(field(R"({"a":"}{\"name\":\"fake\"","name":"real"})"), "real");
  EXPECT_EQ(field(R"({"a":-0.5e+10,"b":[1,[2,{"c":[]}],{}],"c":true,"d":false,"e":null,)"
                  R"("f":{"g":{"h":"i","name":"j"}},"g":0,"h":1E3,"i":-12.25e-1,"name":"x"})"),
            "x");
  std::string deep = R"({"a":)" + std::string(100000, '[') + std::string(100000, ']') + R"(,"name":"deep"})";
  EXPECT_EQ(field(deep), "deep");
  // Repeated keys: the last one decides.
  EXPECT_EQ(field(R"({"name":"first","name":"last"})"), "last");
  EXPECT_EQ(field(R"({"name":1,"name":"last"})"), "last");
  EXPECT_EQ(field(R"({"name":"first","name":1})"), "<none>");
  EXPECT_EQ(field(R"({"name":"first","name":{"name":"x"}})"), "<none>");
  // Absent or not a string.
  for (std::string_view json : {R"({})", R"({"Name":"x"})", R"({"name ":"x"})", R"({"name":1})",
                                R"({"name":null})", R"({"name":true})", R"({"name":{}})", R"({"name":["x"]})"})
    EXPECT_EQ(field(json), "<none>") << json;
  // Not one valid JSON object (each has a "name":"x" a naive scan would find).
  for (std::string_view json : std::initializer_list<std::string_view>{
           "", "null", R"(["name","x"])", R"("name":"x")", R"({"name":"x"} trailing)", R"({"name":"x"}{})",
           R"({"name":"x")", R"({"name":"x",})", R"({,"name":"x"})", R"({"name" "x"})", R"({name:"x"})",
           R"({"name":"x" "a":1})", R"({"a":01,"name":"x"})", R"({"a":1.,"name":"x"})", R"({"a":.5,"name":"x"})",
           R"({"a":1e,"name":"x"})", R"({"a":+1,"name":"x"})", R"({"a":-,"name":"x"})", R"({"a":tru,"name":"x"})",
           R"({"a":nulls,"name":"x"})", R"({"a":[1,],"name":"x"})", R"({"a":[,1],"name":"x"})",
           R"({"a":{"b":1,},"name":"x"})", R"({"a":{"b"},"name":"x"})", R"({"a":[},"name":"x"})",
           R"({"a":{],"name":"x"})", R"({"a":[[]],]],"name":"x"})", R"({"a":,"name":"x"})", R"({"a":'b',"name":"x"})",
           R"({"a":"\ud800","name":"x"})", R"({"a":"\udc00","name":"x"})", R"({"name":"\ude00"})",
           R"({"name":"\ud83d\u0041"})", R"({"a":"\q","name":"x"})", "{\"a\":\"\t\",\"name\":\"x\"}",
           "{\"a\":\"\xff\",\"name\":\"x\"}", "{\"name\":\"x\xc3\"}",
           std::string_view(R"({"name":"x"})" "\0", 13)}) {
    EXPECT_EQ(field(json), "<none>") << json;
  }
  EXPECT_EQ(field(std::string(R"({"a":)") + std::string(100000, '[') + R"(,"name":"x"})"), "<none>");
}

// Link state between nodes: a node's key and holds travel when set, and a
// state without them (from a node before them) still reads.
TEST(PeerMessages, LinkStateCarriesKeyAndHoldsWhenSet) {
  peer::link_state st;
  peer::node_state n;
  n.node = "c";
  n.version = 7;
  n.links.push_back({"b", 12});
  n.key = "c~0a";
  n.holds = {{"a~01", 40}, {"b~02", 3}};
  st.nodes.push_back(n);
  peer::node_state old;
  old.node = "d";
  old.version = 9;
  st.nodes.push_back(old);
  const std::string text = peer::encode(st);
  EXPECT_EQ(text.find("holds", text.find("\"d\"")), std::string::npos) << "empty fields are left out: " << text;
  auto m = peer::decode(text);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const auto& back = std::get<peer::link_state>(m.value());
  ASSERT_EQ(back.nodes.size(), 2u);
  EXPECT_EQ(back.nodes[0].key, "c~0a");
  EXPECT_EQ(back.nodes[0].holds, n.holds);
  ASSERT_EQ(back.nodes[0].links.size(), 1u);
  EXPECT_EQ(back.nodes[0].links[0].lag_ms, 12u);
  EXPECT_TRUE(back.nodes[1].key.empty());
  EXPECT_TRUE(back.nodes[1].holds.empty());
  EXPECT_FALSE(peer::decode(R"({"type":"link_state","nodes":[{"node":"c","version":1,"links":[],"holds":{"a~01":-1}}]})").ok());
  EXPECT_FALSE(peer::decode(R"({"type":"link_state","nodes":[{"node":"c","version":1,"links":[],"holds":[]}]})").ok());
}

}  // namespace
}  // namespace weft::test
