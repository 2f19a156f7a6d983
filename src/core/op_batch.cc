// The op-batch format (docs/encoding.md): operations for storage and sync.
#include <algorithm>
#include <unordered_map>
#include <vector>

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

namespace {

// The replica ids of a batch in first-use order; ops refer to them by index.
// A batch names few replicas (a keystroke's: one or two), so a linear scan
// beats a hash map, which is built only once the table grows past a few.
class replica_table {
 public:
  std::uint64_t index(replica_id r) {
    if (map_.empty()) {
      for (std::size_t i = 0; i < ids_.size(); ++i)
        if (ids_[i] == r) return i;
      if (ids_.size() < linear_limit) {
        ids_.push_back(r);
        return ids_.size() - 1;
      }
      for (std::size_t i = 0; i < ids_.size(); ++i) map_.emplace(ids_[i], i);
    }
    auto [it, fresh] = map_.try_emplace(r, ids_.size());
    if (fresh) ids_.push_back(r);
    return it->second;
  }
  const std::vector<replica_id>& ids() const noexcept { return ids_; }

 private:
  static constexpr std::size_t linear_limit = 16;
  std::vector<replica_id> ids_;
  std::unordered_map<replica_id, std::uint64_t> map_;
};

}  // namespace

std::string encode_ops_compact(std::span<const operation> ops) {
  // The table comes first, so a first pass fills it in the order the ops
  // name replicas; the second writes everything into one buffer.
  replica_table table;
  std::size_t text = 0;
  for (const operation& op : ops) {
    table.index(op.id.replica);
    if (op.kind != op_kind::erase) {
      if (op.origin_left) table.index(op.origin_left->replica);
      if (op.origin_right) table.index(op.origin_right->replica);
      text += op.text.size();
    } else {
      for (const auto& t : op.targets) table.index(t.replica);
    }
  }
  detail::byte_writer w;
  w.str().reserve(16 + table.ids().size() * 8 + ops.size() * 12 + text);
  w.varint(table.ids().size());
  for (replica_id r : table.ids()) w.varint(r);
  w.varint(ops.size());
  for (const operation& op : ops) {
    std::uint8_t flags = static_cast<std::uint8_t>((op.kind == op_kind::erase ? b_erase : 0) |
                                                   (op.kind == op_kind::tombstone ? b_tombstone : 0) |
                                                   (op.origin_left ? b_left : 0) | (op.origin_right ? b_right : 0));
    w.u8(flags);
    w.varint(table.index(op.id.replica));
    w.varint(op.id.counter);
    if (op.kind != op_kind::erase) {
      for (const auto& o : {op.origin_left, op.origin_right}) {
        if (!o) continue;
        w.varint(table.index(o->replica));
        w.zigzag(static_cast<std::int64_t>(o->counter) - static_cast<std::int64_t>(op.id.counter));
      }
      if (op.kind == op_kind::tombstone) {
        w.varint(op.count);
      } else {
        w.varint(op.text.size());
        w.bytes(op.text);
      }
    } else {
      w.varint(op.targets.size());
      for (const auto& t : op.targets) {
        w.varint(table.index(t.replica));
        w.zigzag(static_cast<std::int64_t>(t.counter) - static_cast<std::int64_t>(op.id.counter));
        w.varint(t.length);
      }
    }
  }
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
