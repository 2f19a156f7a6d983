// Reading the snapshot's runs and history, field by field, for every format
// version: version 1 reads all fields from one reader (rows), version 2
// each from its column's reader. The fields and their order are the same.
#include <string>

#include "core/snapshot_format.h"

namespace weft::detail {

namespace {
bool all_ok(std::initializer_list<const byte_reader*> readers) {
  for (const byte_reader* r : readers)
    if (!r->ok()) return false;
  return true;
}
}  // namespace

status check_ids(const std::vector<std::uint64_t>& highest, std::uint64_t max_ids) {
  std::uint64_t ids = 0;
  for (std::uint64_t h : highest) {
    if (h > max_counter) return snapshot_corrupt("version out of range");
    ids += h;
  }
  if (ids > max_ids)
    return status(error_code::limit_exceeded,
                  "snapshot: " + std::to_string(ids) + " ids; the limit is " + std::to_string(max_ids));
  return {};
}

status read_replica_table(byte_reader& in, std::uint64_t max_ids, snapshot_parts* out) {
  const std::uint64_t nrep = in.varint();
  if (!in.ok() || nrep > in.remaining()) return snapshot_corrupt("replica count out of range");
  out->replicas.resize(nrep);
  out->highest.resize(nrep);
  for (std::uint64_t i = 0; i < nrep && in.ok(); ++i) {
    out->replicas[i] = in.varint();
    out->highest[i] = in.varint();
  }
  if (!in.ok()) return snapshot_truncated("replica table ends early");
  return check_ids(out->highest, max_ids);
}

status read_runs(const run_readers& in, std::uint64_t count, snapshot_parts* out) {
  snapshot_parts& p = *out;
  const std::uint64_t nrep = p.replicas.size();
  p.runs.resize(count);
  std::vector<std::uint32_t> next_counter(nrep, 1);
  std::uint32_t prev_replica = no_replica;
  auto read_origin = [&](const run& r, std::uint8_t mode, ref* o) {
    std::uint64_t rep = r.replica;
    if (mode == o_other) rep = in.origins.varint();
    const std::int64_t c = in.origins.offset(static_cast<std::int64_t>(r.counter));
    if (rep >= nrep || c < 1 || c > static_cast<std::int64_t>(max_counter)) return false;
    *o = ref{static_cast<std::uint32_t>(rep), static_cast<std::uint32_t>(c)};
    return true;
  };
  // Marks a right origin to resolve once the next run is read.
  constexpr ref pending_right{no_replica, 1};
  for (std::uint64_t i = 0; i < count; ++i) {
    run& r = p.runs[i];
    const std::uint8_t f = in.flags.u8();
    if (f & 0xC0) return snapshot_corrupt("unknown run flags");
    if (f & f_same_replica) {
      if (prev_replica == no_replica) return snapshot_corrupt("first run refers to a previous replica");
      r.replica = prev_replica;
    } else {
      const std::uint64_t rep = in.replica.varint();
      if (rep >= nrep) return snapshot_corrupt("run replica out of range");
      r.replica = static_cast<std::uint32_t>(rep);
    }
    const std::int64_t c = in.counter.offset(static_cast<std::int64_t>(next_counter[r.replica]));
    const std::uint64_t len = in.length.varint();
    r.deleted = f & f_deleted;
    const std::uint8_t lm = (f >> f_left_shift) & 3, rm = (f >> f_right_shift) & 3;
    r.left = ref{};
    r.right = ref{};
    if (!all_ok({&in.flags, &in.replica, &in.counter, &in.length})) return snapshot_truncated("runs end early");
    if (c < 1 || len == 0 || static_cast<std::uint64_t>(c) + len - 1 > max_counter) return snapshot_corrupt("run ids out of range");
    r.counter = static_cast<std::uint32_t>(c);
    r.length = static_cast<std::uint32_t>(len);
    if (lm == o_adjacent) {
      if (i == 0) return snapshot_corrupt("first run has an adjacent left origin");
      r.left = p.runs[i - 1].id_at(p.runs[i - 1].length - 1);
    } else if (lm >= o_own && !read_origin(r, lm, &r.left)) {
      return in.origins.ok() ? snapshot_corrupt("left origin out of range") : snapshot_truncated("runs end early");
    }
    if (rm == o_adjacent)
      r.right = pending_right;
    else if (rm >= o_own && !read_origin(r, rm, &r.right))
      return in.origins.ok() ? snapshot_corrupt("right origin out of range") : snapshot_truncated("runs end early");
    next_counter[r.replica] = r.counter + r.length;
    prev_replica = r.replica;
  }
  for (std::uint64_t i = 0; i < count; ++i) {
    if (p.runs[i].right != pending_right) continue;
    if (i + 1 >= count) return snapshot_corrupt("last run has an adjacent right origin");
    p.runs[i].right = p.runs[i + 1].id_at(0);
  }
  return {};
}

status read_history(const history_readers& in, std::uint64_t count, std::uint64_t max_targets, snapshot_parts* out) {
  snapshot_parts& p = *out;
  const std::uint64_t nrep = p.replicas.size();
  std::vector<std::uint32_t> next_counter(nrep, 1);
  p.entries.resize(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t head = in.head.varint();
    const std::uint64_t rep = head >> 1;
    const std::int64_t c = rep < nrep ? in.counter.offset(static_cast<std::int64_t>(next_counter[rep])) : 0;
    const std::uint64_t len = in.length.varint();
    if (!all_ok({&in.head, &in.counter, &in.length})) return snapshot_truncated("history ends early");
    if (rep >= nrep) return snapshot_corrupt("history replica out of range");
    if (c < 1 || len == 0 || static_cast<std::uint64_t>(c) + len - 1 > max_counter) return snapshot_corrupt("history ids out of range");
    log_entry e{static_cast<std::uint32_t>(rep), static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(len),
                static_cast<std::uint32_t>(head & 1), static_cast<std::uint32_t>(p.targets.size()), 0};
    next_counter[rep] = e.counter + e.length;
    if (e.is_erase) {
      const std::uint64_t nt = in.target_count.varint();
      if (!in.target_count.ok()) return snapshot_truncated("history ends early");
      if (nt == 0 || nt > max_targets - p.targets.size()) return snapshot_corrupt("erase target count out of range");
      for (std::uint64_t k = 0; k < nt; ++k) {
        const std::uint64_t trep = in.target_replica.varint();
        const std::int64_t tc = in.target_counter.offset(static_cast<std::int64_t>(e.counter));
        const std::uint64_t lr = in.target_length.varint();
        if (!all_ok({&in.target_replica, &in.target_counter, &in.target_length})) return snapshot_truncated("history ends early");
        const std::uint64_t tl = lr >> 1;
        if (trep >= nrep || tl == 0 || tl > max_counter || tc < 1 || tc > static_cast<std::int64_t>(max_counter))
          return snapshot_corrupt("erase target out of range");
        p.targets.push_back(target_span{static_cast<std::uint32_t>(trep), static_cast<std::uint32_t>(tc),
                                        static_cast<std::uint32_t>(tl), static_cast<std::uint32_t>(lr & 1)});
      }
      e.targets_count = static_cast<std::uint32_t>(nt);
    }
    p.entries[i] = e;
  }
  return {};
}

}  // namespace weft::detail
