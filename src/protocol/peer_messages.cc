#include "protocol/peer_messages.h"

#include <simdjson.h>

#include "core/byte_io.h"
#include "protocol/json_writer.h"

namespace weft::protocol::peer {

namespace {

void append_vector(std::string& out, const origin_vector& v) {
  out += '{';
  bool first = true;
  for (const auto& [k, n] : v) {
    if (!first) out += ',';
    first = false;
    append_json_string(out, k);
    out += ':';
    append_uint(out, n);
  }
  out += '}';
}

struct encoder {
  std::string out;
  void operator()(const hello& m) {
    out = "{\"type\":\"peer_hello\",\"node\":";
    append_json_string(out, m.node);
    out += ",\"key\":";
    append_json_string(out, m.key);
    out += ",\"version\":";
    append_uint(out, static_cast<std::uint64_t>(m.version));
    if (!m.token.empty()) {
      out += ",\"token\":";
      append_json_string(out, m.token);
    }
    out += '}';
  }
  void operator()(const welcome& m) {
    out = "{\"type\":\"peer_welcome\",\"node\":";
    append_json_string(out, m.node);
    out += ",\"key\":";
    append_json_string(out, m.key);
    out += ",\"version\":";
    append_uint(out, static_cast<std::uint64_t>(m.version));
    out += '}';
  }
  void operator()(const link_state& m) {
    out = "{\"type\":\"link_state\",\"nodes\":[";
    for (std::size_t i = 0; i < m.nodes.size(); ++i) {
      const auto& n = m.nodes[i];
      if (i) out += ',';
      out += "{\"node\":";
      append_json_string(out, n.node);
      out += ",\"version\":";
      append_uint(out, n.version);
      out += ",\"links\":[";
      for (std::size_t j = 0; j < n.links.size(); ++j) {
        if (j) out += ',';
        out += "{\"node\":";
        append_json_string(out, n.links[j].node);
        out += ",\"lag_ms\":";
        append_uint(out, n.links[j].lag_ms);
        out += '}';
      }
      out += ']';
      if (!n.key.empty()) {
        out += ",\"key\":";
        append_json_string(out, n.key);
      }
      if (!n.holds.empty()) {
        out += ",\"holds\":";
        append_vector(out, n.holds);
      }
      out += '}';
    }
    out += "]}";
  }
  void operator()(const subscribe& m) {
    out = "{\"type\":\"subscribe\",\"origins\":[";
    for (std::size_t i = 0; i < m.origins.size(); ++i) {
      if (i) out += ',';
      append_json_string(out, m.origins[i]);
    }
    out += "],\"have\":";
    append_vector(out, m.have);
    out += '}';
  }
  void operator()(const confirm& m) {
    out = "{\"type\":\"confirm\",\"have\":";
    append_vector(out, m.have);
    out += '}';
  }
  void operator()(const probe& m) {
    out = m.reply ? "{\"type\":\"probe_reply\",\"t\":" : "{\"type\":\"probe\",\"t\":";
    append_uint(out, m.t);
    out += '}';
  }
  void operator()(const gap& m) {
    out = "{\"type\":\"gap\",\"key\":";
    append_json_string(out, m.key);
    out += ",\"resume\":";
    append_uint(out, m.resume);
    out += ",\"docs\":[";
    for (std::size_t i = 0; i < m.docs.size(); ++i) {
      if (i) out += ',';
      append_json_string(out, m.docs[i]);
    }
    out += "]}";
  }
  void operator()(const want_doc& m) {
    out = "{\"type\":\"want_doc\",\"key\":";
    append_json_string(out, m.key);
    out += ",\"doc\":";
    append_json_string(out, m.doc);
    out += ",\"version\":[";
    for (std::size_t i = 0; i < m.version.size(); ++i) {
      if (i) out += ',';
      out += '[';
      append_uint(out, m.version[i].first);
      out += ',';
      append_uint(out, m.version[i].second);
      out += ']';
    }
    out += "]}";
  }
  void operator()(const link_error& m) {
    out = "{\"type\":\"peer_error\",\"message\":";
    append_json_string(out, m.message);
    out += '}';
  }
};

status bad(std::string what) { return status(error_code::invalid_argument, "peer message: " + std::move(what)); }

bool read_vector(simdjson::dom::element e, origin_vector& out) {
  simdjson::dom::object o;
  if (e.get_object().get(o)) return false;
  for (auto [k, v] : o) {
    std::uint64_t n;
    if (v.get_uint64().get(n)) return false;
    out[std::string(k)] = n;
  }
  return true;
}

}  // namespace

std::string encode(const message& m) {
  encoder e;
  std::visit(e, m);
  return std::move(e.out);
}

result<message> decode(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) return bad("not JSON");
  simdjson::dom::object o;
  if (root.get_object().get(o)) return bad("not a JSON object");
  std::string_view type;
  if (o["type"].get_string().get(type)) return bad("no \"type\"");
  auto str = [&](const char* field, std::string& out) {
    std::string_view v;
    if (o[field].get_string().get(v)) return false;
    out = std::string(v);
    return true;
  };
  if (type == "peer_hello" || type == "peer_welcome") {
    std::string node, key, token;
    std::uint64_t version = 0;
    if (!str("node", node) || !str("key", key) || o["version"].get_uint64().get(version))
      return bad(std::string(type) + " needs node, key and version");
    if (type == "peer_welcome") return message(welcome{node, key, static_cast<int>(version)});
    str("token", token);
    return message(hello{node, key, token, static_cast<int>(version)});
  }
  if (type == "link_state") {
    simdjson::dom::array nodes;
    if (o["nodes"].get_array().get(nodes)) return bad("link_state needs nodes");
    link_state m;
    for (auto n : nodes) {
      node_state s;
      std::string_view id;
      simdjson::dom::array links;
      if (n["node"].get_string().get(id) || n["version"].get_uint64().get(s.version) ||
          n["links"].get_array().get(links))
        return bad("link_state node needs node, version and links");
      s.node = std::string(id);
      for (auto l : links) {
        node_state::link link;
        std::string_view lid;
        if (l["node"].get_string().get(lid) || l["lag_ms"].get_uint64().get(link.lag_ms))
          return bad("link_state link needs node and lag_ms");
        link.node = std::string(lid);
        s.links.push_back(std::move(link));
      }
      std::string_view key;
      if (!n["key"].get_string().get(key)) s.key = std::string(key);
      simdjson::dom::element holds;
      if (!n["holds"].get(holds) && !read_vector(holds, s.holds)) return bad("link_state holds must be {key: olsn}");
      m.nodes.push_back(std::move(s));
    }
    return message(std::move(m));
  }
  if (type == "subscribe") {
    subscribe m;
    simdjson::dom::array origins;
    if (o["origins"].get_array().get(origins)) return bad("subscribe needs origins");
    for (auto x : origins) {
      std::string_view v;
      if (x.get_string().get(v)) return bad("subscribe origins are node ids");
      m.origins.emplace_back(v);
    }
    simdjson::dom::element have;
    if (o["have"].get(have) || !read_vector(have, m.have)) return bad("subscribe needs have {key: olsn}");
    return message(std::move(m));
  }
  if (type == "confirm") {
    confirm m;
    simdjson::dom::element have;
    if (o["have"].get(have) || !read_vector(have, m.have)) return bad("confirm needs have {key: olsn}");
    return message(std::move(m));
  }
  if (type == "probe" || type == "probe_reply") {
    probe m;
    if (o["t"].get_uint64().get(m.t)) return bad("probe needs t");
    m.reply = type == "probe_reply";
    return message(m);
  }
  if (type == "gap") {
    gap m;
    simdjson::dom::array docs;
    if (!str("key", m.key) || o["resume"].get_uint64().get(m.resume) || o["docs"].get_array().get(docs))
      return bad("gap needs key, resume and docs");
    for (auto d : docs) {
      std::string_view v;
      if (d.get_string().get(v)) return bad("gap docs are document ids");
      m.docs.emplace_back(v);
    }
    return message(std::move(m));
  }
  if (type == "want_doc") {
    want_doc m;
    simdjson::dom::array version;
    if (!str("key", m.key) || !str("doc", m.doc) || o["version"].get_array().get(version))
      return bad("want_doc needs key, doc and version");
    for (auto e : version) {
      simdjson::dom::array pair;
      std::uint64_t r, c;
      if (e.get_array().get(pair) || pair.size() != 2 || pair.at(0).get_uint64().get(r) ||
          pair.at(1).get_uint64().get(c))
        return bad("want_doc version is [[replica, counter], ...]");
      m.version.emplace_back(r, c);
    }
    return message(std::move(m));
  }
  if (type == "peer_error") {
    link_error m;
    str("message", m.message);
    return message(std::move(m));
  }
  return bad("unknown type \"" + std::string(type) + "\"");
}

