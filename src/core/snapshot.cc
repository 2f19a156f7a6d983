// The snapshot format (docs/encoding.md): a whole replica in one blob.
// Writes version 2 (columnar, entropy-coded); reads versions 1 and 2.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/byte_io.h"
#include "core/entropy_coder.h"
#include "core/sequence_state.h"
#include "core/snapshot_format.h"
#include "core/utf8.h"
#include "weft/unicode.h"

namespace weft {

namespace {

using detail::o_adjacent;
using detail::o_none;
using detail::o_other;
using detail::o_own;
using detail::snapshot_corrupt;

constexpr std::uint8_t current_version = 2;

// The columns of version 2, in the order they are stored.
enum column : std::size_t {
  c_run_flags,       // u8 per run
  c_run_replica,     // varint per run whose replica differs from the previous run's
  c_run_counter,     // zigzag per run: counter - end of the replica's previous run
  c_run_length,      // varint per run
  c_run_origin,      // per origin of mode own/other: [varint replica], zigzag delta
  c_text,            // visible text, document order
  c_entry_head,      // varint per history entry: replica << 1 | is_erase
  c_entry_counter,   // zigzag per entry: counter - end of the replica's previous entry
  c_entry_length,    // varint per entry
  c_target_count,    // varint per erase entry
  c_target_replica,  // varint per target span
  c_target_counter,  // zigzag per span: counter - the entry's counter
  c_target_length,   // varint per span: length << 1 | reversed
  column_count
};

std::uint8_t origin_mode(detail::ref o, detail::ref adjacent, const detail::run& r) {
  if (o.none()) return o_none;
  if (o == adjacent) return o_adjacent;
  return o.replica == r.replica ? o_own : o_other;
}

// A column read to its end and never past it: every value it holds was
// used, and no value was made up from a failed read (which yields zeros).
bool used_up(const detail::byte_reader& r) { return r.ok() && r.at_end(); }

std::int64_t delta(std::uint64_t value, std::uint64_t base) {
  return static_cast<std::int64_t>(value) - static_cast<std::int64_t>(base);
}

// Byte checks over the per-id table of assemble(), eight bytes at a time
// (one byte per id: they run over every id of the snapshot).
bool all_bytes_are(const std::uint8_t* p, std::size_t n, std::uint8_t v) {
  const std::uint64_t pattern = 0x0101010101010101ull * v;
  std::uint64_t diff = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    diff |= w ^ pattern;
  }
  for (; i < n; ++i) diff |= static_cast<std::uint64_t>(p[i] ^ v);
  return diff == 0;
}
bool no_byte_is_zero(const std::uint8_t* p, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    if ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull) return false;  // a zero byte
  }
  for (; i < n; ++i)
    if (p[i] == 0) return false;
  return true;
}

