// Tokens from identity providers (issue #14 item 7): RS256 and ES256 under
// PEM public keys and JWK Sets, chosen by kid, with the algorithm fixed by
// the configured key and never by the token; and revocation by jti through
// --auth-deny-list, at connect and for connections already open.
//
// Keys are made with OpenSSL at run time: no private key is committed.
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "auth/auth.h"
#include "server_fixture.h"
#include "test_client.h"

namespace weft::test {
namespace {

using namespace std::chrono_literals;
using server::access;
using server::token_verifier;

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

pkey_ptr rsa_key(unsigned bits = 2048) { return pkey_ptr(EVP_RSA_gen(bits)); }
pkey_ptr ec_key(const char* curve = "P-256") { return pkey_ptr(EVP_EC_gen(curve)); }

// Keys shared by the tests: RSA generation takes a while.
EVP_PKEY* rsa1() {
  static pkey_ptr k = rsa_key();
  return k.get();
}
EVP_PKEY* rsa2() {
  static pkey_ptr k = rsa_key();
  return k.get();
}
EVP_PKEY* ec1() {
  static pkey_ptr k = ec_key();
  return k.get();
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<std::size_t>(n));
}
std::string public_pem(EVP_PKEY* k) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PUBKEY(b.get(), k);
  return bio_text(b.get());
}
std::string private_pem(EVP_PKEY* k) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
  return bio_text(b.get());
}

std::string b64url(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string bn_param(EVP_PKEY* k, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(k, name, &bn);
  std::string out(pad ? static_cast<std::size_t>(pad) : static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  if (pad) BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
  else BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

// The JWK of a public key, as an identity provider publishes it.
std::string jwk(EVP_PKEY* k, const std::string& kid, const std::string& extra = {}) {
  std::string out = R"({"kid":")" + kid + R"(",)" + extra;
  if (EVP_PKEY_is_a(k, "RSA"))
    out += R"("kty":"RSA","use":"sig","alg":"RS256","n":")" + b64url(bn_param(k, OSSL_PKEY_PARAM_RSA_N)) +
           R"(","e":")" + b64url(bn_param(k, OSSL_PKEY_PARAM_RSA_E)) + "\"}";
  else
    out += R"("kty":"EC","use":"sig","crv":"P-256","x":")" + b64url(bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, 32)) +
           R"(","y":")" + b64url(bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32)) + "\"}";
  return out;
}

std::string claims(const std::string& docs = R"({"*":"rw"})", const std::string& jti = {}, std::int64_t ttl = 3600) {
  return R"({"sub":"idp-user","exp":)" + std::to_string(server::unix_now() + ttl) +
         (jti.empty() ? "" : R"(,"jti":")" + jti + "\"") + R"(,"docs":)" + docs + "}";
}

std::string sign(EVP_PKEY* k, const std::string& kid = {}, const std::string& body = claims()) {
  auto t = server::sign_token(body, EVP_PKEY_is_a(k, "RSA") ? "RS256" : "ES256", private_pem(k), kid);
  EXPECT_TRUE(t.ok()) << t.error().to_string();
  return t.ok() ? t.value() : std::string();
}

// A token with a header of our choosing, HMAC-SHA256-signed under `key`:
// what an attacker who knows a public key can make.
std::string forge_hs256(const std::string& header_json, const std::string& body, const std::string& key) {
  std::string input = b64url(header_json) + "." + b64url(body);
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &len);
  return input + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

// verify() refuses `t` saying `why`, without echoing it.
::testing::AssertionResult refused(const token_verifier& v, const std::string& t, const std::string& why) {
  auto r = v.verify(t, server::unix_now());
  if (r.ok()) return ::testing::AssertionFailure() << "accepted, want refused for " << why;
  const std::string d = r.error().detail();
  if (d.find(why) == std::string::npos) return ::testing::AssertionFailure() << "refused with \"" << d << "\", want " << why;
  if (d.find(t) != std::string::npos) return ::testing::AssertionFailure() << "the message echoes the token";
  return ::testing::AssertionSuccess();
}

// ---- verification, without a server ----------------------------------------------

