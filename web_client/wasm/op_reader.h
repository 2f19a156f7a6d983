// Reads the protocol's JSON values the WebAssembly build receives (an array
// of ops, a version vector; docs/protocol.md) straight into C++ values,
// without a JSON tree: applying remote ops is the browser's hot path. Strict:
// unknown keys, wrong types and malformed JSON are errors.
#pragma once

#include <string_view>
#include <vector>

#include "weft/operation.h"
#include "weft/status.h"
#include "weft/types.h"

namespace weft::wasm {

/// Appends the ops of `json` (an array) to `out`. Errors: invalid_argument.
status read_ops(std::string_view json, std::vector<operation>* out);

/// Reads a version vector [[replica, counter], ...]. Errors: invalid_argument.
status read_version(std::string_view json, version_vector* out);

}  // namespace weft::wasm
