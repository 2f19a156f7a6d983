// Encoding of protocol frames (include/weft/protocol.h): compact JSON text,
// built by appending into one string (no JSON tree, no formatting library in
// the hot path: a broadcast keystroke is encoded once per rebroadcast).
#include <algorithm>
#include <optional>

#include "protocol/json_writer.h"
#include "weft/protocol.h"
#include "weft/unicode.h"

namespace weft::protocol {

namespace {
constexpr const char* kind_names[] = {"bad_json",  "bad_message", "unknown_type", "protocol_version", "not_hello",
                                      "bad_doc_id", "not_open",   "invalid_op",   "too_large",        "limit",
                                      "storage",   "internal",    "unauthorized", "forbidden",        "rate_limited"};
constexpr std::size_t kind_count = sizeof(kind_names) / sizeof(kind_names[0]);
static_assert(kind_count == static_cast<std::size_t>(error_kind::rate_limited) + 1);
}  // namespace

const char* error_kind_name(error_kind k) noexcept {
  auto i = static_cast<std::size_t>(k);
  return i < kind_count ? kind_names[i] : "internal";
}

bool error_kind_from_name(std::string_view name, error_kind* out) noexcept {
  for (std::size_t i = 0; i < kind_count; ++i)
    if (name == kind_names[i]) {
      *out = static_cast<error_kind>(i);
      return true;
    }
  return false;
}

namespace {
void append_ops(std::string& out, std::span<const operation> ops) {
  out += "\"ops\":[";
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (i) out.push_back(',');
    append_op(out, ops[i]);
  }
  out.push_back(']');
}
// {"type":"TYPE","doc":"DOC",   (the caller appends the rest)
void append_doc_head(std::string& out, std::string_view type, std::string_view doc) {
  out += "{\"type\":\"";
  out += type;
  out += "\",\"doc\":";
  append_json_string(out, doc);
  out.push_back(',');
}

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

// Splits an erase with more than `max_targets` targets into consecutive
// erases: the erase's ids map to its targets in order, so a piece starting at
// target k has the id after those of targets 0..k-1.
void split_erase(const operation& op, std::size_t max_targets, std::vector<operation>* out) {
  std::uint64_t counter = op.id.counter;
  for (std::size_t k = 0; k < op.targets.size(); k += max_targets) {
    operation piece;
    piece.kind = op_kind::erase;
    piece.id = op_id{op.id.replica, counter};
    const std::size_t end = std::min(op.targets.size(), k + max_targets);
    piece.targets.assign(op.targets.begin() + static_cast<std::ptrdiff_t>(k),
                         op.targets.begin() + static_cast<std::ptrdiff_t>(end));
    for (const auto& t : piece.targets) counter += t.length;
    out->push_back(std::move(piece));
  }
}

// Calls f(op) for each op of `ops`, a long insert or an erase with many
// targets as consecutive pieces that each encode to well under `budget`.
template <class F>
void for_each_piece(std::span<const operation> ops, std::size_t budget, F&& f) {
  std::vector<operation> pieces;
  for (const operation& op : ops) {
    pieces.clear();
    if (op.kind == op_kind::insert && op.text.size() > budget / 8) {
      split_insert(op, std::max<std::size_t>(budget / 8, 4), &pieces);
    } else if (op.kind == op_kind::erase && op.targets.size() > budget / 64) {
      split_erase(op, std::max<std::size_t>(budget / 64, 1), &pieces);  // a target is at most ~50 bytes
    } else {
      f(op);
      continue;
    }
    for (const auto& p : pieces) f(p);
  }
}

// An upper bound of the ops' JSON size: an op's fixed fields take at most
// ~150 bytes (a tombstone with both origins, every number at its widest),
// its text at most 6 bytes a byte (escaped), each erase target at most 41.
std::size_t json_size_bound(std::span<const operation> ops) {
  std::size_t n = 0;
  for (const operation& op : ops) n += 192 + 6 * op.text.size() + 64 * op.targets.size();
  return n;
}

// Calls f(piece, its JSON, starts_group) for each piece of `ops` in order:
// groups of pieces stay under about `budget` bytes of JSON and `max_ops` ops.
template <class F>
void group_pieces(std::span<const operation> ops, std::size_t budget, std::size_t max_ops, F&& f) {
  budget = std::max<std::size_t>(budget, 1024);
  max_ops = std::max<std::size_t>(max_ops, 1);
  std::size_t bytes = 0, count = 0;
  std::string one;
  for_each_piece(ops, budget, [&](const operation& op) {
    one.clear();
    append_op(one, op);
    const bool starts_group = count == 0 || bytes + one.size() + 1 > budget || count >= max_ops;
    if (starts_group) bytes = count = 0;
    bytes += one.size() + 1;
    ++count;
    f(op, std::string_view(one), starts_group);
  });
}

// The groups as JSON array bodies ("op,op,...", no brackets), each op
// encoded once; at least one (empty) body.
std::vector<std::string> json_bodies(std::span<const operation> ops, std::size_t budget, std::size_t max_ops) {
  std::vector<std::string> bodies;
  group_pieces(ops, budget, max_ops, [&](const operation&, std::string_view json, bool starts_group) {
    if (starts_group)
      bodies.emplace_back();
    else
      bodies.back().push_back(',');
    bodies.back() += json;
  });
  if (bodies.empty()) bodies.emplace_back();
  return bodies;
}

// The groups as op lists (for binary frames).
std::vector<std::vector<operation>> op_groups(std::span<const operation> ops, std::size_t budget,
                                              std::size_t max_ops) {
  std::vector<std::vector<operation>> groups;
  group_pieces(ops, budget, max_ops, [&](const operation& op, std::string_view, bool starts_group) {
    if (starts_group) groups.emplace_back();
    groups.back().push_back(op);
  });
  return groups;
}

// {"type":"ops","doc":DOC,"ops":[BODY]}
std::string ops_frame(std::string_view doc, std::string_view body) {
  std::string out;
  out.reserve(body.size() + doc.size() + 32);
  append_doc_head(out, "ops", doc);
  out += "\"ops\":[";
  out += body;
  out += "]}";
  return out;
}

// {"type":TYPE,"doc":DOC}
std::string doc_only_frame(std::string_view type, std::string_view doc) {
  std::string out;
  append_doc_head(out, type, doc);
  out.back() = '}';
  return out;
}

// {"type":"error","code":CODE,"message":MESSAGE[,"doc":DOC]}
std::string error_frame(std::string_view code, std::string_view message, std::string_view doc) {
  std::string out = "{\"type\":\"error\",\"code\":";
  append_json_string(out, code);
  out += ",\"message\":";
  append_json_string(out, message);
  if (!doc.empty()) {
    out += ",\"doc\":";
    append_json_string(out, doc);
  }
  out.push_back('}');
  return out;
}
}  // namespace

