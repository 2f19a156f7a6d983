#include "protocol/json_writer.h"

#include <fmt/format.h>

namespace weft::protocol {

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

void append_id(std::string& out, op_id id) { fmt::format_to(std::back_inserter(out), "[{},{}]", id.replica, id.counter); }

void append_op(std::string& out, const operation& op) {
  switch (op.kind) {
    case op_kind::insert: out += "{\"kind\":\"insert\",\"id\":"; break;
    case op_kind::tombstone: out += "{\"kind\":\"tombstone\",\"id\":"; break;
    case op_kind::erase: out += "{\"kind\":\"erase\",\"id\":"; break;
  }
  append_id(out, op.id);
  if (op.kind == op_kind::erase) {
    out += ",\"targets\":[";
    bool first = true;
    for (const auto& t : op.targets) {
      if (!first) out.push_back(',');
      first = false;
      fmt::format_to(std::back_inserter(out), "[{},{},{}]", t.replica, t.counter, t.length);
    }
    out += "]}";
    return;
  }
  if (op.origin_left) {
    out += ",\"left\":";
    append_id(out, *op.origin_left);
  }
  if (op.origin_right) {
    out += ",\"right\":";
    append_id(out, *op.origin_right);
  }
  if (op.kind == op_kind::insert) {
    out += ",\"text\":";
    append_json_string(out, op.text);
  } else {
    fmt::format_to(std::back_inserter(out), ",\"count\":{}", op.count);
  }
  out.push_back('}');
}

void append_version(std::string& out, const version_vector& vv) {
  out.push_back('[');
  bool first = true;
  for (const auto& [r, c] : vv.entries()) {
    if (!first) out.push_back(',');
    first = false;
    fmt::format_to(std::back_inserter(out), "[{},{}]", r, c);
  }
  out.push_back(']');
}

}  // namespace weft::protocol
