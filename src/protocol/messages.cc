#include "protocol/messages.h"

#include <fmt/format.h>

#include <initializer_list>

#include "protocol/json_writer.h"
#include "weft/unicode.h"

namespace weft::protocol {

const char* error_kind_name(error_kind k) noexcept {
  switch (k) {
    case error_kind::bad_json: return "bad_json";
    case error_kind::bad_message: return "bad_message";
    case error_kind::unknown_type: return "unknown_type";
    case error_kind::protocol_version: return "protocol_version";
    case error_kind::not_hello: return "not_hello";
    case error_kind::bad_doc_id: return "bad_doc_id";
    case error_kind::not_open: return "not_open";
    case error_kind::invalid_op: return "invalid_op";
    case error_kind::too_large: return "too_large";
    case error_kind::limit: return "limit";
    case error_kind::storage: return "storage";
    case error_kind::internal: return "internal";
    case error_kind::unauthorized: return "unauthorized";
    case error_kind::forbidden: return "forbidden";
    case error_kind::rate_limited: return "rate_limited";
  }
  return "internal";
}

bool valid_doc_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '~';
    if (!ok) return false;
  }
  return true;
}

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// A parse failure travelling up through the helpers below.
struct failure {
  error_kind kind;
  std::string message;
};

template <class T>
using parsed = std::variant<T, failure>;

failure bad(std::string m) { return failure{error_kind::bad_message, std::move(m)}; }

bool allowed(std::string_view key, std::initializer_list<std::string_view> keys) {
  for (auto k : keys)
    if (k == key) return true;
  return false;
}

// Rejects fields outside `keys` (unknown fields are errors, so typos surface).
std::optional<failure> only_fields(object o, std::initializer_list<std::string_view> keys, std::string_view what) {
  for (auto field : o)
    if (!allowed(field.key, keys)) return bad(fmt::format("unknown field \"{}\" in {}", field.key, what));
  return std::nullopt;
}

parsed<std::uint64_t> get_uint(element e, std::string_view what) {
  std::uint64_t v;
  if (e.get_uint64().get(v)) return bad(fmt::format("{} must be a non-negative integer", what));
  return v;
}

parsed<op_id> get_id(element e, std::string_view what) {
  array a;
  if (e.get_array().get(a) || a.size() != 2) return bad(fmt::format("{} must be [replica, counter]", what));
  std::uint64_t r, c;
  if (a.at(0).get_uint64().get(r) || a.at(1).get_uint64().get(c))
    return bad(fmt::format("{} must be [replica, counter] of non-negative integers", what));
  if (r > max_replica_id) return bad(fmt::format("{}: replica id {} is not below 2^53", what, r));
  if (c == 0 || c > max_counter) return bad(fmt::format("{}: counter {} is out of range", what, c));
  return op_id{r, c};
}

