// The editor in a real browser (Debian's chromium driven by playwright-core)
// against a real weft-server on 127.0.0.1 serving web_client/dist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { useServerAndBrowser, openPage as open, textOf, waitText, waitOneOf, waitSaved, waitServerText, typeAt } from './harness.mjs';

const shots = process.env.WEFT_SCREENSHOT_DIR ?? os.tmpdir();
const env = useServerAndBrowser();

let n = 0;
const docName = () => `e2e-${process.pid}-${++n}`;
const openPage = (context, doc) => open(context, env.base, doc);

test('two pages type into one document and converge', async () => {
  const doc = docName();
  const ctxA = await env.browser.newContext(), ctxB = await env.browser.newContext();
  const a = await openPage(ctxA, doc), b = await openPage(ctxB, doc);
  await typeAt(a, 0, 'Hello');
  await waitText(b, 'Hello');
  // Concurrent: a at the end, b at the start.
  await Promise.all([typeAt(a, 5, ' world'), typeAt(b, 0, 'Hey! ')]);
  const final = 'Hey! Hello world';
  await waitText(a, final);
  await waitText(b, final);
  // The server has it too.
  const res = await fetch(`${env.base}/api/docs/${doc}/text`);
  assert.equal(await res.text(), final);
  await a.screenshot({ path: path.join(shots, 'weft-editor.png') });
  await ctxA.close(); await ctxB.close();
});

test('editing offline on both sides merges after reconnect', async () => {
  const doc = docName();
  const ctxA = await env.browser.newContext(), ctxB = await env.browser.newContext();
  const a = await openPage(ctxA, doc), b = await openPage(ctxB, doc);
  await typeAt(a, 0, 'shared ');
  await waitText(b, 'shared ');
  await ctxA.setOffline(true);
  await a.locator('[data-testid=status]').filter({ hasText: 'offline' }).waitFor();
  await typeAt(a, 7, 'from-a 😀');
  await typeAt(a, 0, '🎉');          // several offline edits, astral characters included
  await typeAt(b, 0, '😀 from-b ');
  // b's edit reached the server: online, a would have been sent it.
  await waitServerText(env.base, doc, '😀 from-b shared ');
  assert.equal(await textOf(a), '🎉shared from-a 😀');
  await ctxA.setOffline(false);
  await a.locator('[data-testid=status]').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
  // Both orders of the two concurrent inserts at the start are valid; the pages must agree on one.
  const final = await waitOneOf(a, ['🎉😀 from-b shared from-a 😀', '😀 from-b 🎉shared from-a 😀']);
  await waitText(b, final);
  await ctxA.close(); await ctxB.close();
});

test('a reload while offline keeps the edits, which sync later', async () => {
  const doc = docName();
  const ctxA = await env.browser.newContext(), ctxB = await env.browser.newContext();
  const a = await openPage(ctxA, doc);
  await a.evaluate(() => navigator.serviceWorker.ready);
  await typeAt(a, 0, 'before ');
  await ctxA.setOffline(true);
  await typeAt(a, 7, 'offline-edit');
  await waitSaved(a); // the debounced save of the replica has committed to IndexedDB
  await a.reload();
  await a.locator('[data-testid=editor] .cm-content').waitFor();
  await waitText(a, 'before offline-edit');
  await ctxA.setOffline(false);
  await a.locator('[data-testid=status]').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
  const b = await openPage(ctxB, doc);
  await waitText(b, 'before offline-edit');
  await ctxA.close(); await ctxB.close();
});

test('remote cursors appear with names, and emoji survive the trip', async () => {
  const doc = docName();
  const ctxA = await env.browser.newContext(), ctxB = await env.browser.newContext();
  const a = await openPage(ctxA, doc), b = await openPage(ctxB, doc);
  await typeAt(a, 0, 'smile 😀 ok');
  await waitText(b, 'smile 😀 ok');
  await typeAt(b, 'smile 😀'.length, '!'); // UTF-16 offset after the emoji
  await waitText(a, 'smile 😀! ok');
  await typeAt(a, 2, 'x');
  await b.locator('.cm-weft-caret').first().waitFor({ timeout: 10000 });
  assert.ok((await b.locator('[data-testid=people] .person').count()) >= 1);
  await b.screenshot({ path: path.join(shots, 'weft-presence.png') });
  await ctxA.close(); await ctxB.close();
});
