// The editor in a real browser (Debian's chromium driven by playwright-core)
// against a real weft-server on 127.0.0.1 serving web_client/dist.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = new URL('..', import.meta.url).pathname;
const serverBin = process.env.WEFT_SERVER ?? path.join(root, '../build/weft-server');
const shots = process.env.WEFT_SCREENSHOT_DIR ?? os.tmpdir();
let server, base, browser, dataDir;

before(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-e2e-'));
  server = spawn(serverBin, ['--port', '0', '--data-dir', dataDir, '--web-root', path.join(root, 'dist'), '--log-level', 'info']);
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start')), 15000);
    let buf = '';
    server.stderr.on('data', (d) => {
      buf += d;
      const m = buf.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(`http://127.0.0.1:${m[1]}`); }
    });
    server.on('exit', (code) => reject(new Error(`server exited ${code}: ${buf}`)));
  });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60000,
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

let n = 0;
const docName = () => `e2e-${process.pid}-${++n}`;

async function openPage(context, doc) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${base}/d/${doc}`);
  await page.locator('[data-testid=status]').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
  return page;
}
const textOf = (page) => page.evaluate(() => window.weft.view.state.doc.toString());
async function waitText(page, expected, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let t;
  while (Date.now() < deadline) {
    t = await textOf(page);
    if (t === expected) return t;
    await page.waitForTimeout(50);
  }
  assert.equal(t, expected);
}
async function waitOneOf(page, options, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let t;
  while (Date.now() < deadline) {
    t = await textOf(page);
    if (options.includes(t)) return t;
    await page.waitForTimeout(50);
  }
  assert.fail(`text ${JSON.stringify(t)} is none of ${JSON.stringify(options)}`);
}
async function typeAt(page, pos, text) {
  await page.evaluate((p) => {
    const v = window.weft.view;
    v.focus();
    v.dispatch({ selection: { anchor: Math.min(p, v.state.doc.length) } });
  }, pos);
  await page.keyboard.type(text, { delay: 5 });
}

test('two pages type into one document and converge', async () => {
  const doc = docName();
  const ctxA = await browser.newContext(), ctxB = await browser.newContext();
  const a = await openPage(ctxA, doc), b = await openPage(ctxB, doc);
  await typeAt(a, 0, 'Hello');
  await waitText(b, 'Hello');
  // Concurrent: a at the end, b at the start.
  await Promise.all([typeAt(a, 5, ' world'), typeAt(b, 0, 'Hey! ')]);
  const final = 'Hey! Hello world';
  await waitText(a, final);
  await waitText(b, final);
  // The server has it too.
  const res = await fetch(`${base}/api/docs/${doc}/text`);
  assert.equal(await res.text(), final);
  await a.screenshot({ path: path.join(shots, 'weft-editor.png') });
  await ctxA.close(); await ctxB.close();
});

test('editing offline on both sides merges after reconnect', async () => {
  const doc = docName();
  const ctxA = await browser.newContext(), ctxB = await browser.newContext();
  const a = await openPage(ctxA, doc), b = await openPage(ctxB, doc);
  await typeAt(a, 0, 'shared ');
  await waitText(b, 'shared ');
  await ctxA.setOffline(true);
  await a.locator('[data-testid=status]').filter({ hasText: 'offline' }).waitFor();
  await typeAt(a, 7, 'from-a 😀');
  await typeAt(a, 0, '🎉');          // several offline edits, astral characters included
  await typeAt(b, 0, '😀 from-b ');
  await a.waitForTimeout(300);
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
  const ctxA = await browser.newContext(), ctxB = await browser.newContext();
  const a = await openPage(ctxA, doc);
  await a.evaluate(() => navigator.serviceWorker.ready);
  await typeAt(a, 0, 'before ');
  await ctxA.setOffline(true);
  await typeAt(a, 7, 'offline-edit');
  await a.waitForTimeout(400); // the replica is saved to IndexedDB
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
  const ctxA = await browser.newContext(), ctxB = await browser.newContext();
  const a = await openPage(ctxA, doc), b = await openPage(ctxB, doc);
  await typeAt(a, 0, 'smile 😀 ok');
  await waitText(b, 'smile 😀 ok');
  await typeAt(b, 'smile 😀'.length, '!'); // UTF-16 offset after the emoji
  await waitText(a, 'smile 😀! ok');
  await typeAt(a, 2, 'x');
  await b.locator('.remote-caret').first().waitFor({ timeout: 10000 });
  assert.ok((await b.locator('[data-testid=people] .person').count()) >= 1);
  await b.screenshot({ path: path.join(shots, 'weft-presence.png') });
  await ctxA.close(); await ctxB.close();
});
