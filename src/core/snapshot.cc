// The snapshot format (docs/encoding.md): a whole replica in one blob.
#include <string>

#include "core/byte_io.h"
#include "core/sequence_state.h"
#include "core/utf8.h"
#include "weft/unicode.h"

namespace weft {

namespace {

constexpr char magic[4] = {'W', 'E', 'F', 'T'};
constexpr std::uint8_t format_version = 1;
constexpr std::uint8_t kind_snapshot = 'S';

// Run flag bits.
constexpr std::uint8_t f_deleted = 1 << 0;
constexpr std::uint8_t f_same_replica = 1 << 1;  // replica as the previous run's
constexpr std::uint8_t f_left_shift = 2;          // 2 bits: left origin mode
constexpr std::uint8_t f_right_shift = 4;         // 2 bits: right origin mode
// Origin modes.
constexpr std::uint8_t o_none = 0;
constexpr std::uint8_t o_adjacent = 1;  // left: last char of the previous run; right: first char of the next run
constexpr std::uint8_t o_own = 2;       // same replica as the run: counter delta only
constexpr std::uint8_t o_other = 3;     // replica index + counter

void put_origin(detail::byte_writer& w, detail::ref o, const detail::run& r) {
  if (o.replica != r.replica) w.varint(o.replica);
  w.zigzag(static_cast<std::int64_t>(o.counter) - static_cast<std::int64_t>(r.counter));
}

std::uint8_t origin_mode(detail::ref o, detail::ref adjacent, const detail::run& r) {
  if (o.none()) return o_none;
  if (o == adjacent) return o_adjacent;
  return o.replica == r.replica ? o_own : o_other;
}

status corrupt(const char* what) { return status(error_code::corrupt_data, std::string("snapshot: ") + what); }

}  // namespace

std::string document::encode_snapshot() const {
  const sequence_state& s = *s_;
  detail::byte_writer w;
  w.bytes(std::string_view(magic, 4));
  w.u8(format_version);
  w.u8(kind_snapshot);
  w.varint(s.globals_.size());
  for (std::size_t i = 0; i < s.globals_.size(); ++i) {
    w.varint(s.globals_[i]);
    w.varint(s.vv_.get(s.globals_[i]));
  }
  // Runs in document order. Collect first so each run can look at its neighbours.
  std::vector<const detail::run*> runs;
  runs.reserve(s.tree_.total() / 2 + 1);
  s.tree_.for_each_run([&](const detail::run& r, std::string_view) { runs.push_back(&r); });
  w.varint(runs.size());
  std::vector<std::uint32_t> next_counter(s.globals_.size(), 1);
  std::string text;
  detail::ref prev_last{};
  std::uint32_t prev_replica = detail::no_replica;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const detail::run& r = *runs[i];
    detail::ref next_first = i + 1 < runs.size() ? runs[i + 1]->id_at(0) : detail::ref{};
    std::uint8_t lm = origin_mode(r.left, prev_last, r);
    std::uint8_t rm = origin_mode(r.right, next_first, r);
    std::uint8_t flags = static_cast<std::uint8_t>((r.deleted ? f_deleted : 0) |
                                                   (r.replica == prev_replica ? f_same_replica : 0) |
                                                   (lm << f_left_shift) | (rm << f_right_shift));
    w.u8(flags);
    if (r.replica != prev_replica) w.varint(r.replica);
    w.zigzag(static_cast<std::int64_t>(r.counter) - next_counter[r.replica]);
    w.varint(r.length);
    if (lm >= o_own) put_origin(w, r.left, r);
    if (rm >= o_own) put_origin(w, r.right, r);
    if (!r.deleted) text.append(s.tree_.arena_text(r.text_offset, r.text_bytes));
    next_counter[r.replica] = r.counter + r.length;
    prev_replica = r.replica;
    prev_last = r.id_at(r.length - 1);
  }
  w.varint(text.size());
  w.bytes(text);
  // History.
  const auto& entries = s.log_.entries();
  const auto& targets = s.log_.targets();
  w.varint(entries.size());
  std::fill(next_counter.begin(), next_counter.end(), 1);
  for (const auto& e : entries) {
    w.varint((static_cast<std::uint64_t>(e.replica) << 1) | e.is_erase);
    w.zigzag(static_cast<std::int64_t>(e.counter) - next_counter[e.replica]);
    w.varint(e.length);
    next_counter[e.replica] = e.counter + e.length;
    if (!e.is_erase) continue;
    w.varint(e.targets_count);
    for (std::uint32_t i = e.targets_begin; i < e.targets_begin + e.targets_count; ++i) {
      const auto& t = targets[i];
      w.varint(t.replica);
      w.zigzag(static_cast<std::int64_t>(t.counter) - static_cast<std::int64_t>(e.counter));
      w.varint((static_cast<std::uint64_t>(t.length) << 1) | t.reverse);
    }
  }
  w.fixed32(detail::crc32(w.str()));
  return std::move(w.str());
}

