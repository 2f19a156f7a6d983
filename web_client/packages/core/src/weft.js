// weft for JavaScript: the same C++ document core as native editors and the
// server, compiled to WebAssembly. Works in browsers and in node.
//
//   import { loadWeft } from '@weft/core';
//   const weft = await loadWeft();
//   const doc = new weft.Document(replicaId);
//   doc.insert(0, 'hello');                 // positions in Unicode code points
//   socket.send(`{"type":"ops","doc":"notes","ops":${doc.takeOutgoing()}}`);
//   const changes = doc.applyOps(opsJson);  // [{insert, pos} | {erase, pos}]
//   doc.dispose();
//
// Ops travel as JSON text in the wire format of docs/protocol.md, or as its
// binary frames (applyFrame, takeOutgoingFrame), which @weft/provider uses.

import createWeftCore from '../dist/weft_core.mjs';
// In node the wasm bytes are read from this package; a browser fetches them
// (package.json "imports": bundlers for the browser never see node:fs).
import { defaultWasmBinary } from '#wasm-binary';

let corePromise = null;
// A Document that is garbage-collected without dispose() still gives its
// wasm memory back (later than dispose() would: when the collector runs).
// One registry for the module's life: a registry that is itself collected
// runs no callbacks.
const leaks = typeof FinalizationRegistry === 'function' ? new FinalizationRegistry((d) => d.delete()) : null;

/** A random replica id below 2^53 (exact in JSON and JavaScript numbers). */
export function randomReplicaId() {
  const hi = Math.floor(Math.random() * 0x200000); // 21 bits
  const lo = Math.floor(Math.random() * 0x100000000); // 32 bits
  return hi * 0x100000000 + lo || 1;
}

/** Loads the WebAssembly core once; resolves to { Document, liveDocuments }.
 * Options (read by the first call only): `wasmBinary`, the bytes of
 * weft_core.wasm; or `wasmUrl`, where a browser fetches it from (default: next
 * to weft_core.mjs, which after bundling means next to the bundle). */
