// weft-crosscheck: runs an edit script against native replicas and prints
// the ops, changes, texts and snapshots it produces, so that the WebAssembly
// build can be checked to produce byte-identical results
// (web_client/test/crosscheck.test.mjs). Script lines on stdin:
//   new K REPLICA        ins K POS "json text"     del K POS N
//   sync FROM TO         text K                     snap K
#include <simdjson.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "protocol/json_writer.h"
#include "weft/document.h"

int main() {
  std::map<int, weft::document> docs;
  simdjson::dom::parser parser;
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
    } else if (!cmd.empty()) {
      fail("unknown command " + cmd);
    }
  }
  return 0;
}
