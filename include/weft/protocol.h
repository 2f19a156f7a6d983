// weft — the wire protocol codec (docs/protocol.md): every message in both
// directions, as C++ values, encoded to and decoded from JSON text frames.
//
// One codec for every side: weft-server, weft::client, the test client, the
// benchmarks, the bots and the terminal editor all speak through it, and the
// C API and the WebAssembly build read ops with the same op parser. It does
// no I/O and holds no sockets, so any transport can carry it.
//
// Decoding is strict: malformed JSON, unknown fields, duplicate fields, wrong
// types and out-of-range ids are errors with a machine-readable kind. The
// decoder never throws and never reads past the bytes it is given.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "weft/operation.h"
#include "weft/types.h"

namespace weft::protocol {

/// Version of the protocol this build speaks; sent in hello/welcome.
inline constexpr std::uint64_t protocol_version = 1;

/// Machine-readable error codes sent in "error" messages. Never rename one:
/// clients match on them.
enum class error_kind {
  bad_json,          // the frame is not JSON
  bad_message,       // JSON, but a field is missing, of the wrong type, or unknown
  unknown_type,      // "type" names no message
  protocol_version,  // hello asked for a protocol version we do not speak
  not_hello,         // the first message was not hello
  bad_doc_id,        // a document id that is empty, too long or has other characters
  not_open,          // a message names a document this connection has not opened
  invalid_op,        // an operation the document rejects
  too_large,         // frame, text or list over a limit
  limit,             // another limit (documents per connection, pending ops, queue)
  storage,           // the server could not store the ops (they are not acknowledged)
  internal,          // a bug; the server stays up
  unauthorized,      // no valid token (missing, forged, expired); the connection is closed
  forbidden,         // the token does not allow this on this document
  rate_limited,      // too many messages; the connection is closed
};
/// The wire name of `k` ("bad_json", ...).
const char* error_kind_name(error_kind k) noexcept;
/// The kind named `name`; false when no kind has that name (a newer server's
/// code: treat it like `internal`).
bool error_kind_from_name(std::string_view name, error_kind* out) noexcept;

/// True when `id` is a valid document id: 1-128 of [A-Za-z0-9._~-].
bool valid_doc_id(std::string_view id) noexcept;

// ---- client -> server ---------------------------------------------------------

struct hello_msg {
  std::uint64_t protocol = protocol_version;
  std::string client;  // free text, optional (the server keeps at most 200 bytes)
  std::string token;   // access token when the server requires one; never logged
  bool binary = false; // asks for binary frames for ops and acks (see below)
  bool operator==(const hello_msg&) const = default;
};
struct open_msg {
  std::string doc;
  version_vector version;
  /// Write concern: 2 or more asks for "replicated" messages once this
  /// connection's ops are durable in that many regions (docs/replication.md).
  /// 0 or 1: acks only.
  std::uint64_t regions = 0;
  /// A client whose replica is empty asks for the document as one snapshot
  /// frame (binary frames on) instead of its history as ops: much faster to
  /// send and to load. Only to a server whose welcome offered snapshots. The
  /// server answers with ops instead for a non-empty `version`, without
  /// binary frames, for an empty document, or past --max-snapshot-frame-bytes.
  bool snapshot = false;
  bool operator==(const open_msg&) const = default;
};
/// The most regions a write concern may ask for.
inline constexpr std::uint64_t max_regions = 16;
/// "ops" in either direction.
struct ops_msg {
  std::string doc;
  std::vector<operation> ops;
  /// Client to server only: a write concern for these ops (2 to
  /// max_regions; 0 or 1: acks only): a "replicated" message follows once
  /// they are durable in that many regions (docs/replication.md).
  std::uint64_t regions = 0;
  bool operator==(const ops_msg&) const = default;
};
struct presence_msg {
  std::string doc;
  std::string state_json;  // a JSON object (compact) or "null"
  bool operator==(const presence_msg&) const = default;
};
struct close_msg {
  std::string doc;
  bool operator==(const close_msg&) const = default;
};
struct ping_msg {
  bool operator==(const ping_msg&) const = default;
};

using client_message = std::variant<hello_msg, open_msg, ops_msg, presence_msg, close_msg, ping_msg>;

// ---- server -> client ---------------------------------------------------------

struct welcome_msg {
  std::uint64_t protocol = protocol_version;
  std::string server;
  std::uint64_t max_message_bytes = 0;
  bool binary = false;  // binary frames were asked for and are on
  /// The server answers an open's "snapshot":true with a snapshot frame
  /// (binary frames on). A client asks only a server that says so: older
  /// servers refuse the field.
  bool snapshot = false;
  bool operator==(const welcome_msg&) const = default;
};
/// The end of the answer to "open": the last ops the client lacked and the
/// server's version vector.
struct sync_msg {
  std::string doc;
  std::vector<operation> ops;
  version_vector version;
  std::uint64_t ref = 0;  // with binary frames on: the document's number in them (0: none)
  bool operator==(const sync_msg&) const = default;
};
/// Every id (replica, 1..counter) of each entry is durable on the server.
struct ack_msg {
  std::string doc;
  version_vector version;
  bool operator==(const ack_msg&) const = default;
};
/// Another connection's presence.
struct peer_presence_msg {
  std::string doc;
  std::uint64_t session = 0;
  std::string state_json;  // a JSON object (compact) or "null"
  bool operator==(const peer_presence_msg&) const = default;
};
struct closed_msg {
  std::string doc;
  bool operator==(const closed_msg&) const = default;
};
/// This connection's ops in `version` are durable in at least `regions`
/// regions (sent when asked for with open's "regions").
struct replicated_msg {
  std::string doc;
  version_vector version;
  std::uint64_t regions = 0;
  bool operator==(const replicated_msg&) const = default;
};
struct pong_msg {
  bool operator==(const pong_msg&) const = default;
};
struct error_msg {
  error_kind kind = error_kind::internal;
  std::string code;  // the wire name; kept as sent when it names no known kind
  std::string message;
  std::string doc;  // empty when the error concerns no document
  bool operator==(const error_msg&) const = default;
};

using server_message =
    std::variant<welcome_msg, sync_msg, ops_msg, ack_msg, peer_presence_msg, closed_msg, pong_msg, error_msg,
                 replicated_msg>;

// ---- binary frames -------------------------------------------------------------
// With binary frames on (hello's "binary":true, confirmed by welcome), the
// common messages of an open document travel as binary WebSocket frames:
//   u8 kind (1: ops, 2: ack, 3: snapshot), varint ref (the document's number,
//   from sync), ops: the op list of docs/encoding.md; ack: varint n,
//   (varint replica, varint counter) x n; snapshot (server to client only,
//   before the sync of an open that asked for it): varint n, the document id
//   (n bytes), then the snapshot of docs/encoding.md to the end.
// A keystroke's rebroadcast is then ~20 bytes instead of ~120. Every other
// message stays JSON text. A binary frame never starts with '{'.

struct binary_ops {
  std::uint64_t ref = 0;
  std::vector<operation> ops;
  bool operator==(const binary_ops&) const = default;
};
struct binary_ack {
  std::uint64_t ref = 0;
  version_vector version;
  bool operator==(const binary_ack&) const = default;
};
struct binary_snapshot {
  std::uint64_t ref = 0;
  std::string doc;
  std::string bytes;  // the snapshot format of docs/encoding.md (checked when loaded, not here)
  bool operator==(const binary_snapshot&) const = default;
};
using binary_message = std::variant<binary_ops, binary_ack, binary_snapshot>;

std::string encode_binary_ops(std::uint64_t ref, std::span<const operation> ops);
std::string encode_binary_ack(std::uint64_t ref, const version_vector& version);
/// A document's snapshot (document::encode_snapshot()) for a client that asked for one.
std::string encode_binary_snapshot(std::uint64_t ref, std::string_view doc, std::string_view snapshot);

// ---- decoding -----------------------------------------------------------------

struct decode_error {
  error_kind kind = error_kind::bad_message;
  std::string message;
  std::string doc;  // the document concerned, when known
};

/// Bounds applied while decoding (the frame size itself is the transport's).
struct decode_limits {
  std::size_t max_ops_per_message = 10000;
  std::size_t max_presence_bytes = 4096;
  std::size_t max_version_entries = 100000;
};

/// What a client accepts from its server: it trusts it, so only the frame
/// size (the transport's) bounds a message (a sync may hold a whole history).
inline constexpr decode_limits server_message_limits{1u << 30, 1u << 20, 1u << 30};

/// Decodes frames. Holds the JSON parser's buffers, reused from frame to
/// frame. Not thread-safe: one per thread (or per connection). Never throws.
class decoder {
 public:
  /// Bytes that must be readable (allocated; any content) after a frame for
  /// the decoder to parse it in place. Shorter frames are copied first.
  static constexpr std::size_t padding = 64;