parsed<operation> parse_op(element e) {
  object o;
  if (e.get_object().get(o)) return bad("an operation must be an object");
  std::string_view kind;
  if (o["kind"].get_string().get(kind)) return bad("operation without a \"kind\" string");
  operation op;
  element id_e;
  if (o["id"].get(id_e)) return bad("operation without \"id\"");
  auto id = get_id(id_e, "operation id");
  if (auto* f = std::get_if<failure>(&id)) return *f;
  op.id = std::get<op_id>(id);
  if (kind == "insert" || kind == "tombstone") {
    op.kind = kind == "insert" ? op_kind::insert : op_kind::tombstone;
    if (auto f = only_fields(o, {"kind", "id", "left", "right", kind == "insert" ? "text" : "count"}, kind)) return *f;
    for (const char* side : {"left", "right"}) {
      element s;
      if (o[side].get(s) || s.is_null()) continue;
      auto origin = get_id(s, side);
      if (auto* f = std::get_if<failure>(&origin)) return *f;
      (std::string_view(side) == "left" ? op.origin_left : op.origin_right) = std::get<op_id>(origin);
    }
    if (op.kind == op_kind::insert) {
      std::string_view text;
      if (o["text"].get_string().get(text)) return bad("insert without a \"text\" string");
      if (text.empty()) return bad("insert with empty text");
      op.text = std::string(text);
    } else {
      element n;
      if (o["count"].get(n)) return bad("tombstone without \"count\"");
      auto c = get_uint(n, "count");
      if (auto* f = std::get_if<failure>(&c)) return *f;
      op.count = std::get<std::uint64_t>(c);
      if (op.count == 0 || op.count > max_counter) return bad("tombstone count out of range");
    }
    return op;
  }
  if (kind == "erase") {
    op.kind = op_kind::erase;
    if (auto f = only_fields(o, {"kind", "id", "targets"}, "erase")) return *f;
    array targets;
    if (o["targets"].get_array().get(targets) || targets.size() == 0)
      return bad("erase needs a non-empty \"targets\" array");
    for (element t : targets) {
      array a;
      std::uint64_t r, c, n;
      if (t.get_array().get(a) || a.size() != 3 || a.at(0).get_uint64().get(r) || a.at(1).get_uint64().get(c) ||
          a.at(2).get_uint64().get(n))
        return bad("erase targets must be [replica, counter, length] of non-negative integers");
      if (r > max_replica_id || c == 0 || c > max_counter || n == 0 || n > max_counter)
        return bad("erase target out of range");
      op.targets.push_back(id_span{r, c, n});
    }
    return op;
  }
  return bad(fmt::format("unknown operation kind \"{}\"", kind));
}

parsed<std::string> get_doc(object o) {
  std::string_view doc;
  if (o["doc"].get_string().get(doc)) return bad("missing \"doc\" string");
  if (!valid_doc_id(doc))
    return failure{error_kind::bad_doc_id, "document ids are 1-128 characters of A-Z a-z 0-9 . _ ~ -"};
  return std::string(doc);
}

}  // namespace

std::variant<std::vector<operation>, parse_error> parse_ops_array(element e) {
  array a;
  if (e.get_array().get(a)) return parse_error{error_kind::bad_message, "\"ops\" must be an array", {}};
  std::vector<operation> ops;
  ops.reserve(a.size());
  for (element x : a) {
    auto op = parse_op(x);
    if (auto* f = std::get_if<failure>(&op)) return parse_error{f->kind, f->message, {}};
    ops.push_back(std::move(std::get<operation>(op)));
  }
  return ops;
}

