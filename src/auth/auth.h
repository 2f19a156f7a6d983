// Access tokens: JWT (RFC 7519) carrying per-document rights
// (docs/protocol.md, "Authentication"), signed either with HS256 under a
// shared secret or with RS256 / ES256 by an identity provider whose public
// keys the server is given (PEM files or a JWK Set).
//
//   header  {"alg":"HS256","typ":"JWT"}            or {"alg":"RS256","kid":"k1"}
//   claims  {"sub":"alice","exp":1893456000,"jti":"4f1c...","docs":{"team-*":"rw","handbook":"r"}}
//   peer    {"sub":"eu-1","exp":1893456000,"peer":true}
//
// `exp` (Unix seconds) is required; `nbf` is honoured when present. `docs`
// maps document id patterns (`*` matches any run of characters) to "r"
// (read: sync and receive updates, send presence) or "rw" (also edit). A
// document gets the highest right of every pattern it matches. `jti`, when
// present, names the token so that it can be revoked (the deny list).
//
// Signatures are checked by libjwt; which algorithm and key a token is
// checked with is decided here from the configured keys, never by the token.
//
// Thread-safety: a token_verifier is set up (constructor, add_*) by one
// thread before it is shared; after that verify(), revoked() and
// set_denied() may be called from any thread. Tokens are never logged.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "weft/status.h"

namespace weft::server {

enum class access : std::uint8_t { none = 0, read = 1, write = 2 };

/// What a verified token allows.
struct token_claims {
  std::string subject;       ///< "sub", for logs (may be empty)
  std::string jti;           ///< "jti", the token's id for revocation (may be empty: not revocable)
  std::int64_t expires = 0;  ///< "exp", Unix seconds
  struct grant {
    std::string pattern;
    access rights = access::none;
  };
  std::vector<grant> grants;
  /// "peer": true: the bearer is another weft-server node, which may open a
  /// replication link (/peer) and relay ops of any replica. Only this claim
  /// grants that; document rights never do.
  bool peer = false;

  /// The highest right any grant gives on `doc`.
  access rights_for(std::string_view doc) const noexcept;
  /// True when the token has expired at `now_unix`.
  bool expired(std::int64_t now_unix) const noexcept { return now_unix >= expires; }
};

/// True when `text` matches `pattern`, where `*` matches any run of characters.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

class token_verifier {
 public:
  /// Accepts HS256 tokens signed with `secret` (at least 32 bytes
  /// recommended); an empty secret: no HS256. Without keys added as well
  /// verify() refuses every token.
  explicit token_verifier(std::string secret = {});

  /// Adds every public key in `pem` ("PUBLIC KEY", "RSA PUBLIC KEY" or
  /// "CERTIFICATE" blocks; a certificate's key is taken as is, its dates and
  /// issuer are not checked): RSA keys of at least 2048 bits verify RS256,
  /// EC P-256 keys ES256. Fails, adding nothing, on a private key, any other
  /// key type or no key at all; `source` (a file name) heads the message.
  status add_pem_keys(std::string_view pem, std::string_view source);
  /// Adds the signing keys of a JWK Set (RFC 7517, {"keys":[...]}): RSA
  /// (n, e) for RS256 and EC P-256 (x, y) for ES256, each under its "kid".
  /// Keys for encryption ("use":"enc"), of other types or curves, or whose
  /// "alg" is another algorithm are skipped. Fails, adding nothing, when the
  /// JSON is not a JWK Set, a key of a supported type is malformed, or no
  /// usable key is left.
  status add_jwks(std::string_view json, std::string_view source);
  /// The algorithms the configured keys verify, e.g. "HS256, RS256" (empty: none).
  std::string algorithms() const;
  /// From now on, tokens must name `issuer` as their "iss" (exactly); empty:
  /// "iss" is not checked. Call during set-up only.
  void require_issuer(std::string issuer) { issuer_ = std::move(issuer); }
  /// From now on, tokens' "aud" (a string or an array of strings, RFC 7519)
  /// must include `audience`; empty: "aud" is not checked. Call during set-up
  /// only. With an identity provider that serves other applications too,
  /// set both: otherwise a token it issued for another of them is accepted.
  void require_audience(std::string audience) { audience_ = std::move(audience); }

  /// Checks the token's form; its header's algorithm against the configured
  /// keys (HS256 only with the secret, RS256 only with RSA keys, ES256 only
  /// with EC keys; never "none"); its signature under the key its "kid"
  /// names (or each key of that type when it names none, or when it names
  /// one unknown while keys without a kid are configured); `exp` and `nbf`
  /// against `now_unix`; `iss` and `aud` when required; the claims' shape;
  /// and the deny list.
  /// Errors (invalid_argument) say which check failed, never echo the token.
  result<token_claims> verify(std::string_view token, std::int64_t now_unix) const;
  /// Signs `claims_json` (a JSON object) as an HS256 token under the secret.
  /// For tools and tests. REQUIRES: constructed with a secret.
  std::string sign(std::string_view claims_json) const;

  /// Replaces the revoked token ids (the deny list). Thread-safe.
  void set_denied(std::set<std::string, std::less<>> jtis);
  /// True when `claims` has a jti on the deny list. Thread-safe.
  bool revoked(const token_claims& claims) const;

 private:
  struct public_key {
    bool ec = false;    // EC P-256 (ES256); else RSA (RS256)
    std::string pem;    // SubjectPublicKeyInfo PEM: what libjwt reads
    std::string kid;    // from a JWK Set; empty for PEM files
  };
  std::string secret_;
  std::vector<public_key> keys_;
  std::string issuer_, audience_;  // required "iss" / "aud" (empty: not checked)
  struct deny_state {
    std::mutex mu;
    std::shared_ptr<const std::set<std::string, std::less<>>> ids;  // guarded by mu
  };
  // Behind a pointer so that a verifier can be built, then moved into place.
  std::unique_ptr<deny_state> denied_ = std::make_unique<deny_state>();
};

/// Signs `claims_json` (a JSON object) with `alg` ("HS256", "RS256" or
/// "ES256") under `key`: the secret for HS256, a PEM private key otherwise;
/// `kid`, when not empty, goes into the header. For tools and tests.
result<std::string> sign_token(std::string_view claims_json, std::string_view alg, std::string_view key,
                               std::string_view kid = {});

/// The token ids of a deny list's text: one per line, surrounding blanks
/// ignored; `#` at the start of a line or after a blank starts a comment.
std::set<std::string, std::less<>> parse_deny_list(std::string_view text);

/// A deny list file (--auth-deny-list), read again when its content changes.
class deny_list_file {
 public:
  explicit deny_list_file(std::string path) : path_(std::move(path)) {}
  /// Reads the file; when its content differs from the last successful read
  /// (always on the first), gives `verifier` its ids and returns true; false
  /// when it is unchanged. An error when it cannot be read (or is over
  /// 16 MiB): the verifier keeps the list it has.
  result<bool> refresh(token_verifier& verifier);
  const std::string& path() const noexcept { return path_; }
  /// How many ids the last successful read found.
  std::size_t size() const noexcept { return size_; }

 private:
  std::string path_;
  std::string last_;
  bool read_once_ = false;
  std::size_t size_ = 0;
};

/// Current Unix time in seconds.
std::int64_t unix_now() noexcept;

}  // namespace weft::server
