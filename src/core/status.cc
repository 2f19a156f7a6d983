#include "weft/status.h"

namespace weft {

const char* error_message(error_code code) noexcept {
  switch (code) {
    case error_code::ok: return "ok";
    case error_code::invalid_argument: return "invalid argument";
    case error_code::invalid_operation: return "invalid operation";
    case error_code::pending_buffer_full: return "pending buffer full";
    case error_code::corrupt_data: return "corrupt data";
    case error_code::truncated_data: return "truncated data";
    case error_code::unsupported_version: return "unsupported version";
    case error_code::limit_exceeded: return "limit exceeded";
    case error_code::id_conflict: return "id conflict";
  }
  return "unknown error";
}

std::string status::to_string() const {
  std::string s = error_message(code_);
  if (!detail_.empty()) {
    s += ": ";
    s += detail_;
  }
  return s;
}

}  // namespace weft
