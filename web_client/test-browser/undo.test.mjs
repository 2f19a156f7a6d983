// Collaborative undo in the browser editor (Debian's chromium, playwright-core,
// a real weft-server): Ctrl+Z and redo touch only the page's own edits, with
// the other pages' edits mapped through, and what an undo changes reaches
// everyone as ordinary ops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, openPage as open, allowViewRepairs, settled, textOf, waitText, waitServerText, typeAt } from './harness.mjs';

const env = useServerAndBrowser();

let n = 0;
const docName = () => `undo-${process.pid}-${++n}`;

/** Two pages on one new document, each in its own browser context. */
async function twoPages() {
  const doc = docName();
  const ctxA = await env.browser.newContext(), ctxB = await env.browser.newContext();
  const a = await open(ctxA, env.base, doc), b = await open(ctxB, env.base, doc);
  return { doc, ctxA, ctxB, a, b, close: async () => { await ctxA.close(); await ctxB.close(); } };
}

/** Presses `keys` in the page's editor (focused first; the selection is left alone).
 * Redo is 'Control+Shift+Z' with a capital Z, the key a real keyboard reports
 * with Shift held (with 'z', CodeMirror would try Ctrl-z, undo, first). */
async function press(page, keys) {
  await page.evaluate(() => window.weft.view.focus());
  await page.keyboard.press(keys);
}

/** Both pages and the server show `text`. */
async function everywhere(doc, pages, text) {
  for (const p of pages) await waitText(p, text);
  const deadline = Date.now() + 10000;
  let got;
  while (Date.now() < deadline) {
    got = await (await fetch(`${env.base}/api/docs/${doc}/text`)).text();
    if (got === text) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(got, text, 'server text');
}

// CodeMirror's history starts a new undo step after 500 ms without typing.
const NEW_GROUP_MS = 600;

test('undo removes only my own edit; redo brings it back, on both pages', async () => {
  const { doc, a, b, close } = await twoPages();
  await typeAt(a, 0, 'mine ');
  await waitText(b, 'mine ');
  await typeAt(b, 5, 'theirs');
  await waitText(a, 'mine theirs');

  await press(a, 'Control+z');
  await everywhere(doc, [a, b], 'theirs');
  await press(a, 'Control+Shift+Z');
  await everywhere(doc, [a, b], 'mine theirs');

  // Undo again, let the other page type, then redo with Ctrl+Y: the redo is
  // mapped through the remote edit too.
  await press(a, 'Control+z');
  await everywhere(doc, [a, b], 'theirs');
  await a.waitForTimeout(NEW_GROUP_MS);
  await typeAt(b, 6, '!');
  await waitText(a, 'theirs!');
  await press(a, 'Control+y');
  await everywhere(doc, [a, b], 'mine theirs!');

  // The other page's undo is its own: its last step, the "!".
  await press(b, 'Control+z');
  await everywhere(doc, [a, b], 'mine theirs');
  // A's history holds only its "mine ": one undo removes it, a second finds
  // nothing (B's "theirs" was never in A's history).
  await press(a, 'Control+z');
  await everywhere(doc, [a, b], 'theirs');
  await press(a, 'Control+z');
  await settled(a);  // the key press has been handled (an undo acts at once)
  assert.equal(await textOf(a), 'theirs');
  await everywhere(doc, [a, b], 'theirs');
  await close();
});

test('interleaved edits: each page undoes and redoes its own steps', async () => {
  const { doc, a, b, close } = await twoPages();
  await typeAt(a, 0, 'one ');
  await waitText(b, 'one ');
  await typeAt(b, 4, 'two ');
  await waitText(a, 'one two ');
  await a.waitForTimeout(NEW_GROUP_MS);
  await typeAt(a, 8, 'three ');
  await waitText(b, 'one two three ');
  await typeAt(b, 14, 'four ');
  await everywhere(doc, [a, b], 'one two three four ');

  await press(a, 'Control+z');
  await everywhere(doc, [a, b], 'one two four ');
  await press(a, 'Control+z');
  await everywhere(doc, [a, b], 'two four ');
  // Nothing of A's is left to undo: B's words stay.
  await press(a, 'Control+z');
  await settled(a);  // the key press has been handled (an undo acts at once)
  assert.equal(await textOf(a), 'two four ');
  await everywhere(doc, [a, b], 'two four ');

  await press(a, 'Control+Shift+Z');
  await everywhere(doc, [a, b], 'one two four ');
  await press(a, 'Control+Shift+Z');
  await everywhere(doc, [a, b], 'one two three four ');

  // B undoes its "four " (typed well after "two ", in the other place).
  await press(b, 'Control+z');
  await everywhere(doc, [a, b], 'one two three ');
  await close();
});

test('undoing my insert keeps text another page typed inside it', async () => {
  const { doc, a, b, close } = await twoPages();
  await typeAt(a, 0, 'hello');
  await waitText(b, 'hello');
  await typeAt(b, 2, 'XY');          // inside A's word
  await waitText(a, 'heXYllo');

  await press(a, 'Control+z');
  await everywhere(doc, [a, b], 'XY');
  await press(a, 'Control+Shift+Z');
  await everywhere(doc, [a, b], 'heXYllo');

  // The other page deletes part of A's word: the undo removes the rest only.
  await b.evaluate(() => window.weft.view.focus());
  await b.evaluate(() => window.weft.view.dispatch({ selection: { anchor: 7 } }));
  await b.keyboard.press('Backspace');
  await waitText(a, 'heXYll');
  await press(a, 'Control+z');
  await everywhere(doc, [a, b], 'XY');
  await close();
});

test('undo after a reconnect: the remote edits of the sync are not in my history', async () => {
  const { doc, ctxA, a, b, close } = await twoPages();
  await typeAt(a, 0, 'mine ');
  await waitText(b, 'mine ');
  await ctxA.setOffline(true);
  await a.locator('[data-testid=status]').filter({ hasText: 'offline' }).waitFor();
  await typeAt(b, 5, 'theirs');
  // b's edit reached the server: online, a would have been sent it.
  await waitServerText(env.base, doc, 'mine theirs');
  assert.equal(await textOf(a), 'mine ');
  await ctxA.setOffline(false);
  await a.locator('[data-testid=status]').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
  await waitText(a, 'mine theirs');

  await press(a, 'Control+z');
  await everywhere(doc, [a, b], 'theirs');
  await press(a, 'Control+Shift+Z');
  await everywhere(doc, [a, b], 'mine theirs');
  await close();
});

test('a resync of the view is not undoable and keeps my undo history', async () => {
  const { doc, a, b, close } = await twoPages();
  await typeAt(a, 0, 'mine ');
  await waitText(b, 'mine ');
  // Make the view drift from the replica (an edit behind the view's back):
  // the next remote change finds the difference and patches the view, once.
  allowViewRepairs(a, 1);
  await a.evaluate(() => window.weft.doc.insert(5, 'Z'));
  await typeAt(b, 0, 'theirs ');
  await waitText(a, 'theirs mine Z');
  assert.equal(await a.evaluate(() => window.weft.viewRepairs), 1);

  // One undo removes A's typed "mine ", not the resync's "Z".
  await press(a, 'Control+z');
  await waitText(a, 'theirs Z');
  assert.equal(await a.evaluate(() => window.weft.doc.text()), 'theirs Z');
  // The undo flushed A's ops, the "Z" among them: everyone agrees.
  await everywhere(doc, [a, b], 'theirs Z');
  await close();
});