result<document> document::decode_snapshot(std::string_view bytes, replica_id replica, document_options options) {
  if (bytes.size() < 10) return status(error_code::truncated_data, "snapshot: shorter than its header");
  if (bytes.substr(0, 4) != std::string_view(magic, 4)) return corrupt("bad magic (not a weft snapshot)");
  if (static_cast<std::uint8_t>(bytes[4]) != format_version)
    return status(error_code::unsupported_version,
                  "snapshot: format version " + std::to_string(static_cast<std::uint8_t>(bytes[4])));
  if (static_cast<std::uint8_t>(bytes[5]) != kind_snapshot) return corrupt("not a snapshot (wrong kind byte)");
  std::string_view body = bytes.substr(0, bytes.size() - 4);
  detail::byte_reader tail(bytes.substr(bytes.size() - 4));
  if (detail::crc32(body) != tail.fixed32()) return corrupt("checksum mismatch (corrupt or truncated)");

  detail::byte_reader rd(body.substr(6));
  auto st = std::make_unique<sequence_state>(replica, options);
  sequence_state& s = *st;
  // The table is rebuilt in the snapshot's order; our own id may already be interned.
  std::uint64_t nrep = rd.varint();
  if (!rd.ok() || nrep > rd.remaining()) return corrupt("replica count out of range");
  std::vector<std::uint32_t> local(nrep);
  std::vector<std::uint64_t> vv(nrep);
  s.locals_.clear();
  s.globals_.clear();
  for (std::uint64_t i = 0; i < nrep; ++i) {
    std::uint64_t g = rd.varint();
    vv[i] = rd.varint();
    if (!rd.ok()) break;
    if (g > max_replica_id || vv[i] > max_counter) return corrupt("replica id or version out of range");
    if (s.locals_.count(g)) return corrupt("replica listed twice");
    local[i] = s.intern(g);
    if (vv[i] > 0) s.vv_.set(g, vv[i]);
  }
  s.intern(s.self_);
  std::uint64_t nruns = rd.varint();
  if (!rd.ok() || nruns > rd.remaining()) return corrupt("run count out of range");
  std::vector<detail::run> runs(nruns);
  std::vector<std::uint32_t> next_counter(nrep, 1);
  std::uint32_t prev_replica = detail::no_replica;
  std::uint64_t visible_cps = 0;
  std::vector<std::uint8_t> right_adjacent(nruns, 0);
  auto read_origin = [&](const detail::run& r, std::uint8_t mode, detail::ref* o) {
    std::uint64_t rep = r.replica;
    if (mode == o_other) rep = rd.varint();
    std::int64_t c = rd.offset(static_cast<std::int64_t>(r.counter));
    if (rep >= nrep || c < 1 || c > static_cast<std::int64_t>(max_counter)) return false;
    *o = detail::ref{static_cast<std::uint32_t>(rep), static_cast<std::uint32_t>(c)};
    return true;
  };
  for (std::uint64_t i = 0; i < nruns && rd.ok(); ++i) {
    detail::run& r = runs[i];
    std::uint8_t flags = rd.u8();
    if (flags & 0xC0) return corrupt("unknown run flags");
    if (flags & f_same_replica) {
      if (prev_replica == detail::no_replica) return corrupt("first run refers to a previous replica");
      r.replica = prev_replica;
    } else {
      std::uint64_t rep = rd.varint();
      if (rep >= nrep) return corrupt("run replica out of range");
      r.replica = static_cast<std::uint32_t>(rep);
    }
    std::int64_t c = rd.offset(static_cast<std::int64_t>(next_counter[r.replica]));
    std::uint64_t len = rd.varint();
    if (c < 1 || len == 0 || static_cast<std::uint64_t>(c) + len - 1 > vv[r.replica]) return corrupt("run ids out of range");
    r.counter = static_cast<std::uint32_t>(c);
    r.length = static_cast<std::uint32_t>(len);
    r.deleted = flags & f_deleted;
    std::uint8_t lm = (flags >> f_left_shift) & 3, rm = (flags >> f_right_shift) & 3;
    r.left = detail::ref{};
    r.right = detail::ref{};
    if (lm == o_adjacent) {
      if (i == 0) return corrupt("first run has an adjacent left origin");
      r.left = runs[i - 1].id_at(runs[i - 1].length - 1);
    } else if (lm >= o_own) {
      if (!read_origin(r, lm, &r.left)) return corrupt("left origin out of range");
    }
    if (rm == o_adjacent) {
      right_adjacent[i] = 1;  // resolved once the next run is read
    } else if (rm >= o_own) {
      if (!read_origin(r, rm, &r.right)) return corrupt("right origin out of range");
    }
    if (!r.deleted) visible_cps += len;
    next_counter[r.replica] = r.counter + r.length;
    prev_replica = r.replica;
  }
  if (!rd.ok()) return status(error_code::truncated_data, "snapshot: runs end early");
  for (std::uint64_t i = 0; i < nruns; ++i) {
    if (!right_adjacent[i]) continue;
    if (i + 1 >= nruns) return corrupt("last run has an adjacent right origin");
    runs[i].right = runs[i + 1].id_at(0);
  }
  std::uint64_t text_bytes = rd.varint();
  std::string_view text = rd.bytes(text_bytes);
  if (!rd.ok()) return status(error_code::truncated_data, "snapshot: text ends early");
  if (!is_valid_utf8(text) || detail::count_cp(text) != visible_cps) return corrupt("text does not match the runs");
  std::size_t tpos = 0;
  for (const detail::run& r : runs) {
    if (!s.tree_.ids_free(r.id_at(0), r.length)) return corrupt("two runs claim the same ids");
    if (r.deleted) {  // deleted text is not kept: peers get tombstones
      s.tree_.append_raw(r, {});
      continue;
    }
    std::string_view rest = text.substr(tpos);
    std::size_t nb = detail::byte_offset(rest, r.length);
    s.tree_.append_raw(r, rest.substr(0, nb));
    tpos += nb;
  }
  for (const detail::run& r : runs) {
    if ((!r.left.none() && !s.tree_.all_characters(r.left, 1)) || (!r.right.none() && !s.tree_.all_characters(r.right, 1)))
      return corrupt("an origin is not a character");
  }
  if (!s.tree_.origins_in_order()) return corrupt("an origin is on the wrong side of its run");
  // History.
  std::uint64_t nentries = rd.varint();
  if (!rd.ok() || nentries > rd.remaining()) return corrupt("history length out of range");
  std::fill(next_counter.begin(), next_counter.end(), 1);
  std::vector<std::uint64_t> covered(nrep, 0);
  for (std::uint64_t i = 0; i < nentries && rd.ok(); ++i) {
    std::uint64_t head = rd.varint();
    std::uint64_t rep = head >> 1;
    if (rep >= nrep) return corrupt("history replica out of range");
    std::int64_t c = rd.offset(static_cast<std::int64_t>(next_counter[rep]));
    std::uint64_t len = rd.varint();
    if (c < 1 || len == 0 || static_cast<std::uint64_t>(c) + len - 1 > vv[rep]) return corrupt("history ids out of range");
    detail::log_entry e{static_cast<std::uint32_t>(rep), static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(len),
                        static_cast<std::uint32_t>(head & 1), static_cast<std::uint32_t>(s.log_.targets().size()), 0};
    next_counter[rep] = e.counter + e.length;
    covered[rep] += len;
    if (!e.is_erase) {
      if (!s.tree_.all_characters(detail::ref{e.replica, e.counter}, e.length)) return corrupt("insert history names non-characters");
      s.log_.append_raw(e);
      continue;
    }
    if (!s.tree_.ids_free(detail::ref{e.replica, e.counter}, e.length)) return corrupt("erase history names characters");
    std::uint64_t nt = rd.varint();
    if (nt == 0 || nt > rd.remaining()) return corrupt("erase target count out of range");
    std::uint64_t sum = 0;
    for (std::uint64_t k = 0; k < nt && rd.ok(); ++k) {
      std::uint64_t trep = rd.varint();
      std::int64_t tc = rd.offset(static_cast<std::int64_t>(e.counter));
      std::uint64_t lr = rd.varint();
      std::uint64_t tl = lr >> 1;
      bool rev = lr & 1;
      if (trep >= nrep || tl == 0 || tc < 1 || tc > static_cast<std::int64_t>(max_counter)) return corrupt("erase target out of range");
      std::int64_t lo = rev ? tc - static_cast<std::int64_t>(tl) + 1 : tc;
      if (lo < 1 || !s.tree_.all_characters(detail::ref{static_cast<std::uint32_t>(trep), static_cast<std::uint32_t>(lo)},
                                            static_cast<std::uint32_t>(tl)))
        return corrupt("erase target is not a character");
      s.log_.push_raw_target(detail::target_span{static_cast<std::uint32_t>(trep), static_cast<std::uint32_t>(tc),
                                                 static_cast<std::uint32_t>(tl), rev ? 1u : 0u});
      sum += tl;
    }
    if (sum != len) return corrupt("erase targets do not match its length");
    e.targets_count = static_cast<std::uint32_t>(nt);
    s.log_.append_raw(e);
  }
  if (!rd.ok()) return status(error_code::truncated_data, "snapshot: history ends early");
  if (!rd.at_end()) return corrupt("trailing bytes");
  for (std::uint64_t i = 0; i < nrep; ++i) {
    if (covered[i] != vv[i]) return corrupt("history does not cover the version vector");
    s.tree_.pad_index(local[i], static_cast<std::uint32_t>(vv[i]));
  }
  document doc(std::move(st));
  std::string bad = doc.check_invariants();
  if (!bad.empty()) return corrupt(bad.c_str());
  return doc;
}

}  // namespace weft
