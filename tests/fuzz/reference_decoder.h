// An independent decoder of client messages, written against docs/protocol.md
// on simdjson's DOM API (a full JSON tree): the oracle the differential fuzz
// target (fuzz_protocol.cc) holds the protocol codec to. Test code only: it
// is slow and allocates per field, which is why the codec is not built so.
#pragma once

#include <simdjson.h>

#include <initializer_list>
#include <optional>
#include <set>
#include <string>

#include "weft/protocol.h"

namespace weft::fuzz {

/// nullopt: the frame is refused (any reason).
inline std::optional<protocol::client_message> reference_decode(std::string_view frame) {
  using namespace simdjson::dom;
  using protocol::client_message;
  static parser p;
  element root;
  if (p.parse(frame.data(), frame.size()).get(root)) return std::nullopt;
  object o;
  if (root.get_object().get(o)) return std::nullopt;
  // Field names: each at most once, all from `allowed`.
  auto fields_ok = [](object obj, std::initializer_list<std::string_view> allowed) {
    std::set<std::string_view> seen;
    for (auto f : obj) {
      bool known = false;
      for (auto k : allowed) known |= k == f.key;
      if (!known || !seen.insert(f.key).second) return false;
    }
    return true;
  };
  auto id_of = [](element e, op_id* out) {
    array a;
    if (e.get_array().get(a) || a.size() != 2) return false;
    if (a.at(0).get_uint64().get(out->replica) || a.at(1).get_uint64().get(out->counter)) return false;
    return out->replica <= max_replica_id && out->counter >= 1 && out->counter <= max_counter;
  };
  auto version_of = [&](element e, version_vector* out) {
    if (e.is_null()) return true;
    array a;
    if (e.get_array().get(a)) return false;
    for (element x : a) {
      op_id id;
      if (!id_of(x, &id) || out->get(id.replica)) return false;
      out->set(id.replica, id.counter);
    }
    return out->entries().size() <= 100000;
  };
  // An optional "regions" (open, ops): an unsigned integer up to max_regions.
  auto regions_of = [](object obj, std::uint64_t* out) {
    element v;
    if (obj["regions"].get(v)) return true;  // absent
    std::int64_t neg = 0;
    if (v.get_uint64().get(*out)) {
      if (v.get_int64().get(neg) || neg != 0) return false;  // "-0" is 0
      *out = 0;
    }
    return *out <= protocol::max_regions;
  };
  auto op_of = [&](element e, operation* op) {
    object x;
    std::string_view kind;
    if (e.get_object().get(x) || x["kind"].get_string().get(kind)) return false;
    element id;
    if (x["id"].get(id) || !id_of(id, &op->id)) return false;
    if (kind == "insert" || kind == "tombstone") {
      const bool ins = kind == "insert";
      if (!fields_ok(x, {"kind", "id", "left", "right", ins ? "text" : "count"})) return false;
      for (const char* side : {"left", "right"}) {
        element s;
        if (x[side].get(s) || s.is_null()) continue;
        op_id o;
        if (!id_of(s, &o)) return false;
        (std::string_view(side) == "left" ? op->origin_left : op->origin_right) = o;
      }
      op->kind = ins ? op_kind::insert : op_kind::tombstone;
      if (ins) {
        std::string_view t;
        if (x["text"].get_string().get(t) || t.empty()) return false;
        op->text = std::string(t);
        return true;
      }
      return !x["count"].get_uint64().get(op->count) && op->count >= 1 && op->count <= max_counter;
    }
    if (kind != "erase" || !fields_ok(x, {"kind", "id", "targets"})) return false;
    op->kind = op_kind::erase;
    array targets;
    if (x["targets"].get_array().get(targets) || targets.size() == 0) return false;
    for (element t : targets) {
      array a;
      id_span s;
      if (t.get_array().get(a) || a.size() != 3 || a.at(0).get_uint64().get(s.replica) ||
          a.at(1).get_uint64().get(s.counter) || a.at(2).get_uint64().get(s.length))
        return false;
      if (s.replica > max_replica_id || s.counter == 0 || s.counter > max_counter || s.length == 0 ||
          s.length > max_counter)
        return false;
      op->targets.push_back(s);
    }
    return true;
  };
  std::string_view type;
  if (o["type"].get_string().get(type)) return std::nullopt;
  if (type == "hello") {
    if (!fields_ok(o, {"type", "protocol", "client", "token", "binary"})) return std::nullopt;
    protocol::hello_msg m;
    if (o["protocol"].get_uint64().get(m.protocol)) return std::nullopt;
    element c;
    std::string_view s;
    if (!o["binary"].get(c) && c.get_bool().get(m.binary)) return std::nullopt;
    if (!o["client"].get(c)) {
      if (c.get_string().get(s)) return std::nullopt;
      std::size_t n = std::min<std::size_t>(s.size(), 200);
      while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
      m.client = std::string(s.substr(0, n));
    }
    if (!o["token"].get(c)) {
      if (c.get_string().get(s)) return std::nullopt;
      m.token = std::string(s);
    }
    return client_message(m);
  }
  if (type == "ping") return fields_ok(o, {"type", "id"}) ? std::optional<client_message>(protocol::ping_msg{}) : std::nullopt;
  std::string_view doc;
  if (o["doc"].get_string().get(doc) || !protocol::valid_doc_id(doc)) return std::nullopt;
  if (type == "open") {
    if (!fields_ok(o, {"type", "doc", "version", "regions", "snapshot"})) return std::nullopt;
    protocol::open_msg m{std::string(doc), {}};
    element v;
    if (!o["version"].get(v) && !version_of(v, &m.version)) return std::nullopt;
    if (!regions_of(o, &m.regions)) return std::nullopt;
    if (!o["snapshot"].get(v) && v.get_bool().get(m.snapshot)) return std::nullopt;
    return client_message(m);
  }
  if (type == "ops") {
    if (!fields_ok(o, {"type", "doc", "ops", "regions"})) return std::nullopt;
    array a;
    if (o["ops"].get_array().get(a) || a.size() > 10000) return std::nullopt;
    protocol::ops_msg m{std::string(doc), {}};
    if (!regions_of(o, &m.regions)) return std::nullopt;
    for (element e : a) {
      operation op;
      if (!op_of(e, &op)) return std::nullopt;
      m.ops.push_back(std::move(op));
    }
    return client_message(m);
  }
  if (type == "presence") {
    if (!fields_ok(o, {"type", "doc", "state"})) return std::nullopt;
    element s;
    if (o["state"].get(s) || (!s.is_null() && s.type() != element_type::OBJECT)) return std::nullopt;
    std::string state = simdjson::minify(s);
    if (state.size() > 4096) return std::nullopt;
    return client_message(protocol::presence_msg{std::string(doc), state});
  }
  if (type == "close")
    return fields_ok(o, {"type", "doc"}) ? std::optional<client_message>(protocol::close_msg{std::string(doc)})
                                         : std::nullopt;
  return std::nullopt;
}

}  // namespace weft::fuzz