std::string encode_entries(const std::vector<entry>& entries) {
  detail::byte_writer w;
  bool owners = false;
  for (const auto& e : entries) owners = owners || !e.owners.empty();
  w.u8(owners ? entries_with_owners_kind : entries_kind);
  w.varint(entries.size());
  auto str = [&](std::string_view s) {
    w.varint(s.size());
    w.bytes(s);
  };
  for (const auto& e : entries) {
    str(e.key);
    w.varint(e.olsn);
    str(e.doc);
    str(e.path);
    w.zigzag(e.ts_ms);
    str(e.batch);
    if (owners) str(e.owners);
  }
  return std::move(w.str());
}

result<std::vector<entry>> decode_entries(std::string_view frame) {
  detail::byte_reader r(frame);
  const std::uint8_t kind = r.u8();
  if (kind != entries_kind && kind != entries_with_owners_kind)
    return status(error_code::corrupt_data, "not a frame of replicated batches");
  std::uint64_t n = r.varint();
  if (!r.ok() || n > r.remaining()) return status(error_code::corrupt_data, "bad entry count");
  auto str = [&](std::string& out) {
    std::uint64_t len = r.varint();
    if (!r.ok() || len > r.remaining()) return false;
    out = std::string(r.bytes(len));
    return r.ok();
  };
  std::vector<entry> out;
  out.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    entry e;
    if (!str(e.key)) break;
    e.olsn = r.varint();
    if (!str(e.doc) || !str(e.path)) break;
    e.ts_ms = r.zigzag();
    if (!str(e.batch)) break;
    if (kind == entries_with_owners_kind && !str(e.owners)) break;
    out.push_back(std::move(e));
  }
  if (!r.ok() || out.size() != n || !r.at_end())
    return status(error_code::truncated_data, "replicated batches frame is cut short or has trailing bytes");
  return out;
}

}  // namespace weft::protocol::peer
