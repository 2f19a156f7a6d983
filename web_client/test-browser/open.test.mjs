// A fresh page opening a document whose history comes in many sync chunks
// (the server's messages are kept small here): the page shows the text at
// once when the sync ends (the binding's "opening"), exactly the replica's, and is
// editable afterwards, with live ops and acks as binary frames; emoji and
// line breaks included, so the view's UTF-16 offsets and the replica's code
// points must agree throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, openPage, textOf, waitText, typeAt } from './harness.mjs';

const env = useServerAndBrowser(['--max-message-bytes', '65536']);

/** Waits until every op of `page`'s replica is acknowledged (durable on the server). */
const waitAllAcked = (page, timeout) => page.waitForFunction(() => {
  const { doc, provider } = window.weft;
  const mine = doc.version().find(([r]) => r === doc.replica());
  return mine && provider.acked >= mine[1];
}, null, { timeout });

test('a fresh page opens a document of many sync chunks at once, then edits it', async () => {
  const doc = `open-${process.pid}`;
  const ctxA = await env.browser.newContext();
  const a = await openPage(ctxA, env.base, doc);
  // 4,000 edits at random places, in bursts (each burst is one flush).
  await a.evaluate(async () => {
    const v = window.weft.view;
    const pieces = ['word ', '😀', 'é\n', 'x', '🎉 ok '];
    let seed = 42;
    const rnd = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    // A UTF-16 offset that does not split a surrogate pair.
    const safe = (p) => {
      const c = p > 0 ? v.state.doc.sliceString(p - 1, p).charCodeAt(0) : 0;
      return c >= 0xd800 && c <= 0xdbff ? p - 1 : p;
    };
    for (let i = 0; i < 4000; i++) {
      const len = v.state.doc.length;
      const from = safe(rnd(len + 1));
      if (len > 50 && rnd(5) === 0) {
        const to = safe(Math.min(len, from + 1 + rnd(4)));
        if (to > from) v.dispatch({ changes: { from, to } });
      } else {
        v.dispatch({ changes: { from, insert: pieces[rnd(pieces.length)] } });
      }
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 0));
    }
  });
  await waitAllAcked(a, 20000);
  const text = await textOf(a);
  assert.ok(text.length > 5000, `a document of some size (${text.length})`);
  assert.equal(await (await fetch(`${env.base}/api/docs/${doc}/text`)).text(), text, 'the server has the text');

  // A fresh page (no stored replica) opens it: as one snapshot frame (kind
  // 3), or, with ?nosnapshot, as a history of many ops messages.
  const watch = (ctx) => {
    const seen = { syncFrames: 0, binaryIn: [], binaryOut: [] };
    ctx.on('page', (p) => p.on('websocket', (ws) => {
      ws.on('framereceived', (f) => {
        if (typeof f.payload !== 'string') seen.binaryIn.push(f.payload[0]);
        else if (/^\{"type":"(ops|sync)"/.test(f.payload)) seen.syncFrames++;
      });
      ws.on('framesent', (f) => { if (typeof f.payload !== 'string') seen.binaryOut.push(f.payload[0]); });
    }));
    return seen;
  };
  const ctxC = await env.browser.newContext();
  const viaOps = watch(ctxC);
  const fromOps = await openPage(ctxC, env.base, doc, 'nosnapshot');
  assert.ok(viaOps.syncFrames > 5, `the history came in many frames (${viaOps.syncFrames})`);
  assert.equal(await textOf(fromOps), text, 'the page shows the whole text once online');
  assert.equal(await fromOps.evaluate(() => window.weft.provider.snapshotsLoaded), 0);
  await ctxC.close();

  const ctxB = await env.browser.newContext();
  const seen = watch(ctxB);
  const { binaryIn, binaryOut } = seen;
  const opened = await openPage(ctxB, env.base, doc);
  assert.equal(binaryIn[0], 3, 'a snapshot frame first');
  assert.equal(seen.syncFrames, 1, 'then one sync, without ops');
  assert.equal(await opened.evaluate(() => window.weft.provider.snapshotsLoaded), 1);
  assert.equal(await textOf(opened), text, 'the page shows the whole text once online');
  assert.equal(await opened.evaluate(() => window.weft.doc.text() === window.weft.view.state.doc.toString()), true);
  assert.equal(await opened.evaluate(() => window.weft.view.state.readOnly), false, 'editable after opening');
  // What the sync brought is stored (IndexedDB), without a local edit first.
  assert.ok(await opened.evaluate(() => window.weft.whenSaved()) > 0, 'the opened document was saved');

  // Editing works both ways afterwards, next to an emoji too.
  await typeAt(opened, 0, 'B! ');
  await waitText(a, 'B! ' + text);
  const at = text.indexOf('😀') + 2;
  await typeAt(a, 3 + at, '<>');
  const want = 'B! ' + text.slice(0, at) + '<>' + text.slice(at);
  await waitText(opened, want);
  await waitText(a, want);
  // Live ops and acks travelled as binary frames (docs/protocol.md): kind 1
  // (ops) out, and ops and acks (kind 2) in.
  assert.ok(binaryOut.length >= 3 && binaryOut.every((k) => k === 1), `keystrokes sent as binary ops frames (${binaryOut})`);
  assert.ok(binaryIn.includes(1) && binaryIn.includes(2), `binary ops and acks received (${binaryIn})`);
  await ctxA.close(); await ctxB.close();
});

test('a fresh page stores a document that came in one sync message', async () => {
  const doc = `open-small-${process.pid}`;
  const ctxA = await env.browser.newContext(), ctxB = await env.browser.newContext();
  const a = await openPage(ctxA, env.base, doc);
  await typeAt(a, 0, 'small 😀 text');
  await waitAllAcked(a, 10000);
  const b = await openPage(ctxB, env.base, doc);
  assert.equal(await textOf(b), 'small 😀 text');
  // Stored in IndexedDB without a local edit: a reload offline would show it.
  assert.ok(await b.evaluate(() => window.weft.whenSaved()) > 0, 'the opened document was saved');
  await ctxA.close(); await ctxB.close();
});
