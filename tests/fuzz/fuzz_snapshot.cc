// libFuzzer target: snapshot decoding must reject or accept any bytes without
// undefined behaviour, and what it accepts must be a consistent replica.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/byte_io.h"
#include "weft/document.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The input is the snapshot without its checksum, which is appended here:
  // random bytes rarely pass a CRC, and the decoder's structural checks are
  // what needs exploring (the checksum itself is covered by the unit tests).
  std::string bytes(reinterpret_cast<const char*>(data), size);
  weft::detail::byte_writer w;
  w.bytes(bytes);
  w.fixed32(weft::detail::crc32(bytes));
  bytes = w.str();
  // A small id limit: a few checksum-correct bytes can claim billions of ids
  // (deleted text costs nothing in a snapshot), and the decoder must refuse
  // them before allocating, not the fuzzer's memory limit.
  weft::document_options options;
  options.max_snapshot_ids = 1u << 22;
  auto doc = weft::document::decode_snapshot(bytes, 7, options);
  if (!doc.ok()) return 0;
  if (!doc.value().check_invariants().empty()) std::abort();
  // A decoded replica round-trips and keeps working.
  auto again = weft::document::decode_snapshot(doc.value().encode_snapshot(), 7, options);
  if (!again.ok() || again.value().text() != doc.value().text()) std::abort();
  // Its history replays into a consistent replica. (Without errors and to the
  // same text only for snapshots weft wrote: a forged, checksum-correct one may
  // order concurrent siblings against the tie-break rule, which only a full
  // replay could detect; the decoder checks origins are on the right sides.)
  weft::document fresh(9);
  for (const auto& op : doc.value().ops_since(weft::version_vector{})) (void)fresh.apply(op);
  if (!fresh.check_invariants().empty()) std::abort();
  (void)doc.value().insert(0, "x");
  return 0;
}