// Checks the parts against each other and builds the replica's state from
// them. Every check is linear in the ids and runs, so a forged snapshot
// costs at most what a real one of its size would.
// The parsers have checked the version vector against the id limit
// (read_replica_table).
status assemble(detail::snapshot_parts&& p, sequence_state& s) {
  const std::size_t nrep = p.replicas.size();
  // The table is rebuilt in the snapshot's order; our own id may already be interned.
  s.locals_.clear();
  s.globals_.clear();
  for (std::size_t i = 0; i < nrep; ++i) {
    const replica_id g = p.replicas[i];
    if (g > max_replica_id) return snapshot_corrupt("replica id out of range");
    if (s.locals_.count(g)) return snapshot_corrupt("replica listed twice");
    s.intern(g);
    if (p.highest[i] > 0) s.vv_.set(g, p.highest[i]);
  }
  s.intern(s.self_);
  // A replica applies its ops in counter order, so its history entries tile
  // 1..version: each starts where the one before ended.
  std::vector<std::uint64_t> next(nrep, 1);
  for (const detail::log_entry& e : p.entries) {
    if (e.counter != next[e.replica]) return snapshot_corrupt("history entries of a replica are not consecutive");
    next[e.replica] += e.length;
  }
  for (std::size_t i = 0; i < nrep; ++i)
    if (next[i] != p.highest[i] + 1) return snapshot_corrupt("history does not cover the version vector");
  // What each id is, from the runs: no character (0, an erase's own id),
  // deleted (1) or visible (2); erase targets get `targeted` added.
  constexpr std::uint8_t is_deleted = 1, is_visible = 2;
  std::vector<std::vector<std::uint8_t>> what(nrep);
  for (std::size_t i = 0; i < nrep; ++i) what[i].assign(p.highest[i], 0);
  std::uint64_t visible = 0;
  for (const detail::run& r : p.runs) {
    if (std::uint64_t{r.counter} + r.length - 1 > p.highest[r.replica]) return snapshot_corrupt("run ids out of range");
    std::uint8_t* const from = what[r.replica].data() + (r.counter - 1);
    if (!all_bytes_are(from, r.length, 0)) return snapshot_corrupt("two runs claim the same ids");
    std::fill_n(from, r.length, r.deleted ? is_deleted : is_visible);
    if (!r.deleted) visible += r.length;
  }
  // History: inserts name characters, erases name none and delete
  // characters that are deleted.
  for (const detail::log_entry& e : p.entries) {
    const std::uint8_t* ids = what[e.replica].data() + (e.counter - 1);
    if (!e.is_erase) {
      if (!no_byte_is_zero(ids, e.length)) return snapshot_corrupt("insert history names non-characters");
      continue;
    }
    if (!all_bytes_are(ids, e.length, 0)) return snapshot_corrupt("erase history names characters");
    std::uint64_t sum = 0;
    for (std::uint32_t k = e.targets_begin; k < e.targets_begin + e.targets_count; ++k) {
      const detail::target_span& t = p.targets[k];
      // Checked before the span is walked: the spans' lengths add up to the
      // entry's, so walking them costs no more than the ids do.
      sum += t.length;
      if (sum > e.length) return snapshot_corrupt("erase targets do not match its length");
      const std::int64_t lo = t.reverse ? std::int64_t{t.counter} - t.length + 1 : t.counter;
      if (lo < 1 || static_cast<std::uint64_t>(lo) + t.length - 1 > p.highest[t.replica])
        return snapshot_corrupt("erase target is not a character");
      if (!all_bytes_are(what[t.replica].data() + (lo - 1), t.length, is_deleted))
        return snapshot_corrupt("erase target is not a deleted character");
    }
    if (sum != e.length) return snapshot_corrupt("erase targets do not match its length");
  }
  if (!is_valid_utf8(p.text) || detail::count_cp(p.text) != visible) return snapshot_corrupt("text does not match the runs");
  // Deleted text is not kept: peers get tombstones.
  s.tree_.load(p.runs, std::move(p.text), p.highest);
  if (!s.tree_.origins_in_order()) return snapshot_corrupt("an origin is not a character or is on the wrong side of its run");
  for (const detail::target_span& t : p.targets) s.log_.push_raw_target(t);
  for (const detail::log_entry& e : p.entries) s.log_.append_raw(e);
  // Runs, index, counts and text were built from checked parts, so the
  // document's invariants hold by construction (tests check them).
  return {};
}

}  // namespace

