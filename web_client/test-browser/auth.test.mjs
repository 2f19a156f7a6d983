// The browser editor against a server that requires tokens: the token rides
// in the page's URL fragment (never sent over HTTP) and in hello.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildDir, startServer, launchBrowser, textOf, waitText, typeAt } from './harness.mjs';

let server, browser, secretFile;
const mint = (...docs) => execFileSync(path.join(buildDir, 'weft-token'),
  ['--secret-file', secretFile, '--sub', 'browser-test', ...docs.flatMap((d) => ['--doc', d])]).toString().trim();

before(async () => {
  secretFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'weft-secret-')), 'secret');
  fs.writeFileSync(secretFile, 'browser-test-secret-0123456789abcdef\n');
  server = await startServer(['--auth-secret-file', secretFile]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
  fs.rmSync(path.dirname(secretFile), { recursive: true, force: true });
});

test('a page with a token edits; a page without one is refused', async () => {
  const doc = `team-${process.pid}`;
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${server.base}/d/${doc}#token=${mint('team-*=rw')}`);
  await page.locator('[data-testid=status]').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
  assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address bar');
  await typeAt(page, 0, 'signed in');
  await waitText(page, 'signed in');
  // The HTTP API wants a token too.
  assert.equal((await fetch(`${server.base}/api/docs/${doc}/text`)).status, 401);
  const res = await fetch(`${server.base}/api/docs/${doc}/text`, { headers: { Authorization: `Bearer ${mint(`${doc}=r`)}` } });
  assert.equal(await res.text(), 'signed in');

  // A second browser profile without a token never gets the text.
  const stranger = await browser.newContext();
  const other = await stranger.newPage();
  await other.goto(`${server.base}/d/${doc}`);
  await other.waitForTimeout(1500);
  assert.notEqual(await other.locator('[data-testid=status]').textContent(), 'online');
  assert.equal(await textOf(other), '');
  await ctx.close();
  await stranger.close();
});
