// The document core for JavaScript (browser and node), through embind.
// Ops cross the boundary as JSON text in the wire format of
// docs/protocol.md, so a provider can forward them without re-encoding, and
// local edits collect in an outbox that is taken in one call per send.
#include <emscripten/bind.h>
#include <emscripten/emscripten.h>
#include <emscripten/val.h>

#include <optional>
#include <string>
#include <vector>

#include "core/byte_io.h"
#include "protocol/op_json_reader.h"
#include "protocol/json_writer.h"
#include "weft/document.h"
#include "weft/protocol.h"
#include "weft/unicode.h"

namespace weft::wasm {

using protocol::append_json_string;
using protocol::append_op;
using protocol::append_version;
using protocol::read_ops;
using protocol::read_version;

namespace {

std::string changes_json(const std::vector<text_change>& changes) {
  std::string out = "[";
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const auto& c = changes[i];
    if (i) out.push_back(',');
    if (c.type == text_change::kind::insert) {
      out += "{\"insert\":";
      append_json_string(out, c.text);
    } else {
      out += "{\"erase\":" + std::to_string(c.length);
    }
    out += ",\"pos\":" + std::to_string(c.position) + "}";
  }
  out.push_back(']');
  return out;
}

// The changes as the JavaScript side reads them fastest (weft.js,
// readAnswer): byte 1 (never the first byte of JSON), then per change a kind
// byte (0 insert, 1 erase), varint position, and for an insert varint byte
// length and the UTF-8 text, for an erase varint length. Parsing JSON text
// cost more than applying the ops did.
void changes_binary(const std::vector<text_change>& changes, std::string* out) {
  detail::byte_writer w;
  w.str().swap(*out);  // write into the answer's buffer: no allocation per apply
  w.str().assign(1, '\x01');
  for (const auto& c : changes) {
    const bool insert = c.type == text_change::kind::insert;
    w.u8(insert ? 0 : 1);
    w.varint(c.position);
    if (insert) {
      w.varint(c.text.size());
      w.bytes(c.text);
    } else {
      w.varint(c.length);
    }
  }
  out->swap(w.str());
}

std::string error_json(const status& s) {
  std::string out = "{\"error\":";
  append_json_string(out, s.to_string());
  out.push_back('}');
  return out;
}

}  // namespace

/// One replica. Not thread-safe (JavaScript is single-threaded anyway).
class wasm_document {
 public:
  explicit wasm_document(double replica) : doc_(static_cast<replica_id>(replica)) { ++live_; }
  ~wasm_document() { --live_; }
  wasm_document(const wasm_document&) = delete;
  wasm_document& operator=(const wasm_document&) = delete;
  /// Documents constructed and not yet deleted (a leak check for the JS side).
  static int live() { return live_; }

  /// Local insert at code point `pos`. Returns "" or an error message.
  std::string insert(double pos, const std::string& text) { return insert_utf8(pos, text) != 0 ? std::string() : last_error_; }
  /// Local delete of `count` code points at `pos`. Returns "" or an error message.
  std::string erase(double pos, double count) { return erase_fast(pos, count) ? std::string() : last_error_; }

