// A small JSON reader and the op <-> JSON conversions of docs/protocol.md,
// for the WebAssembly build (which has no simdjson or fmt). Strict: anything
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

void append_json_string(std::string& out, std::string_view s);
void append_op(std::string& out, const operation& op);
void append_version(std::string& out, const version_vector& vv);

/// Reads an op object / an array of ops / a version array (docs/protocol.md).
result<operation> op_from_json(const json& j);
result<std::vector<operation>> ops_from_json(const json& j);
result<version_vector> version_from_json(const json& j);

}  // namespace weft::wasm
