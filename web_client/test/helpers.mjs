// Shared by the node tests (not a test itself).
import { WeftProvider } from '@weft/provider';

/** The native side of the cross-checks (tests/crosscheck, weft-crosscheck). */
export const native =
  process.env.WEFT_CROSSCHECK ?? new URL('../../build/tests/weft-crosscheck', import.meta.url).pathname;

/** Deterministic PRNG (mulberry32): both sides of a cross-check get the same script. */
export function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A scripted server for WeftProvider: `sent` holds what the client sent,
 * parsed (binary frames as Uint8Arrays); `raw`, as sent. */
export class FakeSocket {
  static last = null;
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.raw = [];
    this.readyState = 0;
    FakeSocket.last = this;
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen();
    });
  }
  send(data) {
    this.raw.push(data);
    this.sent.push(typeof data === 'string' ? JSON.parse(data) : new Uint8Array(data));
  }
  close() {
    this.readyState = 3;
    this.onclose?.();
  }
  receive(text) {
    this.onmessage({ data: text });
  }
}

/** Lets queued microtasks and timers of a few ms run. */
export const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/** A WeftProvider for `doc` (document id "d") on a FakeSocket, connected: its
 * socket is open and its hello sent. `options` go to the constructor. */
export async function connectedProvider(doc, options = {}) {
  const provider = new WeftProvider({ url: 'ws://test/', docId: 'd', doc, WebSocket: FakeSocket, onRemoteChanges: () => {}, ...options });
  provider.connect();
  await tick();
  return { provider, ws: FakeSocket.last };
}
