// Who owns which replica ids of a document (docs/protocol.md, "Replica
// ownership"). With authentication on, a replica id belongs to the identity
// (the token's `sub`) that first wrote under it, and only that identity may
// introduce ops under it; peers relay ops of any replica.
//
// A claim is recorded with the batch that first carries the replica's ops:
// in the same transaction (storage.h), in the log entry, so the changes feed
// and the region bus carry it to other nodes with the ops themselves.
//
// Thread-safety: free functions over values.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/status.h"
#include "weft/types.h"

namespace weft::server {

/// (replica, owner identity) pairs.
using owner_claims = std::vector<std::pair<replica_id, std::string>>;

/// Encodes claims as text for a log column or a message field: one line per
/// claim, "<replica decimal> <owner>\n", with '%', control characters and
/// bytes >= 0x7f of the owner percent-escaped. Empty claims encode as "".
std::string encode_claims(const owner_claims& claims);
/// Decodes encode_claims() text. Errors: corrupt_data, naming what is wrong.
result<owner_claims> decode_claims(std::string_view text);

}  // namespace weft::server
