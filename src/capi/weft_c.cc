// The C API (include/weft/weft.h) over weft::document. Every entry point
// catches everything: C callers get a status code, never an exception.
#include "weft/weft.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "protocol/json_writer.h"
#include "protocol/op_json_reader.h"
#include "weft/document.h"
#include "weft/encoding.h"
#include "weft/unicode.h"

struct weft_ops {
  std::vector<weft::operation> ops;
};

struct weft_version {
  weft::version_vector v;
};

struct weft_doc {
  explicit weft_doc(weft::document d) : doc(std::move(d)) {}
  weft::document doc;
  weft_change_fn on_change = nullptr;
  void* user_data = nullptr;
  std::vector<weft::text_change> changes;  // reused across apply calls
};

namespace {

thread_local std::string last_error;

weft_status fail(weft_status code, std::string detail) {
  last_error = std::move(detail);
  return code;
}

weft_status fail(const weft::status& st) { return fail(static_cast<weft_status>(st.code()), st.detail()); }

weft_status ok() {
  last_error.clear();
  return WEFT_OK;
}

weft_status null_argument(const char* what) { return fail(WEFT_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL"); }

// Runs `f`, turning allocation failures (the only exceptions the core lets
// out) into a status.
template <class F>
weft_status guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return fail(WEFT_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(WEFT_ERR_INVALID_ARGUMENT, e.what());
  } catch (...) {
    return fail(WEFT_ERR_INVALID_ARGUMENT, "unexpected error");
  }
}

// Copies `s` into a malloc'd NUL-terminated buffer for the caller.
weft_status hand_out(const std::string& s, char** out, std::size_t* out_len) {
  char* buf = static_cast<char*>(std::malloc(s.size() + 1));
  if (!buf) return fail(WEFT_ERR_OUT_OF_MEMORY, "out of memory");
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  *out = buf;
  if (out_len) *out_len = s.size();
  return ok();
}

weft::document_options to_options(const weft_doc_options* o) {
  weft::document_options opts;
  if (o) {
    opts.max_pending_ops = static_cast<std::size_t>(o->max_pending_ops);
    opts.max_pending_ids = o->max_pending_ids;
    opts.max_op_ids = o->max_op_ids;
  }
  return opts;
}

}  // namespace

extern "C" {

const char* weft_status_message(weft_status status) {
  if (status == WEFT_ERR_OUT_OF_MEMORY) return "out of memory";
  if (status >= WEFT_OK && status <= WEFT_ERR_ID_CONFLICT)
    return weft::error_message(static_cast<weft::error_code>(status));
  return "unknown status";
}

const char* weft_last_error(void) { return last_error.c_str(); }

void weft_free(void* buffer) { std::free(buffer); }

// ---- operation lists ----------------------------------------------------------

weft_status weft_ops_new(weft_ops** out) {
  if (!out) return null_argument("out");
  return guarded([&] {
    *out = new weft_ops;
    return ok();
  });
}

void weft_ops_free(weft_ops* ops) { delete ops; }

size_t weft_ops_count(const weft_ops* ops) { return ops ? ops->ops.size() : 0; }

void weft_ops_clear(weft_ops* ops) {
  if (ops) ops->ops.clear();
}

weft_status weft_ops_append(weft_ops* dst, const weft_ops* src) {
  if (!dst || !src) return null_argument("ops");
  return guarded([&] {
    if (dst == src) {
      std::vector<weft::operation> copy = src->ops;
      dst->ops.insert(dst->ops.end(), copy.begin(), copy.end());
    } else {
      dst->ops.insert(dst->ops.end(), src->ops.begin(), src->ops.end());
    }
    return ok();
  });
}

weft_status weft_ops_to_json(const weft_ops* ops, char** out, size_t* out_len) {
  if (!ops || !out) return null_argument("ops or out");
  return guarded([&] {
    std::string json = "[";
    for (std::size_t i = 0; i < ops->ops.size(); ++i) {
      if (i) json.push_back(',');
      weft::protocol::append_op(json, ops->ops[i]);
    }
    json.push_back(']');
    return hand_out(json, out, out_len);
  });
}

weft_status weft_ops_from_json(weft_ops* ops, const char* json, size_t len) {
  if (!ops || (!json && len)) return null_argument("ops or json");
  return guarded([&] {
    std::vector<weft::operation> parsed;
    weft::status st = weft::protocol::read_ops(std::string_view(json ? json : "", len), &parsed);
    if (!st.ok()) return fail(st);
    ops->ops.insert(ops->ops.end(), std::make_move_iterator(parsed.begin()), std::make_move_iterator(parsed.end()));
    return ok();
  });
}

weft_status weft_ops_encode(const weft_ops* ops, uint8_t** out, size_t* out_len) {
  if (!ops || !out || !out_len) return null_argument("ops, out or out_len");
  return guarded([&] {
    std::string bytes = weft::encode_ops(ops->ops);
    return hand_out(bytes, reinterpret_cast<char**>(out), out_len);
  });
}

weft_status weft_ops_decode(weft_ops* ops, const uint8_t* bytes, size_t len) {
  if (!ops || (!bytes && len)) return null_argument("ops or bytes");
  return guarded([&] {
    auto r = weft::decode_ops(std::string_view(reinterpret_cast<const char*>(bytes ? bytes : nullptr), len));
    if (!r.ok()) return fail(r.error());
    auto& decoded = r.value();
    ops->ops.insert(ops->ops.end(), std::make_move_iterator(decoded.begin()), std::make_move_iterator(decoded.end()));
    return ok();
  });
}

// ---- version vectors ----------------------------------------------------------

weft_status weft_version_new(weft_version** out) {
  if (!out) return null_argument("out");
  return guarded([&] {
    *out = new weft_version;
    return ok();
  });
}

void weft_version_free(weft_version* version) { delete version; }

uint64_t weft_version_get(const weft_version* version, uint64_t replica) {
  return version ? version->v.get(replica) : 0;
}

weft_status weft_version_set(weft_version* version, uint64_t replica, uint64_t counter) {
  if (!version) return null_argument("version");
  return guarded([&] {
    version->v.set(replica, counter);
    return ok();
  });
}

size_t weft_version_count(const weft_version* version) { return version ? version->v.entries().size() : 0; }

weft_status weft_version_entry(const weft_version* version, size_t index, uint64_t* replica, uint64_t* counter) {
  if (!version || !replica || !counter) return null_argument("version, replica or counter");
  if (index >= version->v.entries().size())
    return fail(WEFT_ERR_INVALID_ARGUMENT, "index " + std::to_string(index) + " is past the last entry");
  *replica = version->v.entries()[index].first;
  *counter = version->v.entries()[index].second;
  return ok();
}

weft_status weft_version_to_json(const weft_version* version, char** out, size_t* out_len) {
  if (!version || !out) return null_argument("version or out");
  return guarded([&] {
    std::string json;
    weft::protocol::append_version(json, version->v);
    return hand_out(json, out, out_len);
  });
}

weft_status weft_version_from_json(const char* json, size_t len, weft_version** out) {
  if (!out || (!json && len)) return null_argument("json or out");
  return guarded([&] {
    weft::version_vector v;
    weft::status st = weft::protocol::read_version(std::string_view(json ? json : "", len), &v);
    if (!st.ok()) return fail(st);
    *out = new weft_version{std::move(v)};
    return ok();
  });
}

// ---- documents ------------------------------------------------------------------

weft_doc_options weft_doc_options_default(void) {
  weft::document_options d;
  return weft_doc_options{d.max_pending_ops, d.max_pending_ids, d.max_op_ids};
}

weft_status weft_doc_new(uint64_t replica, const weft_doc_options* options, weft_doc** out) {
  if (!out) return null_argument("out");
  if (replica == 0 || replica > weft::max_replica_id)
    return fail(WEFT_ERR_INVALID_ARGUMENT, "replica id must be in 1 .. 2^53-1");
  return guarded([&] {
    *out = new weft_doc(weft::document(replica, to_options(options)));
    return ok();
  });
}

weft_status weft_doc_load(const uint8_t* snapshot, size_t len, uint64_t replica, const weft_doc_options* options,
                          weft_doc** out) {
  if (!out || (!snapshot && len)) return null_argument("snapshot or out");
  if (replica == 0 || replica > weft::max_replica_id)
    return fail(WEFT_ERR_INVALID_ARGUMENT, "replica id must be in 1 .. 2^53-1");
  return guarded([&] {
    auto r = weft::document::decode_snapshot(std::string_view(reinterpret_cast<const char*>(snapshot), len), replica,
                                             to_options(options));
    if (!r.ok()) return fail(r.error());
    *out = new weft_doc(std::move(r).value());
    return ok();
  });
}

void weft_doc_free(weft_doc* doc) { delete doc; }

uint64_t weft_doc_replica(const weft_doc* doc) { return doc ? doc->doc.replica() : 0; }

uint64_t weft_doc_length(const weft_doc* doc) { return doc ? doc->doc.length() : 0; }

uint64_t weft_doc_pending_ops(const weft_doc* doc) { return doc ? doc->doc.pending_ops() : 0; }

weft_status weft_doc_position_of(weft_doc* doc, uint64_t replica, uint64_t counter, uint64_t* out) {
  if (!doc || !out) return null_argument("doc or out");
  return guarded([&] {
    auto p = doc->doc.position_of(weft::op_id{replica, counter});
    if (!p) return fail(WEFT_ERR_INVALID_ARGUMENT, "no visible character has this id");
    *out = *p;
    return ok();
  });
}

weft_status weft_doc_id_at(weft_doc* doc, uint64_t position, uint64_t* replica, uint64_t* counter) {
  if (!doc || !replica || !counter) return null_argument("doc, replica or counter");
  return guarded([&] {
    auto id = doc->doc.id_at(position);
    if (!id.ok()) return fail(id.error());
    *replica = id.value().replica;
    *counter = id.value().counter;
    return ok();
  });
}

weft_status weft_doc_text(const weft_doc* doc, char** out, size_t* out_len) {
  if (!doc || !out) return null_argument("doc or out");
  return guarded([&] { return hand_out(doc->doc.text(), out, out_len); });
}

weft_status weft_doc_version(const weft_doc* doc, weft_version** out) {
  if (!doc || !out) return null_argument("doc or out");
  return guarded([&] {
    *out = new weft_version{doc->doc.version()};
    return ok();
  });
}

weft_status weft_doc_insert(weft_doc* doc, uint64_t position, const char* text, size_t len, weft_ops* outbox) {
  if (!doc || (!text && len)) return null_argument("doc or text");
  return guarded([&] {
    // Reserve first so that a failed push_back cannot lose an applied op.
    if (outbox) outbox->ops.reserve(outbox->ops.size() + 1);
    auto r = doc->doc.insert(position, std::string_view(text ? text : "", len));
    if (!r.ok()) return fail(r.error());
    if (outbox) outbox->ops.push_back(std::move(r).value());
    return ok();
  });
}

weft_status weft_doc_erase(weft_doc* doc, uint64_t position, uint64_t count, weft_ops* outbox) {
  if (!doc) return null_argument("doc");
  return guarded([&] {
    if (outbox) outbox->ops.reserve(outbox->ops.size() + 1);
    auto r = doc->doc.erase(position, count);
    if (!r.ok()) return fail(r.error());
    if (outbox) outbox->ops.push_back(std::move(r).value());
    return ok();
  });
}

void weft_doc_set_change_callback(weft_doc* doc, weft_change_fn fn, void* user_data) {
  if (!doc) return;
  doc->on_change = fn;
  doc->user_data = user_data;
}

weft_status weft_doc_apply(weft_doc* doc, const weft_ops* ops, weft_ops* applied) {
  if (!doc || !ops) return null_argument("doc or ops");
  return guarded([&] {
    weft_status first = WEFT_OK;
    std::string first_detail;
    std::vector<weft::operation>* applied_out = applied ? &applied->ops : nullptr;
    for (std::size_t i = 0; i < ops->ops.size(); ++i) {
      doc->changes.clear();
      auto r = doc->doc.apply(ops->ops[i], doc->on_change ? &doc->changes : nullptr, applied_out);
      if (!r.ok() && first == WEFT_OK) {
        first = static_cast<weft_status>(r.code());
        first_detail = "op " + std::to_string(i) + ": " + r.error().detail();
      }
      for (const auto& c : doc->changes) {
        weft_change ch{c.type == weft::text_change::kind::insert ? 1 : 0, c.position, c.length,
                       c.type == weft::text_change::kind::insert ? c.text.data() : nullptr, c.text.size()};
        doc->on_change(doc->user_data, &ch);
      }
    }
    doc->changes.clear();
    return first == WEFT_OK ? ok() : fail(first, std::move(first_detail));
  });
}

weft_status weft_doc_ops_since(const weft_doc* doc, const weft_version* peer, weft_ops* out) {
  if (!doc || !peer || !out) return null_argument("doc, peer or out");
  return guarded([&] {
    auto ops = doc->doc.ops_since(peer->v);
    out->ops.insert(out->ops.end(), std::make_move_iterator(ops.begin()), std::make_move_iterator(ops.end()));
    return ok();
  });
}

weft_status weft_doc_encode_snapshot(const weft_doc* doc, uint8_t** out, size_t* out_len) {
  if (!doc || !out || !out_len) return null_argument("doc, out or out_len");
  return guarded([&] { return hand_out(doc->doc.encode_snapshot(), reinterpret_cast<char**>(out), out_len); });
}

// ---- offsets ----------------------------------------------------------------------

uint64_t weft_utf8_code_points(const char* text, size_t len, size_t byte_offset) {
  if (!text) return 0;
  if (byte_offset > len) byte_offset = len;
  // Round down to the start of the character the offset falls in.
  while (byte_offset > 0 && byte_offset < len && (static_cast<unsigned char>(text[byte_offset]) & 0xC0) == 0x80)
    --byte_offset;
  return weft::count_code_points(std::string_view(text, byte_offset));
}

size_t weft_utf8_byte_offset(const char* text, size_t len, uint64_t cp) {
  return text ? weft::utf8_offset_of_code_point(std::string_view(text, len), cp) : 0;
}

uint64_t weft_code_point_of_utf16(const char* text, size_t len, uint64_t u16) {
  return text ? weft::code_point_of_utf16_offset(std::string_view(text, len), u16) : 0;
}

uint64_t weft_utf16_of_code_point(const char* text, size_t len, uint64_t cp) {
  return text ? weft::utf16_offset_of_code_point(std::string_view(text, len), cp) : 0;
}

}  // extern "C"
