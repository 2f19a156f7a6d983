// Decoding of protocol frames (include/weft/protocol.h).
//
// The envelope is read with simdjson's On-Demand API in one pass over the
// object's fields; op lists and version vectors are handed, as raw JSON
// text, to the protocol's one op parser (op_json_reader), the same code the C
// API and the WebAssembly build use. So every side of the protocol agrees on
// what an op is, and no JSON tree is built for the hot path (a keystroke).
#include <simdjson.h>

#include <algorithm>
#include <cstring>

#include "protocol/op_json_reader.h"
#include "weft/protocol.h"

namespace weft::protocol {

static_assert(decoder::padding >= simdjson::SIMDJSON_PADDING, "decoder::padding must cover simdjson's");

namespace {

namespace od = simdjson::ondemand;

// One bit per field name the protocol knows.
constexpr unsigned f_type = 1u << 0, f_doc = 1u << 1, f_version = 1u << 2, f_ops = 1u << 3, f_state = 1u << 4,
                   f_protocol = 1u << 5, f_client = 1u << 6, f_token = 1u << 7, f_session = 1u << 8,
                   f_server = 1u << 9, f_max_message_bytes = 1u << 10, f_code = 1u << 11, f_message = 1u << 12,
                   f_id = 1u << 13, f_binary = 1u << 14, f_ref = 1u << 15, f_regions = 1u << 16,
                   f_snapshot = 1u << 17;

unsigned bit_of(std::string_view key) {
  switch (key.size()) {
    case 2: return key == "id" ? f_id : 0;
    case 3: return key == "doc" ? f_doc : key == "ops" ? f_ops : key == "ref" ? f_ref : 0;
    case 4: return key == "type" ? f_type : key == "code" ? f_code : 0;
    case 5: return key == "state" ? f_state : key == "token" ? f_token : 0;
    case 6: return key == "client" ? f_client : key == "server" ? f_server : key == "binary" ? f_binary : 0;
    case 7:
      return key == "version"   ? f_version
             : key == "session" ? f_session
             : key == "message" ? f_message
             : key == "regions" ? f_regions
                                : 0;
    case 8: return key == "protocol" ? f_protocol : key == "snapshot" ? f_snapshot : 0;
    case 17: return key == "max_message_bytes" ? f_max_message_bytes : 0;
    default: return 0;
  }
}

// The fields of one message, read in one pass. Views point into the frame
// or the parser's string buffer: valid until the next decode.
struct fields {
  unsigned seen = 0;
  std::string_view type, doc, client, token, server, code, message;
  std::string_view version_raw, ops_raw, state_raw;  // raw JSON; empty: absent or null
  std::uint64_t protocol = 0, session = 0, max_message_bytes = 0, ref = 0, regions = 0;
  bool binary = false, snapshot = false;
  bool has_unknown = false;
  std::string unknown;  // the first unknown field's name (may be "")
};

struct failure {
  error_kind kind;
  std::string message;
};

// A non-negative integer; "-0" counts as 0, as for every JSON reader.
simdjson::error_code get_u64(od::value& v, std::uint64_t* out) {
  auto err = v.get_uint64().get(*out);
  if (!err) return err;
  std::int64_t i = 0;
  if (!v.get_int64().get(i) && i == 0) {
    *out = 0;
    return simdjson::SUCCESS;
  }
  return err;
}

std::string field_type_message(std::string_view key) {
  if (key == "version") return "\"version\" must be an array of [replica, counter] or null";
  if (key == "ops") return "\"ops\" must be an array";
  if (key == "state") return "\"state\" must be an object or null";
  if (key == "binary" || key == "snapshot") return "\"" + std::string(key) + "\" must be true or false";
  if (key == "protocol" || key == "session" || key == "max_message_bytes" || key == "ref" || key == "regions")
    return "\"" + std::string(key) + "\" must be a non-negative integer";
  return "\"" + std::string(key) + "\" must be a string";
}

// Reads every field of the object at the root. Returns an error for JSON
// that is not an object, a field given twice, or a known field of the wrong type.
std::optional<failure> read_fields(od::document& d, std::string_view frame, simdjson::dom::parser& dom,
                                   fields* out) {
  od::object obj;
  if (auto err = d.get_object().get(obj)) {
    // On-Demand only looked at the first token: tell JSON that is not an
    // object from text that is not JSON at all (a rare path).
    simdjson::dom::element e;
    if (err == simdjson::INCORRECT_TYPE && !dom.parse(frame.data(), frame.size()).get(e))
      return failure{error_kind::bad_message, "a message must be a JSON object"};
    if (err == simdjson::INCORRECT_TYPE) err = simdjson::TAPE_ERROR;
    return failure{error_kind::bad_json, std::string("not valid JSON: ") + simdjson::error_message(err)};
  }
  // Nothing but white space may follow the object: find where it ends, then
  // read it from the start.
  std::string_view whole;
  if (auto err = obj.raw_json().get(whole))
    return failure{error_kind::bad_json, std::string("not valid JSON: ") + simdjson::error_message(err)};
  for (std::size_t i = static_cast<std::size_t>(whole.data() + whole.size() - frame.data()); i < frame.size(); ++i)
    if (frame[i] != ' ' && frame[i] != '\n' && frame[i] != '\r' && frame[i] != '\t')
      return failure{error_kind::bad_json, "not valid JSON: content after the message object"};
  d.rewind();
  if (auto err = d.get_object().get(obj))
    return failure{error_kind::bad_json, std::string("not valid JSON: ") + simdjson::error_message(err)};
  for (auto field_result : obj) {
    od::field field;
    std::string_view key;
    if (auto err = std::move(field_result).get(field); err || (err = field.unescaped_key().get(key)))
      return failure{error_kind::bad_json, std::string("not valid JSON: ") + simdjson::error_message(err)};
    const unsigned bit = bit_of(key);
    if (!bit) {
      if (!out->has_unknown) out->unknown = std::string(key);
      out->has_unknown = true;
      continue;  // skipped by the iterator; the message is refused below
    }
    if (out->seen & bit) return failure{error_kind::bad_message, "field \"" + std::string(key) + "\" given twice"};
    out->seen |= bit;
    od::value v = field.value();
    simdjson::error_code err = simdjson::SUCCESS;
    switch (bit) {
      case f_type: err = v.get_string().get(out->type); break;
      case f_doc: err = v.get_string().get(out->doc); break;
      case f_client: err = v.get_string().get(out->client); break;
      case f_token: err = v.get_string().get(out->token); break;
      case f_server: err = v.get_string().get(out->server); break;
      case f_code: err = v.get_string().get(out->code); break;
      case f_message: err = v.get_string().get(out->message); break;
      case f_protocol: err = get_u64(v, &out->protocol); break;
      case f_session: err = get_u64(v, &out->session); break;
      case f_max_message_bytes: err = get_u64(v, &out->max_message_bytes); break;
      case f_ref: err = get_u64(v, &out->ref); break;
      case f_regions: err = get_u64(v, &out->regions); break;
      case f_binary: err = v.get_bool().get(out->binary); break;
      case f_snapshot: err = v.get_bool().get(out->snapshot); break;
      case f_id: break;  // ping's free-form id: any value, ignored
      case f_version:
      case f_ops: {
        bool is_null = false;
        if (bit == f_version && !v.is_null().get(is_null) && is_null) break;
        od::array a;
        err = v.get_array().get(a);
        if (!err) err = a.raw_json().get(bit == f_ops ? out->ops_raw : out->version_raw);
        break;
      }
      case f_state: {
        bool is_null = false;
        if (!v.is_null().get(is_null) && is_null) break;
        od::object o;
        err = v.get_object().get(o);
        if (!err) err = o.raw_json().get(out->state_raw);
        break;
      }
      default: break;
    }
    if (err == simdjson::INCORRECT_TYPE || err == simdjson::NUMBER_ERROR || err == simdjson::NUMBER_OUT_OF_RANGE)
      return failure{error_kind::bad_message, field_type_message(key)};
    if (err) return failure{error_kind::bad_json, std::string("not valid JSON: ") + simdjson::error_message(err)};
  }
  return std::nullopt;
}

// What a server receives: no field outside `allowed`. (A client is lenient:
// it reads the fields a message type uses and ignores any other, known names
// too, so that a newer server may add fields to any message; their values
// are still type-checked while reading.)
std::optional<failure> only(const fields& f, unsigned allowed, std::string_view type) {
  if (f.has_unknown)
    return failure{error_kind::bad_message, "unknown field \"" + f.unknown + "\" in " + std::string(type)};
  if (unsigned extra = f.seen & ~allowed) {
    for (std::string_view k : {"type", "doc", "version", "ops", "state", "protocol", "client", "token", "session",
                               "server", "max_message_bytes", "code", "message", "id", "binary", "ref", "regions",
                               "snapshot"})
      if (extra & bit_of(k))
        return failure{error_kind::bad_message, "field \"" + std::string(k) + "\" is not part of " + std::string(type)};
  }
  return std::nullopt;
}

// The document a message names: present and a valid id.
std::optional<failure> check_doc(const fields& f) {
  if (!(f.seen & f_doc)) return failure{error_kind::bad_message, "missing \"doc\" string"};
  if (!valid_doc_id(f.doc))
    return failure{error_kind::bad_doc_id, "document ids are 1-128 characters of A-Z a-z 0-9 . _ ~ -"};
  return std::nullopt;
}

std::optional<failure> need(const fields& f, unsigned bits, std::string_view type) {
  for (std::string_view k : {"doc", "ops", "state", "protocol", "version", "session", "code", "regions"})
    if ((bits & bit_of(k)) && !(f.seen & bit_of(k)))
      return failure{error_kind::bad_message, std::string(type) + " without \"" + std::string(k) + "\""};
  return std::nullopt;
}

std::optional<failure> read_version_field(const fields& f, const decode_limits& limits, version_vector* out) {
  if (f.version_raw.empty()) return std::nullopt;
  if (auto st = read_version(f.version_raw, out); !st.ok())
    return failure{error_kind::bad_message, "\"version\": " + st.detail()};
  if (out->entries().size() > limits.max_version_entries)
    return failure{error_kind::too_large, "version vector too long"};
  return std::nullopt;
}

std::optional<failure> read_ops_field(const fields& f, const decode_limits& limits, std::vector<operation>* out) {
  if (auto st = read_ops(f.ops_raw, out); !st.ok()) return failure{error_kind::bad_message, st.detail()};
  if (out->size() > limits.max_ops_per_message)
    return failure{error_kind::too_large, "more than " + std::to_string(limits.max_ops_per_message) + " ops in one message"};
  return std::nullopt;
}

}  // namespace

struct decoder::impl {
  od::parser parser;
  simdjson::dom::parser dom;  // validates and minifies presence states (not the hot path)
  std::string copy;           // a frame copied for padding

