// The version-1 snapshot reader (docs/encoding.md, "Snapshot, version 1"):
// row-wise, uncompressed. Kept so that stored snapshots of that version
// still load; nothing writes it any more.
#include <string>

#include "core/byte_io.h"
#include "core/snapshot_format.h"

namespace weft::detail {

namespace {
status corrupt(const char* what) { return status(error_code::corrupt_data, std::string("snapshot: ") + what); }
status truncated(const char* what) { return status(error_code::truncated_data, std::string("snapshot: ") + what); }
}  // namespace

status parse_snapshot_v1(std::string_view body, std::uint64_t max_ids, snapshot_parts* out) {
  snapshot_parts& p = *out;
  byte_reader rd(body);
  const std::uint64_t nrep = rd.varint();
  if (!rd.ok() || nrep > rd.remaining()) return corrupt("replica count out of range");
  p.replicas.resize(nrep);
  p.highest.resize(nrep);
  for (std::uint64_t i = 0; i < nrep && rd.ok(); ++i) {
    p.replicas[i] = rd.varint();
    p.highest[i] = rd.varint();
  }
  if (!rd.ok()) return truncated("replica table ends early");
  if (status st = check_ids(p.highest, max_ids); !st.ok()) return st;
  const std::uint64_t nruns = rd.varint();
  if (!rd.ok() || nruns > rd.remaining()) return corrupt("run count out of range");
  p.runs.resize(nruns);
  std::vector<std::uint32_t> next_counter(nrep, 1);
  std::uint32_t prev_replica = no_replica;
  auto read_origin = [&](const run& r, std::uint8_t mode, ref* o) {
    std::uint64_t rep = r.replica;
    if (mode == o_other) rep = rd.varint();
    std::int64_t c = rd.offset(static_cast<std::int64_t>(r.counter));
    if (rep >= nrep || c < 1 || c > static_cast<std::int64_t>(max_counter)) return false;
    *o = ref{static_cast<std::uint32_t>(rep), static_cast<std::uint32_t>(c)};
    return true;
  };
  std::vector<std::uint8_t> right_adjacent(nruns, 0);
  for (std::uint64_t i = 0; i < nruns && rd.ok(); ++i) {
    run& r = p.runs[i];
    const std::uint8_t flags = rd.u8();
    if (flags & 0xC0) return corrupt("unknown run flags");
    if (flags & f_same_replica) {
      if (prev_replica == no_replica) return corrupt("first run refers to a previous replica");
      r.replica = prev_replica;
    } else {
      const std::uint64_t rep = rd.varint();
      if (rep >= nrep) return corrupt("run replica out of range");
      r.replica = static_cast<std::uint32_t>(rep);
    }
    const std::int64_t c = rd.offset(static_cast<std::int64_t>(next_counter[r.replica]));
    const std::uint64_t len = rd.varint();
    if (c < 1 || len == 0 || static_cast<std::uint64_t>(c) + len - 1 > max_counter) return corrupt("run ids out of range");
    r.counter = static_cast<std::uint32_t>(c);
    r.length = static_cast<std::uint32_t>(len);
    r.deleted = flags & f_deleted;
    const std::uint8_t lm = (flags >> f_left_shift) & 3, rm = (flags >> f_right_shift) & 3;
    r.left = ref{};
    r.right = ref{};
    if (lm == o_adjacent) {
      if (i == 0) return corrupt("first run has an adjacent left origin");
      r.left = p.runs[i - 1].id_at(p.runs[i - 1].length - 1);
    } else if (lm >= o_own && !read_origin(r, lm, &r.left)) {
      return corrupt("left origin out of range");
    }
    if (rm == o_adjacent)
      right_adjacent[i] = 1;  // resolved once the next run is read
    else if (rm >= o_own && !read_origin(r, rm, &r.right))
      return corrupt("right origin out of range");
    next_counter[r.replica] = r.counter + r.length;
    prev_replica = r.replica;
  }
  if (!rd.ok()) return truncated("runs end early");
  for (std::uint64_t i = 0; i < nruns; ++i) {
    if (!right_adjacent[i]) continue;
    if (i + 1 >= nruns) return corrupt("last run has an adjacent right origin");
    p.runs[i].right = p.runs[i + 1].id_at(0);
  }
  const std::uint64_t text_bytes = rd.varint();
  p.text.assign(rd.bytes(text_bytes));
  if (!rd.ok()) return truncated("text ends early");
  const std::uint64_t nentries = rd.varint();
  if (!rd.ok() || nentries > rd.remaining()) return corrupt("history length out of range");
  std::fill(next_counter.begin(), next_counter.end(), 1);
  p.entries.reserve(nentries);
  for (std::uint64_t i = 0; i < nentries && rd.ok(); ++i) {
    const std::uint64_t head = rd.varint();
    const std::uint64_t rep = head >> 1;
    if (rep >= nrep) return corrupt("history replica out of range");
    const std::int64_t c = rd.offset(static_cast<std::int64_t>(next_counter[rep]));
    const std::uint64_t len = rd.varint();
    if (c < 1 || len == 0 || static_cast<std::uint64_t>(c) + len - 1 > max_counter) return corrupt("history ids out of range");
    log_entry e{static_cast<std::uint32_t>(rep), static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(len),
                static_cast<std::uint32_t>(head & 1), static_cast<std::uint32_t>(p.targets.size()), 0};
    next_counter[rep] = e.counter + e.length;
    if (e.is_erase) {
      const std::uint64_t nt = rd.varint();
      if (nt == 0 || nt > rd.remaining()) return corrupt("erase target count out of range");
      for (std::uint64_t k = 0; k < nt && rd.ok(); ++k) {
        const std::uint64_t trep = rd.varint();
        const std::int64_t tc = rd.offset(static_cast<std::int64_t>(e.counter));
        const std::uint64_t lr = rd.varint();
        const std::uint64_t tl = lr >> 1;
        if (trep >= nrep || tl == 0 || tl > max_counter || tc < 1 || tc > static_cast<std::int64_t>(max_counter))
          return corrupt("erase target out of range");
        p.targets.push_back(target_span{static_cast<std::uint32_t>(trep), static_cast<std::uint32_t>(tc),
                                        static_cast<std::uint32_t>(tl), static_cast<std::uint32_t>(lr & 1)});
      }
      e.targets_count = static_cast<std::uint32_t>(nt);
    }
    p.entries.push_back(e);
  }
  if (!rd.ok()) return truncated("history ends early");
  if (!rd.at_end()) return corrupt("trailing bytes");
  return {};
}

}  // namespace weft::detail
