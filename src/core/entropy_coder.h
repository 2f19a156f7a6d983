// Internal: byte columns of the snapshot format, entropy-coded.
//
// A column is a byte string whose bytes are alike (run flags, run lengths,
// UTF-8 text, ...). It is stored raw, with a canonical Huffman code over its
// bytes (code lengths at most 12 bits), or as LZ77 matches and literals
// under Huffman codes (deflate's scheme, simplified), whichever is smallest
// (docs/encoding.md, "Columns"). Hand-written rather than zlib because the
// core builds for WebAssembly without any library; decoding is one table
// lookup per symbol.
#pragma once

#include <string>
#include <string_view>

#include "core/byte_io.h"

namespace weft::detail {

/// Appends `column` to `out` in the column framing (raw or Huffman-coded).
void put_column(byte_writer& out, std::string_view column);

/// Reads one column written by put_column into `*column` (replacing its
/// contents). Fails (returns false) on truncation (then `in.ok()` is false), a
/// bad code table, a bitstream that does not decode to the stated length,
/// or a stated length above `max_bytes`. Whatever `max_bytes`, a column
/// never claims more than its coding can justify (8 bytes per coded byte for
/// Huffman, about 1,000 for matches), so corrupt input cannot make it
/// allocate without bound.
bool get_column(byte_reader& in, std::string* column, std::size_t max_bytes);

}  // namespace weft::detail
