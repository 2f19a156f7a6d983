// The editor page in Chromium against a real weft-server, on a large
// document: how long a fresh page takes to open it (history included) and
// what a local keystroke costs as the document grows.
//
//   node bench/page-bench.mjs --trace ../../shared/traces/automerge-paper.json.gz [--repeat 1,10] [--keys 200]
//
// For each repeat count R, the trace is replayed R times into one document
// (each copy appended after the text so far) by a node replica (the same
// WebAssembly core), sent to the server and acknowledged. Then:
//  - open: a new page (no stored replica) loads /d/<doc>; timed from the
//    navigation's start (the page's own clock) until the editor shows the
//    whole text with the provider online; the median of --opens runs;
//  - reopen: the same page reloaded (its replica stored in IndexedDB), timed
//    the same way;
//  - key: --keys keystrokes typed in the opened page (words of 20 characters
//    at places spread over the document),
//    each timed in the page from the transaction to the ops handed to the
//    socket (CodeMirror's update, the binding, the replica's insert, encoding
//    and sending), median and p99.
//  - remote_to_screen: --bots weft-bots type into the document (5 keys/s
//    each, for --bot-seconds) while the page shows it; for every ops frame
//    the page receives, from its arrival in the page to the next painted
//    frame: median, p99, max and how many took over one frame (16.7 ms).
// One JSON line per figure, with the machine. Exits non-zero if a page's
// text differs from the replica's or the server's, or the bots fail.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import zlib from 'node:zlib';
import { loadWeft } from '@weft/core';
import { chunkOps } from '../packages/provider/src/chunk.js';
import { startServer, launchBrowser, buildDir } from '../test-browser/browser-env.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const tracePath = opt('--trace');
const repeats = opt('--repeat', '1,10').split(',').map(Number);
const keys = Number(opt('--keys', '200'));
const opens = Number(opt('--opens', '3'));
const openTimeoutMs = Number(opt('--open-timeout', '300000'));
const profileTop = Number(opt('--profile', '0'));
const history = opt('--history', 'runs');
const bots = Number(opt('--bots', '20'));
const botSeconds = Number(opt('--bot-seconds', '10'));
if (!tracePath || args.includes('--help')) {
  console.error('usage: node bench/page-bench.mjs --trace FILE.json.gz [--repeat 1,10] [--history runs|keystrokes] [--keys N] [--opens N] [--open-timeout MS] [--profile TOP]');
  console.error('  --history keystrokes: one op per keystroke, as a page sends while typing;');
  console.error('            runs (default): consecutive typing as one insert op, as a client that flushes per word sends');
  console.error('  --profile TOP: CPU-profile the first open and the keys, print their TOP functions by self time (stderr)');
  console.error('  --bots N (default 20), --bot-seconds S (default 10): then N weft-bots type into the document at');
  console.error('            5 keys/s each for S seconds while the page shows their edits (0: no bots)');
  process.exit(args.includes("--help") ? 0 : 2);
}
const trace = JSON.parse(zlib.gunzipSync(fs.readFileSync(tracePath)).toString('utf8'));
const traceName = tracePath.split('/').pop().replace(/\.json(\.gz)?$/, '');
const machine = `${os.cpus()[0]?.model ?? 'unknown cpu'}, ${os.cpus().length} cores, ${process.env.WEFT_BROWSER_NAME ?? 'chromium'}`;
const print = (o) => console.log(JSON.stringify({ bench: 'page', trace: traceName, ...o, machine }));
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];
const p99 = (v) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(v.length * 0.99))];

const weft = await loadWeft();

/** Waits until `page` is online and its editor shows `length` UTF-16 units. */
const waitShown = (page, length) => page.waitForFunction(
  (n) => window.weft && window.weft.provider.status === 'online' && window.weft.view.state.doc.length === n,
  length, { timeout: openTimeoutMs, polling: 10 });

/** Prints the functions with the most self time of a CDP CPU profile. */
function printProfile(profile, what) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  profile.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  console.error(`profile of ${what}, self time:`);
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, profileTop))
    console.error(`  ${(us / 1000).toFixed(1).padStart(8)} ms  ${key}`);
}

/** The document of `repeat` copies of the trace, as ops (JSON text) of one replica. */
function buildDocument(repeat) {
  const d = new weft.Document(7);
  for (let k = 0; k < repeat; k++) {
    const base = d.length();
    for (const txn of trace.txns)
      for (const [pos, del, ins] of txn.patches) {
        if (del) d.erase(base + pos, del);
        if (ins) d.insert(base + pos, ins);
      }
  }
  let ops = d.takeOutgoing();
  const text = d.text();
  d.dispose();
  if (history === 'runs') ops = JSON.stringify(mergeRuns(JSON.parse(ops)));
  return { ops, text };
}