// Made by an independent implementation (Node.js crypto: its own JWK export and
// signatures, ES256 in IEEE P1363 form) from keys thrown away afterwards. Claims of both:
// {"sub":"vector","exp":4102444800,"jti":"node-1","docs":{"team-*":"rw","handbook":"r"}}
const std::string kNodeJwks =
    R"({"keys":[{"kty":"RSA","n":"0Z66iYrmUNPFJU1SYxKf9DhJCLOFVfYDcooHnbLFVJ-3mbqwGCIzaqmpBQKvQUZJYNDpKXRND)"
    R"(QBg1uiWSOK1S1r-Md5POzdkEhSEa4UPU0e9a7vhMzuaekzUI1O9VPsdC3A4EHK-mCxwW8Gaa4jE20L9LYvCYF6OhVUiaRDDU_HpU)"
    R"(q0ApwuzZn9HkR60LuEd-lheNiNGXg7FaxBjf4NQ_jarjEJK0sTtxQw2-YjjH0TCI7jW8Z299G9BgpsFxQoXg9ciXl0R55WG_4FsD)"
    R"(dEucy2s7j6tewu8vpYVkq1RDlBn_0MBb0AMPH34jJcK4tJI4GhHZL_eFcGaW2sbium9iw","e":"AQAB","kid":"node-rsa",")"
    R"(use":"sig","alg":"RS256"},{"kty":"EC","x":"w_2yhJ5-4LxlfAOGFECfUGwHoanMbmBkYHlssXJdfT8","y":"h-JcRmp)"
    R"(XUYZYzBfdbSwXBCnR3k_0PEL62-8QVy2y9wc","crv":"P-256","kid":"node-ec","use":"sig","alg":"ES256"}]})";
const std::string kNodeRs256 =
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Im5vZGUtcnNhIn0.eyJzdWIiOiJ2ZWN0b3IiLCJleHAiOjQxMDI0NDQ4"
    "MDAsImp0aSI6Im5vZGUtMSIsImRvY3MiOnsidGVhbS0qIjoicnciLCJoYW5kYm9vayI6InIifX0.ruAbirbJ01EDxk5GnMfjg_PW"
    "-684EBqn0ijzArev2Vblvt7oo1fbmzxCXNdZiwHe1E1CsAU9WFZgA5WzfhCvw7ZZNST1WA7D8RWXw4rfo3P-WEP6NAA-UoemNIzk"
    "rL6qETxR4tt8as6-wdXqabNpTm2Z3Wv0Jxb4qknWTmRzJWYLEAh6z2r43lFcg28VNVTiGO97XBtxqa_EI7qKWWzIZMA8G0iJXRgD"
    "sCNUHJ3p1jFoTD03ukt9NdR-SxOyqVm5t67co5msxa-q0orinbF6e5BAcCrdpYDvnKDNACo6457nz15qjQciWfWqhm9EgO82SCJt"
    "hdroPW4fV9cD9zwlNw";
const std::string kNodeEs256 =
    "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Im5vZGUtZWMifQ.eyJzdWIiOiJ2ZWN0b3IiLCJleHAiOjQxMDI0NDQ4M"
    "DAsImp0aSI6Im5vZGUtMSIsImRvY3MiOnsidGVhbS0qIjoicnciLCJoYW5kYm9vayI6InIifX0.qiP7a-gKBH3nWhZ2bRM5K95re"
    "8od4SsP0MECOLR5QjWML4EljOzLOBGtqMeg8VWhPcJElAPgSXm5J-lpu5zkog";

TEST(TokenKeysTest, AcceptsTokensMadeElsewhere) {
  token_verifier v;
  ASSERT_TRUE(v.add_jwks(kNodeJwks, "node.json").ok());
  for (const std::string& t : {kNodeRs256, kNodeEs256}) {
    auto r = v.verify(t, server::unix_now());
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r.value().subject, "vector");
    EXPECT_EQ(r.value().jti, "node-1");
    EXPECT_EQ(r.value().rights_for("team-red"), access::write);
    EXPECT_EQ(r.value().rights_for("handbook"), access::read);
  }
}

