// Access tokens: JWT (RFC 7519) signed with HMAC-SHA256 under a shared
// secret, carrying per-document rights (docs/protocol.md, "Authentication").
//
//   header  {"alg":"HS256","typ":"JWT"}
//   claims  {"sub":"alice","exp":1893456000,"docs":{"team-*":"rw","handbook":"r"}}
//   peer    {"sub":"eu-1","exp":1893456000,"peer":true}
//
// `exp` (Unix seconds) is required; `nbf` is honoured when present. `docs`
// maps document id patterns (`*` matches any run of characters) to "r"
// (read: sync and receive updates, send presence) or "rw" (also edit). A
// document gets the highest right of every pattern it matches.
//
// Thread-safety: token_verifier is immutable after construction; verify()
// may be called from any thread. Tokens are never logged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "weft/status.h"

namespace weft::server {

enum class access : std::uint8_t { none = 0, read = 1, write = 2 };

/// What a verified token allows.
struct token_claims {
  std::string subject;       ///< "sub", for logs (may be empty)
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
  /// REQUIRES: a non-empty secret (at least 32 bytes recommended).
  explicit token_verifier(std::string secret);
  /// Checks the token's form, algorithm (HS256 only), signature (constant
  /// time), `nbf` and `exp` against `now_unix`, and the claims' shape.
  /// Errors (invalid_argument) say which check failed, never echo the token.
  result<token_claims> verify(std::string_view token, std::int64_t now_unix) const;
  /// Signs `claims_json` (a JSON object) as an HS256 token. For tools and tests.
  std::string sign(std::string_view claims_json) const;

 private:
  std::string secret_;
};

/// Current Unix time in seconds.
std::int64_t unix_now() noexcept;

}  // namespace weft::server
