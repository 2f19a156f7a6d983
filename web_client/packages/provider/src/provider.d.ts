// Types of @weft/provider (src/provider.js).
import type { Change, Document } from '@weft/core';

export type Status = 'online' | 'offline' | 'syncing';

/** Connects a Document to weft-server (docs/protocol.md). Events: 'status', 'presence', 'changed', 'acked',
 *  'servererror', and 'replicarefused' (the server refused ops under this replica id as another
 *  user's: nothing written under it will be accepted; start a new replica id). */
export class WeftProvider extends EventTarget {
  constructor(options: {
    url: string;
    docId: string;
    doc: Document;
    /** Visible changes of remote ops, in order (more listeners: onChanges). */
    onRemoteChanges?: (changes: Change[]) => void;
    /** A WebSocket constructor (browsers and node >= 22 have one; in node 20 pass e.g. the `ws` package's). */
    WebSocket?: typeof WebSocket;
    /** Access token sent in hello, for servers run with --auth-secret*. */
    token?: string;
    /** Ask for binary frames for live ops and acks (docs/protocol.md, "Binary frames"). Default true. */
    binary?: boolean;
    /** An empty replica asks for the document as one snapshot frame instead of its history as
     *  ops (needs binary frames; docs/protocol.md, "open"). Default true. */
    snapshot?: boolean;
  });
  readonly status: Status;
  /** Other connections' presence, by session (a session id above 2^53 - 1 is a BigInt). */
  readonly presence: Map<number | bigint, unknown>;
  /** Every op of this replica up to this counter is durable on the server ('acked' event). */
  readonly acked: number;
  readonly url: string;
  /** The constructor's onRemoteChanges (null when none); may be replaced. */
  onRemoteChanges: ((changes: Change[]) => void) | null;
  /** Snapshot frames loaded: with binary frames, an empty replica asks the server for the
   *  document as one snapshot instead of its history as ops (docs/protocol.md, "open"). */
  readonly snapshotsLoaded: number;
  /** When false, remote ops are applied without computing their changes and
   *  onRemoteChanges is not called ('changed' still fires): for a view that
   *  will show the document's whole text at once (a page opening). Default true. */
  changeEvents: boolean;
  /** Calls `listener` with every batch of remote changes (while changeEvents is true), after
   *  onRemoteChanges; an exception in it is logged and does not stop the others. Returns a
   *  function that removes the listener. */
  onChanges(listener: (changes: Change[]) => void): () => void;
  readonly doc: Document;
  readonly docId: string;
  connect(): void;
  destroy(): void;
  /** Sends the document's outgoing ops (call after local edits; batched per task). */
  flush(): void;
  setPresence(state: object | null): void;
}
