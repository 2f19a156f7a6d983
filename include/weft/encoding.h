// weft — binary encoding of operation batches (for storage and sync).
//
// The format is versioned and described in docs/encoding.md. Decoders accept
// any byte string and either return the batch or a typed error; they never
// read past the input. Snapshots of a whole replica are in document.h.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "weft/operation.h"
#include "weft/status.h"

namespace weft {

/// Encodes `ops` as one batch. Thread-safe (pure).
std::string encode_ops(std::span<const operation> ops);

/// The same op list without the header and checksum (docs/encoding.md, "Op
/// list"): for carriers that check integrity themselves, such as the wire
/// protocol's binary frames. Thread-safe (pure).
std::string encode_ops_compact(std::span<const operation> ops);

/// Decodes what encode_ops_compact() made; the same checks as decode_ops()
/// but the checksum. Errors: corrupt_data, truncated_data.
result<std::vector<operation>> decode_ops_compact(std::string_view bytes);

/// Decodes a batch made by encode_ops(). Errors: corrupt_data, truncated_data,
/// unsupported_version. Decoded ops are structurally valid (non-empty, ids in
/// range, valid UTF-8); whether they fit a document is checked by apply().
result<std::vector<operation>> decode_ops(std::string_view bytes);

}  // namespace weft
