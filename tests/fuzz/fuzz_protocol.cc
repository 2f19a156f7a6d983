// libFuzzer target: the same bytes go to every protocol decoder that remains,
// and they must agree.
//   - the codec's client-message decoder (what weft-server runs) against an
//     independent DOM-based decoder (reference_decoder.h): same verdict on
//     valid JSON, same value when both accept, and never an accepted frame
//     that is not JSON;
//   - the codec's server-message decoder (what clients run) and its binary
//     frame decoder on the same bytes;
//   - whatever a decoder accepts re-encodes to a frame that decodes to the
//     same value;
//   - accepted ops keep a document's invariants.
#include <cstdint>
#include <string_view>

#include "reference_decoder.h"
#include "weft/document.h"
#include "weft/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace weft::protocol;
  static decoder codec;
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto got = codec.client(frame);
  auto want = weft::fuzz::reference_decode(frame);
  auto* m = std::get_if<client_message>(&got);
  if (m) {
    if (!want) __builtin_trap();  // accepted what the reference refuses
    if (!(*m == *want)) __builtin_trap();
    auto again = codec.client(encode(*m));
    if (!std::holds_alternative<client_message>(again) || !(std::get<client_message>(again) == *m)) __builtin_trap();
    if (auto* ops = std::get_if<ops_msg>(m)) {
      weft::document doc(1);
      for (const auto& op : ops->ops) (void)doc.apply(op);
      if (!doc.check_invariants().empty()) __builtin_trap();
    }
  } else if (want) {
    __builtin_trap();  // refused what the reference accepts
  }
  auto b = decoder::binary(frame);
  if (auto* bm = std::get_if<binary_message>(&b)) {
    std::string again_frame = std::visit(
        [](const auto& x) -> std::string {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, binary_ops>) return encode_binary_ops(x.ref, x.ops);
          else if constexpr (std::is_same_v<T, binary_ack>) return encode_binary_ack(x.ref, x.version);
          else return encode_binary_snapshot(x.ref, x.doc, x.bytes);
        },
        *bm);
    auto again = decoder::binary(again_frame);
    if (!std::holds_alternative<binary_message>(again) || !(std::get<binary_message>(again) == *bm)) __builtin_trap();
  }
  auto s = codec.server(frame);
  if (auto* sm = std::get_if<server_message>(&s)) {
    auto again = codec.server(encode(*sm));
    if (!std::holds_alternative<server_message>(again) || !(std::get<server_message>(again) == *sm)) __builtin_trap();
  }
  return 0;
}