// ---- client -> server ---------------------------------------------------------

std::string encode_hello(const hello_msg& m) {
  std::string out = "{\"type\":\"hello\",\"protocol\":";
  append_uint(out, m.protocol);
  if (!m.client.empty()) {
    out += ",\"client\":";
    append_json_string(out, m.client);
  }
  if (!m.token.empty()) {
    out += ",\"token\":";
    append_json_string(out, m.token);
  }
  if (m.binary) out += ",\"binary\":true";
  out.push_back('}');
  return out;
}

std::string encode_open(std::string_view doc, const version_vector& version, std::uint64_t regions, bool snapshot) {
  std::string out;
  append_doc_head(out, "open", doc);
  out += "\"version\":";
  append_version(out, version);
  if (regions > 0) {
    out += ",\"regions\":";
    append_uint(out, regions);
  }
  if (snapshot) out += ",\"snapshot\":true";
  out.push_back('}');
  return out;
}

std::string encode_ops(std::string_view doc, std::span<const operation> ops, std::uint64_t regions) {
  std::string out;
  out.reserve(64 + 64 * ops.size());
  append_doc_head(out, "ops", doc);
  append_ops(out, ops);
  if (regions > 0) {
    out += ",\"regions\":";
    append_uint(out, regions);
  }
  out.push_back('}');
  return out;
}

std::string encode_presence(std::string_view doc, std::string_view state_json) {
  std::string out;
  append_doc_head(out, "presence", doc);
  out += "\"state\":";
  out += state_json.empty() ? std::string_view("null") : state_json;
  out.push_back('}');
  return out;
}

std::string encode_close(std::string_view doc) { return doc_only_frame("close", doc); }

std::string encode_ping() { return "{\"type\":\"ping\"}"; }

// ---- server -> client ---------------------------------------------------------

std::string encode_welcome(std::string_view server_name, std::uint64_t max_message_bytes, bool binary,
                           bool snapshot) {
  return encode(
      server_message(welcome_msg{protocol_version, std::string(server_name), max_message_bytes, binary, snapshot}));
}

std::string encode_sync(std::string_view doc, std::span<const operation> ops, const version_vector& server_version,
                        std::uint64_t ref) {
  std::string out;
  append_doc_head(out, "sync", doc);
  append_ops(out, ops);
  out += ",\"version\":";
  append_version(out, server_version);
  if (ref) {
    out += ",\"ref\":";
    append_uint(out, ref);
  }
  out.push_back('}');
  return out;
}

std::vector<std::string> encode_sync_chunked(std::string_view doc, std::span<const operation> ops,
                                             const version_vector& server_version, std::size_t budget,
                                             std::uint64_t ref) {
  auto bodies = json_bodies(ops, budget, decode_limits{}.max_ops_per_message);
  std::vector<std::string> messages;
  messages.reserve(bodies.size());
  for (std::size_t i = 0; i + 1 < bodies.size(); ++i) messages.push_back(ops_frame(doc, bodies[i]));
  std::string last;
  append_doc_head(last, "sync", doc);
  last += "\"ops\":[";
  last += bodies.back();
  last += "],\"version\":";
  append_version(last, server_version);
  if (ref) {
    last += ",\"ref\":";
    append_uint(last, ref);
  }
  last.push_back('}');
  messages.push_back(std::move(last));
  return messages;
}