  // The keystroke fast path: plain C exports below call these without
  // embind's string marshalling (the text is written into wasm memory).
  /// The counter of the insert's first character (>= 1), or 0 on error.
  double insert_utf8(double pos, std::string_view text) {
    auto r = doc_.insert(static_cast<std::uint64_t>(pos), text);
    if (!r.ok()) {
      last_error_ = r.error().to_string();
      return 0;
    }
    const auto counter = static_cast<double>(r.value().id.counter);
    outbox_.push_back(std::move(r.value()));
    return counter;
  }
  /// Visible position of character (replica, counter), or -1 when it is
  /// deleted or no character of this document.
  double position_of(double replica, double counter) {
    if (replica < 0 || counter < 1 || replica > static_cast<double>(max_replica_id) ||
        counter > static_cast<double>(max_counter))
      return -1;
    auto p = doc_.position_of(op_id{static_cast<replica_id>(replica), static_cast<std::uint64_t>(counter)});
    return p ? static_cast<double>(*p) : -1;
  }
  /// [replica, counter] of the visible character at `pos`, or null past the end.
  emscripten::val id_at(double pos) {
    if (pos < 0) return emscripten::val::null();
    auto id = doc_.id_at(static_cast<std::uint64_t>(pos));
    if (!id.ok()) return emscripten::val::null();
    emscripten::val out = emscripten::val::array();
    out.call<void>("push", static_cast<double>(id.value().replica));
    out.call<void>("push", static_cast<double>(id.value().counter));
    return out;
  }
  bool erase_fast(double pos, double count) {
    auto r = doc_.erase(static_cast<std::uint64_t>(pos), static_cast<std::uint64_t>(count));
    if (!r.ok()) {
      last_error_ = r.error().to_string();
      return false;
    }
    outbox_.push_back(std::move(r.value()));
    return true;
  }
  /// The address of this object, for the C exports.
  double handle() const { return static_cast<double>(reinterpret_cast<std::uintptr_t>(this)); }
  std::string last_error() const { return last_error_; }
  /// The ops made locally since the last call, as a JSON array (possibly "[]").
  std::string take_outgoing() {
    std::string out = "[";
    for (std::size_t i = 0; i < outbox_.size(); ++i) {
      if (i) out.push_back(',');
      append_op(out, outbox_[i]);
    }
    out.push_back(']');
    outbox_.clear();
    return out;
  }
  /// Applies a JSON array of remote ops; returns the visible changes as
  /// [{"insert":text,"pos":p} | {"erase":n,"pos":p}, ...]. When an op is
  /// refused the others are still applied (a refused op changes nothing), and
  /// the answer is {"error":..., "changes":[...]} with every change made, so
  /// a view never misses one. Unreadable JSON: {"error":...}, nothing applied.
  std::string apply_ops(const std::string& ops_json) {
    apply_json(ops_json, true, false);
    return result_;
  }
  /// apply_ops() without embind's string copies: the answer goes to result_,
  /// its changes in the binary form of changes_binary() when `binary`.
  /// Without `want_changes` no change is collected or encoded (no changes
  /// are reported), which saves the core the visible position of each.
  void apply_json(std::string_view ops_json, bool want_changes, bool binary = true) {
    ops_.clear();
    status st = read_ops(ops_json, &ops_);
    if (!st.ok()) {
      result_ = error_json(st);
      return;
    }
    apply_all(want_changes, binary);
  }
  /// Reads a binary frame of the protocol (docs/protocol.md, "Binary
  /// frames") from the server, for the document the server numbers `ref`.
  /// An ops frame is applied and answered as apply_json() answers; an ack
  /// frame is answered {"ack":[[replica, counter], ...]}. A frame the codec
  /// refuses, or one for another ref: {"error":...}, nothing applied.
  void apply_frame(std::string_view frame, std::uint64_t ref, bool want_changes) {
    auto m = protocol::decoder::binary(frame, protocol::server_message_limits);
    if (auto* e = std::get_if<protocol::decode_error>(&m)) {
      result_ = error_json(status(error_code::invalid_argument, "binary frame: " + e->message));
      return;
    }
    auto& msg = std::get<protocol::binary_message>(m);
    if (std::visit([](const auto& b) { return b.ref; }, msg) != ref) {
      result_ = error_json(status(error_code::invalid_argument, "binary frame for another document"));
      return;
    }
    if (auto* a = std::get_if<protocol::binary_ack>(&msg)) {
      result_ = "{\"ack\":";
      append_version(result_, a->version);
      result_.push_back('}');
      return;
    }
    if (auto* s = std::get_if<protocol::binary_snapshot>(&msg)) {
      load_snapshot_frame(*s, want_changes);
      return;
    }
    ops_ = std::move(std::get<protocol::binary_ops>(msg).ops);
    apply_all(want_changes, true);
  }
  /// A snapshot frame (the answer to an open that asked for one) replaces
  /// the document, but only an empty one: a replica that has ops of its own
  /// would lose them. Answered like an ops frame (one insert of the whole
  /// text when `want_changes`); a refused or corrupt snapshot is an error
  /// with "snapshot":true and changes nothing (open again without asking).
  void load_snapshot_frame(const protocol::binary_snapshot& s, bool want_changes) {
    auto refuse = [&](const status& st) {
      result_ = error_json(st);
      result_.pop_back();
      result_ += ",\"snapshot\":true}";
    };
    if (!doc_.version().empty() || doc_.pending_ops() != 0 || !outbox_.empty())
      return refuse(status(error_code::invalid_argument, "a snapshot frame for a replica that is not empty"));
    auto d = document::decode_snapshot(s.bytes, doc_.replica());
    if (!d.ok()) return refuse(d.error());
    doc_ = std::move(d.value());
    changes_.clear();
    if (want_changes && doc_.length() > 0)
      changes_.push_back(text_change{text_change::kind::insert, 0, doc_.length(), doc_.text()});
    changes_binary(changes_, &result_);
  }
  /// The ops made locally since the last take, as one binary ops frame for
  /// document `ref` (then in result_): 1. When there are none: 0. When they
  /// make a frame over `max_bytes` or too many ops for one message: -1, and
  /// they stay queued for take_outgoing(), whose JSON the caller cuts.
  int take_outgoing_frame(std::uint64_t ref, std::size_t max_bytes) {
    if (outbox_.empty()) return 0;
    if (outbox_.size() > protocol::decode_limits{}.max_ops_per_message) return -1;
    std::string frame = protocol::encode_binary_ops(ref, outbox_);
    if (frame.size() > max_bytes) return -1;
    result_ = std::move(frame);
    outbox_.clear();
    return 1;
  }

