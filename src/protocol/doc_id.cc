// Which document ids the protocol accepts (include/weft/protocol.h). Its own
// file because the WebAssembly core needs it (binary snapshot frames) without
// the JSON encoder.
#include "weft/protocol.h"

namespace weft::protocol {

bool valid_doc_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '~';
    if (!ok) return false;
  }
  return true;
}

}  // namespace weft::protocol
