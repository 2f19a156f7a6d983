// Binary frames of the protocol (include/weft/protocol.h, docs/protocol.md
// "Binary frames"): ops and acks of an open document in a few bytes.
#include "weft/encoding.h"
#include "weft/protocol.h"

namespace weft::protocol {

namespace {

constexpr std::uint8_t kind_ops = 1;
constexpr std::uint8_t kind_ack = 2;

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Reads a varint at `*p`; false when the input ends first or it is over 64 bits.
bool get_varint(std::string_view in, std::size_t* p, std::uint64_t* out) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*p >= in.size()) return false;
    auto b = static_cast<std::uint8_t>(in[(*p)++]);
    if (shift == 63 && b > 1) return false;
    v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

decode_error bad(std::string m) { return decode_error{error_kind::bad_message, std::move(m), {}}; }

}  // namespace

std::string encode_binary_ops(std::uint64_t ref, std::span<const operation> ops) {
  std::string out;
  out.push_back(static_cast<char>(kind_ops));
  put_varint(out, ref);
  out += encode_ops_compact(ops);
  return out;
}

std::string encode_binary_ack(std::uint64_t ref, const version_vector& version) {
  std::string out;
  out.push_back(static_cast<char>(kind_ack));
  put_varint(out, ref);
  put_varint(out, version.entries().size());
  for (const auto& [r, c] : version.entries()) {
    put_varint(out, r);
    put_varint(out, c);
  }
  return out;
}

std::variant<binary_message, decode_error> decoder::binary(std::string_view frame, const decode_limits& limits) try {
  if (frame.empty()) return bad("empty binary frame");
  const auto kind = static_cast<std::uint8_t>(frame[0]);
  std::size_t p = 1;
  std::uint64_t ref = 0;
  if (!get_varint(frame, &p, &ref) || ref == 0) return bad("binary frame without a document ref");
  if (kind == kind_ops) {
    auto ops = decode_ops_compact(frame.substr(p));
    if (!ops.ok()) return bad("binary ops: " + ops.error().detail());
    if (ops.value().size() > limits.max_ops_per_message)
      return decode_error{error_kind::too_large,
                          "more than " + std::to_string(limits.max_ops_per_message) + " ops in one message", {}};
    if (ops.value().empty()) return bad("binary ops frame without ops");
    return binary_message(binary_ops{ref, std::move(ops.value())});
  }
  if (kind == kind_ack) {
    std::uint64_t n = 0;
    if (!get_varint(frame, &p, &n) || n > frame.size()) return bad("binary ack: bad entry count");
    if (n > limits.max_version_entries) return decode_error{error_kind::too_large, "version vector too long", {}};
    binary_ack a{ref, {}};
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint64_t r = 0, c = 0;
      if (!get_varint(frame, &p, &r) || !get_varint(frame, &p, &c)) return bad("binary ack: truncated");
      if (r > max_replica_id || c == 0 || c > max_counter || a.version.get(r) != 0)
        return bad("binary ack: entry out of range or repeated");
      a.version.set(r, c);
    }
    if (p != frame.size()) return bad("binary ack: trailing bytes");
    return binary_message(std::move(a));
  }
  return bad("unknown binary frame kind " + std::to_string(kind));
} catch (const std::exception& e) {
  return decode_error{error_kind::internal, std::string("cannot decode: ") + e.what(), {}};
}

}  // namespace weft::protocol