std::string document::encode_snapshot() const {
  const sequence_state& s = *s_;
  detail::byte_writer cw[column_count];
  // Runs in document order, collected first so each can look at its
  // neighbours. Neighbours that continue each other are written as one run:
  // where the tree splits runs depends on its blocks, and the bytes must
  // depend on the document alone.
  std::vector<detail::run> runs;
  s.tree_.for_each_run([&](const detail::run& r, std::string_view text) {
    if (!r.deleted) cw[c_text].bytes(text);
    if (!runs.empty()) {
      detail::run& last = runs.back();
      if (last.replica == r.replica && last.counter + last.length == r.counter && last.deleted == r.deleted &&
          last.right == r.right && r.left == detail::ref{last.replica, last.counter + last.length - 1}) {
        last.length += r.length;
        return;
      }
    }
    runs.push_back(r);
  });
  std::vector<std::uint32_t> next_counter(s.globals_.size(), 1);
  detail::ref prev_last{};
  std::uint32_t prev_replica = detail::no_replica;
  auto put_origin = [&](detail::ref o, std::uint8_t mode, const detail::run& r) {
    if (mode < o_own) return;
    if (mode == o_other) cw[c_run_origin].varint(o.replica);
    cw[c_run_origin].zigzag(delta(o.counter, r.counter));
  };
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const detail::run& r = runs[i];
    const detail::ref next_first = i + 1 < runs.size() ? runs[i + 1].id_at(0) : detail::ref{};
    const std::uint8_t lm = origin_mode(r.left, prev_last, r);
    const std::uint8_t rm = origin_mode(r.right, next_first, r);
    cw[c_run_flags].u8(static_cast<std::uint8_t>((r.deleted ? detail::f_deleted : 0) |
                                                 (r.replica == prev_replica ? detail::f_same_replica : 0) |
                                                 (lm << detail::f_left_shift) | (rm << detail::f_right_shift)));
    if (r.replica != prev_replica) cw[c_run_replica].varint(r.replica);
    cw[c_run_counter].zigzag(delta(r.counter, next_counter[r.replica]));
    cw[c_run_length].varint(r.length);
    put_origin(r.left, lm, r);
    put_origin(r.right, rm, r);
    next_counter[r.replica] = r.counter + r.length;
    prev_replica = r.replica;
    prev_last = r.id_at(r.length - 1);
  }
  const auto& entries = s.log_.entries();
  const auto& targets = s.log_.targets();
  std::fill(next_counter.begin(), next_counter.end(), 1);
  for (const auto& e : entries) {
    cw[c_entry_head].varint((static_cast<std::uint64_t>(e.replica) << 1) | e.is_erase);
    cw[c_entry_counter].zigzag(delta(e.counter, next_counter[e.replica]));
    cw[c_entry_length].varint(e.length);
    next_counter[e.replica] = e.counter + e.length;
    if (!e.is_erase) continue;
    cw[c_target_count].varint(e.targets_count);
    for (std::uint32_t i = e.targets_begin; i < e.targets_begin + e.targets_count; ++i) {
      const auto& t = targets[i];
      cw[c_target_replica].varint(t.replica);
      cw[c_target_counter].zigzag(delta(t.counter, e.counter));
      cw[c_target_length].varint((static_cast<std::uint64_t>(t.length) << 1) | t.reverse);
    }
  }
  detail::byte_writer w;
  w.bytes(std::string_view(detail::snapshot_magic, 4));
  w.u8(current_version);
  w.u8(detail::snapshot_kind);
  w.varint(s.globals_.size());
  for (replica_id g : s.globals_) {
    w.varint(g);
    w.varint(s.vv_.get(g));
  }
  w.varint(runs.size());
  w.varint(entries.size());
  w.varint(targets.size());
  for (auto& c : cw) detail::put_column(w, c.str());
  w.fixed32(detail::crc32(w.str()));
  return std::move(w.str());
}

