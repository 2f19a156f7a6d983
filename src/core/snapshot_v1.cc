// The version-1 snapshot reader (docs/encoding.md, "Snapshot, version 1"):
// row-wise, uncompressed. Kept so that stored snapshots of that version
// still load; nothing writes it any more.
#include <string>

#include "core/byte_io.h"
#include "core/snapshot_format.h"

namespace weft::detail {

status parse_snapshot_v1(std::string_view body, std::uint64_t max_ids, snapshot_parts* out) {
  snapshot_parts& p = *out;
  byte_reader rd(body);
  if (status st = read_replica_table(rd, max_ids, &p); !st.ok()) return st;
  const std::uint64_t nruns = rd.varint();
  if (!rd.ok() || nruns > rd.remaining()) return snapshot_corrupt("run count out of range");
  // Rows: every field from the one reader, in row order.
  if (status st = read_runs({rd, rd, rd, rd, rd}, nruns, &p); !st.ok()) return st;
  const std::uint64_t text_bytes = rd.varint();
  p.text.assign(rd.bytes(text_bytes));
  if (!rd.ok()) return snapshot_truncated("text ends early");
  const std::uint64_t nentries = rd.varint();
  if (!rd.ok() || nentries > rd.remaining()) return snapshot_corrupt("history length out of range");
  if (status st = read_history({rd, rd, rd, rd, rd, rd, rd}, nentries, body.size(), &p); !st.ok()) return st;
  if (!rd.at_end()) return snapshot_corrupt("trailing bytes");
  return {};
}

}  // namespace weft::detail
