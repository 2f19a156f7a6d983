// Binary frames of the protocol (include/weft/protocol.h, docs/protocol.md
// "Binary frames"): ops and acks of an open document in a few bytes.
#include "core/byte_io.h"  // the varints of the op-batch format
#include "weft/encoding.h"
#include "weft/protocol.h"

namespace weft::protocol {

namespace {

constexpr std::uint8_t kind_ops = 1;
constexpr std::uint8_t kind_ack = 2;
constexpr std::uint8_t kind_snapshot = 3;

decode_error bad(std::string m) { return decode_error{error_kind::bad_message, std::move(m), {}}; }

}  // namespace

std::string encode_binary_ops(std::uint64_t ref, std::span<const operation> ops) {
  // The op list already has room to spare: the frame's few header bytes go
  // in front of it rather than into a second buffer (one keystroke, one
  // allocation).
  detail::byte_writer head;
  head.u8(kind_ops);
  head.varint(ref);
  std::string frame = encode_ops_compact(ops);
  frame.insert(0, head.str());
  return frame;
}

std::string encode_binary_ack(std::uint64_t ref, const version_vector& version) {
  detail::byte_writer w;
  w.u8(kind_ack);
  w.varint(ref);
  w.varint(version.entries().size());
  for (const auto& [r, c] : version.entries()) {
    w.varint(r);
    w.varint(c);
  }
  return std::move(w.str());
}

std::string encode_binary_snapshot(std::uint64_t ref, std::string_view doc, std::string_view snapshot) {
  detail::byte_writer w;
  w.u8(kind_snapshot);
  w.varint(ref);
  w.varint(doc.size());
  w.bytes(doc);
  w.bytes(snapshot);
  return std::move(w.str());
}

namespace {

std::variant<binary_message, decode_error> decode_binary(std::string_view frame, const decode_limits& limits) {
  if (frame.empty()) return bad("empty binary frame");
  detail::byte_reader rd(frame);
  const std::uint8_t kind = rd.u8();
  const std::uint64_t ref = rd.varint();
  if (!rd.ok() || ref == 0) return bad("binary frame without a document ref");
  if (kind == kind_ops) {
    auto ops = decode_ops_compact(frame.substr(frame.size() - rd.remaining()));
    if (!ops.ok()) return bad("binary ops: " + ops.error().detail());
    if (ops.value().size() > limits.max_ops_per_message)
      return decode_error{error_kind::too_large,
                          "more than " + std::to_string(limits.max_ops_per_message) + " ops in one message", {}};
    if (ops.value().empty()) return bad("binary ops frame without ops");
    return binary_message(binary_ops{ref, std::move(ops.value())});
  }
  if (kind == kind_ack) {
    const std::uint64_t n = rd.varint();
    if (!rd.ok() || n > rd.remaining()) return bad("binary ack: bad entry count");
    if (n > limits.max_version_entries) return decode_error{error_kind::too_large, "version vector too long", {}};
    binary_ack a{ref, {}};
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t r = rd.varint(), c = rd.varint();
      if (!rd.ok()) return bad("binary ack: truncated");
      if (r > max_replica_id || c == 0 || c > max_counter || a.version.get(r) != 0)
        return bad("binary ack: entry out of range or repeated");
      a.version.set(r, c);
    }
    if (!rd.at_end()) return bad("binary ack: trailing bytes");
    return binary_message(std::move(a));
  }
  if (kind == kind_snapshot) {
    const std::uint64_t n = rd.varint();
    if (!rd.ok() || n > rd.remaining()) return bad("binary snapshot: bad document id length");
    binary_snapshot s{ref, std::string(frame.substr(frame.size() - rd.remaining(), n)), {}};
    if (!valid_doc_id(s.doc)) return bad("binary snapshot: invalid document id");
    s.bytes = std::string(frame.substr(frame.size() - rd.remaining() + n));
    if (s.bytes.empty()) return bad("binary snapshot without a snapshot");
    return binary_message(std::move(s));
  }
  return bad("unknown binary frame kind " + std::to_string(kind));
}

}  // namespace

std::variant<binary_message, decode_error> decoder::binary(std::string_view frame, const decode_limits& limits) {
#if defined(__cpp_exceptions)
  try {
    return decode_binary(frame, limits);
  } catch (const std::exception& e) {
    return decode_error{error_kind::internal, std::string("cannot decode: ") + e.what(), {}};
  }
#else
  // The WebAssembly core is built without exceptions (an allocation failure
  // aborts there anyway).
  return decode_binary(frame, limits);
#endif
}

}  // namespace weft::protocol
