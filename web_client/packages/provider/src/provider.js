// Connects a weft Document to weft-server over WebSocket (docs/protocol.md):
// sync by version vectors in both directions, live ops, presence, and
// reconnection with exponential backoff and jitter. Edits made while
// offline stay in the document and reach the server on the next sync,
// because every sync sends the server whatever it lacks.
import { chunkOps } from './chunk.js';
import { decodeServerMessage } from './messages.js';

// A User Timing mark, for profiling a page's opening (page-bench.mjs prints
// them); nothing where the API is missing. Returns undefined.
const mark = (name) => { globalThis.performance?.mark?.(name); };

export class WeftProvider extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.url        ws:// or wss:// URL of the server
   * @param {string} o.docId      document id
   * @param {object} o.doc        a weft Document (@weft/core)
   * @param {(changes: Array) => void} [o.onRemoteChanges]  visible changes from remote ops
   *                              (more listeners: onChanges())
   * @param {Function} [o.WebSocket]  WebSocket constructor (default: the global one)
   * @param {string} [o.token]    access token sent in hello (servers run with --auth-secret*)
   * @param {boolean} [o.binary]  ask for binary frames for live ops and acks (default true;
   *                              docs/protocol.md, "Binary frames")
   * @param {boolean} [o.snapshot]  an empty replica asks for the document as one snapshot
   *                              frame instead of its history as ops (default true; needs binary)
   */
  constructor({ url, docId, doc, onRemoteChanges, WebSocket: WebSocketImpl, token, binary = true, snapshot = true }) {
    super();
    this._wantBinary = binary;
    this._wantSnapshot = snapshot;
    // The document's number in binary frames, from its sync; 0 while binary
    // frames are off on the current connection (or before the sync).
    this._ref = 0;
    this._binary = false;
    this._token = token ?? null;
    this._WebSocket = WebSocketImpl ?? globalThis.WebSocket;
    this.url = url;
    this.docId = docId;
    this.doc = doc;
    this.onRemoteChanges = onRemoteChanges ?? null;
    this._changeListeners = [];
    /** When false, remote ops are applied without computing their changes and
     * onRemoteChanges is not called ('changed' still fires): for a view that
     * will show the whole text at once, such as a page opening a document. */
    this.changeEvents = true;
    this.status = 'offline';
    this.presence = new Map(); // session -> state
    /** Every op of this replica up to this counter is durable on the server. */
    this.acked = 0;
    this._maxMessageBytes = 1 << 20; // the server's, from welcome
    this._ws = null;
    this._attempt = 0;
    this._timer = null;
    this._myPresence = null;
    this._stopped = false;
    this._flushQueued = false;
    this._snapshotAsked = false;
    this._skipSync = false;
    this._serverSnapshots = false;
    /** How many snapshot frames this provider has loaded (a fresh replica's first sync). */
    this.snapshotsLoaded = 0;
    this._browserOffline = typeof navigator !== 'undefined' && navigator.onLine === false;
    // Removed again by destroy(), so that a destroyed provider (and its
    // Document) can be garbage-collected.
    this._onOffline = () => {
      this._browserOffline = true;
      if (this._ws) this._ws.close();
      this._setStatus('offline');
    };
    this._onOnline = () => {
      this._browserOffline = false;
      this._attempt = 0;
      this._connectSoon(0);
    };
    if (typeof window !== 'undefined') {
      window.addEventListener('offline', this._onOffline);
      window.addEventListener('online', this._onOnline);
    }
  }

  connect() {
    this._stopped = false;
    this._connectSoon(0);
  }

  destroy() {
    this._stopped = true;
    if (typeof window !== 'undefined') {
      window.removeEventListener('offline', this._onOffline);
      window.removeEventListener('online', this._onOnline);
    }
    clearTimeout(this._timer);
    if (this._ws) this._ws.close();
  }

  /** Call after local edits: sends the document's outgoing ops (batched per task). */
  flush() {
    if (this._flushQueued) return;
    this._flushQueued = true;
    queueMicrotask(() => {
      this._flushQueued = false;
      // A binary frame when the connection has them and the ops fit one (a
      // keystroke: ~20 bytes instead of ~120 of JSON); otherwise JSON, cut.
      if (this._ref && this.status === 'online') {
        const frame = this.doc.takeOutgoingFrame(this._ref, Math.floor(this._maxMessageBytes / 2));
        if (frame) {
          this._send(frame);
          return;
        }
      }
      const ops = this.doc.takeOutgoing();
      // Offline, the ops stay in the document; the next sync sends them.
      if (ops !== '[]' && this.status === 'online') this._sendOps(ops);
    });
  }

  /** Sets this client's presence (any JSON object, or null). */
  setPresence(state) {
    this._myPresence = state;
    if (this.status === 'online')
      this._send(JSON.stringify({ type: 'presence', doc: this.docId, state }));
  }

  _setStatus(s) {
    if (this.status === s) return;
    this.status = s;
    this.dispatchEvent(new CustomEvent('status', { detail: s }));
  }

  // Ops in as many messages as the server's limits need (a paste, long offline work).
  _sendOps(opsJson) {
    for (const chunk of chunkOps(opsJson, Math.floor(this._maxMessageBytes / 2)))
      this._send(`{"type":"ops","doc":${JSON.stringify(this.docId)},"ops":${chunk}}`);
  }

  _send(text) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(text);
  }

  _connectSoon(delay) {
    clearTimeout(this._timer);
    if (this._stopped || this._browserOffline) return;
    this._timer = setTimeout(() => this._open(), delay);
  }

  _open() {
    if (this._ws) return;
    this._setStatus('syncing');
    let ws;
    try {
      ws = new this._WebSocket(this.url);
    } catch {
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    ws.binaryType = 'arraybuffer';
    this._ref = 0;
    this._binary = false;
    this._snapshotAsked = false;
    this._skipSync = false;
    ws.onopen = () => mark('weft:socket') || ws.send(JSON.stringify({ type: 'hello', protocol: 1, client: 'weft-web',
      ...(this._token ? { token: this._token } : {}), ...(this._wantBinary ? { binary: true } : {}) }));
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') this._onMessage(e.data);
      else if (e.data instanceof ArrayBuffer) this._onBinary(new Uint8Array(e.data));
      else if (ArrayBuffer.isView(e.data)) this._onBinary(new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength));
    };
    ws.onclose = () => {
      this._ws = null;
      this._ref = 0;
      this._binary = false;
      if (this.presence.size) {
        this.presence.clear();
        this.dispatchEvent(new CustomEvent('presence'));
      }
      this._setStatus('offline');
      this._scheduleReconnect();
    };
    ws.onerror = () => {};
  }

  _scheduleReconnect() {
    if (this._stopped || this._browserOffline) return;
    // Exponential backoff with jitter, so a restarted server is not stormed.
    const base = Math.min(10000, 250 * 2 ** this._attempt++);
    this._connectSoon(base * (0.5 + Math.random()));
  }

  _onMessage(data) {
    // Decoded as the C++ codec decodes them (messages.js); a frame it would
    // refuse is ignored, as are message types this client does not use.
    let m;
    try {
      // Ops stay JSON text: the core parses them straight into its ops.
      m = decodeServerMessage(data, { rawOps: true });
    } catch {
      return;
    }
    switch (m.type) {
      case 'welcome':
        if (typeof m.max_message_bytes === 'number' && m.max_message_bytes > 0) this._maxMessageBytes = m.max_message_bytes;
        this._binary = m.binary === true;
        // Servers that offer snapshot frames say so (older ones refuse the field).
        this._serverSnapshots = this._binary && m.snapshot === true;
        mark('weft:open');
        this._sendOpen(true);
        break;
      case 'ops':
      case 'sync': {
        if (m.doc !== this.docId) return;
        let changes;
        try {
          changes = this.doc.applyOps(m.ops, { changes: this.changeEvents });
        } catch (e) {
          // Ops the codec's parser refuses make the frame one the codec
          // refuses: ignored whole, as weft::client does (nothing was applied).
          if (e.unreadable) return;
          changes = this._refusedOp(e);
        }
        if (changes.length && this.changeEvents) this._notify(changes);
        if (m.type === 'sync') {
          // Binary frames name the document by this number from now on.
          if (this._binary && typeof m.ref === 'number' && m.ref > 0) this._ref = m.ref;
          // The sync of an open whose snapshot could not be loaded: the open
          // sent since then brings the history; wait for its sync.
          if (this._skipSync) {
            this._skipSync = false;
            break;
          }
          const noOps = typeof m.ops === 'string' ? /^\[\s*\]$/.test(m.ops) : m.ops.length === 0;
          if (this._snapshotAsked && noOps && m.version.length > 0) {
            // The snapshot the server sent in place of these ops never
            // loaded (a frame that could not be read): ask for the history
            // as ops.
            console.warn('weft: the snapshot did not arrive; opening the document again');
            this._sendOpen(false);
            break;
          }
          this._snapshotAsked = false;
          mark('weft:sync');
          this.doc.takeOutgoing(); // covered by what the server lacks, below
          // Our own ops count from the last ack, not from the server's version
          // (as weft::client does): if the server stored them but crashed
          // before acknowledging, resending them is what earns the ack.
          const me = this.doc.replica();
          const version = m.version.map(([r, c]) => (r === me && c > this.acked ? [r, this.acked] : [r, c])).filter(([, c]) => c > 0);
          const missing = this.doc.opsSince(version);
          if (missing !== '[]') this._sendOps(missing);
          this._attempt = 0;
          this._setStatus('online');
          if (this._myPresence) this.setPresence(this._myPresence);
        }
        this.dispatchEvent(new CustomEvent('changed'));
        break;
      }
      case 'presence':
        if (m.doc !== this.docId) return;
        if (m.state === null) this.presence.delete(m.session);
        else this.presence.set(m.session, m.state);
        this.dispatchEvent(new CustomEvent('presence'));
        break;
      case 'ack':
        if (m.doc !== this.docId) return;
        this._onAck(m.version);
        break;
      case 'error': {
        console.warn('weft server:', m.code, m.message);
        this.dispatchEvent(new CustomEvent('servererror', { detail: m }));
        // Ops under this replica id were refused as another user's (a
        // replica stored by someone else in this browser, say): nothing it
        // writes will ever be accepted. The app should start a new replica.
        const named = m.code === 'forbidden' && m.doc === this.docId && /replica ids? ([0-9, ]+) belongs?/.exec(m.message);
        if (named && named[1].split(',').map((x) => x.trim()).includes(String(this.doc.replica())))
          this.dispatchEvent(new CustomEvent('replicarefused', { detail: m }));
        break;
      }
      default:
        break;
    }
  }

  _onAck(version) {
    const mine = version.find(([r]) => r === this.doc.replica());
    if (mine && mine[1] > this.acked) {
      this.acked = mine[1];
      this.dispatchEvent(new CustomEvent('acked', { detail: this.acked }));
    }
  }

  // Opens the document. An empty replica on a binary connection asks for
  // it as one snapshot frame (`allowSnapshot`): far less work than
  // applying its history op by op, which is what opening a large document
  // in a fresh page costs otherwise.
  _sendOpen(allowSnapshot) {
    const version = this.doc.version();
    this._snapshotAsked = allowSnapshot && this._wantSnapshot && this._serverSnapshots && version.length === 0 &&
      this.doc.pending() === 0;
    this._send(JSON.stringify({ type: 'open', doc: this.docId, version, ...(this._snapshotAsked ? { snapshot: true } : {}) }));
  }

  // A snapshot frame: kind 3, varint ref, varint n, the document id (n
  // bytes), the snapshot. Taken only as the answer to this connection's
  // open that asked for it, for this document; the core loads it only into
  // an empty replica. If it cannot (corrupt, or the replica got ops in the
  // meantime), the document is opened again without asking, and the sync
  // of the first open (which carries no ops) is skipped.
  _onSnapshot(bytes) {
    if (!this._snapshotAsked) return;
    mark('weft:snapshot-frame');
    let at = 1, ref = 0, n = 0;
    const varint = () => {
      let v = 0, scale = 1, b;
      do {
        if (at >= bytes.length) return -1;
        b = bytes[at++];
        v += (b & 0x7f) * scale;
        scale *= 128;
        if (v > Number.MAX_SAFE_INTEGER) return -1;
      } while (b & 0x80);
      return v;
    };
    ref = varint();
    n = varint();
    if (ref <= 0 || n < 0 || at + n > bytes.length) return;
    if (new TextDecoder().decode(bytes.subarray(at, at + n)) !== this.docId) return;
    this._snapshotAsked = false;
    let r;
    try {
      r = this.doc.applyFrame(bytes, { ref, changes: this.changeEvents });
    } catch (e) {
      console.warn('weft: could not load the snapshot the server sent; opening again without one:', e.message);
      this._skipSync = true;
      this._sendOpen(false);
      return;
    }
    this.snapshotsLoaded++;
    mark('weft:snapshot');
    if (r.changes.length && this.changeEvents) this._notify(r.changes);
    this.dispatchEvent(new CustomEvent('changed'));
  }

  // A binary frame (live ops or an ack of the open document), read by the
  // core's codec. Frames the codec refuses, or with another number than the
  // sync gave the document (0 before it), are ignored whole, as weft::client
  // does.
  _onBinary(bytes) {
    if (bytes.length && bytes[0] === 3) {
      this._onSnapshot(bytes);
      return;
    }
    let r;
    try {
      r = this.doc.applyFrame(bytes, { ref: this._ref, changes: this.changeEvents });
    } catch (e) {
      if (e.unreadable) return;
      r = { type: 'ops', changes: this._refusedOp(e) };
    }
    if (r.type === 'ack') {
      this._onAck(r.version);
      return;
    }
    if (r.changes.length && this.changeEvents) this._notify(r.changes);
    this.dispatchEvent(new CustomEvent('changed'));
  }

  // The server sent an op this replica refuses (a bug on one side): report
  // it and keep the changes of the message's other ops, rather than stay
  // stuck in 'syncing'. Returns those changes.
  _refusedOp(e) {
    console.warn('weft: refused a remote op:', e.message);
    this.dispatchEvent(new CustomEvent('servererror', { detail: { type: 'error', code: 'invalid_op', message: e.message, doc: this.docId } }));
    return e.changes ?? [];
  }

  // Hands changes to the view. A view that throws must not stop the
  // protocol (a sync half handled would leave the provider 'syncing' and
  // unsent edits unsent): the error is reported and the session goes on.
  // Listeners added with onChanges() (a view binding such as
  // @weft/codemirror's) get the same array after onRemoteChanges; each is
  // guarded the same way.
  _notify(changes) {
    try {
      if (this.onRemoteChanges) this.onRemoteChanges(changes);
    } catch (e) {
      console.error('weft: onRemoteChanges threw:', e);
    }
    for (const listener of this._changeListeners) {
      try {
        listener(changes);
      } catch (e) {
        console.error('weft: an onChanges listener threw:', e);
      }
    }
  }

  /** Calls `listener(changes)` with the visible changes of every batch of remote ops applied
   * while changeEvents is true, after onRemoteChanges. Returns a function that removes it. */
  onChanges(listener) {
    this._changeListeners.push(listener);
    return () => { this._changeListeners = this._changeListeners.filter((l) => l !== listener); };
  }
}