std::variant<client_message, parse_error> parse_client_message(simdjson::dom::parser& parser, std::string_view frame,
                                                               const parse_limits& limits) {
  simdjson::padded_string padded(frame);
  element root;
  if (auto err = parser.parse(padded).get(root))
    return parse_error{error_kind::bad_json, fmt::format("not valid JSON: {}", simdjson::error_message(err)), {}};
  object o;
  if (root.get_object().get(o)) return parse_error{error_kind::bad_message, "a message must be a JSON object", {}};
  std::string_view type;
  if (o["type"].get_string().get(type)) return parse_error{error_kind::bad_message, "missing \"type\" string", {}};

  auto fail = [](failure f, std::string doc = {}) { return parse_error{f.kind, std::move(f.message), std::move(doc)}; };
  if (type == "hello") {
    if (auto f = only_fields(o, {"type", "protocol", "client", "token"}, "hello")) return fail(*f);
    hello_msg m;
    element p;
    if (o["protocol"].get(p)) return parse_error{error_kind::bad_message, "hello without \"protocol\"", {}};
    auto v = get_uint(p, "protocol");
    if (auto* f = std::get_if<failure>(&v)) return fail(*f);
    m.protocol = std::get<std::uint64_t>(v);
    std::string_view client;
    if (!o["client"].get_string().get(client)) m.client = std::string(client.substr(0, 200));
    element tok;
    if (!o["token"].get(tok)) {
      std::string_view t;
      if (tok.get_string().get(t)) return parse_error{error_kind::bad_message, "hello \"token\" must be a string", {}};
      m.token = std::string(t);
    }
    return m;
  }
  if (type == "ping") {
    if (auto f = only_fields(o, {"type", "id"}, "ping")) return fail(*f);
    return ping_msg{};
  }
  auto doc = get_doc(o);
  if (auto* f = std::get_if<failure>(&doc)) return fail(*f);
  std::string d = std::move(std::get<std::string>(doc));
  if (type == "open") {
    if (auto f = only_fields(o, {"type", "doc", "version"}, "open")) return fail(*f, d);
    open_msg m;
    m.doc = d;
    element ve;
    if (!o["version"].get(ve) && !ve.is_null()) {
      array a;
      if (ve.get_array().get(a)) return parse_error{error_kind::bad_message, "\"version\" must be an array", d};
      if (a.size() > limits.max_version_entries) return parse_error{error_kind::too_large, "version vector too long", d};
      for (element entry : a) {
        auto id = get_id(entry, "version entry");
        if (auto* f = std::get_if<failure>(&id)) return fail(*f, d);
        op_id e = std::get<op_id>(id);
        if (m.version.get(e.replica) != 0) return parse_error{error_kind::bad_message, "replica listed twice in version", d};
        m.version.set(e.replica, e.counter);
      }
    }
    return m;
  }
  if (type == "ops") {
    if (auto f = only_fields(o, {"type", "doc", "ops"}, "ops")) return fail(*f, d);
    element oe;
    if (o["ops"].get(oe)) return parse_error{error_kind::bad_message, "ops message without \"ops\"", d};
    array a;
    if (!oe.get_array().get(a) && a.size() > limits.max_ops_per_message)
      return parse_error{error_kind::too_large,
                         fmt::format("more than {} ops in one message", limits.max_ops_per_message), d};
    auto ops = parse_ops_array(oe);
    if (auto* e = std::get_if<parse_error>(&ops)) {
      e->doc = d;
      return *e;
    }
    return ops_msg{d, std::move(std::get<std::vector<operation>>(ops))};
  }
  if (type == "presence") {
    if (auto f = only_fields(o, {"type", "doc", "state"}, "presence")) return fail(*f, d);
    element s;
    if (o["state"].get(s)) return parse_error{error_kind::bad_message, "presence without \"state\"", d};
    if (!s.is_null() && s.type() != simdjson::dom::element_type::OBJECT)
      return parse_error{error_kind::bad_message, "presence \"state\" must be an object or null", d};
    std::string state = simdjson::minify(s);
    if (state.size() > limits.max_presence_bytes)
      return parse_error{error_kind::too_large, fmt::format("presence state over {} bytes", limits.max_presence_bytes), d};
    return presence_msg{d, std::move(state)};
  }
  if (type == "close") {
    if (auto f = only_fields(o, {"type", "doc"}, "close")) return fail(*f, d);
    return close_msg{d};
  }
  return parse_error{error_kind::unknown_type, fmt::format("unknown message type \"{}\"", type), d};
}

std::string encode_welcome(std::string_view server_name, std::uint64_t max_message_bytes) {
  std::string out = fmt::format("{{\"type\":\"welcome\",\"protocol\":{},\"server\":", protocol_version);
  append_json_string(out, server_name);
  fmt::format_to(std::back_inserter(out), ",\"max_message_bytes\":{}}}", max_message_bytes);
  return out;
}

namespace {
void append_ops(std::string& out, const std::vector<operation>& ops) {
  out += "\"ops\":[";
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (i) out.push_back(',');
    append_op(out, ops[i]);
  }
  out.push_back(']');
}
void append_doc_head(std::string& out, std::string_view type, std::string_view doc) {
  out += "{\"type\":\"";
  out += type;
  out += "\",\"doc\":";
  append_json_string(out, doc);
  out.push_back(',');
}
}  // namespace