 private:
  /// Applies ops_ and writes the answer of apply_json() to result_.
  void apply_all(bool want_changes, bool binary) {
    changes_.clear();
    std::optional<status> first_error;
    for (const auto& op : ops_) {
      auto r = doc_.apply(op, want_changes ? &changes_ : nullptr);
      if (!r.ok() && !first_error) first_error = r.error();
    }
    if (!first_error) {
      if (binary)
        changes_binary(changes_, &result_);
      else
        result_ = changes_json(changes_);
      return;
    }
    result_ = error_json(*first_error);
    result_.pop_back();
    result_ += ",\"changes\":";
    result_ += changes_json(changes_);
    result_.push_back('}');
  }

 public:
  const std::string& result() const { return result_; }
  std::string text() const { return doc_.text(); }
  double length() const { return static_cast<double>(doc_.length()); }
  double replica() const { return static_cast<double>(doc_.replica()); }
  double pending() const { return static_cast<double>(doc_.pending_ops()); }
  /// The version vector as JSON [[replica, counter], ...].
  std::string version() const {
    std::string out;
    append_version(out, doc_.version());
    return out;
  }
  /// JSON array of every op a replica at `version_json` lacks (or {"error":...}).
  std::string ops_since(const std::string& version_json) const {
    version_vector v;
    status st = read_version(version_json, &v);
    if (!st.ok()) return error_json(st);
    std::string out = "[";
    auto ops = doc_.ops_since(v);
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (i) out.push_back(',');
      append_op(out, ops[i]);
    }
    out.push_back(']');
    return out;
  }
  /// The snapshot bytes (a fresh Uint8Array).
  emscripten::val encode_snapshot() const {
    std::string bytes = doc_.encode_snapshot();
    emscripten::val view(emscripten::typed_memory_view(bytes.size(), reinterpret_cast<const unsigned char*>(bytes.data())));
    emscripten::val copy = emscripten::val::global("Uint8Array").new_(bytes.size());
    copy.call<void>("set", view);
    return copy;
  }
  /// Replaces this replica's state with a snapshot (Uint8Array), keeping its
  /// replica id. Returns "" or an error message (the state is then unchanged).
  std::string load_snapshot(const emscripten::val& bytes) {
    std::vector<unsigned char> buf = emscripten::convertJSArrayToNumberVector<unsigned char>(bytes);
    auto d = document::decode_snapshot(std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()),
                                       doc_.replica());
    if (!d.ok()) return d.error().to_string();
    doc_ = std::move(d.value());
    outbox_.clear();
    return {};
  }
  double memory_usage() const { return static_cast<double>(doc_.memory_usage()); }

 private:
  document doc_;
  std::vector<operation> outbox_;
  std::string last_error_;
  std::vector<operation> ops_;           // reused by apply_json
  std::vector<text_change> changes_;     // reused by apply_json
  static inline int live_ = 0;
  std::string result_;
};


}  // namespace weft::wasm