  decoder();
  ~decoder();
  decoder(decoder&&) noexcept;
  decoder& operator=(decoder&&) noexcept;

  /// A client's message (what a server receives). `readable` is how many
  /// bytes from frame.data() may be read (>= frame.size()); with at least
  /// frame.size() + padding the frame is parsed without a copy.
  std::variant<client_message, decode_error> client(std::string_view frame, const decode_limits& limits = {},
                                                    std::size_t readable = 0);
  /// A server's message (what a client receives). Limits as above; a client
  /// usually passes large ones, as it trusts its server.
  std::variant<server_message, decode_error> server(std::string_view frame, const decode_limits& limits = {},
                                                    std::size_t readable = 0);
  /// A binary frame (either direction). Stateless; errors: bad_message, too_large.
  static std::variant<binary_message, decode_error> binary(std::string_view frame, const decode_limits& limits = {});

 private:
  struct impl;
  std::unique_ptr<impl> p_;
};

// ---- encoding -----------------------------------------------------------------
// Every encoder returns one compact JSON text frame. Thread-safe (pure).

std::string encode(const client_message& m);
std::string encode(const server_message& m);

std::string encode_hello(const hello_msg& m);
std::string encode_open(std::string_view doc, const version_vector& version, std::uint64_t regions = 0,
                        bool snapshot = false);
/// `regions` (client to server): a write concern for these ops (see ops_msg).
std::string encode_ops(std::string_view doc, std::span<const operation> ops, std::uint64_t regions = 0);
/// A client's presence: `state_json` must be a JSON object or "null".
/// Ops of any amount as "ops" messages that each stay below about `budget`
/// bytes (use half the server's max_message_bytes) and hold at most `max_ops`
/// ops: long inserts and erases with many targets are split into consecutive
/// ops with the same meaning. Empty for no ops. Use it for anything a user
/// may have made large: a paste, a post-sync resend after long offline work.
std::vector<std::string> encode_ops_chunked(std::string_view doc, std::span<const operation> ops, std::size_t budget,
                                            std::size_t max_ops = 10000);
/// The same as binary frames.
std::vector<std::string> encode_binary_ops_chunked(std::uint64_t ref, std::span<const operation> ops,
                                                   std::size_t budget, std::size_t max_ops = 10000);
std::string encode_presence(std::string_view doc, std::string_view state_json);
std::string encode_close(std::string_view doc);
std::string encode_ping();

std::string encode_welcome(std::string_view server_name, std::uint64_t max_message_bytes, bool binary = false,
                           bool snapshot = false);
std::string encode_sync(std::string_view doc, std::span<const operation> ops, const version_vector& server_version,
                        std::uint64_t ref = 0);
/// The answer to "open" for any amount of history: "ops" messages of at most
/// about `budget` bytes each (inserts larger than that are split), then the
/// final "sync" with the rest and the server's version.
std::vector<std::string> encode_sync_chunked(std::string_view doc, std::span<const operation> ops,
                                             const version_vector& server_version, std::size_t budget,
                                             std::uint64_t ref = 0);
std::string encode_ack(std::string_view doc, const version_vector& durable);
std::string encode_replicated(std::string_view doc, const version_vector& durable, std::uint64_t regions);
/// Another connection's presence, relayed.
std::string encode_peer_presence(std::string_view doc, std::uint64_t session, std::string_view state_json);
std::string encode_closed(std::string_view doc);
std::string encode_pong();
std::string encode_error(error_kind kind, std::string_view message, std::string_view doc = {});

// ---- JSON strings -------------------------------------------------------------
// The codec's own string writer and reader, for programs that put strings
// into JSON next to its messages (presence states, scripts, logs).
// Thread-safe (pure); never throw.

/// Appends `s` as a JSON string literal (with quotes), escaped exactly as the
/// encoders escape strings: `"` `\` and control characters; bytes >= 0x80 are
/// copied unchanged (pass valid UTF-8 to get valid JSON).
void append_json_string(std::string& out, std::string_view s);

/// Reads the JSON string literal at the start of `json` (white space before
/// it allowed) into *out, decoded to UTF-8 by the decoder's rules: RFC 8259
/// escapes only, \u surrogates only as a valid pair, no raw control
/// characters, the result valid UTF-8. Returns the bytes consumed (white
/// space and both quotes; what follows is the caller's), or 0 when `json`
/// does not start with a valid literal; *out is then left unchanged.
std::size_t read_json_string(std::string_view json, std::string* out);

/// The string value of the top-level field `key` of the JSON object
/// `object_json` (e.g. a presence state), the last one when the key is
/// repeated; nested objects and arrays are skipped, never searched. False,
/// with *out unchanged, when `object_json` is not one valid JSON object
/// (white space around it allowed), has no such field, or that field's
/// (last) value is not a string.
bool read_json_string_field(std::string_view object_json, std::string_view key, std::string* out);

}  // namespace weft::protocol
