#include "auth/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <simdjson.h>

#include <array>
#include <chrono>

namespace weft::server {

namespace {

status bad(std::string m) { return status(error_code::invalid_argument, std::move(m)); }

constexpr char kB64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t v = (std::uint32_t(std::uint8_t(in[i])) << 16) | (std::uint32_t(std::uint8_t(in[i + 1])) << 8) |
                      std::uint8_t(in[i + 2]);
    out += kB64url[v >> 18];
    out += kB64url[(v >> 12) & 63];
    out += kB64url[(v >> 6) & 63];
    out += kB64url[v & 63];
  }
  if (i + 1 == in.size()) {
    std::uint32_t v = std::uint32_t(std::uint8_t(in[i])) << 16;
    out += kB64url[v >> 18];
    out += kB64url[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    std::uint32_t v = (std::uint32_t(std::uint8_t(in[i])) << 16) | (std::uint32_t(std::uint8_t(in[i + 1])) << 8);
    out += kB64url[v >> 18];
    out += kB64url[(v >> 12) & 63];
    out += kB64url[(v >> 6) & 63];
  }
  return out;
}

// Strict base64url without padding (what JWTs use). False on any other byte.
bool b64url_decode(std::string_view in, std::string* out) {
  if (in.size() % 4 == 1) return false;
  std::uint32_t acc = 0;
  int bits = 0;
  out->clear();
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-') v = 62;
    else if (c == '_') v = 63;
    else return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

std::array<unsigned char, 32> hmac_sha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, 32> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac.data(), &len);
  return mac;
}

}  // namespace

bool glob_match(std::string_view p, std::string_view t) noexcept {
  // Iterative wildcard match with backtracking to the last '*': O(|p|*|t|) worst case.
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < p.size() && p[pi] == t[ti]) {
      ++pi;
      ++ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

access token_claims::rights_for(std::string_view doc) const noexcept {
  access best = access::none;
  for (const auto& g : grants)
    if (g.rights > best && glob_match(g.pattern, doc)) best = g.rights;
  return best;
}

token_verifier::token_verifier(std::string secret) : secret_(std::move(secret)) {}

std::string token_verifier::sign(std::string_view claims_json) const {
  std::string signing_input = b64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + b64url_encode(claims_json);
  auto mac = hmac_sha256(secret_, signing_input);
  return signing_input + "." + b64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

result<token_claims> token_verifier::verify(std::string_view token, std::int64_t now_unix) const {
  if (token.size() > 8192) return bad("token too long");
  auto d1 = token.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return bad("malformed token (want header.claims.signature)");
  std::string header, claims, sig;
  if (!b64url_decode(token.substr(0, d1), &header) || !b64url_decode(token.substr(d1 + 1, d2 - d1 - 1), &claims) ||
      !b64url_decode(token.substr(d2 + 1), &sig))
    return bad("malformed token (bad base64url)");

  simdjson::dom::parser parser;
  simdjson::dom::element h;
  std::string_view alg;
  if (parser.parse(header).get(h) || h["alg"].get_string().get(alg)) return bad("malformed token header");
  // Only HS256: "none" and asymmetric algorithms are refused outright, so a
  // token cannot choose how it is checked.
  if (alg != "HS256") return bad("token algorithm must be HS256");

  auto mac = hmac_sha256(secret_, token.substr(0, d2));
  if (sig.size() != mac.size() || CRYPTO_memcmp(sig.data(), mac.data(), mac.size()) != 0)
    return bad("token signature does not verify");

  simdjson::dom::element c;
  simdjson::dom::object o;
  if (parser.parse(claims).get(c) || c.get_object().get(o)) return bad("token claims are not a JSON object");
  token_claims out;
  std::int64_t exp = 0;
  if (o["exp"].get_int64().get(exp)) return bad("token has no numeric \"exp\"");
  out.expires = exp;
  if (out.expired(now_unix)) return bad("token expired");
  std::int64_t nbf = 0;
  if (!o["nbf"].get_int64().get(nbf) && now_unix < nbf) return bad("token not valid yet (nbf)");
  std::string_view sub;
  if (!o["sub"].get_string().get(sub)) out.subject = std::string(sub.substr(0, 200));
  bool peer = false;
  if (!o["peer"].get_bool().get(peer)) out.peer = peer;
  simdjson::dom::object docs;
  if (o["docs"].get_object().get(docs)) {
    if (out.peer) return out;  // a peer token needs no document rights
    return bad("token has no \"docs\" object of document rights");
  }
  for (auto [pattern, rights] : docs) {
    std::string_view r;
    if (rights.get_string().get(r)) return bad("document rights must be \"r\" or \"rw\"");
    token_claims::grant g;
    g.pattern = std::string(pattern);
    if (r == "r" || r == "read") g.rights = access::read;
    else if (r == "rw" || r == "write") g.rights = access::write;
    else return bad("document rights must be \"r\" or \"rw\"");
    out.grants.push_back(std::move(g));
  }
  return out;
}

std::int64_t unix_now() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace weft::server
