#include "server/replica_owners.h"

#include <charconv>

namespace weft::server {

namespace {

bool needs_escape(unsigned char c) { return c == '%' || c < 0x20 || c >= 0x7f; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string encode_claims(const owner_claims& claims) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const auto& [replica, owner] : claims) {
    out += std::to_string(replica);
    out += ' ';
    for (char ch : owner) {
      auto c = static_cast<unsigned char>(ch);
      if (!needs_escape(c)) {
        out += ch;
        continue;
      }
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
    out += '\n';
  }
  return out;
}

result<owner_claims> decode_claims(std::string_view text) {
  owner_claims out;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return status(error_code::corrupt_data, "owner claims: unterminated line");
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0) return status(error_code::corrupt_data, "owner claims: no replica");
    replica_id replica = 0;
    auto [end, ec] = std::from_chars(line.data(), line.data() + sp, replica);
    if (ec != std::errc() || end != line.data() + sp)
      return status(error_code::corrupt_data, "owner claims: bad replica number");
    std::string owner;
    for (std::size_t i = sp + 1; i < line.size(); ++i) {
      if (line[i] != '%') {
        owner += line[i];
        continue;
      }
      if (i + 2 >= line.size() || hex_value(line[i + 1]) < 0 || hex_value(line[i + 2]) < 0)
        return status(error_code::corrupt_data, "owner claims: bad escape");
      owner += static_cast<char>(hex_value(line[i + 1]) * 16 + hex_value(line[i + 2]));
      i += 2;
    }
    out.emplace_back(replica, std::move(owner));
  }
  return out;
}

}  // namespace weft::server
