// Reads a JSON array of ops (docs/protocol.md) straight into operations,
// without building a JSON tree: the hot path of applying remote ops in the
// browser. Strict: unknown keys, wrong types and malformed JSON are errors.
#pragma once

#include <string_view>
#include <vector>

#include "weft/operation.h"
#include "weft/status.h"

namespace weft::wasm {

/// Appends the ops of `json` (an array) to `out`. Errors: invalid_argument.
status read_ops(std::string_view json, std::vector<operation>* out);

}  // namespace weft::wasm