std::vector<std::string> encode_ops_chunked(std::string_view doc, std::span<const operation> ops, std::size_t budget,
                                            std::size_t max_ops) {
  std::vector<std::string> messages;
  if (ops.empty()) return messages;
  // The common case (a keystroke, a small batch) needs no cutting.
  if (ops.size() <= max_ops && json_size_bound(ops) <= budget) {
    messages.push_back(encode_ops(doc, ops));
    return messages;
  }
  for (auto& body : json_bodies(ops, budget, max_ops)) messages.push_back(ops_frame(doc, body));
  return messages;
}

std::vector<std::string> encode_binary_ops_chunked(std::uint64_t ref, std::span<const operation> ops,
                                                   std::size_t budget, std::size_t max_ops) {
  std::vector<std::string> messages;
  if (ops.empty()) return messages;
  if (ops.size() <= max_ops && json_size_bound(ops) <= budget) {
    messages.push_back(encode_binary_ops(ref, ops));
    return messages;
  }
  for (auto& g : op_groups(ops, budget, max_ops)) messages.push_back(encode_binary_ops(ref, g));
  return messages;
}

std::string encode_ack(std::string_view doc, const version_vector& durable) {
  std::string out;
  append_doc_head(out, "ack", doc);
  out += "\"version\":";
  append_version(out, durable);
  out.push_back('}');
  return out;
}

std::string encode_replicated(std::string_view doc, const version_vector& durable, std::uint64_t regions) {
  std::string out;
  append_doc_head(out, "replicated", doc);
  out += "\"version\":";
  append_version(out, durable);
  out += ",\"regions\":";
  append_uint(out, regions);
  out.push_back('}');
  return out;
}

std::string encode_peer_presence(std::string_view doc, std::uint64_t session, std::string_view state_json) {
  std::string out;
  append_doc_head(out, "presence", doc);
  out += "\"session\":";
  append_uint(out, session);
  out += ",\"state\":";
  out += state_json.empty() ? std::string_view("null") : state_json;
  out.push_back('}');
  return out;
}

std::string encode_closed(std::string_view doc) { return doc_only_frame("closed", doc); }

std::string encode_pong() { return "{\"type\":\"pong\"}"; }

std::string encode_error(error_kind kind, std::string_view message, std::string_view doc) {
  return error_frame(error_kind_name(kind), message, doc);
}

// ---- any message --------------------------------------------------------------

std::string encode(const client_message& m) {
  struct visitor {
    std::string operator()(const hello_msg& x) const { return encode_hello(x); }
    std::string operator()(const open_msg& x) const { return encode_open(x.doc, x.version, x.regions, x.snapshot); }
    std::string operator()(const ops_msg& x) const { return encode_ops(x.doc, x.ops, x.regions); }
    std::string operator()(const presence_msg& x) const { return encode_presence(x.doc, x.state_json); }
    std::string operator()(const close_msg& x) const { return encode_close(x.doc); }
    std::string operator()(const ping_msg&) const { return encode_ping(); }
  };
  return std::visit(visitor{}, m);
}

std::string encode(const server_message& m) {
  struct visitor {
    std::string operator()(const welcome_msg& x) const {
      std::string out = "{\"type\":\"welcome\",\"protocol\":";
      append_uint(out, x.protocol);
      out += ",\"server\":";
      append_json_string(out, x.server);
      out += ",\"max_message_bytes\":";
      append_uint(out, x.max_message_bytes);
      if (x.binary) out += ",\"binary\":true";
      if (x.snapshot) out += ",\"snapshot\":true";
      out.push_back('}');
      return out;
    }
    std::string operator()(const sync_msg& x) const { return encode_sync(x.doc, x.ops, x.version, x.ref); }
    std::string operator()(const ops_msg& x) const { return encode_ops(x.doc, x.ops); }
    std::string operator()(const ack_msg& x) const { return encode_ack(x.doc, x.version); }
    std::string operator()(const peer_presence_msg& x) const {
      return encode_peer_presence(x.doc, x.session, x.state_json);
    }
    std::string operator()(const closed_msg& x) const { return encode_closed(x.doc); }
    std::string operator()(const replicated_msg& x) const { return encode_replicated(x.doc, x.version, x.regions); }
    std::string operator()(const pong_msg&) const { return encode_pong(); }
    std::string operator()(const error_msg& x) const {
      error_kind k;  // a code this build does not know is kept as it came
      if (!x.code.empty() && !error_kind_from_name(x.code, &k)) return error_frame(x.code, x.message, x.doc);
      return encode_error(x.kind, x.message, x.doc);
    }
  };
  return std::visit(visitor{}, m);
}

}  // namespace weft::protocol
