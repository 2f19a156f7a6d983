#include "auth/auth.h"

#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <simdjson.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>

namespace weft::server {

namespace {

status bad(std::string m) { return status(error_code::invalid_argument, std::move(m)); }

// Strict base64url without padding (what JWTs and JWKs use): anything else
// is refused before it reaches a parser. OpenSSL decodes.
bool b64url_decode(std::string_view in, std::string* out) {
  constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  if (in.size() % 4 == 1 || in.find_first_not_of(alphabet) != std::string_view::npos) return false;
  std::string b64(in);
  for (char& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
  const std::size_t pad = (4 - b64.size() % 4) % 4;
  b64.append(pad, '=');
  out->resize(b64.size() / 4 * 3);
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data()),
                          reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return false;
  out->resize(static_cast<std::size_t>(n) - pad);  // EVP_DecodeBlock counts the padding's zero bytes
  return true;
}

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

// A public key we can verify with: its kind and the PEM libjwt reads.
struct checked_key {
  bool ec = false;
  std::string pem;
};

// Accepts RSA keys of at least 2048 bits (RS256) and EC keys on P-256
// (ES256), after OpenSSL's own consistency check; gives their PEM.
result<checked_key> check_key(EVP_PKEY* k) {
  checked_key out;
  if (EVP_PKEY_is_a(k, "RSA")) {
    if (EVP_PKEY_get_bits(k) < 2048)
      return bad("an RSA key of " + std::to_string(EVP_PKEY_get_bits(k)) + " bits (at least 2048 wanted)");
  } else if (EVP_PKEY_is_a(k, "EC")) {
    char group[80] = {};
    std::size_t len = 0;
    if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) ||
        std::string_view(group) != "prime256v1")
      return bad("an EC key not on curve P-256 (only ES256 is supported)");
    out.ec = true;
  } else {
    const char* type = EVP_PKEY_get0_type_name(k);
    return bad(std::string("a key of type ") + (type ? type : "unknown") +
               " (RSA for RS256 or EC P-256 for ES256 wanted)");
  }
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, k, nullptr),
                                                                   EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_public_check(ctx.get()) != 1) return bad("a public key that fails OpenSSL's check");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), k) != 1) return bad("a key OpenSSL cannot write as PEM");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  out.pem.assign(data, static_cast<std::size_t>(n));
  return out;
}

