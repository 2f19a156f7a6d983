// JSON output of the wire protocol's values (docs/protocol.md). Strings are
// escaped per RFC 8259; output is compact. Dependency-free, so the
// WebAssembly build (web_client/wasm) compiles the very same encoder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "weft/operation.h"
#include "weft/protocol.h"  // append_json_string, public since it is also the editors' JSON string writer
#include "weft/types.h"

namespace weft::protocol {

/// Appends `v` in decimal.
void append_uint(std::string& out, std::uint64_t v);
// append_json_string(out, s): declared in weft/protocol.h, defined in json_writer.cc.
/// Appends [replica,counter].
void append_id(std::string& out, op_id id);
/// Appends an operation object (see docs/protocol.md).
void append_op(std::string& out, const operation& op);
/// Appends a version vector as [[replica,counter],...].
void append_version(std::string& out, const version_vector& vv);

}  // namespace weft::protocol