TEST(TokenKeysTest, Rs256AndEs256UnderPemKeys) {
  token_verifier v;
  ASSERT_TRUE(v.add_pem_keys(public_pem(rsa1()), "rsa.pem").ok());
  ASSERT_TRUE(v.add_pem_keys(public_pem(ec1()), "ec.pem").ok());
  EXPECT_EQ(v.algorithms(), "RS256, ES256");
  for (EVP_PKEY* k : {rsa1(), ec1()}) {
    auto r = v.verify(sign(k, {}, claims(R"({"team-*":"rw","handbook":"r"})", "j-1")), server::unix_now());
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r.value().subject, "idp-user");
    EXPECT_EQ(r.value().jti, "j-1");
    EXPECT_EQ(r.value().rights_for("team-red"), access::write);
    EXPECT_EQ(r.value().rights_for("handbook"), access::read);
    EXPECT_EQ(r.value().rights_for("payroll"), access::none);
  }
  // A kid a PEM key cannot have (identity providers always send one) still
  // finds the PEM keys.
  EXPECT_TRUE(v.verify(sign(rsa1(), "some-kid"), server::unix_now()).ok());
}

// weft-token --key-file signs with a private key (RS256 for RSA, ES256 for
// EC P-256) what a server holding the public key accepts; --kid goes into
// the header, where a JWK Set's key is found by it.
TEST(TokenKeysTest, WeftTokenSignsWithAPrivateKeyFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("weft-token-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto run = [&](const std::string& args) {
    std::string out;
    FILE* p = ::popen((std::string(WEFT_TOKEN_BIN) + " " + args + " 2>/dev/null").c_str(), "r");
    if (!p) return out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int rc = ::pclose(p);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return rc == 0 ? out : std::string();
  };
  token_verifier v;
  ASSERT_TRUE(v.add_jwks(R"({"keys":[)" + jwk(rsa1(), "r1") + "," + jwk(ec1(), "e1") + "]}", "keys.json").ok());
  struct key_case { EVP_PKEY* key; const char* kid; const char* alg; };
  for (const key_case& k : {key_case{rsa1(), "r1", "RS256"}, key_case{ec1(), "e1", "ES256"}}) {
    SCOPED_TRACE(k.alg);
    const auto pem = dir / (std::string(k.kid) + ".pem");
    std::ofstream(pem) << private_pem(k.key);
    const std::string token = run("--key-file " + pem.string() + " --kid " + k.kid + " --doc 'team-*=rw' --sub alice --jti t-1");
    ASSERT_FALSE(token.empty());
    auto r = v.verify(token, server::unix_now());
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r.value().subject, "alice");
    EXPECT_EQ(r.value().rights_for("team-red"), access::write);
    EXPECT_EQ(r.value().rights_for("payroll"), access::none);
  }
  // Refused: a key the server would not take, both key kinds at once, a kid without a key.
  const auto small = dir / "small.pem";
  std::ofstream(small) << private_pem(rsa_key(1024).get());
  EXPECT_TRUE(run("--key-file " + small.string() + " --doc a=r").empty());
  const auto secret = dir / "secret";
  std::ofstream(secret) << "0123456789abcdef0123456789abcdef";
  EXPECT_TRUE(run("--key-file " + (dir / "r1.pem").string() + " --secret-file " + secret.string() + " --doc a=r").empty());
  EXPECT_TRUE(run("--secret-file " + secret.string() + " --kid k --doc a=r").empty());
  EXPECT_FALSE(run("--secret-file " + secret.string() + " --doc a=r").empty());
  std::filesystem::remove_all(dir);
}

TEST(TokenKeysTest, OneFileMayHoldSeveralKeys) {
  token_verifier v;
  ASSERT_TRUE(v.add_pem_keys("# the IdP's keys\n" + public_pem(rsa1()) + public_pem(ec1()) + public_pem(rsa2()), "keys.pem").ok());
  for (EVP_PKEY* k : {rsa1(), rsa2(), ec1()}) EXPECT_TRUE(v.verify(sign(k), server::unix_now()).ok());
}

