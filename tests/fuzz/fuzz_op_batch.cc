// libFuzzer target: op-batch decoding, then applying whatever decodes to a
// replica: never undefined behaviour, always a consistent replica.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/byte_io.h"
#include "weft/document.h"
#include "weft/encoding.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The input is the batch without its checksum, appended here (see fuzz_snapshot.cc).
  std::string bytes(reinterpret_cast<const char*>(data), size);
  weft::detail::byte_writer w;
  w.bytes(bytes);
  w.fixed32(weft::detail::crc32(bytes));
  auto ops = weft::decode_ops(w.str());
  if (!ops.ok()) return 0;
  weft::document_options opt;
  opt.max_pending_ops = 256;
  weft::document doc(1, opt);
  std::vector<weft::text_change> changes;
  for (const auto& op : ops.value()) (void)doc.apply(op, &changes);
  if (!doc.check_invariants().empty()) std::abort();
  return 0;
}
