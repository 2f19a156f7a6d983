// Shared set-up of the browser tests: a real weft-server on 127.0.0.1 serving
// web_client/dist, Debian's chromium driven by playwright-core, and helpers
// to drive and read the editor page.
import assert from 'node:assert/strict';
import { before, after, afterEach } from 'node:test';
import { startServer, launchBrowser, root, buildDir } from './browser-env.mjs';

export { startServer, launchBrowser, root, buildDir };

/** For a test file: a weft-server (with `extraArgs`) and chromium, started
 * before its tests and stopped after them. Returns { server, base, browser },
 * filled in once they are up. */
export function useServerAndBrowser(extraArgs = []) {
  const env = { server: null, base: '', browser: null };
  before(async () => {
    env.server = await startServer(extraArgs);
    env.base = env.server.base;
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    env.server?.stop();
  });
  return env;
}

// The editor's safety net (@weft/codemirror's binding) repairs a view that wrong change events
// left out of step with its replica, and says so with console.error. Every
// test fails when it fired on a page opened with openPage(), more often than
// the test allowed (allowViewRepairs) — checked after each test, when the
// page's messages up to its last evaluate have arrived.
const REPAIR = 'weft: editor view out of step';
const repairs = new Map(); // page -> { url, seen, allowed }
afterEach(() => {
  const bad = [...repairs.values()].filter((r) => r.seen > r.allowed).map((r) => `${r.url}: ${r.seen} time(s), ${r.allowed} allowed`);
  for (const [page, r] of repairs) {
    if (page.isClosed()) repairs.delete(page);
    else Object.assign(r, { seen: 0, allowed: 0 }); // a page kept for the next test starts afresh
  }
  if (bad.length) assert.fail(`the editor's safety net repaired the view (wrong change events): ${bad.join('; ')}`);
});

/** Lets the safety net repair `page`'s view up to `n` times in this test (a
 * test that makes the view drift on purpose). */
export function allowViewRepairs(page, n) { repairs.get(page).allowed = n; }

/** Counts the safety net's repairs of `page` (opened at `url`, which should
 * carry ?verify) for the check after each test. openPage() does it; call it
 * for a page a test opens itself. */
export function watchRepairs(page, url) {
  const r = { url, seen: 0, allowed: 0 };
  repairs.set(page, r);
  page.on('console', (m) => {
    if (m.type() === 'error' && m.text().startsWith(REPAIR)) {
      r.seen++;
      console.error(`page ${r.url}: ${m.text()}`);
    }
  });
  return r;
}

/** Opens the editor for `doc` and waits until it is online; `query` adds to the address's query. */
export async function openPage(context, base, doc, query = '') {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  // ?verify: the page compares its whole view with the replica's text after
  // every remote batch (the binding's `verify`), so a wrong change event cannot hide.
  const r = watchRepairs(page, `${base}/d/${doc}?verify${query ? `&${query}` : ''}`);
  await page.goto(r.url);
  await page.locator('[data-testid=status]').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
  return page;
}

// The helpers below drive the editor page, whose view is window.weft.view;
// `app` names another global holding a `view` (the packages' test app has
// window.app).
export const textOf = (page, app = 'weft') => page.evaluate((g) => window[g].view.state.doc.toString(), app);

/** Waits until the page's text is `expected` (asserting it at the deadline). */
export async function waitText(page, expected, timeout = 10000, app = 'weft') {
  const deadline = Date.now() + timeout;
  let t;
  while (Date.now() < deadline) {
    t = await textOf(page, app);
    if (t === expected) return t;
    await page.waitForTimeout(50);
  }
  assert.equal(t, expected);
}

/** Waits until the page's text is one of `options`; returns it. */
export async function waitOneOf(page, options, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let t;
  while (Date.now() < deadline) {
    t = await textOf(page);
    if (options.includes(t)) return t;
    await page.waitForTimeout(50);
  }
  assert.fail(`text ${JSON.stringify(t)} is none of ${JSON.stringify(options)}`);
}

/** Waits until the page's replica, as it is now, is committed to IndexedDB
 * (the page's whenSaved(), src/main.js: the debounced save's transaction has completed);
 * fails after `timeout` ms. */
/** Resolves once `page` has run every task queued so far and painted a
 * frame: a barrier after a key press or an evaluate, before checking that
 * it changed nothing (not a timed wait). */
export async function settled(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));
}

/** Polls the server's text of `doc` (GET /api/docs/DOC/text, with `token`
 * when given) until it is `expected`. */
export async function waitServerText(base, doc, expected, timeout = 10000, token = '') {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    const res = await fetch(`${base}/api/docs/${encodeURIComponent(doc)}/text`,
      token ? { headers: { Authorization: `Bearer ${token}` } } : {});
    last = await res.text();
    if (res.status === 200 && last === expected) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`the server's text of ${doc} stayed ${JSON.stringify(last)}, not ${JSON.stringify(expected)}`);
}

export async function waitSaved(page, timeout = 10000) {
  await page.evaluate((ms) => Promise.race([
    window.weft.whenSaved(),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`replica not saved to IndexedDB within ${ms} ms`)), ms)),
  ]), timeout);
}

/** Puts the caret at UTF-16 offset `pos` and types `text` with the keyboard. */
export async function typeAt(page, pos, text, app = 'weft') {
  await page.evaluate(([p, g]) => {
    const v = window[g].view;
    v.focus();
    v.dispatch({ selection: { anchor: Math.min(p, v.state.doc.length) } });
  }, [pos, app]);
  await page.keyboard.type(text, { delay: 5 });
}