TEST(TokenKeysTest, JwksKeysAreChosenByKid) {
  token_verifier v;
  const std::string jwks = R"({"keys":[)" + jwk(rsa1(), "r1") + "," + jwk(rsa2(), "r2") + "," + jwk(ec1(), "e1") +
                           // skipped: an encryption key, a symmetric key and an RS384 key
                           R"(,{"kid":"x","kty":"RSA","use":"enc","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"})"
                           R"(,{"kid":"o","kty":"oct","k":"c2VjcmV0"})"
                           R"(,{"kid":"r3","kty":"RSA","alg":"RS384","n":"AQAB","e":"AQAB"})"
                           "]}";
  auto added = v.add_jwks(jwks, "jwks.json");
  ASSERT_TRUE(added.ok()) << added.to_string();
  EXPECT_EQ(v.algorithms(), "RS256, ES256");
  EXPECT_TRUE(v.verify(sign(rsa1(), "r1"), server::unix_now()).ok());
  EXPECT_TRUE(v.verify(sign(rsa2(), "r2"), server::unix_now()).ok());
  auto ec = v.verify(sign(ec1(), "e1"), server::unix_now());
  EXPECT_TRUE(ec.ok()) << ec.error().to_string();
  // The kid decides the key: r2's signature under r1's kid does not verify.
  EXPECT_TRUE(refused(v, sign(rsa2(), "r1"), "signature"));
  EXPECT_TRUE(refused(v, sign(rsa1(), "unknown"), "kid"));
  EXPECT_TRUE(refused(v, sign(rsa1()), "kid"));  // no kid, and every JWKS key has one
}

TEST(TokenKeysTest, ForgedTokensAreRefused) {
  token_verifier v;
  const std::string pem = public_pem(rsa1());
  ASSERT_TRUE(v.add_pem_keys(pem, "rsa.pem").ok());
  token_verifier jv;
  ASSERT_TRUE(jv.add_jwks(R"({"keys":[)" + jwk(rsa1(), "r1") + "," + jwk(ec1(), "e1") + "]}", "jwks.json").ok());

  // Signed by a key the server does not have.
  EXPECT_TRUE(refused(v, sign(rsa2()), "signature"));
  EXPECT_TRUE(refused(jv, sign(ec_key().get(), "e1"), "signature"));
  // More rights spliced in under a real signature.
  for (auto [ver, tok] : {std::pair{&v, sign(rsa1(), {}, claims(R"({"team-a":"r"})"))},
                          std::pair{&jv, sign(ec1(), "e1", claims(R"({"team-a":"r"})"))}}) {
    std::string spliced = tok.substr(0, tok.find('.') + 1) + b64url(claims()) + tok.substr(tok.rfind('.'));
    EXPECT_TRUE(refused(*ver, spliced, "signature"));
  }
  // alg "none", with and without a signature.
  const std::string body = b64url(claims());
  EXPECT_TRUE(refused(v, b64url(R"({"alg":"none","typ":"JWT"})") + "." + body + ".", "\"none\" is refused"));
  EXPECT_TRUE(refused(jv, b64url(R"({"alg":"none","kid":"r1"})") + "." + body + "." + b64url("x"), "\"none\""));
  // Algorithm confusion: HS256 "signed" with the public key as the secret.
  EXPECT_TRUE(refused(v, forge_hs256(R"({"alg":"HS256","typ":"JWT"})", claims(), pem), "not accepted"));
  EXPECT_TRUE(refused(jv, forge_hs256(R"({"alg":"HS256","kid":"r1"})", claims(), public_pem(rsa1())), "not accepted"));
  // ...and the same with a header two JSON parsers could read differently.
  EXPECT_TRUE(refused(v, forge_hs256(R"({"alg":"RS256","alg":"HS256"})", claims(), pem), "repeated"));
  // An ES256 token where only RSA keys are configured, and the reverse.
  token_verifier ev;
  ASSERT_TRUE(ev.add_pem_keys(public_pem(ec1()), "ec.pem").ok());
  EXPECT_TRUE(refused(v, sign(ec1()), "not accepted (this server accepts RS256)"));
  EXPECT_TRUE(refused(ev, sign(rsa1()), "not accepted (this server accepts ES256)"));
  // Other algorithms and types.
  EXPECT_TRUE(refused(v, b64url(R"({"alg":"PS256"})") + "." + body + "." + b64url("x"), "\"PS256\" is not accepted"));
  EXPECT_TRUE(refused(v, b64url(R"({"alg":"RS256","typ":"at+jwt"})") + "." + body + "." + b64url("x"), "typ"));
  // The jti must be a string: a number would never match the deny list.
  EXPECT_TRUE(refused(v, sign(rsa1(), {}, R"({"exp":4102444800,"jti":7,"docs":{"*":"rw"}})"), "jti"));
}

