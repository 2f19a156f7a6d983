// Reader for editing traces in the josephg/editing-traces format (gzipped
// JSON; see ../shared/traces/FORMAT.md). Used by tests and benchmarks only:
// it links zlib and simdjson, which the core must not.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "weft/status.h"

namespace weft::traces {

/// One patch: at code point `pos` delete `del` code points, then insert `ins`.
struct patch {
  std::uint64_t pos = 0;
  std::uint64_t del = 0;
  std::string ins;
};

struct txn {
  std::uint32_t agent = 0;              // concurrent traces only
  std::vector<std::uint32_t> parents;   // concurrent traces only
  std::vector<patch> patches;
};

struct trace {
  std::string name;      // file name without .json.gz
  bool concurrent = false;
  std::uint32_t agents = 1;
  std::string end_content;
  std::vector<txn> txns;
  std::uint64_t patch_count() const;
};

/// Reads a .json.gz (or plain .json) trace. Errors: invalid_argument when the
/// file cannot be read, corrupt_data when it is not a trace.
result<trace> load_trace(const std::string& path);

}  // namespace weft::traces