// One JWK of a supported type as an OpenSSL key (OpenSSL 3's fromdata).
result<pkey_ptr> jwk_to_pkey(simdjson::dom::object jwk, bool ec) {
  auto field = [&](const char* name, std::string* out) {
    std::string_view v;
    return !jwk[name].get_string().get(v) && b64url_decode(v, out) && !out->empty();
  };
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  std::unique_ptr<BIGNUM, decltype(&BN_free)> n(nullptr, BN_free), e(nullptr, BN_free);
  std::string point;  // outlives the param builder's reference to it
  if (!bld) return bad("out of memory");
  if (ec) {
    std::string_view crv;
    std::string x, y;
    if (jwk["crv"].get_string().get(crv) || crv != "P-256") return bad("an EC key not on curve P-256");
    if (!field("x", &x) || !field("y", &y) || x.size() != 32 || y.size() != 32)
      return bad("an EC key without 32-byte base64url \"x\" and \"y\"");
    point = "\x04" + x + y;  // an uncompressed point (SEC 1)
    if (!OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
      return bad("out of memory");
  } else {
    std::string nb, eb;
    if (!field("n", &nb) || !field("e", &eb)) return bad("an RSA key without base64url \"n\" and \"e\"");
    n.reset(BN_bin2bn(reinterpret_cast<const unsigned char*>(nb.data()), static_cast<int>(nb.size()), nullptr));
    e.reset(BN_bin2bn(reinterpret_cast<const unsigned char*>(eb.data()), static_cast<int>(eb.size()), nullptr));
    if (!n || !e || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
      return bad("out of memory");
  }
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(bld.get()), OSSL_PARAM_free);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, ec ? "EC" : "RSA", nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    return bad(ec ? "an EC key whose point is not on P-256" : "an RSA key OpenSSL refuses");
  return pkey_ptr(key);
}

// True when libjwt verifies `token` (NUL-terminated) under `key` with
// `want`. The caller chose `want` and `key` from the configured keys after
// reading the header itself; libjwt 1.10 takes the algorithm from the
// header again, so the algorithm it used is checked too (a header that two
// JSON parsers read differently must not switch HS256 on under an RSA key).
bool libjwt_verifies(const std::string& token, std::string_view key, jwt_alg_t want) {
  jwt_t* jwt = nullptr;
  int rc = jwt_decode(&jwt, token.c_str(), reinterpret_cast<const unsigned char*>(key.data()),
                      static_cast<int>(key.size()));
  bool ok = rc == 0 && jwt && jwt_get_alg(jwt) == want;
  jwt_free(jwt);
  ERR_clear_error();  // a failed check leaves OpenSSL errors on this thread's queue
  return ok;
}

// An algorithm name from a header, for a message: only names we know, as the
// header is the token's content.
std::string shown_alg(std::string_view alg) {
  for (std::string_view known : {"none", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
                                 "ES512", "PS256", "PS384", "PS512", "EdDSA"})
    if (alg == known) return std::string(1, '"').append(alg).append(1, '"');
  return "(unknown)";
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
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

status token_verifier::add_pem_keys(std::string_view pem, std::string_view source) {
  const std::string where = std::string(source) + ": ";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return bad(where + "out of memory");
  std::vector<public_key> found;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (!PEM_read_bio(bio.get(), &name, &header, &data, &len)) {
      const unsigned long e = ERR_peek_last_error();
      ERR_clear_error();
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) break;  // no more blocks
      return bad(where + "a damaged PEM block");
    }
    const std::string block = name;
    const unsigned char* p = data;
    pkey_ptr key;
    if (block == "PUBLIC KEY") {
      key.reset(d2i_PUBKEY(nullptr, &p, len));
    } else if (block == "RSA PUBLIC KEY") {
      key.reset(d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, len));
    } else if (block == "CERTIFICATE") {
      if (X509* cert = d2i_X509(nullptr, &p, len)) {
        key.reset(X509_get_pubkey(cert));
        X509_free(cert);
      }
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(data, static_cast<std::size_t>(len));  // it may have been a private key
    ERR_clear_error();
    if (block == "EC PARAMETERS") continue;  // `openssl ecparam` output before the key
    if (block.find("PRIVATE KEY") != std::string::npos)
      return bad(where + "holds a private key; give weft-server the public key only");
    if (block != "PUBLIC KEY" && block != "RSA PUBLIC KEY" && block != "CERTIFICATE")
      return bad(where + "holds a PEM block \"" + block + "\", not a public key or certificate");
    if (!key) return bad(where + "a " + block + " block OpenSSL cannot read");
    auto k = check_key(key.get());
    ERR_clear_error();
    if (!k.ok()) return bad(where + k.error().detail());
    found.push_back(public_key{k.value().ec, std::move(k.value().pem), {}});
  }
  if (found.empty()) return bad(where + "no PEM public key in it");
  for (auto& k : found) keys_.push_back(std::move(k));
  return {};
}

status token_verifier::add_jwks(std::string_view json, std::string_view source) {
  const std::string where = std::string(source) + ": ";
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array list;
  if (parser.parse(json.data(), json.size()).get(doc) || doc["keys"].get_array().get(list))
    return bad(where + "not a JWK Set (want {\"keys\":[...]} in JSON)");
  std::vector<public_key> found;
  std::size_t index = 0;
  for (simdjson::dom::element item : list) {
    const std::string which = where + "key " + std::to_string(index++) + ": ";
    simdjson::dom::object jwk;
    if (item.get_object().get(jwk)) return bad(which + "not a JSON object");
    std::string_view kty, use, alg, kid;
    if (jwk["kty"].get_string().get(kty)) return bad(which + "no \"kty\"");
    if (!jwk["use"].get_string().get(use) && use != "sig") continue;  // an encryption key
    const bool has_alg = !jwk["alg"].get_string().get(alg);
    bool ec;
    if (kty == "RSA") ec = false;
    else if (kty == "EC") ec = true;
    else continue;  // "oct", "OKP": nothing we verify with
    if (has_alg && alg != (ec ? "ES256" : "RS256")) continue;  // e.g. RS384, RSA-OAEP
    if (ec) {
      std::string_view crv;
      if (!jwk["crv"].get_string().get(crv) && crv != "P-256") continue;  // P-384 and others: not ES256
    }
    if (jwk["kid"].error() != simdjson::NO_SUCH_FIELD && jwk["kid"].get_string().get(kid))
      return bad(which + "\"kid\" is not a string");
    auto key = jwk_to_pkey(jwk, ec);
    if (!key.ok()) return bad(which + key.error().detail());
    auto k = check_key(key.value().get());
    ERR_clear_error();
    if (!k.ok()) return bad(which + k.error().detail());
    found.push_back(public_key{ec, std::move(k.value().pem), std::string(kid)});
  }
  if (found.empty()) return bad(where + "no RS256 or ES256 signing key in it");
  for (auto& k : found) keys_.push_back(std::move(k));
  return {};
}

