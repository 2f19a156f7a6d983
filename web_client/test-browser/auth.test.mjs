// The browser editor against a server that requires tokens: the token rides
// in the page's URL fragment (never sent over HTTP) and in hello.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildDir, startServer, launchBrowser, textOf, waitText, typeAt, watchRepairs } from './harness.mjs';

let server, browser, secretFile;
const mintAs = (sub, ...docs) => execFileSync(path.join(buildDir, 'weft-token'),
  ['--secret-file', secretFile, '--sub', sub, ...docs.flatMap((d) => ['--doc', d])]).toString().trim();
const mint = (...docs) => mintAs('browser-test', ...docs);

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
  const pageUrl = `${server.base}/d/${doc}?verify#token=${mint('team-*=rw')}`;
  watchRepairs(page, pageUrl);
  await page.goto(pageUrl);
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
  const refused = async () => {
    const m = (await (await fetch(`${server.base}/metrics`)).text()).match(/\nweft_auth_failures_total (\d+)/);
    return Number(m?.[1] ?? 0);
  };
  const refusedBefore = await refused();
  await other.goto(`${server.base}/d/${doc}`);
  // The server has refused the page's connection: nothing more comes to it.
  for (let i = 0; i < 200 && (await refused()) === refusedBefore; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok((await refused()) > refusedBefore, 'the server never refused the page without a token');
  assert.notEqual(await other.locator('[data-testid=status]').textContent(), 'online');
  assert.equal(await textOf(other), '');
  await ctx.close();
  await stranger.close();
});

/** Alice opens `doc` in `ctx`, types 'alice ' and her replica is stored in
 * the profile's IndexedDB; her page is closed and its tab lock released.
 * Returns her replica id. */
async function aliceStoresAReplica(ctx, doc) {
  const alice = await ctx.newPage();
  const aliceUrl = `${server.base}/d/${doc}?verify#token=${mintAs('alice', `${doc}=rw`)}`;
  watchRepairs(alice, aliceUrl);
  await alice.goto(aliceUrl);
  await alice.locator('[data-testid=status]').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
  await alice.evaluate(() => navigator.serviceWorker.ready); // so that a page loads offline too
  await typeAt(alice, 0, 'alice ');
  await alice.waitForFunction(() => window.weft.provider.acked >= 6);
  await alice.evaluate(() => window.weft.whenSaved());
  const replica = await alice.evaluate(() => window.weft.doc.replica());
  await alice.close();
  // Her tab lock on the stored replica goes with her page (asynchronously).
  const landing = await ctx.newPage();
  await landing.goto(`${server.base}/`);
  await landing.waitForFunction(async () => (await navigator.locks.query()).held.length === 0);
  await landing.close();
  return replica;
}

/** The server's text of `doc`, read with a token. */
const serverText = async (doc) =>
  (await fetch(`${server.base}/api/docs/${doc}/text`, { headers: { Authorization: `Bearer ${mint(`${doc}=r`)}` } })).text();

test('a stored replica that belongs to another user is replaced by a new one, which writes', async () => {
  const doc = `shared-${process.pid}`;
  const ctx = await browser.newContext(); // one browser profile: one IndexedDB
  const read = () => serverText(doc);
  // Alice types and her replica is stored in this profile.
  const aliceReplica = await aliceStoresAReplica(ctx, doc);
  // Bob, in the same profile, gets Alice's stored replica. Opening it
  // resends its ops (ours count from the last ack), which the server refuses
  // as Alice's: the page forgets the replica and reloads with a new one.
  const bob = await ctx.newPage();
  const bobUrl = `${server.base}/d/${doc}?verify#token=${mintAs('bob', `${doc}=rw`)}`;
  watchRepairs(bob, bobUrl);
  await bob.goto(bobUrl);
  const deadline0 = Date.now() + 15000;
  let replica = aliceReplica;
  while (Date.now() < deadline0) {
    try {
      replica = await bob.evaluate(() => (window.weft && window.weft.provider.status === 'online' ? window.weft.doc.replica() : null));
      if (replica !== null && replica !== aliceReplica) break;
    } catch { /* the page is reloading */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(replica !== null && replica !== aliceReplica, 'a new replica');
  await waitText(bob, 'alice ');
  await typeAt(bob, 6, 'bob');
  await waitText(bob, 'alice bob');
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline && (await read()) !== 'alice bob') await new Promise((r) => setTimeout(r, 50));
  assert.equal(await read(), 'alice bob', 'bob\'s text reached the server under his own replica');
  await bob.waitForFunction(() => { const { doc, provider } = window.weft; return provider.acked >= doc.version().find(([r]) => r === doc.replica())[1]; });
  await ctx.close();
});

test('text typed offline under another user\'s stored replica is typed again under a new one', async () => {
  const doc = `offline-shared-${process.pid}`;
  const ctx = await browser.newContext();
  const read = () => serverText(doc);
  const aliceReplica = await aliceStoresAReplica(ctx, doc);
  // Bob opens the page offline: Alice's stored replica, and he types into it.
  await ctx.setOffline(true);
  const bob = await ctx.newPage();
  const bobUrl = `${server.base}/d/${doc}?verify#token=${mintAs('bob', `${doc}=rw`)}`;
  watchRepairs(bob, bobUrl);
  await bob.goto(bobUrl);
  await bob.locator('[data-testid=editor] .cm-content').waitFor();
  await waitText(bob, 'alice ');
  assert.equal(await bob.evaluate(() => window.weft.doc.replica()), aliceReplica);
  await typeAt(bob, 6, 'bob 😀');
  // Online again: refused, a new replica, and his text typed again under it.
  await ctx.setOffline(false);
  const deadline = Date.now() + 20000;
  let got = '';
  while (Date.now() < deadline && (got = await read()) !== 'alice bob 😀') await new Promise((r) => setTimeout(r, 100));
  assert.equal(got, 'alice bob 😀', 'his offline text reached the server');
  let replica = aliceReplica;
  try { replica = await bob.evaluate(() => window.weft.doc.replica()); } catch { /* reloading */ }
  assert.notEqual(replica, aliceReplica, 'under a new replica');
  await ctx.close();
});