TEST(TokenKeysTest, EachAlgorithmOnlyWithItsOwnKey) {
  const std::string secret = "weft-test-secret-0123456789abcdef";
  const std::string pem = public_pem(rsa1());
  // An RS256 token where only a secret is configured.
  token_verifier hs(secret);
  EXPECT_EQ(hs.algorithms(), "HS256");
  EXPECT_TRUE(refused(hs, sign(rsa1()), "not accepted (this server accepts HS256)"));
  // Secret and RSA key together: HS256 is checked with the secret only, so
  // the public key as an HMAC key gets nowhere.
  token_verifier both(secret);
  ASSERT_TRUE(both.add_pem_keys(pem, "rsa.pem").ok());
  EXPECT_EQ(both.algorithms(), "HS256, RS256");
  EXPECT_TRUE(refused(both, forge_hs256(R"({"alg":"HS256","typ":"JWT"})", claims(), pem), "signature"));
  EXPECT_TRUE(both.verify(both.sign(claims()), server::unix_now()).ok());
  EXPECT_TRUE(both.verify(sign(rsa1()), server::unix_now()).ok());
  // No keys at all: nothing is accepted.
  token_verifier none;
  EXPECT_TRUE(refused(none, forge_hs256(R"({"alg":"HS256"})", claims(), ""), "not accepted"));
}

TEST(TokenKeysTest, KeyFilesAreChecked) {
  token_verifier v;
  auto why = [&](const status& st) { return st.ok() ? std::string("ok") : st.detail(); };
  const auto d = why(v.add_pem_keys(private_pem(rsa1()), "k.pem"));
  EXPECT_NE(d.find("k.pem: holds a private key"), std::string::npos) << d;
  EXPECT_NE(why(v.add_pem_keys(public_pem(rsa_key(1024).get()), "k.pem")).find("at least 2048"), std::string::npos);
  EXPECT_NE(why(v.add_pem_keys(public_pem(ec_key("P-384").get()), "k.pem")).find("P-256"), std::string::npos);
  EXPECT_NE(why(v.add_pem_keys("not a key", "k.pem")).find("no PEM public key"), std::string::npos);
  EXPECT_NE(why(v.add_jwks("[]", "j.json")).find("not a JWK Set"), std::string::npos);
  EXPECT_NE(why(v.add_jwks(R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})", "j.json")).find("no RS256 or ES256"),
            std::string::npos);
  // A point that is not on P-256.
  std::string off = R"({"keys":[{"kid":"e","kty":"EC","crv":"P-256","x":")" + b64url(std::string(32, '\1')) +
                    R"(","y":")" + b64url(std::string(32, '\2')) + R"("}]})";
  EXPECT_NE(why(v.add_jwks(off, "j.json")).find("j.json: key 0: "), std::string::npos) << why(v.add_jwks(off, "j.json"));
  EXPECT_EQ(v.algorithms(), "");  // nothing above was added
}

TEST(TokenKeysTest, DenyListRevokesByJti) {
  EXPECT_EQ(server::parse_deny_list("# revoked\n a-1 \n\nb-2  # bob's laptop\r\nc#3\n#d-4\n"),
            (std::set<std::string, std::less<>>{"a-1", "b-2", "c#3"}));
  token_verifier v;
  ASSERT_TRUE(v.add_pem_keys(public_pem(rsa1()), "rsa.pem").ok());
  const std::string t = sign(rsa1(), {}, claims(R"({"*":"rw"})", "b-2"));
  EXPECT_TRUE(v.verify(t, server::unix_now()).ok());
  v.set_denied(server::parse_deny_list("a-1\nb-2\n"));
  EXPECT_TRUE(refused(v, t, "revoked"));
  EXPECT_TRUE(v.verify(sign(rsa1(), {}, claims(R"({"*":"rw"})", "b-3")), server::unix_now()).ok());
  EXPECT_TRUE(v.verify(sign(rsa1()), server::unix_now()).ok());  // no jti: not revocable
  v.set_denied({});
  EXPECT_TRUE(v.verify(t, server::unix_now()).ok());
}