std::string token_verifier::algorithms() const {
  std::string out;
  auto add = [&](const char* a) { out += (out.empty() ? "" : ", ") + std::string(a); };
  if (!secret_.empty()) add("HS256");
  bool rsa = false, ec = false;
  for (const auto& k : keys_) (k.ec ? ec : rsa) = true;
  if (rsa) add("RS256");
  if (ec) add("ES256");
  return out;
}

std::string token_verifier::sign(std::string_view claims_json) const {
  auto t = sign_token(claims_json, "HS256", secret_);
  return t.ok() ? std::move(t.value()) : std::string();
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

  // The header is read here, before any signature check, to choose the key:
  // the token never chooses how it is checked.
  simdjson::dom::parser parser;
  simdjson::dom::element h;
  simdjson::dom::object ho;
  if (parser.parse(header).get(h) || h.get_object().get(ho)) return bad("malformed token header");
  std::string_view alg, kid, typ;
  bool has_alg = false, has_kid = false, has_typ = false;
  for (auto [k, v] : ho) {
    // A repeated field could be read one way here and another by libjwt.
    bool* seen = k == "alg" ? &has_alg : k == "kid" ? &has_kid : k == "typ" ? &has_typ : nullptr;
    if (!seen) continue;
    if (*seen) return bad("malformed token header (a repeated \"" + std::string(k) + "\")");
    *seen = true;
    std::string_view* into = k == "alg" ? &alg : k == "kid" ? &kid : &typ;
    if (v.get_string().get(*into)) return bad("malformed token header (\"" + std::string(k) + "\" is not a string)");
  }
  if (!has_alg) return bad("malformed token header (no \"alg\")");
  // libjwt 1.10 refuses any other type; so does this, with a clearer message.
  if (has_typ && !iequals(typ, "JWT")) return bad("token type (\"typ\") must be JWT");
  const std::string accepted = " (this server accepts " + algorithms() + ")";
  if (alg == "none") return bad("token algorithm \"none\" is refused" + accepted);
  const bool hs = alg == "HS256" && !secret_.empty();
  const bool rs = alg == "RS256", es = alg == "ES256";
  std::vector<const public_key*> candidates;
  if (rs || es) {
    bool any = false;
    for (const auto& k : keys_)
      if (k.ec == es) {
        any = true;
        if (has_kid && k.kid == kid) candidates.push_back(&k);
      }
    if (!any) return bad("token algorithm " + shown_alg(alg) + " is not accepted" + accepted);
    // A kid no key has (or none at all): the keys configured without one,
    // which is how PEM keys come.
    if (candidates.empty())
      for (const auto& k : keys_)
        if (k.ec == es && k.kid.empty()) candidates.push_back(&k);
    if (candidates.empty())
      return bad(has_kid ? "token key id (\"kid\") names none of the configured keys"
                         : "token has no key id (\"kid\") and every configured key has one");
  } else if (!hs) {
    return bad("token algorithm " + shown_alg(alg) + " is not accepted" + accepted);
  }

  const std::string nul_terminated(token);
  bool verified = false;
  if (hs) {
    // libjwt compares the MAC; in constant time since CVE-2024-25189's fix
    // (Debian 1.10.2-1+deb12u1).
    verified = libjwt_verifies(nul_terminated, secret_, JWT_ALG_HS256);
  } else {
    for (const public_key* k : candidates)
      if ((verified = libjwt_verifies(nul_terminated, k->pem, es ? JWT_ALG_ES256 : JWT_ALG_RS256))) break;
  }
  if (!verified) return bad("token signature does not verify");

  // The claims are the bytes whose signature was just checked.
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
  if (!issuer_.empty()) {
    std::string_view iss;
    if (o["iss"].get_string().get(iss) || iss != issuer_) return bad("token issuer (\"iss\") is not the one required");
  }
  if (!audience_.empty()) {
    // "aud" is one string or an array of them (RFC 7519, 4.1.3).
    bool found = false;
    std::string_view one;
    simdjson::dom::array many;
    if (!o["aud"].get_string().get(one)) {
      found = one == audience_;
    } else if (!o["aud"].get_array().get(many)) {
      for (auto a : many)
        if (!a.get_string().get(one) && one == audience_) found = true;
    }
    if (!found) return bad("token audience (\"aud\") does not include this server");
  }
  std::string_view sub;
  if (!o["sub"].get_string().get(sub)) out.subject = std::string(sub.substr(0, 200));
  // A jti that is not a string could never match the deny list: refused
  // rather than silently unrevocable.
  std::string_view jti;
  if (o["jti"].error() != simdjson::NO_SUCH_FIELD) {
    if (o["jti"].get_string().get(jti)) return bad("token \"jti\" must be a string");
    out.jti = std::string(jti);
  }
  if (revoked(out)) return bad("token revoked (its jti is on the deny list)");
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

void token_verifier::set_denied(std::set<std::string, std::less<>> jtis) {
  auto list = std::make_shared<const std::set<std::string, std::less<>>>(std::move(jtis));
  std::lock_guard<std::mutex> lock(denied_->mu);
  denied_->ids = std::move(list);
}

bool token_verifier::revoked(const token_claims& claims) const {
  if (claims.jti.empty()) return false;
  std::lock_guard<std::mutex> lock(denied_->mu);
  return denied_->ids && denied_->ids->count(claims.jti) > 0;
}

result<std::string> sign_token(std::string_view claims_json, std::string_view alg, std::string_view key,
                               std::string_view kid) {
  const jwt_alg_t a = alg == "HS256"   ? JWT_ALG_HS256
                      : alg == "RS256" ? JWT_ALG_RS256
                      : alg == "ES256" ? JWT_ALG_ES256
                                       : JWT_ALG_INVAL;
  if (a == JWT_ALG_INVAL) return bad("can sign HS256, RS256 or ES256 only");
  if (key.empty()) return bad("no key to sign with");
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return bad("out of memory");
  std::unique_ptr<jwt_t, decltype(&jwt_free)> jwt(raw, jwt_free);
  if (jwt_add_grants_json(jwt.get(), std::string(claims_json).c_str()) != 0)
    return bad("the claims are not a JSON object");
  if (!kid.empty() && jwt_add_header(jwt.get(), "kid", std::string(kid).c_str()) != 0) return bad("bad kid");
  if (jwt_set_alg(jwt.get(), a, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size())) != 0)
    return bad("cannot use that key");
  char* out = jwt_encode_str(jwt.get());
  ERR_clear_error();
  if (!out) return bad("signing failed (for RS256 and ES256 the key must be a PEM private key of that type)");
  std::string token(out);
  std::free(out);
  return token;
}

