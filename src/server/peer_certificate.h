// Client certificates on replication links (--peer-client-ca): which names a
// verified certificate gives the node that presented it.
#pragma once

#include <optional>
#include <string>
#include <vector>

struct ssl_st;

namespace weft::server {

/// The names the client certificate of the TLS connection `ssl` gives its
/// holder: its subject's common name and its subjectAltName DNS entries.
/// nullopt when the client sent no certificate, or one that did not verify
/// against the context's CA certificates. Call after the handshake; `ssl`
/// stays owned by the caller.
std::optional<std::vector<std::string>> verified_client_names(ssl_st* ssl);

}  // namespace weft::server