// An identity provider serves many applications: with --auth-issuer and
// --auth-audience, only its tokens meant for this server get in.
TEST(TokenKeysTest, IssuerAndAudienceAreCheckedWhenRequired) {
  const std::string exp = std::to_string(server::unix_now() + 3600);
  auto body = [&](const std::string& extra) {
    return R"({"sub":"idp-user","exp":)" + exp + extra + R"(,"docs":{"*":"rw"}})";
  };
  token_verifier v;
  ASSERT_TRUE(v.add_pem_keys(public_pem(rsa1()), "rsa.pem").ok());
  const std::string none = sign(rsa1(), {}, body(""));
  const std::string right = sign(rsa1(), {}, body(R"(,"iss":"https://idp.example/realms/w","aud":"weft")"));
  const std::string in_list =
      sign(rsa1(), {}, body(R"(,"iss":"https://idp.example/realms/w","aud":["wiki","weft"])"));
  EXPECT_TRUE(v.verify(none, server::unix_now()).ok());  // nothing required: nothing checked
  v.require_issuer("https://idp.example/realms/w");
  EXPECT_TRUE(refused(v, none, "issuer"));
  EXPECT_TRUE(refused(v, sign(rsa1(), {}, body(R"(,"iss":"https://idp.example/realms/other")")), "issuer"));
  EXPECT_TRUE(refused(v, sign(rsa1(), {}, body(R"(,"iss":["https://idp.example/realms/w"])")), "issuer"));
  EXPECT_TRUE(v.verify(sign(rsa1(), {}, body(R"(,"iss":"https://idp.example/realms/w")")), server::unix_now()).ok());
  v.require_audience("weft");
  EXPECT_TRUE(refused(v, sign(rsa1(), {}, body(R"(,"iss":"https://idp.example/realms/w")")), "audience"));
  EXPECT_TRUE(refused(v, sign(rsa1(), {}, body(R"(,"iss":"https://idp.example/realms/w","aud":"wiki")")),
                      "audience"));
  EXPECT_TRUE(refused(v, sign(rsa1(), {}, body(R"(,"iss":"https://idp.example/realms/w","aud":["wiki",7])")),
                      "audience"));
  EXPECT_TRUE(refused(v, sign(rsa1(), {}, body(R"(,"iss":"https://idp.example/realms/w","aud":"weft-admin")")),
                      "audience"));
  EXPECT_TRUE(v.verify(right, server::unix_now()).ok());
  EXPECT_TRUE(v.verify(in_list, server::unix_now()).ok());
}

// ---- end to end, a server per test ------------------------------------------------

bool has(const std::optional<message>& m, const std::string& s) { return m && m->raw.find(s) != std::string::npos; }

class TokenKeysServerTest : public server_fixture {
 protected:
  void SetUp() override {
    server_fixture::SetUp();
    std::filesystem::create_directories(dir_);
  }
  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    auto tmp = dir_ / (name + ".tmp");
    std::ofstream(tmp, std::ios::binary) << text;
    std::filesystem::rename(tmp, path);  // as the docs ask: replaced whole
    return path.string();
  }
  std::unique_ptr<test_client> authed(const std::string& tok) {
    auto c = std::make_unique<test_client>(port());
    auto r = c->hello_with_token(tok);
    EXPECT_TRUE(r && r->type == "welcome") << (r ? r->raw : "no reply");
    return c;
  }
};

TEST_F(TokenKeysServerTest, IdentityProviderTokensOpenDocuments) {
  config_.auth_public_keys = {write("idp.pem", public_pem(rsa1()))};
  config_.auth_jwks = {write("jwks.json", R"({"keys":[)" + jwk(ec1(), "e1") + "]}")};
  ASSERT_NO_FATAL_FAILURE(start());
  auto c = authed(sign(rsa1(), {}, claims(R"({"notes":"rw"})")));
  c->open("notes");
  c->insert("notes", 0, "signed by the IdP");
  ASSERT_TRUE(c->wait_acked("notes"));
  // ES256 through the JWKS, in the Authorization header this time.
  test_client h(port(), 0, {{"Authorization", "Bearer " + sign(ec1(), "e1", claims(R"({"notes":"r"})"))}});
  h.hello();
  h.open("notes");
  EXPECT_EQ(h.replica("notes").text(), "signed by the IdP");
  // Neither an HS256 token (no secret here) nor a foreign key gets in.
  auto [st, body] = try_upgrade(port(), {{"Authorization", "Bearer " + forge_hs256(R"({"alg":"HS256"})", claims(),
                                                                                      public_pem(rsa1()))}});
  EXPECT_EQ(st, 401);
  EXPECT_NE(body.find("not accepted"), std::string::npos) << body;
  EXPECT_EQ(try_upgrade(port(), {{"Authorization", "Bearer " + sign(rsa2())}}).first, 401);
}

TEST_F(TokenKeysServerTest, IssuerAndAudienceFlagsReachTheServer) {
  config_.auth_public_keys = {write("idp.pem", public_pem(rsa1()))};
  config_.auth_issuer = "https://idp.example";
  config_.auth_audience = "weft";
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string exp = std::to_string(server::unix_now() + 3600);
  auto token = [&](const std::string& aud) {
    return sign(rsa1(), {},
                R"({"sub":"u","exp":)" + exp + R"(,"iss":"https://idp.example","aud":")" + aud +
                    R"(","docs":{"*":"rw"}})");
  };
  auto [st, body] = try_upgrade(port(), {{"Authorization", "Bearer " + token("another-app")}});
  EXPECT_EQ(st, 401);
  EXPECT_NE(body.find("audience"), std::string::npos) << body;
  auto c = authed(token("weft"));
  c->open("notes");
  c->insert("notes", 0, "for weft");
  EXPECT_TRUE(c->wait_acked("notes"));
}

TEST_F(TokenKeysServerTest, BadKeyFilesStopTheStart) {
  config_.auth_public_keys = {write("k.pem", private_pem(ec1()))};
  auto s = try_start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().detail().find("private key"), std::string::npos) << s.error().detail();
  config_.auth_public_keys = {write("k.pem", public_pem(ec1()))};
  config_.auth_deny_list = (dir_ / "missing").string();
  s = try_start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().detail().find("deny list"), std::string::npos) << s.error().detail();
}

TEST_F(TokenKeysServerTest, RevokedTokensAreRefusedAndTheirConnectionsClosed) {
  config_.auth_jwks = {write("jwks.json", R"({"keys":[)" + jwk(rsa1(), "r1") + "]}")};
  config_.auth_deny_list = write("deny", "# revoked tokens\nold\n");
  ASSERT_NO_FATAL_FAILURE(start());
  const auto tok = [](const std::string& jti) { return sign(rsa1(), "r1", claims(R"({"d":"rw"})", jti)); };
  // Listed at start: refused in hello and in the header.
  {
    test_client c(port());
    auto r = c.hello_with_token(tok("old"));
    EXPECT_TRUE(has(r, "\"unauthorized\"") && has(r, "revoked")) << (r ? r->raw : "none");
  }
  EXPECT_EQ(try_upgrade(port(), {{"Authorization", "Bearer " + tok("old")}}).first, 401);

  // Two open connections; one token gets listed.
  auto doomed = authed(tok("laptop"));
  auto kept = authed(tok("phone"));
  doomed->open("d");
  kept->open("d");
  doomed->insert("d", 0, "x");
  ASSERT_TRUE(doomed->wait_acked("d"));
  test_client header(port(), 0, {{"Authorization", "Bearer " + tok("laptop")}});
  header.hello();
  write("deny", "# revoked tokens\nold\nlaptop  # lost on a train\n");

  bool told = false;
  auto closed_after_saying_why = [&](test_client& c) {
    return eventually([&] {
      if (auto m = c.recv(50ms); has(m, "\"unauthorized\"") && has(m, "revoked")) told = true;
      return c.closed();
    });
  };
  ASSERT_TRUE(closed_after_saying_why(*doomed));
  EXPECT_TRUE(told);
  EXPECT_EQ(doomed->close_reason().code, close_code::policy_error);
  told = false;
  ASSERT_TRUE(closed_after_saying_why(header));  // authenticated by its upgrade header
  EXPECT_TRUE(told);
  // The other token's connection carries on, and the listed one cannot come back.
  kept->insert("d", 0, "y");
  EXPECT_TRUE(kept->wait_acked("d"));
  EXPECT_FALSE(kept->closed());
  test_client again(port());
  EXPECT_TRUE(has(again.hello_with_token(tok("laptop")), "revoked"));
  EXPECT_EQ(http_get(port(), "/api/docs/d/text", {{"Authorization", "Bearer " + tok("laptop")}}).first, 401);
  EXPECT_EQ(http_get(port(), "/api/docs/d/text", {{"Authorization", "Bearer " + tok("phone")}}).first, 200);
}

}  // namespace
}  // namespace weft::test
