// weft-token: mints access tokens for weft-server: HS256 under the secret
// of --auth-secret-file, or RS256 / ES256 under a private key whose public
// half the server has (--auth-public-key, --auth-jwks).
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "protocol/json_writer.h"
#include "auth/auth.h"

namespace {

const char* kUsage = R"(usage: weft-token (--secret-file FILE | --key-file PEM [--kid ID]) --doc PATTERN=r|rw [--doc ...]
                  [--sub NAME] [--ttl SECONDS] [--jti ID]
       weft-token (--secret-file FILE | --key-file PEM [--kid ID]) --peer [--sub NODE] [--ttl SECONDS] [--jti ID]

Prints an access token for weft-server (docs/protocol.md, Authentication).
  --secret-file FILE   the key weft-server was given with --auth-secret-file: HS256
  --key-file PEM       a private key: RSA of 2048 bits or more signs RS256, EC on P-256
                       signs ES256; the server checks it with the public key
                       (--auth-public-key FILE, or a JWK Set with --auth-jwks FILE)
  --kid ID             the key id put in the token's header (for a JWK Set)
  --doc PATTERN=RIGHTS document id pattern (* matches any run of characters) and
                       r (read) or rw (read and edit); repeatable
  --sub NAME           who the token is for (shown in the server's logs)
  --ttl SECONDS        validity from now (default 3600)
  --jti ID             the token's id, which weft-server --auth-deny-list FILE
                       can revoke before it expires (default: 32 random hex
                       digits, readable in the token's claims)
  --peer               a token for another weft-server node: it may open a
                       replication link and relay any replica's ops
                       (docs/replication.md). Give it a long --ttl
)";

// 128 random bits in hex: ids that never collide by chance.
std::string random_jti() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return {};
  std::string out;
  for (unsigned char b : bytes) {
    out += "0123456789abcdef"[b >> 4];
    out += "0123456789abcdef"[b & 15];
  }
  return out;
}

// The algorithm a PEM private key signs with, or "" (with `why`) when it is
// not one weft-server accepts.
std::string algorithm_of(const std::string& pem, std::string* why) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  // A passphrase callback that gives none: an encrypted key is refused, never prompted for.
  pem_password_cb* no_passphrase = [](char*, int, int, void*) { return -1; };
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr, EVP_PKEY_free);
  if (!key) return *why = "not a PEM private key (an encrypted one is not read)", "";
  if (EVP_PKEY_is_a(key.get(), "RSA")) {
    if (EVP_PKEY_get_bits(key.get()) < 2048) return *why = "an RSA key of fewer than 2048 bits", "";
    return "RS256";
  }
  if (EVP_PKEY_is_a(key.get(), "EC")) {
    char group[64] = {0};
    std::size_t len = 0;
    if (!EVP_PKEY_get_utf8_string_param(key.get(), "group", group, sizeof group, &len) ||
        (std::string(group) != "prime256v1" && std::string(group) != "P-256"))
      return *why = "an EC key not on P-256", "";
    return "ES256";
  }
  return *why = "neither an RSA nor an EC key", "";
}

int fail(const std::string& m) {
  std::fprintf(stderr, "weft-token: %s\n%s", m.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string secret, sub, docs, jti, private_key, kid;
  long long ttl = 3600;
  bool peer = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--peer") {
      peer = true;
      continue;
    }
    if (i + 1 >= argc) return fail(a + " needs a value");
    ++i;
    if (a == "--secret-file") {
      std::ifstream in(v, std::ios::binary);
      if (!in) return fail("cannot read " + v);
      std::stringstream ss;
      ss << in.rdbuf();
      secret = ss.str();
      while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    } else if (a == "--key-file") {
      std::ifstream in(v, std::ios::binary);
      if (!in) return fail("cannot read " + v);
      std::stringstream ss;
      ss << in.rdbuf();
      private_key = ss.str();
      if (private_key.empty()) return fail(v + " is empty");
    } else if (a == "--kid") {
      kid = v;
      if (kid.empty()) return fail("--kid wants an id");
    } else if (a == "--doc") {
      auto eq = v.rfind('=');
      if (eq == std::string::npos || eq == 0) return fail("--doc wants PATTERN=r or PATTERN=rw");
      std::string rights = v.substr(eq + 1);
      if (rights != "r" && rights != "rw") return fail("rights must be r or rw");
      if (!docs.empty()) docs += ',';
      weft::protocol::append_json_string(docs, v.substr(0, eq));
      docs += ':';
      weft::protocol::append_json_string(docs, rights);
    } else if (a == "--sub") {
      sub = v;
    } else if (a == "--jti") {
      jti = v;
      if (jti.empty()) return fail("--jti wants an id");
    } else if (a == "--ttl") {
      ttl = std::atoll(v.c_str());
      if (ttl <= 0) return fail("--ttl must be positive");
    } else {
      return fail("unknown flag " + a);
    }
  }
  if (secret.empty() == private_key.empty()) return fail("give one of --secret-file and --key-file");
  if (!kid.empty() && private_key.empty()) return fail("--kid goes with --key-file");
  std::string alg = "HS256";
  if (!private_key.empty()) {
    std::string why;
    alg = algorithm_of(private_key, &why);
    if (alg.empty()) return fail("--key-file: " + why);
  }
  if (docs.empty() && !peer) return fail("at least one --doc (or --peer) is required");
  if (jti.empty()) jti = random_jti();
  if (jti.empty()) return fail("no randomness for a jti; give --jti ID");
  std::string claims = "{\"sub\":";
  weft::protocol::append_json_string(claims, sub);
  claims += ",\"exp\":" + std::to_string(weft::server::unix_now() + ttl);
  claims += ",\"jti\":";
  weft::protocol::append_json_string(claims, jti);
  if (peer) claims += ",\"peer\":true";
  if (!docs.empty()) claims += ",\"docs\":{" + docs + "}";
  claims += "}";
  auto token = private_key.empty() ? weft::server::sign_token(claims, alg, secret)
                                   : weft::server::sign_token(claims, alg, private_key, kid);
  if (!token.ok()) return fail(token.error().detail());
  std::puts(token.value().c_str());
  return 0;
}