  // Parses `frame` and reads its fields; the views in `f` stay valid until
  // the next call.
  std::optional<failure> parse(std::string_view frame, std::size_t readable, fields* f) {
    const char* data = frame.data();
    if (readable < frame.size() + simdjson::SIMDJSON_PADDING) {
      copy.assign(frame);
      copy.resize(frame.size() + simdjson::SIMDJSON_PADDING);
      data = copy.data();
    }
    od::document d;
    if (auto err = parser.iterate(data, frame.size(), frame.size() + simdjson::SIMDJSON_PADDING).get(d))
      return failure{error_kind::bad_json, std::string("not valid JSON: ") + simdjson::error_message(err)};
    if (auto e = read_fields(d, std::string_view(data, frame.size()), dom, f)) return e;
    // Values nobody reads (a ping's id, fields a client ignores) were only
    // skipped, by counting brackets: make sure they are JSON (a rare path).
    simdjson::dom::element ignored;
    if ((f->seen & f_id) || f->has_unknown)
      if (auto err = dom.parse(data, frame.size(), false).get(ignored))
        return failure{error_kind::bad_json, std::string("not valid JSON: ") + simdjson::error_message(err)};
    return std::nullopt;
  }

  // A presence state: a JSON object, compacted, or "null".
  std::variant<std::string, failure> state(const fields& f, const decode_limits& limits) {
    if (f.state_raw.empty()) return std::string("null");
    if (f.state_raw.size() > 4 * limits.max_presence_bytes + 1024)
      return failure{error_kind::too_large, "presence state over " + std::to_string(limits.max_presence_bytes) + " bytes"};
    simdjson::dom::element e;
    if (auto err = dom.parse(f.state_raw.data(), f.state_raw.size()).get(e))
      return failure{error_kind::bad_json, std::string("not valid JSON: ") + simdjson::error_message(err)};
    std::string s = simdjson::minify(e);
    if (s.size() > limits.max_presence_bytes)
      return failure{error_kind::too_large, "presence state over " + std::to_string(limits.max_presence_bytes) + " bytes"};
    return s;
  }
};

decoder::decoder() : p_(std::make_unique<impl>()) {}
decoder::~decoder() = default;
decoder::decoder(decoder&&) noexcept = default;
decoder& decoder::operator=(decoder&&) noexcept = default;

namespace {
decode_error to_error(failure f, std::string_view doc = {}) {
  return decode_error{f.kind, std::move(f.message), valid_doc_id(doc) ? std::string(doc) : std::string()};
}
}  // namespace

std::variant<client_message, decode_error> decoder::client(std::string_view frame, const decode_limits& limits,
                                                           std::size_t readable) try {
  fields f;
  if (auto e = p_->parse(frame, readable, &f)) return to_error(*e, f.doc);
  if (!(f.seen & f_type)) return to_error({error_kind::bad_message, "missing \"type\" string"}, f.doc);
  const std::string_view type = f.type;
  if (type == "hello") {
    if (auto e = only(f, f_type | f_protocol | f_client | f_token | f_binary, type)) return to_error(*e);
    if (auto e = need(f, f_protocol, type)) return to_error(*e);
    hello_msg m;
    m.protocol = f.protocol;
    m.binary = f.binary;
    // At most 200 bytes, cut at a character boundary.
    std::size_t n = std::min<std::size_t>(f.client.size(), 200);
    while (n < f.client.size() && n > 0 && (static_cast<unsigned char>(f.client[n]) & 0xC0) == 0x80) --n;
    m.client = std::string(f.client.substr(0, n));
    m.token = std::string(f.token);
    return m;
  }
  if (type == "ping") {
    if (auto e = only(f, f_type | f_id, type)) return to_error(*e);
    return ping_msg{};
  }
  const bool known = type == "open" || type == "ops" || type == "presence" || type == "close";
  if (!known) return to_error({error_kind::unknown_type, "unknown message type \"" + std::string(type) + "\""}, f.doc);
  if (auto e = check_doc(f)) return to_error(*e);
  std::string doc(f.doc);
  if (type == "open") {
    if (auto e = only(f, f_type | f_doc | f_version | f_regions | f_snapshot, type)) return to_error(*e, doc);
    if (f.regions > max_regions)
      return to_error({error_kind::bad_message, "\"regions\" must be at most " + std::to_string(max_regions)}, doc);
    open_msg m{doc, {}, f.regions, f.snapshot};
    if (auto e = read_version_field(f, limits, &m.version)) return to_error(*e, doc);
    return m;
  }
  if (type == "ops") {
    if (auto e = only(f, f_type | f_doc | f_ops | f_regions, type)) return to_error(*e, doc);
    if (auto e = need(f, f_ops, "ops message")) return to_error(*e, doc);
    if (f.regions > max_regions)
      return to_error({error_kind::bad_message, "\"regions\" must be at most " + std::to_string(max_regions)}, doc);
    ops_msg m{doc, {}, f.regions};
    if (auto e = read_ops_field(f, limits, &m.ops)) return to_error(*e, doc);
    return m;
  }
  if (type == "presence") {
    if (auto e = only(f, f_type | f_doc | f_state, type)) return to_error(*e, doc);
    if (auto e = need(f, f_state, type)) return to_error(*e, doc);
    auto st = p_->state(f, limits);
    if (auto* e = std::get_if<failure>(&st)) return to_error(*e, doc);
    return presence_msg{doc, std::move(std::get<std::string>(st))};
  }
  if (auto e = only(f, f_type | f_doc, type)) return to_error(*e, doc);
  return close_msg{doc};
} catch (const std::exception& e) {  // std::bad_alloc: never let it reach a server's I/O loop
  return decode_error{error_kind::internal, std::string("cannot decode: ") + e.what(), {}};
}

std::variant<server_message, decode_error> decoder::server(std::string_view frame, const decode_limits& limits,
                                                           std::size_t readable) try {
  // A client is lenient about fields a message type does not use (a newer
  // server may add some), strict about the ones it reads.
  fields f;
  if (auto e = p_->parse(frame, readable, &f)) return to_error(*e, f.doc);
  if (!(f.seen & f_type)) return to_error({error_kind::bad_message, "missing \"type\" string"}, f.doc);
  const std::string_view type = f.type;
  if (type == "welcome") {
    if (auto e = need(f, f_protocol, type)) return to_error(*e);
    return welcome_msg{f.protocol, std::string(f.server), f.max_message_bytes, f.binary, f.snapshot};
  }
  if (type == "pong") return pong_msg{};
  if (type == "error") {
    if (auto e = need(f, f_code, type)) return to_error(*e);
    error_msg m;
    if (!error_kind_from_name(f.code, &m.kind)) m.kind = error_kind::internal;
    m.code = std::string(f.code);
    m.message = std::string(f.message);
    m.doc = std::string(f.doc);
    return m;
  }
  const bool known = type == "sync" || type == "ops" || type == "ack" || type == "presence" || type == "closed" ||
                     type == "replicated";
  if (!known) return to_error({error_kind::unknown_type, "unknown message type \"" + std::string(type) + "\""}, f.doc);
  if (auto e = check_doc(f)) return to_error(*e);
  std::string doc(f.doc);
  if (type == "ops" || type == "sync") {
    const bool sync = type == "sync";
    if (auto e = need(f, sync ? (f_ops | f_version) : f_ops, type)) return to_error(*e, doc);
    std::vector<operation> ops;
    if (auto e = read_ops_field(f, limits, &ops)) return to_error(*e, doc);
    if (!sync) return ops_msg{doc, std::move(ops)};
    sync_msg m{doc, std::move(ops), {}, f.ref};
    if (auto e = read_version_field(f, limits, &m.version)) return to_error(*e, doc);
    return m;
  }
  if (type == "replicated") {
    if (auto e = need(f, f_version | f_regions, type)) return to_error(*e, doc);
    replicated_msg m{doc, {}, f.regions};
    if (auto e = read_version_field(f, limits, &m.version)) return to_error(*e, doc);
    return m;
  }
  if (type == "ack") {
    if (auto e = need(f, f_version, type)) return to_error(*e, doc);
    ack_msg m{doc, {}};
    if (auto e = read_version_field(f, limits, &m.version)) return to_error(*e, doc);
    return m;
  }
  if (type == "presence") {
    if (auto e = need(f, f_session | f_state, type)) return to_error(*e, doc);
    auto st = p_->state(f, limits);
    if (auto* e = std::get_if<failure>(&st)) return to_error(*e, doc);
    return peer_presence_msg{doc, f.session, std::move(std::get<std::string>(st))};
  }
  return closed_msg{doc};
} catch (const std::exception& e) {
  return decode_error{error_kind::internal, std::string("cannot decode: ") + e.what(), {}};
}

}  // namespace weft::protocol
