#include "protocol/json_writer.h"

#include <charconv>

namespace weft::protocol {

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_json_string(std::string& out, std::string_view s) {
  static const char hex[] = "0123456789abcdef";
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
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

void append_id(std::string& out, op_id id) {
  out.push_back('[');
  append_uint(out, id.replica);
  out.push_back(',');
  append_uint(out, id.counter);
  out.push_back(']');
}

void append_op(std::string& out, const operation& op) {
  switch (op.kind) {
    case op_kind::insert: out += "{\"kind\":\"insert\",\"id\":"; break;
    case op_kind::tombstone: out += "{\"kind\":\"tombstone\",\"id\":"; break;
    case op_kind::erase: out += "{\"kind\":\"erase\",\"id\":"; break;
  }
  append_id(out, op.id);
  if (op.kind == op_kind::erase) {
    out += ",\"targets\":[";
    for (std::size_t i = 0; i < op.targets.size(); ++i) {
      if (i) out.push_back(',');
      out.push_back('[');
      append_uint(out, op.targets[i].replica);
      out.push_back(',');
      append_uint(out, op.targets[i].counter);
      out.push_back(',');
      append_uint(out, op.targets[i].length);
      out.push_back(']');
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
    out += ",\"count\":";
    append_uint(out, op.count);
  }
  out.push_back('}');
}

void append_version(std::string& out, const version_vector& vv) {
  out.push_back('[');
  bool first = true;
  for (const auto& [r, c] : vv.entries()) {
    if (!first) out.push_back(',');
    first = false;
    append_id(out, op_id{r, c});
  }
  out.push_back(']');
}

}  // namespace weft::protocol
