// Reads the protocol's JSON values a replica receives (an array
// of ops, a version vector; docs/protocol.md) straight into C++ values,
// without a JSON tree and without dependencies: applying remote ops is the
// hot path of the browser (WebAssembly) and of the C API. Strict:
// unknown keys, wrong types and malformed JSON are errors. Its scanner also
// implements the public read_json_string / read_json_string_field
// (weft/protocol.h): the codec has one JSON string reader.
#pragma once

#include <string_view>
#include <vector>

#include "weft/operation.h"
#include "weft/status.h"
#include "weft/types.h"

namespace weft::protocol {

/// Appends the ops of `json` (an array) to `out`. Errors: invalid_argument.
status read_ops(std::string_view json, std::vector<operation>* out);

/// Reads a version vector [[replica, counter], ...] into `out` (empty on entry).
/// Errors: invalid_argument (also for a replica listed twice).
status read_version(std::string_view json, version_vector* out);

}  // namespace weft::protocol
