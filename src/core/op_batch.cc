// The op-batch format (docs/encoding.md): operations for storage and sync.
#include <algorithm>
#include <unordered_map>

#include "core/byte_io.h"
#include "weft/encoding.h"
#include "weft/unicode.h"

namespace weft {

namespace {

constexpr char magic[4] = {'W', 'E', 'F', 'T'};
constexpr std::uint8_t format_version = 1;
constexpr std::uint8_t kind_batch = 'B';

constexpr std::uint8_t b_erase = 1 << 0;
constexpr std::uint8_t b_left = 1 << 1;
constexpr std::uint8_t b_right = 1 << 2;
constexpr std::uint8_t b_tombstone = 1 << 3;

status corrupt(const std::string& what) { return status(error_code::corrupt_data, "op batch: " + what); }

}  // namespace

std::string encode_ops_compact(std::span<const operation> ops) {
  // Replica ids are written once, in a table; ops refer to them by index.
  std::vector<replica_id> table;
  std::unordered_map<replica_id, std::uint64_t> index;
  auto idx = [&](replica_id r) {
    auto [it, fresh] = index.try_emplace(r, table.size());
    if (fresh) table.push_back(r);
    return it->second;
  };
  detail::byte_writer body;
  body.varint(ops.size());
  for (const operation& op : ops) {
    std::uint8_t flags = static_cast<std::uint8_t>((op.kind == op_kind::erase ? b_erase : 0) |
                                                   (op.kind == op_kind::tombstone ? b_tombstone : 0) |
                                                   (op.origin_left ? b_left : 0) | (op.origin_right ? b_right : 0));
    body.u8(flags);
    body.varint(idx(op.id.replica));
    body.varint(op.id.counter);
    if (op.kind != op_kind::erase) {
      for (const auto& o : {op.origin_left, op.origin_right}) {
        if (!o) continue;
        body.varint(idx(o->replica));
        body.zigzag(static_cast<std::int64_t>(o->counter) - static_cast<std::int64_t>(op.id.counter));
      }
      if (op.kind == op_kind::tombstone) {
        body.varint(op.count);
      } else {
        body.varint(op.text.size());
        body.bytes(op.text);
      }
    } else {
      body.varint(op.targets.size());
      for (const auto& t : op.targets) {
        body.varint(idx(t.replica));
        body.zigzag(static_cast<std::int64_t>(t.counter) - static_cast<std::int64_t>(op.id.counter));
        body.varint(t.length);
      }
    }
  }
  detail::byte_writer w;
  w.varint(table.size());
  for (replica_id r : table) w.varint(r);
  w.bytes(body.str());
  return std::move(w.str());
}

std::string encode_ops(std::span<const operation> ops) {
  detail::byte_writer w;
  w.bytes(std::string_view(magic, 4));
  w.u8(format_version);
  w.u8(kind_batch);
  w.bytes(encode_ops_compact(ops));
  w.fixed32(detail::crc32(w.str()));
  return std::move(w.str());
}

result<std::vector<operation>> decode_ops(std::string_view bytes) {
  if (bytes.size() < 10) return status(error_code::truncated_data, "op batch: shorter than its header");
  if (bytes.substr(0, 4) != std::string_view(magic, 4)) return corrupt("bad magic");
  if (static_cast<std::uint8_t>(bytes[4]) != format_version)
    return status(error_code::unsupported_version,
                  "op batch: format version " + std::to_string(static_cast<std::uint8_t>(bytes[4])));
  if (static_cast<std::uint8_t>(bytes[5]) != kind_batch) return corrupt("not an op batch (wrong kind byte)");
  std::string_view body = bytes.substr(0, bytes.size() - 4);
  detail::byte_reader tail(bytes.substr(bytes.size() - 4));
  if (detail::crc32(body) != tail.fixed32()) return corrupt("checksum mismatch (corrupt or truncated)");
  return decode_ops_compact(body.substr(6));
}

result<std::vector<operation>> decode_ops_compact(std::string_view bytes) {
  detail::byte_reader rd(bytes);
  std::uint64_t nrep = rd.varint();
  if (!rd.ok() || nrep > rd.remaining()) return corrupt("replica table size out of range");
  std::vector<replica_id> table(nrep);
  for (auto& r : table) {
    r = rd.varint();
    if (r > max_replica_id) return corrupt("replica id out of range");
  }
  auto rep = [&]() -> std::optional<replica_id> {
    std::uint64_t i = rd.varint();
    if (i >= nrep) return std::nullopt;
    return table[i];
  };
  auto in_range = [](std::int64_t c) { return c >= 1 && c <= static_cast<std::int64_t>(max_counter); };
  std::uint64_t n = rd.varint();
  if (!rd.ok() || n > rd.remaining()) return corrupt("op count out of range");
  std::vector<operation> ops;
  ops.reserve(n);
  for (std::uint64_t i = 0; i < n && rd.ok(); ++i) {
    operation op;
    std::uint8_t flags = rd.u8();
    if (flags & ~(b_erase | b_left | b_right | b_tombstone) || ((flags & b_erase) && (flags & b_tombstone)))
      return corrupt("unknown op flags");
    auto r = rep();
    if (!r) return corrupt("op replica out of range");
    op.id = op_id{*r, rd.varint()};
    if (!in_range(static_cast<std::int64_t>(std::min<std::uint64_t>(op.id.counter, max_counter + 1))))
      return corrupt("op counter out of range");
    auto base = static_cast<std::int64_t>(op.id.counter);
    if (!(flags & b_erase)) {
      op.kind = (flags & b_tombstone) ? op_kind::tombstone : op_kind::insert;
      for (int k = 0; k < 2; ++k) {
        if (!(flags & (k == 0 ? b_left : b_right))) continue;
        auto orep = rep();
        std::int64_t c = rd.offset(base);
        if (!orep || !in_range(c)) return corrupt("origin out of range");
        (k == 0 ? op.origin_left : op.origin_right) = op_id{*orep, static_cast<std::uint64_t>(c)};
      }
      if (op.kind == op_kind::tombstone) {
        op.count = rd.varint();
        if (op.count == 0 || op.count > max_counter) return corrupt("tombstone count out of range");
        ops.push_back(std::move(op));
        continue;
      }
      std::uint64_t len = rd.varint();
      op.text = std::string(rd.bytes(len));
      if (!rd.ok()) break;
      if (op.text.empty() || !is_valid_utf8(op.text)) return corrupt("insert text empty or not UTF-8");
    } else {
      if (flags & (b_left | b_right)) return corrupt("erase with origins");
      op.kind = op_kind::erase;
      std::uint64_t nt = rd.varint();
      if (nt == 0 || nt > rd.remaining()) return corrupt("erase target count out of range");
      for (std::uint64_t k = 0; k < nt && rd.ok(); ++k) {
        auto trep = rep();
        std::int64_t c = rd.offset(base);
        std::uint64_t len = rd.varint();
        if (!trep || !in_range(c) || len == 0 || len > max_counter ||
            static_cast<std::uint64_t>(c) + len - 1 > max_counter)
          return corrupt("erase target out of range");
        op.targets.push_back(id_span{*trep, static_cast<std::uint64_t>(c), len});
      }
    }
    ops.push_back(std::move(op));
  }
  if (!rd.ok()) return status(error_code::truncated_data, "op batch: ends early");
  if (!rd.at_end()) return corrupt("trailing bytes");
  return ops;
}

}  // namespace weft
