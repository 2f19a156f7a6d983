// The wasm bytes in node: read from this package's dist/ (node 20's fetch
// cannot read file: URLs).
import fs from 'node:fs';

/** The bytes of weft_core.wasm. */
export async function defaultWasmBinary() {
  return fs.readFileSync(new URL('../dist/weft_core.wasm', import.meta.url));
}
