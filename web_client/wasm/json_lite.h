// A small JSON reader and JSON -> op conversion of docs/protocol.md for the
// WebAssembly build, which has no simdjson (ops -> JSON is
// src/protocol/json_writer.h, shared with the server). Strict: anything
// malformed is an error, never undefined behaviour.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "weft/operation.h"
#include "weft/status.h"
#include "weft/types.h"

namespace weft::wasm {

struct json {
  enum class type { null, boolean, number, string, array, object } t = type::null;
  bool b = false;
  double num = 0;
  bool integral = false;
  std::uint64_t u = 0;  // when integral and non-negative
  std::string str;
  std::vector<json> items;                         // array
  std::vector<std::pair<std::string, json>> fields;  // object
  const json* get(std::string_view key) const;
};

/// Parses a whole JSON text. Errors: invalid_argument with the position.
result<json> parse_json(std::string_view text);

/// Reads an op object / an array of ops / a version array (docs/protocol.md).
result<operation> op_from_json(const json& j);
result<std::vector<operation>> ops_from_json(const json& j);
result<version_vector> version_from_json(const json& j);

}  // namespace weft::wasm
