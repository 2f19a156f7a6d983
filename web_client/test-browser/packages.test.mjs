// The npm packages as another app uses them: web_client/pack.sh makes the
// tarballs, an app outside web_client (examples/codemirror_app, copied to a
// temporary directory) installs them with npm (offline: its lockfile names the
// same versions as web_client's, so npm's cache has them) and builds with its
// own bundler. Then the app, weft's own editor page and a node script using
// the packages edit one document on a real weft-server, in Chromium.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { useServerAndBrowser, openPage, textOf, waitText, typeAt, root } from './harness.mjs';

const env = useServerAndBrowser();
const appSource = path.join(root, '../examples/codemirror_app');
let work, appDir, staticServer, appBase;
const appErrors = []; // console errors and uncaught exceptions of the app's pages: each fails its test

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 180000 }).toString();

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-packages-'));
  const tarballs = run(path.join(root, 'pack.sh'), [path.join(work, 'packs')], root).trim().split('\n');
  assert.equal(tarballs.length, 3, 'three tarballs');
  // Each ships its code, types and README (the wasm too, for the core).
  const want = {
    core: ['src/weft.js', 'src/weft.d.ts', 'src/wasm-binary.js', 'src/wasm-binary.node.js', 'dist/weft_core.mjs', 'dist/weft_core.wasm'],
    provider: ['src/provider.js', 'src/provider.d.ts', 'src/messages.js', 'src/chunk.js'],
    codemirror: ['src/index.js', 'src/index.d.ts', 'src/astral.js'],
  };
  for (const [name, files] of Object.entries(want)) {
    const tgz = tarballs.find((t) => path.basename(t).startsWith(`weft-${name}-`));
    assert.ok(tgz, `a tarball of @weft/${name}`);
    const listed = run('tar', ['tzf', tgz], work).split('\n');
    for (const f of [...files, 'package.json', 'README.md']) assert.ok(listed.includes(`package/${f}`), `${path.basename(tgz)} has ${f}`);
  }
  appDir = path.join(work, 'app');
  fs.cpSync(appSource, appDir, { recursive: true, filter: (p) => !/node_modules|dist$/.test(p) });
  run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], appDir);
  // --legacy-peer-deps: resolving the packages' peer dependencies
  // (@codemirror/*) makes npm ask for the registry's full metadata of each,
  // which `npm ci` never caches, so offline it finds them "undefined". The app
  // depends on them itself; `npm ls` then checks that every peer is met.
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--legacy-peer-deps', ...tarballs], appDir);
  run('npm', ['ls', '--offline'], appDir);
  run('npm', ['run', 'build'], appDir);
  // The app is served by a server of its own, not by weft-server: it only
  // talks to weft-server over the WebSocket.
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const dist = path.join(appDir, 'dist');
  staticServer = http.createServer((req, res) => {
    const name = new URL(req.url, 'http://x').pathname.replace(/^\/$/, '/index.html');
    const file = path.join(dist, path.normalize(name));
    if (!file.startsWith(dist) || !fs.existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
    res.end(fs.readFileSync(file));
  });
  await new Promise((resolve) => staticServer.listen(0, '127.0.0.1', resolve));
  appBase = `http://127.0.0.1:${staticServer.address().port}`;
});

afterEach(() => {
  const errors = appErrors.splice(0);
  assert.deepEqual(errors, [], 'the app logged no errors');
});