extern "C" {
/// A reusable buffer of at least `n` bytes in wasm memory for passing text.
EMSCRIPTEN_KEEPALIVE char* weft_scratch(std::size_t n) {
  static std::string buf;
  if (buf.size() < n) buf.resize(n * 2);
  return buf.data();
}
/// Local insert of `n` UTF-8 bytes at `text`: the counter of its first
/// character (>= 1), or 0 on error (see lastError()).
EMSCRIPTEN_KEEPALIVE double weft_insert_utf8(weft::wasm::wasm_document* d, double pos, const char* text,
                                             std::size_t n) {
  return d->insert_utf8(pos, std::string_view(text, n));
}
/// Applies `n` bytes of JSON ops at `json`; the answer (the changes in the
/// binary form of changes_binary(), none when `want_changes` is 0, or error
/// JSON) is at weft_result_ptr(d) / weft_result_len(d).
EMSCRIPTEN_KEEPALIVE void weft_apply_json(weft::wasm::wasm_document* d, const char* json, std::size_t n,
                                          int want_changes) {
  d->apply_json(std::string_view(json, n), want_changes != 0);
}
/// Reads `n` bytes of a binary protocol frame at `frame` for document `ref`
/// (see wasm_document::apply_frame); the answer is at weft_result_ptr(d).
EMSCRIPTEN_KEEPALIVE void weft_apply_frame(weft::wasm::wasm_document* d, const char* frame, std::size_t n, double ref,
                                           int want_changes) {
  d->apply_frame(std::string_view(frame, n), static_cast<std::uint64_t>(ref), want_changes != 0);
}
/// The outgoing ops as one binary frame at weft_result_ptr(d): 1; none: 0;
/// too large for one frame of `max_bytes`: -1 (take them as JSON).
EMSCRIPTEN_KEEPALIVE int weft_take_outgoing_frame(weft::wasm::wasm_document* d, double ref, double max_bytes) {
  return d->take_outgoing_frame(static_cast<std::uint64_t>(ref), static_cast<std::size_t>(max_bytes));
}
/// wasm_document::live(): documents whose memory has not been released.
EMSCRIPTEN_KEEPALIVE int weft_live_documents() { return weft::wasm::wasm_document::live(); }
EMSCRIPTEN_KEEPALIVE const char* weft_result_ptr(weft::wasm::wasm_document* d) { return d->result().data(); }
EMSCRIPTEN_KEEPALIVE std::size_t weft_result_len(weft::wasm::wasm_document* d) { return d->result().size(); }
/// Local delete; 1 on success, 0 on error.
EMSCRIPTEN_KEEPALIVE int weft_erase(weft::wasm::wasm_document* d, double pos, double count) {
  return d->erase_fast(pos, count) ? 1 : 0;
}
}

EMSCRIPTEN_BINDINGS(weft) {
  using weft::wasm::wasm_document;
  emscripten::class_<wasm_document>("Document")
      .constructor<double>()
      .function("insert", &wasm_document::insert)
      .function("erase", &wasm_document::erase)
      .function("handle", &wasm_document::handle)
      .function("lastError", &wasm_document::last_error)
      .function("takeOutgoing", &wasm_document::take_outgoing)
      .function("applyOps", &wasm_document::apply_ops)
      .function("text", &wasm_document::text)
      .function("length", &wasm_document::length)
      .function("replica", &wasm_document::replica)
      .function("pending", &wasm_document::pending)
      .function("version", &wasm_document::version)
      .function("opsSince", &wasm_document::ops_since)
      .function("encodeSnapshot", &wasm_document::encode_snapshot)
      .function("loadSnapshot", &wasm_document::load_snapshot)
      .function("memoryUsage", &wasm_document::memory_usage)
      .function("positionOf", &wasm_document::position_of)
      .function("idAt", &wasm_document::id_at);
}