std::set<std::string, std::less<>> parse_deny_list(std::string_view text) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  std::set<std::string, std::less<>> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    for (std::size_t i = 0; i < line.size(); ++i)
      if (line[i] == '#' && (i == 0 || blank(line[i - 1]))) {
        line = line.substr(0, i);
        break;
      }
    while (!line.empty() && blank(line.front())) line.remove_prefix(1);
    while (!line.empty() && blank(line.back())) line.remove_suffix(1);
    if (!line.empty()) out.emplace(line);
  }
  return out;
}

result<bool> deny_list_file::refresh(token_verifier& verifier) {
  constexpr std::size_t max_bytes = 16u << 20;
  std::ifstream in(path_, std::ios::binary);
  if (!in) return bad("cannot read the deny list " + path_);
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return bad("cannot read the deny list " + path_);
  if (static_cast<std::size_t>(size) > max_bytes) return bad("the deny list " + path_ + " is over 16 MiB");
  std::string text(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  in.read(text.data(), size);
  if (in.bad()) return bad("cannot read the deny list " + path_);
  text.resize(static_cast<std::size_t>(in.gcount()));  // shorter when it shrank meanwhile
  if (read_once_ && text == last_) return false;
  auto ids = parse_deny_list(text);
  size_ = ids.size();
  verifier.set_denied(std::move(ids));
  last_ = std::move(text);
  read_once_ = true;
  return true;
}

std::int64_t unix_now() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace weft::server