const same = (a, b) => (a ?? null) === (b ?? null) || (a && b && a[0] === b[0] && a[1] === b[1]);
/** Joins each insert that continues the one before it (the next counters,
 * left origin its last character, same right origin) into it: the same
 * characters with the same origins (docs/protocol.md), fewer ops. */
function mergeRuns(ops) {
  const out = [];
  for (const op of ops) {
    const prev = out[out.length - 1];
    if (prev && prev.kind === 'insert' && op.kind === 'insert' && op.id[0] === prev.id[0]) {
      const n = [...prev.text].length;
      const end = prev.id[1] + n;
      if (op.id[1] === end && same(op.left, [prev.id[0], end - 1]) && same(op.right, prev.right)) {
        prev.text += op.text;
        continue;
      }
    }
    out.push({ ...op });
  }
  return out;
}

/** Sends `ops` to the server for `docId` from a page (node 20 has no
 * WebSocket) and waits for the ack of all of them; returns the op count. */
async function upload(docId, ops) {
  const chunks = [...chunkOps(ops, 1 << 19)];
  const page = await browser.newPage();
  await page.goto(`${server.base}/`);
  await page.evaluate(async ({ docId, chunks }) => {
    const last = chunks.flatMap((c) => JSON.parse(c)).reduce((m, o) => Math.max(m, o.id[1] + ([...(o.text ?? '')].length || 1) - 1), 0);
    const ws = new WebSocket(location.origin.replace('http', 'ws') + '/');
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('upload timed out')), 120000);
      ws.onerror = () => reject(new Error('upload socket failed'));
      ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', protocol: 1, client: 'page-bench' }));
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.type === 'welcome') ws.send(JSON.stringify({ type: 'open', doc: docId, version: [] }));
        else if (m.type === 'sync') for (const c of chunks) ws.send(`{"type":"ops","doc":${JSON.stringify(docId)},"ops":${c}}`);
        else if (m.type === 'error') reject(new Error(`server: ${m.code} ${m.message}`));
        else if (m.type === 'ack') {
          const mine = m.version.find(([r]) => r === 7);
          if (mine && mine[1] >= last) { clearTimeout(timer); resolve(); }
        }
      };
    });
    ws.close();
  }, { docId, chunks });
  await page.close();
  return chunks.reduce((n, c) => n + JSON.parse(c).length, 0);
}

/**
 * weft-bots type into the document while `page` shows it. For every binary
 * ops frame the page receives: the time from the message event's creation
 * (its arrival in the page's event loop) until the first frame painted after
 * the page handled it (a message posted from requestAnimationFrame runs
 * after that frame). Then the page's text must equal the server's.
 */
