// The wasm bytes in a browser: none given, so the module fetches
// weft_core.wasm next to itself (or from loadWeft's wasmUrl).

/** Nothing: browsers fetch the wasm. */
export async function defaultWasmBinary() {
  return undefined;
}
