// weft-crosscheck: runs an edit script against native replicas and prints
// the ops, changes, texts and snapshots it produces, so that the WebAssembly
// build can be checked to produce byte-identical results
// (web_client/test/crosscheck.test.mjs). Script lines on stdin:
//   new K REPLICA        ins K POS "json text"     del K POS N
//   sync FROM TO         text K                     snap K
//   server HEX           decodes the frame whose bytes are HEX with the codec's
//                        server-message decoder (what weft::client runs, with
//                        its limits) and prints "msg JSON" or "error KIND", so
//                        that the browser's decoder (web_client/packages/provider/src/messages.js)
//                        can be held to it (web_client/test/codec-crosscheck.test.mjs)
#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <variant>

#include "protocol/json_writer.h"
#include "weft/document.h"
#include "weft/protocol.h"

namespace {

using namespace weft::protocol;

// The decoded message as one line of JSON, fields in a fixed order. Integers
// that may exceed 2^53 (protocol, max_message_bytes, session, ref) are
// decimal strings and a presence state is the compact JSON text as a string,
// so that JavaScript compares them exactly.
std::string normalized(const server_message& m) {
  std::string out = "{\"type\":";
  auto str = [&out](const char* key, std::string_view v) {
    out += ",\"";
    out += key;
    out += "\":";
    append_json_string(out, v);
  };
  auto num = [&str](const char* key, std::uint64_t v) { str(key, std::to_string(v)); };
  auto ops = [&out](const std::vector<weft::operation>& list) {
    out += ",\"ops\":[";
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i) out.push_back(',');
      append_op(out, list[i]);
    }
    out.push_back(']');
  };
  auto version = [&out](const weft::version_vector& v) {
    out += ",\"version\":";
    append_version(out, v);
  };
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, welcome_msg>) {
          out += "\"welcome\"";
          num("protocol", x.protocol);
          str("server", x.server);
          num("max_message_bytes", x.max_message_bytes);
          out += x.binary ? ",\"binary\":true" : ",\"binary\":false";
          out += x.snapshot ? ",\"snapshot\":true" : ",\"snapshot\":false";
        } else if constexpr (std::is_same_v<T, sync_msg>) {
          out += "\"sync\"";
          str("doc", x.doc);
          ops(x.ops);
          version(x.version);
          num("ref", x.ref);
        } else if constexpr (std::is_same_v<T, ops_msg>) {
          out += "\"ops\"";
          str("doc", x.doc);
          ops(x.ops);
        } else if constexpr (std::is_same_v<T, ack_msg>) {
          out += "\"ack\"";
          str("doc", x.doc);
          version(x.version);
        } else if constexpr (std::is_same_v<T, peer_presence_msg>) {
          out += "\"presence\"";
          str("doc", x.doc);
          num("session", x.session);
          str("state", x.state_json);
        } else if constexpr (std::is_same_v<T, closed_msg>) {
          out += "\"closed\"";
          str("doc", x.doc);
        } else if constexpr (std::is_same_v<T, replicated_msg>) {
          out += "\"replicated\"";
          str("doc", x.doc);
          version(x.version);
          num("regions", x.regions);
        } else if constexpr (std::is_same_v<T, pong_msg>) {
          out += "\"pong\"";
        } else {
          static_assert(std::is_same_v<T, error_msg>);
          out += "\"error\"";
          str("code", x.code);
          str("message", x.message);
          str("doc", x.doc);
        }
      },
      m);
  out.push_back('}');
  return out;
}

bool from_hex(std::string_view hex, std::string* out) {
  auto nibble = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  if (hex.size() % 2) return false;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

}  // namespace

int main() {
  std::map<int, weft::document> docs;
  simdjson::dom::parser parser;
  weft::protocol::decoder codec;
  std::string line;
  int n = 0;
  while (std::getline(std::cin, line)) {
    ++n;
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    auto fail = [&](const std::string& why) {
      std::fprintf(stderr, "line %d: %s\n", n, why.c_str());
      std::exit(2);
    };
    if (cmd == "new") {
      int k;
      std::uint64_t r;
      in >> k >> r;
      docs.emplace(k, weft::document(r));
    } else if (cmd == "ins" || cmd == "del") {
      int k;
      std::uint64_t pos;
      in >> k >> pos;
      weft::result<weft::operation> op = weft::status(weft::error_code::ok, "");
      if (cmd == "ins") {
        std::string rest;
        std::getline(in, rest);
        std::string_view text;
        if (parser.parse(rest).get_string().get(text)) fail("bad text");
        op = docs.at(k).insert(pos, text);
      } else {
        std::uint64_t count;
        in >> count;
        op = docs.at(k).erase(pos, count);
      }
      if (!op.ok()) fail(op.error().to_string());
      std::string out = "op [";
      weft::protocol::append_op(out, op.value());
      std::printf("%s]\n", out.c_str());
    } else if (cmd == "sync") {
      int from, to;
      in >> from >> to;
      std::vector<weft::text_change> changes;
      for (const auto& op : docs.at(from).ops_since(docs.at(to).version()))
        if (!docs.at(to).apply(op, &changes).ok()) fail("sync apply failed");
      std::printf("changes %zu\n", changes.size());
    } else if (cmd == "text") {
      int k;
      in >> k;
      std::string out = "text ";
      weft::protocol::append_json_string(out, docs.at(k).text());
      std::printf("%s\n", out.c_str());
    } else if (cmd == "snap") {
      int k;
      in >> k;
      std::string bytes = docs.at(k).encode_snapshot();
      std::printf("snap ");
      for (unsigned char c : bytes) std::printf("%02x", c);
      std::printf("\n");
    } else if (cmd == "server") {
      std::string hex, frame;
      in >> hex;
      if (!from_hex(hex, &frame)) fail("bad hex");
      // The limits weft::client decodes with.
      auto r = codec.server(frame, weft::protocol::server_message_limits);
      if (auto* e = std::get_if<weft::protocol::decode_error>(&r))
        std::printf("error %s\n", weft::protocol::error_kind_name(e->kind));
      else
        std::printf("msg %s\n", normalized(std::get<weft::protocol::server_message>(r)).c_str());
    } else if (!cmd.empty()) {
      fail("unknown command " + cmd);
    }
  }
  return 0;
}