after(() => {
  staticServer?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Opens the app on `doc` as user `name` and waits until it is online. */
async function openApp(context, doc, name) {
  const page = await context.newPage();
  page.on('pageerror', (e) => appErrors.push(`uncaught: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') appErrors.push(m.text()); });
  const ws = env.base.replace('http', 'ws') + '/';
  await page.goto(`${appBase}/?server=${encodeURIComponent(ws)}&doc=${doc}&name=${name}&verify`);
  await page.locator('#status').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
  return page;
}
const waitAppText = (page, expected) => waitText(page, expected, 10000, 'app');
const typeInApp = (page, pos, text) => typeAt(page, pos, text, 'app');

test('an app built from the packed packages edits one document with the editor page and a node script', async () => {
  const doc = `pkg-${process.pid}-1`;
  const ctxA = await env.browser.newContext(), ctxB = await env.browser.newContext();
  try {
    const app = await openApp(ctxA, doc, 'Outsider');
    const page = await openPage(ctxB, env.base, doc);
    await typeInApp(app, 0, 'from the app 🙂 ');
    await waitText(page, 'from the app 🙂 ');
    await typeAt(page, (await textOf(page)).length, 'and the page');
    const both = 'from the app 🙂 and the page';
    await waitAppText(app, both);

    // Presence both ways: the app draws the page's caret, the page the app's.
    await app.locator('.cm-weft-caret').first().waitFor({ timeout: 10000 });
    await page.locator('.cm-weft-caret', { hasText: 'Outsider' }).waitFor({ timeout: 10000 });

    // node, from the same install: the provider syncs, sees the text, adds
    // to it and waits for the server's acknowledgement.
    const script = path.join(appDir, 'collaborate.mjs');
    fs.writeFileSync(script, `
      import { loadWeft, randomReplicaId } from '@weft/core';
      import { WeftProvider } from '@weft/provider';
      const weft = await loadWeft();
      const doc = new weft.Document(randomReplicaId());
      const provider = new WeftProvider({ url: ${JSON.stringify(env.base.replace('http', 'ws') + '/')}, docId: ${JSON.stringify(doc)}, doc });
      const timer = setTimeout(() => { console.error('timed out, status ' + provider.status); process.exit(2); }, 15000);
      const online = new Promise((resolve) => provider.addEventListener('status', (e) => e.detail === 'online' && resolve()));
      provider.connect();
      await online;
      const seen = doc.text();
      const [, counter] = doc.insert(doc.length(), ' + node');
      provider.flush();
      await new Promise((resolve) => { const check = () => provider.acked >= counter + 6 && resolve(); provider.addEventListener('acked', check); check(); });
      clearTimeout(timer);
      console.log(JSON.stringify({ seen, text: doc.text() }));
      provider.destroy();
      doc.dispose();
    `);
    const out = await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--experimental-websocket', '--no-warnings', script], { cwd: appDir });
      let stdout = '', stderr = '';
      child.stdout.on('data', (d) => { stdout += d; });
      child.stderr.on('data', (d) => { stderr += d; });
      child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`node script exited ${code}: ${stderr}`))));
    });
    const fromNode = JSON.parse(out);
    assert.equal(fromNode.seen, both, 'node synced the text');
    const all = both + ' + node';
    assert.equal(fromNode.text, all);
    await waitAppText(app, all);
    await waitText(page, all);
    assert.equal(await (await fetch(`${env.base}/api/docs/${doc}/text`)).text(), all, 'server text');
    assert.equal(await app.evaluate(() => window.app.repairs()), 0, 'the app never had to repair its view');
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test('undo in the app removes only its own edit, redo brings it back, on both sides', async () => {
  const doc = `pkg-${process.pid}-2`;
  const ctxA = await env.browser.newContext(), ctxB = await env.browser.newContext();
  try {
    const app = await openApp(ctxA, doc, 'Outsider');
    const page = await openPage(ctxB, env.base, doc);
    await typeInApp(app, 0, 'mine ');
    await waitText(page, 'mine ');
    await typeAt(page, 5, 'theirs');
    await waitAppText(app, 'mine theirs');
    await app.evaluate(() => window.app.view.focus());
    await app.keyboard.press('Control+z');
    await waitAppText(app, 'theirs');
    await waitText(page, 'theirs');
    await app.keyboard.press('Control+Shift+Z');
    await waitAppText(app, 'mine theirs');
    await waitText(page, 'mine theirs');
    assert.equal(await app.evaluate(() => window.app.repairs()), 0, 'the app never had to repair its view');
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
