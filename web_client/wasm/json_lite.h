// A small JSON reader for the WebAssembly build, which has no simdjson: used
// for version vectors (ops are read by op_reader.h, written by
// src/protocol/json_writer.h). Strict: anything malformed is an error, never
// undefined behaviour.
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

/// Reads a version vector [[replica, counter], ...] (docs/protocol.md).
result<version_vector> version_from_json(const json& j);

}  // namespace weft::wasm