namespace {
// Splits an insert whose text is over `max_bytes` into consecutive inserts
// (character k > 0 of an insert has the previous character as left origin).
void split_insert(const operation& op, std::size_t max_bytes, std::vector<operation>* out) {
  std::size_t start = 0;
  std::uint64_t counter = op.id.counter;
  std::optional<op_id> left = op.origin_left;
  while (start < op.text.size()) {
    std::size_t end = std::min(op.text.size(), start + max_bytes);
    while (end < op.text.size() && (static_cast<unsigned char>(op.text[end]) & 0xC0) == 0x80) --end;
    operation piece;
    piece.kind = op_kind::insert;
    piece.id = op_id{op.id.replica, counter};
    piece.origin_left = left;
    piece.origin_right = op.origin_right;
    piece.text = op.text.substr(start, end - start);
    std::uint64_t n = count_code_points(piece.text);
    left = op_id{op.id.replica, counter + n - 1};
    counter += n;
    out->push_back(std::move(piece));
    start = end;
  }
}
}  // namespace

std::vector<std::string> encode_sync_chunked(std::string_view doc, const std::vector<operation>& ops,
                                             const version_vector& server_version, std::size_t budget) {
  std::vector<std::string> messages;
  std::string body, one;
  auto flush_ops = [&] {
    std::string m;
    append_doc_head(m, "ops", doc);
    m += "\"ops\":[";
    m += body;
    m += "]}";
    messages.push_back(std::move(m));
    body.clear();
  };
  auto add = [&](const operation& op) {
    one.clear();
    append_op(one, op);
    if (!body.empty() && body.size() + one.size() + 1 > budget) flush_ops();
    if (!body.empty()) body.push_back(',');
    body += one;
  };
  std::vector<operation> pieces;
  for (const operation& op : ops) {
    if (op.kind == op_kind::insert && op.text.size() > budget / 8) {
      pieces.clear();
      split_insert(op, std::max<std::size_t>(budget / 8, 4), &pieces);
      for (const auto& p : pieces) add(p);
    } else {
      add(op);
    }
  }
  std::string last;
  append_doc_head(last, "sync", doc);
  last += "\"ops\":[";
  last += body;
  last += "],\"version\":";
  append_version(last, server_version);
  last.push_back('}');
  messages.push_back(std::move(last));
  return messages;
}

std::string encode_ops_message(std::string_view doc, const std::vector<operation>& ops) {
  std::string out;
  append_doc_head(out, "ops", doc);
  append_ops(out, ops);
  out.push_back('}');
  return out;
}

std::string encode_ack(std::string_view doc, const version_vector& durable) {
  std::string out;
  append_doc_head(out, "ack", doc);
  out += "\"version\":";
  append_version(out, durable);
  out.push_back('}');
  return out;
}

std::string encode_presence(std::string_view doc, std::uint64_t session, std::string_view state_json) {
  std::string out;
  append_doc_head(out, "presence", doc);
  fmt::format_to(std::back_inserter(out), "\"session\":{},\"state\":{}}}", session, state_json);
  return out;
}

std::string encode_closed(std::string_view doc) {
  std::string out;
  append_doc_head(out, "closed", doc);
  out.back() = '}';
  return out;
}

std::string encode_pong() { return "{\"type\":\"pong\"}"; }

std::string encode_error(error_kind kind, std::string_view message, std::string_view doc) {
  std::string out = fmt::format("{{\"type\":\"error\",\"code\":\"{}\",\"message\":", error_kind_name(kind));
  append_json_string(out, message);
  if (!doc.empty()) {
    out += ",\"doc\":";
    append_json_string(out, doc);
  }
  out.push_back('}');
  return out;
}

}  // namespace weft::protocol