namespace detail {

status parse_snapshot_v2(std::string_view body, std::uint64_t max_ids, snapshot_parts* out) {
  snapshot_parts& p = *out;
  byte_reader rd(body);
  // Nothing is allocated before the counts are bounded by the ids (each run
  // and entry holds one at least, each target span deletes one at least),
  // and the ids by the caller's limit: columns compress, so their bytes
  // bound nothing.
  if (status st = read_replica_table(rd, max_ids, &p); !st.ok()) return st;
  const std::uint64_t nruns = rd.varint(), nentries = rd.varint(), ntargets = rd.varint();
  if (!rd.ok()) return detail::snapshot_truncated("header ends early");
  std::uint64_t ids = 0;
  for (std::uint64_t h : p.highest) ids += h;
  if (nruns > ids || nentries > ids || ntargets > ids) return snapshot_corrupt("counts beyond the ids");
  constexpr std::uint64_t varint_max = 10;
  const std::uint64_t cap[column_count] = {nruns,          nruns * varint_max,    nruns * varint_max,
                                           nruns * varint_max, nruns * 4 * varint_max, ids * 4,
                                           nentries * varint_max, nentries * varint_max, nentries * varint_max,
                                           nentries * varint_max, ntargets * varint_max, ntargets * varint_max,
                                           ntargets * varint_max};
  std::string col[column_count];
  for (std::size_t c = 0; c < column_count; ++c) {
    if (!get_column(rd, &col[c], cap[c])) {
      if (!rd.ok()) return detail::snapshot_truncated("a column ends early");
      return snapshot_corrupt("a column does not decode");
    }
  }
  if (!rd.at_end()) return snapshot_corrupt("trailing bytes");
  // Every run takes a flag byte, every entry a head, every span a replica:
  // counts beyond those are lies, and allocating for them is refused.
  if (nruns != col[c_run_flags].size() || nentries != col[c_entry_head].size() || ntargets > col[c_target_replica].size())
    return snapshot_corrupt("counts do not match the columns");
  byte_reader flags(col[c_run_flags]), reps(col[c_run_replica]), counters(col[c_run_counter]),
      lengths(col[c_run_length]), origins(col[c_run_origin]);
  if (status st = read_runs({flags, reps, counters, lengths, origins}, nruns, &p); !st.ok()) return st;
  if (!used_up(reps) || !used_up(counters) || !used_up(lengths) || !used_up(origins))
    return snapshot_corrupt("run columns do not match the runs");
  p.text = std::move(col[c_text]);
  byte_reader heads(col[c_entry_head]), ecounters(col[c_entry_counter]), elengths(col[c_entry_length]),
      tcounts(col[c_target_count]), treps(col[c_target_replica]), tcounters(col[c_target_counter]),
      tlengths(col[c_target_length]);
  p.targets.reserve(ntargets);
  if (status st = read_history({heads, ecounters, elengths, tcounts, treps, tcounters, tlengths}, nentries, ntargets, &p);
      !st.ok())
    return st;
  if (p.targets.size() != ntargets || !used_up(heads) || !used_up(ecounters) || !used_up(elengths) ||
      !used_up(tcounts) || !used_up(treps) || !used_up(tcounters) || !used_up(tlengths))
    return snapshot_corrupt("history columns do not match the history");
  return {};
}

}  // namespace detail

result<document> document::decode_snapshot(std::string_view bytes, replica_id replica, document_options options) {
  if (bytes.size() < 10) return detail::snapshot_truncated("shorter than its header");
  if (bytes.substr(0, 4) != std::string_view(detail::snapshot_magic, 4)) return snapshot_corrupt("bad magic (not a weft snapshot)");
  const auto version = static_cast<std::uint8_t>(bytes[4]);
  if (version < 1 || version > current_version)
    return status(error_code::unsupported_version, "snapshot: format version " + std::to_string(version));
  if (static_cast<std::uint8_t>(bytes[5]) != detail::snapshot_kind) return snapshot_corrupt("not a snapshot (wrong kind byte)");
  std::string_view body = bytes.substr(0, bytes.size() - 4);
  detail::byte_reader tail(bytes.substr(bytes.size() - 4));
  if (detail::crc32(body) != tail.fixed32()) return snapshot_corrupt("checksum mismatch (corrupt or truncated)");
  detail::snapshot_parts parts;
  status st = version == 1 ? detail::parse_snapshot_v1(body.substr(6), options.max_snapshot_ids, &parts)
                           : detail::parse_snapshot_v2(body.substr(6), options.max_snapshot_ids, &parts);
  if (!st.ok()) return st;
  auto state = std::make_unique<sequence_state>(replica, options);
  st = assemble(std::move(parts), *state);
  if (!st.ok()) return st;
  return document(std::move(state));
}

}  // namespace weft