export async function loadWeft(options = {}) {
  if (!corePromise) {
    corePromise = (async () => {
      const wasmBinary = options.wasmBinary ?? (options.wasmUrl ? undefined : await defaultWasmBinary());
      if (wasmBinary) return createWeftCore({ wasmBinary });
      if (options.wasmUrl) return createWeftCore({ locateFile: () => String(options.wasmUrl) });
      return createWeftCore({});
    })();
    corePromise.catch(() => { corePromise = null; }); // a failed load may be retried
  }
  const core = await corePromise;

  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  // Writes `text` as UTF-8 into wasm memory; returns [pointer, bytes].
  const toWasm = (text) => {
    const max = text.length * 3;
    const ptr = core._weft_scratch(max);
    if (text.length === 1 && text.charCodeAt(0) < 0x80) {
      core.HEAPU8[ptr] = text.charCodeAt(0); // a keystroke: skip the encoder
      return [ptr, 1];
    }
    const { written } = encoder.encodeInto(text, core.HEAPU8.subarray(ptr, ptr + max));
    return [ptr, written];
  };
  // Copies `bytes` (a Uint8Array) into wasm memory; returns the pointer.
  const bytesToWasm = (bytes) => {
    const ptr = core._weft_scratch(bytes.length);
    core.HEAPU8.set(bytes, ptr);
    return ptr;
  };
  // The answer of an apply on handle `h`: the changes, read from the binary
  // form bindings.cc writes (first byte 1), or the parsed JSON of an error,
  // an ack or a refused snapshot (first byte '{').
  const readAnswer = (h) => {
    const at = core._weft_result_ptr(h), len = core._weft_result_len(h);
    const heap = core.HEAPU8;
    if (len === 0 || heap[at] !== 1) return JSON.parse(decoder.decode(heap.subarray(at, at + len)));
    const out = [];
    const end = at + len;
    let p = at + 1;
    const varint = () => {
      let v = 0, scale = 1, b;
      do {
        b = heap[p++];
        v += (b & 0x7f) * scale;
        scale *= 128;
      } while (b & 0x80);
      return v;
    };
    while (p < end) {
      const insert = heap[p++] === 0;
      const pos = varint();
      if (insert) {
        const n = varint();
        // A keystroke: one ASCII byte, no decoder call.
        const text = n === 1 && heap[p] < 0x80 ? String.fromCharCode(heap[p]) : decoder.decode(heap.subarray(p, p + n));
        p += n;
        out.push({ insert: text, pos });
      } else {
        out.push({ erase: varint(), pos });
      }
    }
    return out;
  };
  // An apply answer (see bindings.cc): the changes, or a thrown Error.
  // With `applied` (ids asked for), the ids go on the error too.
  const changesOrThrow = (out, applied) => {
    if (Array.isArray(out)) return out;
    // Unreadable input applies nothing; a refused op leaves the others
    // applied, and their changes are on the error, so a view can still follow.
    const e = new Error(out.error);
    e.unreadable = !('changes' in out);
    e.changes = out.changes ?? [];
    if (out.snapshot) e.snapshot = true; // a snapshot frame that was not loaded (nothing changed)
    if (applied) e.applied = applied();
    throw e;
  };
  // The ids applied between two version vectors, as [replica, first, last]
  // counter ranges. Exact, because a replica's ops apply in counter order
  // (an op waits in the causal buffer until its predecessor is applied), so
  // each replica's applied counters are 1..version.
  const appliedBetween = (before, after) => {
    const was = new Map(before);
    const out = [];
    for (const [r, c] of after) {
      const b = was.get(r) ?? 0;
      if (c > b) out.push([r, b + 1, c]);
    }
    return out;
  };

  /**
   * One replica of one document. Not thread-safe. dispose() releases its
   * wasm memory at once; otherwise it is released after the Document is
   * garbage-collected.
   */
  class Document {
    constructor(replicaId = randomReplicaId()) {
      this._d = new core.Document(replicaId);
      this._h = this._d.handle();
      this._replica = this._d.replica(); // fixed for the Document's life (loadSnapshot keeps it)
      leaks?.register(this, this._d, this);
    }
    // The core object's address for the C exports; throws once disposed
    // (the exports would otherwise work on freed memory).
    get _live() {
      if (!this._h) throw new Error('weft: this Document was disposed');
      return this._h;
    }
    /**
     * Inserts text before code point `pos`; throws on a bad position.
     * Returns the id [replica, counter] of its first character (the k-th
     * character has counter + k), for positionOf().
     */
    insert(pos, text) {
      const [ptr, n] = toWasm(text);
      const counter = core._weft_insert_utf8(this._live, pos, ptr, n);
      if (!counter) throw new RangeError(this._d.lastError());
      return [this._replica, counter];
    }
    /** Code point position of character `id` ([replica, counter]) now, or -1 when it is deleted or unknown. */
    positionOf(id) { return this._d.positionOf(id[0], id[1]); }
    /** The id [replica, counter] of the visible character at code point `pos`, or null past the end. */
    idAt(pos) { return this._d.idAt(pos); }
    /** Deletes `count` code points at `pos`; throws on a bad range. */
    erase(pos, count) {
      if (!core._weft_erase(this._live, pos, count)) throw new RangeError(this._d.lastError());
    }
    /** JSON array (text) of the ops made locally since the last call. */
    takeOutgoing() {
      return this._d.takeOutgoing();
    }
    /**
     * Applies remote ops given as a JSON array (text, or an array of op
     * objects). Returns the visible changes in order, positions in code
     * points; with `{ changes: false }` returns [] and saves the work of
     * finding them (for a caller that shows the text some other way).
     * Throws on malformed or invalid ops. Malformed JSON, or an op the
     * codec's parser refuses, applies nothing (the error's `unreadable` is
     * true); an op the document refuses is skipped and the others stay
     * applied (their changes are the error's `changes`).
     * With `{ ids: true }` returns { changes, applied }: `applied` lists the
     * ids of every op this call applied (including ops that waited in the
     * causal buffer until now) as [replica, first, last] counter ranges; an
     * insert of n characters covers n counters. Ops still waiting are not in
     * it, nor are duplicates. A thrown error then carries `applied` too.
     */
    applyOps(ops, { changes = true, ids = false } = {}) {
      const json = typeof ops === 'string' ? ops : JSON.stringify(ops);
      const before = ids ? this.version() : null;
      const [ptr, n] = toWasm(json);
      core._weft_apply_json(this._live, ptr, n, changes ? 1 : 0);
      const applied = ids ? () => appliedBetween(before, this.version()) : null;
      const out = changesOrThrow(readAnswer(this._h), applied);
      return ids ? { changes: out, applied: applied() } : out;
    }
    /**
     * Reads a binary frame from weft-server (docs/protocol.md, "Binary
     * frames") for the document the server numbers `ref` (its sync's "ref").
     * An ops frame is applied: returns { type: 'ops', changes } and throws as
     * applyOps does. An ack frame: returns { type: 'ack', version }. A frame
     * the codec refuses, or for another ref, throws with `unreadable` set
     * and applies nothing. The bytes are only read. With `ids: true` an ops
     * frame's answer also has `applied`, as applyOps reports it.
     * @param {Uint8Array} bytes
     */
    applyFrame(bytes, { ref, changes = true, ids = false }) {
      const before = ids ? this.version() : null;
      core._weft_apply_frame(this._live, bytesToWasm(bytes), bytes.length, ref, changes ? 1 : 0);
      const out = readAnswer(this._h);
      if (out && !Array.isArray(out) && 'ack' in out) return { type: 'ack', version: out.ack };
      const applied = ids ? () => appliedBetween(before, this.version()) : null;
      const result = { type: 'ops', changes: changesOrThrow(out, applied) };
      if (ids) result.applied = applied();
      return result;
    }
    /**
     * The ops made locally since the last take as one binary ops frame for
     * document `ref` (a fresh Uint8Array), or null when there are none or
     * they would make a frame over `maxBytes` (or over 10,000 ops): then they
     * stay queued and takeOutgoing() returns them as JSON, to be cut.
     */
    takeOutgoingFrame(ref, maxBytes) {
      if (core._weft_take_outgoing_frame(this._live, ref, maxBytes) !== 1) return null;
      const at = core._weft_result_ptr(this._h), len = core._weft_result_len(this._h);
      return core.HEAPU8.slice(at, at + len);
    }
    text() { return this._d.text(); }
    /** Visible length in code points. */
    length() { return this._d.length(); }
    replica() { return this._d.replica(); }
    /** Ops waiting for their causal dependencies. */
    pending() { return this._d.pending(); }
    /** Version vector: [[replica, counter], ...]. */
    version() { return JSON.parse(this._d.version()); }
    /** JSON array (text) of every op a replica at `version` lacks. */
    opsSince(version) {
      const out = this._d.opsSince(JSON.stringify(version));
      if (out.startsWith('{')) throw new Error(JSON.parse(out).error);
      return out;
    }
    /** Uint8Array with the whole replica (docs/encoding.md). */
    encodeSnapshot() { return this._d.encodeSnapshot(); }
    /** Replaces the state with a snapshot, keeping this replica id; throws if corrupt. */
    loadSnapshot(bytes) {
      const err = this._d.loadSnapshot(bytes);
      if (err) throw new Error(err);
    }
    memoryUsage() { return this._d.memoryUsage(); }
    dispose() {
      if (this._d) {
        leaks?.unregister(this);
        this._d.delete();
      }
      this._d = null;
      this._h = 0;
    }
  }
  /** Documents whose wasm memory has not been released yet (disposed or collected). */
  const liveDocuments = () => core._weft_live_documents();
  return { Document, liveDocuments };
}

/** Code point index of UTF-16 offset `u16` in `text` (editors count UTF-16 units). */
export function utf16ToCodePoints(text, u16) {
  let cp = 0;
  for (let i = 0; i < u16 && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < u16) i++; // a whole surrogate pair
    else if (c >= 0xd800 && c <= 0xdbff) break; // inside a pair: round down
    cp++;
  }
  return cp;
}

/** UTF-16 offset of code point `cp` in `text`. */
export function codePointsToUtf16(text, cp) {
  let i = 0;
  for (let n = 0; n < cp && i < text.length; n++) {
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff ? 2 : 1;
  }
  return i;
}
