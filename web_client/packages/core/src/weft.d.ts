// Types of @weft/core: the weft document core in WebAssembly (src/weft.js).

/** An operation in the wire format of docs/protocol.md. */
export type Op =
  | { kind: 'insert'; id: [number, number]; left?: [number, number]; right?: [number, number]; text: string }
  | { kind: 'tombstone'; id: [number, number]; left?: [number, number]; right?: [number, number]; count: number }
  | { kind: 'erase'; id: [number, number]; targets: [number, number, number][] };

/** A change to the visible text; `pos` in code points, in order. */
export type Change = { insert: string; pos: number } | { erase: number; pos: number };

/** [replica, first counter, last counter]: ids first..last of one replica, inclusive. The
 *  counters of an erase op are in such a range too, though they name no character
 *  (positionOf gives -1 for them). */
export type IdRange = [number, number, number];

/** [[replica, counter], ...]: the highest counter applied per replica. */
export type Version = [number, number][];

/** One replica of one document. Not thread-safe. dispose() releases its wasm memory at once;
 *  a Document garbage-collected without it is released when the collector runs. */
export interface Document {
  /** Inserts text before code point `pos`; returns the id of its first character (the k-th has
   *  counter + k). Throws RangeError on a bad position. */
  insert(pos: number, text: string): [number, number];
  /** Code point position of character `id` now, or -1 when it is deleted or unknown. */
  positionOf(id: [number, number]): number;
  /** The id of the visible character at code point `pos`, or null past the end. */
  idAt(pos: number): [number, number] | null;
  /** Deletes `count` code points at `pos`. Throws RangeError on a bad range. */
  erase(pos: number, count: number): void;
  /** JSON array (text) of the ops made locally since the last call. */
  takeOutgoing(): string;
  /** Applies remote ops (JSON text or objects), in any order; returns the visible changes.
   *  Throws an Error when the ops cannot be read (`unreadable`: true; nothing was applied) or
   *  when an op is refused (the others are still applied; `changes` holds every change made).
   *  With `{ changes: false }` no change is computed and [] is returned. */
  applyOps(ops: string | Op[], options?: { changes?: boolean; ids?: false }): Change[];
  /** With `ids: true`: also the ids of every op this call applied (ops released from the causal
   *  buffer included; still-waiting ops and duplicates not), as [replica, first, last] counter
   *  ranges (an insert of n characters covers n counters). A thrown error carries `applied` too. */
  applyOps(ops: string | Op[], options: { changes?: boolean; ids: true }): { changes: Change[]; applied: IdRange[] };
  applyOps(ops: string | Op[], options?: { changes?: boolean; ids?: boolean }):
    Change[] | { changes: Change[]; applied: IdRange[] };
  /** Reads a binary frame from weft-server for the document numbered `ref` (its sync's "ref"):
   *  an ops frame is applied (throws as applyOps does), an ack frame returns its version. A
   *  snapshot frame replaces an empty replica with the document (one insert change of its text);
   *  into a replica that is not empty, or when corrupt, it throws with `snapshot` set and changes
   *  nothing. A frame the codec refuses, or for another ref, throws with `unreadable` set and
   *  applies nothing. */
  applyFrame(bytes: Uint8Array, options: { ref: number; changes?: boolean; ids?: boolean }):
    { type: 'ops'; changes: Change[]; applied?: IdRange[] } | { type: 'ack'; version: Version };
  /** The outgoing ops as one binary ops frame for document `ref`, or null when there are none
   *  or they exceed `maxBytes` (then takeOutgoing() returns them as JSON). */
  takeOutgoingFrame(ref: number, maxBytes: number): Uint8Array | null;
  text(): string;
  /** Visible length in code points. */
  length(): number;
  replica(): number;
  /** Ops waiting for their causal dependencies. */
  pending(): number;
  version(): Version;
  /** JSON array (text) of every op a replica at `version` lacks. */
  opsSince(version: Version): string;
  encodeSnapshot(): Uint8Array;
  /** Replaces the state with a snapshot, keeping this replica id. Throws if corrupt. */
  loadSnapshot(bytes: Uint8Array): void;
  memoryUsage(): number;
  dispose(): void;
}

export interface Weft {
  Document: new (replicaId?: number) => Document;
  /** Documents whose wasm memory has not been released yet (a leak check). */
  liveDocuments(): number;
}

/** Loads the WebAssembly core once (options count on the first call only). In node the wasm
 *  file is read from the package's dist/; a browser fetches it from `wasmUrl`, by default
 *  weft_core.wasm next to weft_core.mjs (after bundling: next to the bundle). */
export function loadWeft(options?: { wasmBinary?: ArrayBuffer | Uint8Array; wasmUrl?: string | URL }): Promise<Weft>;
/** A random replica id below 2^53. */
export function randomReplicaId(): number;
/** Code point index of a UTF-16 offset (rounds down inside a surrogate pair). */
export function utf16ToCodePoints(text: string, u16: number): number;
/** UTF-16 offset of a code point index. */
export function codePointsToUtf16(text: string, cp: number): number;
