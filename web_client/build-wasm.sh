#!/usr/bin/env bash
# Compiles the document core to WebAssembly with Debian's emscripten:
# packages/core/dist/weft_core.mjs + weft_core.wasm (an ES module factory that
# works in browsers and, given the wasm bytes, in node), the binary part of the
# @weft/core package.
set -euo pipefail
cd "$(dirname "$0")"
export NODE_PATH=/usr/share/nodejs   # Debian's acorn, needed by emscripten's optimizer
mkdir -p packages/core/dist
core=(../src/core/*.cc)
em++ -std=c++20 -O3 -flto -fno-exceptions -DNDEBUG \
  -I../include -I../src -Iwasm \
  "${core[@]}" ../src/protocol/json_writer.cc ../src/protocol/op_json_reader.cc ../src/protocol/binary.cc ../src/protocol/doc_id.cc wasm/bindings.cc \
  --bind -sMODULARIZE=1 -sEXPORT_ES6=1 -sEXPORT_NAME=createWeftCore \
  -sALLOW_MEMORY_GROWTH=1 -sENVIRONMENT=web,worker -sFILESYSTEM=0 \
  -sEXPORTED_FUNCTIONS=_weft_scratch,_weft_insert_utf8,_weft_erase,_weft_apply_json,_weft_apply_frame,_weft_take_outgoing_frame,_weft_live_documents,_weft_result_ptr,_weft_result_len \
  -o packages/core/dist/weft_core.mjs
ls -l packages/core/dist/weft_core.mjs packages/core/dist/weft_core.wasm
