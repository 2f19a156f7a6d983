// The weft wire protocol (docs/protocol.md): JSON text frames, one message
// type per "type". This module is pure — no sockets, no threads — so it is
// tested on its own and any transport can use it.
#pragma once

#include <simdjson.h>

#include <cstdint>
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
const char* error_kind_name(error_kind k) noexcept;

struct hello_msg {
  std::uint64_t protocol = 0;
  std::string client;
  std::string token;  // access token (when the server requires one); never logged
};
struct open_msg {
  std::string doc;
  version_vector version;
};
struct ops_msg {
  std::string doc;
  std::vector<operation> ops;
};
struct presence_msg {
  std::string doc;
  std::string state_json;  // a JSON object (compact) or "null"
};
struct close_msg {
  std::string doc;
};
struct ping_msg {};

using client_message = std::variant<hello_msg, open_msg, ops_msg, presence_msg, close_msg, ping_msg>;

struct parse_error {
  error_kind kind;
  std::string message;
  std::string doc;  // the document concerned, when known
};

/// Bounds applied while parsing (the frame size itself is enforced by the transport).
struct parse_limits {
  std::size_t max_ops_per_message = 10000;
  std::size_t max_presence_bytes = 4096;
  std::size_t max_version_entries = 100000;
};

/// True when `id` is a valid document id: 1-128 of [A-Za-z0-9._~-].
bool valid_doc_id(std::string_view id) noexcept;

/// Parses one frame from a client. `parser` is reused between calls (one
/// per connection; not thread-safe). Never throws.
std::variant<client_message, parse_error> parse_client_message(simdjson::dom::parser& parser, std::string_view frame,
                                                               const parse_limits& limits = {});

/// Parses an operation list as produced by encode_ops_message ("ops" array);
/// used by clients and tests. Never throws.
std::variant<std::vector<operation>, parse_error> parse_ops_array(simdjson::dom::element ops);

// ---- server -> client ---------------------------------------------------------

std::string encode_welcome(std::string_view server_name, std::uint64_t max_message_bytes);
/// The answer to "open" for any amount of history: "ops" messages of at most
/// about `budget` bytes each (inserts larger than that are split), then the
/// final "sync" with the rest and the server's version.
std::vector<std::string> encode_sync_chunked(std::string_view doc, const std::vector<operation>& ops,
                                             const version_vector& server_version, std::size_t budget);
std::string encode_ops_message(std::string_view doc, const std::vector<operation>& ops);
/// Acknowledges that every id (replica, 1..counter) of each entry is durable.
std::string encode_ack(std::string_view doc, const version_vector& durable);
std::string encode_presence(std::string_view doc, std::uint64_t session, std::string_view state_json);
std::string encode_closed(std::string_view doc);
std::string encode_pong();
std::string encode_error(error_kind kind, std::string_view message, std::string_view doc = {});

}  // namespace weft::protocol
