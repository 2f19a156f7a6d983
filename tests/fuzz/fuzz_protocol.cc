// libFuzzer target: the wire protocol's message parser on arbitrary frames.
#include <cstdint>
#include <string_view>

#include "protocol/messages.h"
#include "weft/document.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static simdjson::dom::parser parser;
  auto r = weft::protocol::parse_client_message(parser, std::string_view(reinterpret_cast<const char*>(data), size));
  if (auto* m = std::get_if<weft::protocol::client_message>(&r)) {
    if (auto* ops = std::get_if<weft::protocol::ops_msg>(m)) {
      weft::document doc(1);
      for (const auto& op : ops->ops) (void)doc.apply(op);
      if (!doc.check_invariants().empty()) __builtin_trap();
    }
  }
  return 0;
}