async function remoteTyping(page, prefix, docId, repeat, textBytes) {
  await page.evaluate(() => {
    window.__remoteMs = [];
    window.weft.provider._ws.addEventListener('message', (e) => {
      if (!(e.data instanceof ArrayBuffer) || new Uint8Array(e.data)[0] !== 1) return; // live ops only
      const t0 = e.timeStamp;
      requestAnimationFrame(() => {
        const ch = new MessageChannel();
        ch.port1.onmessage = () => window.__remoteMs.push(performance.now() - t0);
        ch.port2.postMessage(0);
      });
    });
  });
  const botsBin = path.join(buildDir, 'load_tests', 'weft-bots');
  const code = await new Promise((resolve) => {
    const child = spawn(botsBin, ['--url', `ws://127.0.0.1:${server.port}/`, '--docs', '1', '--bots-per-doc', String(bots),
      '--rate', '5', '--duration', String(botSeconds), '--seed', '1', '--doc-prefix', prefix, '--no-progress'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), (botSeconds + 120) * 1000);
    child.on('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  if (code !== 0) console.error(`x${repeat}: weft-bots exited ${code}`);
  // The page must show what the server has (bounded wait).
  const want = await (await fetch(`${server.base}/api/docs/${docId}/text`)).text();
  let same = false;
  for (let i = 0; i < 100 && !same; i++) {
    same = await page.evaluate((t) => window.weft.view.state.doc.toString() === t, want);
    if (!same) await new Promise((r) => setTimeout(r, 100));
  }
  if (!same) console.error(`x${repeat}: the page's text differs from the server's after the bots`);
  const ms = await page.evaluate(() => window.__remoteMs);
  const frame = 1000 / 60;
  print({ metric: 'remote_to_screen', repeat, history, text_bytes: textBytes, bots, value: Number(median(ms).toFixed(2)),
    p99: Number(p99(ms).toFixed(2)), max: Number(Math.max(...ms).toFixed(2)), over_one_frame: ms.filter((v) => v > frame).length,
    frames: ms.length, unit: 'ms' });
  return code === 0 && same && ms.length > 0;
}

const server = await startServer();
const browser = await launchBrowser();
let failed = false;
try {
  for (const repeat of repeats) {
    // Named as weft-bots names its documents (--doc-prefix P --seed 1: P-1-0).
    const botPrefix = `page-${traceName}-x${repeat}`;
    const docId = `${botPrefix}-1-0`;
    const { ops, text } = buildDocument(repeat);
    const opCount = await upload(docId, ops);
    const textBytes = Buffer.byteLength(text);
    const openMs = [];
    let page = null;
    for (let run = 0; run < opens; run++) {
      const context = await browser.newContext(); // no stored replica: a fresh page
      page = await context.newPage();
      const cdp = profileTop && run === 0 ? await context.newCDPSession(page) : null;
      if (cdp) {
        await cdp.send('Profiler.enable');
        await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
        await cdp.send('Profiler.start');
      }
      await page.goto(`${server.base}/d/${docId}`);
      await waitShown(page, text.length);
      if (cdp) printProfile((await cdp.send('Profiler.stop')).profile, `open x${repeat}`);
      // The page's clock starts at the navigation: time until the view shows
      // the text and the provider is online, as the page saw it.
      openMs.push(await page.evaluate(() => window.weft.openedAt));
      // Where the time went, for the first run: the document's response,
      // the app ready (wasm loaded), socket open, snapshot loaded, sync
      // processed, text shown (User Timing marks of the page and provider).
      if (run === 0) {
        const phases = await page.evaluate(() => {
          const out = { html: performance.getEntriesByType('navigation')[0]?.responseEnd ?? null };
          for (const m of performance.getEntriesByType('mark')) if (m.name.startsWith('weft:')) out[m.name.slice(5)] = m.startTime;
          for (const k of Object.keys(out)) out[k] = out[k] === null ? null : Number(out[k].toFixed(1));
          return out;
        });
        print({ metric: 'open_phases', repeat, history, text_bytes: textBytes, ...phases, unit: 'ms since navigation' });
      }
      const same = await page.evaluate((t) => window.weft.view.state.doc.toString() === t, text);
      if (!same) { console.error(`x${repeat}: the page's text differs from the document`); failed = true; }
      if (run + 1 < opens) await context.close();
    }
    print({ metric: 'open', repeat, history, text_bytes: textBytes, ops: opCount, value: Number(median(openMs).toFixed(1)), unit: 'ms', runs: openMs.map((v) => Number(v.toFixed(1))) });
    // Opening it again in the same browser profile: the replica stored in
    // IndexedDB loads from its snapshot and the sync brings only what it lacks.
    await page.evaluate(() => window.weft.whenSaved());
    const reopenMs = [];
    for (let run = 0; run < opens; run++) {
      await page.reload();
      await waitShown(page, text.length);
      reopenMs.push(await page.evaluate(() => window.weft.openedAt));
    }
    print({ metric: 'reopen', repeat, history, text_bytes: textBytes, ops: opCount, value: Number(median(reopenMs).toFixed(1)), unit: 'ms', runs: reopenMs.map((v) => Number(v.toFixed(1))) });
    const keyCdp = profileTop ? await page.context().newCDPSession(page) : null;
    if (keyCdp) {
      await keyCdp.send('Profiler.enable');
      await keyCdp.send('Profiler.setSamplingInterval', { interval: 100 });
      await keyCdp.send('Profiler.start');
    }
    const times = await page.evaluate(async (n) => {
      const { view } = window.weft;
      const out = [];
      for (let i = 0; i < n; i++) {
        // Words of 20 keys, typed at places spread over the document.
        const word = Math.floor(i / 20), words = Math.ceil(n / 20);
        let pos = Math.min(view.state.doc.length, Math.floor((view.state.doc.length * word) / words) + (i % 20));
        const before = pos > 0 ? view.state.doc.sliceString(pos - 1, pos).charCodeAt(0) : 0;
        if (before >= 0xd800 && before <= 0xdbff) pos--; // not inside a surrogate pair
        const t0 = performance.now();
        view.dispatch({ changes: { from: pos, insert: 'x' }, selection: { anchor: pos + 1 }, userEvent: 'input.type' });
        await null; // the provider's flush runs as a microtask: encode and send
        out.push(performance.now() - t0);
        if (i % 20 === 19) await new Promise((r) => setTimeout(r, 0)); // let the socket and the screen breathe
      }
      return out;
    }, keys);
    if (keyCdp) printProfile((await keyCdp.send('Profiler.stop')).profile, `keys x${repeat}`);
    print({ metric: 'key', repeat, history, text_bytes: textBytes, value: Number(median(times).toFixed(3)), p99: Number(p99(times).toFixed(3)), unit: 'ms', keys });
    const inStep = await page.evaluate(() => window.weft.view.state.doc.toString() === window.weft.doc.text());
    if (!inStep) { console.error(`x${repeat}: the view differs from the replica after typing`); failed = true; }
    if (bots > 0) failed = !(await remoteTyping(page, botPrefix, docId, repeat, textBytes)) || failed;
    await page.context().close();
  }
} finally {
  await browser.close();
  server.stop();
}
process.exit(failed ? 1 : 0);
