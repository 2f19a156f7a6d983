// The editor fills its area and a click anywhere in it focuses it (Debian's
// chromium, playwright-core, a real weft-server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, openPage as open, textOf, waitText, typeAt } from './harness.mjs';

const env = useServerAndBrowser();

let n = 0;
const docName = () => `focus-${process.pid}-${++n}`;
const hasFocus = (page) => page.evaluate(() => window.weft.view.hasFocus);
const box = (page, selector) => page.locator(selector).first().boundingBox();

/** Opens a page on a new document with the focus taken away from the editor,
 * as when the user went to another window or the address bar: the DOM
 * selection stays in the editor, and Chrome does not bring the focus back
 * for a click on a blank, non-focusable part of the page. (After a click on
 * other text of the page, Chrome moves the selection and a later click may
 * focus the editor by chance; that would hide the bug.) */
async function blurredPage(ctx, doc) {
  const page = await open(ctx, env.base, doc);
  await page.evaluate(() => document.activeElement.blur());
  assert.equal(await hasFocus(page), false);
  return page;
}

async function serverText(doc, expected) {
  const deadline = Date.now() + 10000;
  let got;
  while (Date.now() < deadline) {
    got = await (await fetch(`${env.base}/api/docs/${doc}/text`)).text();
    if (got === expected) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(got, expected);
}

test('a click below the first line of an empty editor focuses it and typing goes into the document', async () => {
  const doc = docName();
  const ctx = await env.browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await blurredPage(ctx, doc);
  const ed = await box(page, '[data-testid=editor]');
  const line = await box(page, '.cm-line');
  const y = ed.y + ed.height * 0.75;
  assert.ok(y > line.y + line.height + 100, 'the click is well below the first line');
  await page.mouse.click(ed.x + ed.width / 2, y);
  assert.equal(await hasFocus(page), true);
  await page.keyboard.type('hello', { delay: 5 });
  await waitText(page, 'hello');
  await serverText(doc, 'hello');
  await ctx.close();
});

test('a click in the line-number gutter below the text focuses the editor at the end', async () => {
  const doc = docName();
  const ctx = await env.browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await open(ctx, env.base, doc);
  await typeAt(page, 0, 'first\nsecond');
  await page.evaluate(() => document.activeElement.blur());
  assert.equal(await hasFocus(page), false);
  const gutter = await box(page, '.cm-gutters');
  await page.mouse.click(gutter.x + gutter.width / 2, gutter.y + gutter.height - 40);
  assert.equal(await hasFocus(page), true);
  await page.keyboard.type('!', { delay: 5 });
  await waitText(page, 'first\nsecond!');
  // And on a line's number, after a click elsewhere: the caret goes to that line.
  await page.locator('.docname').click();
  assert.equal(await hasFocus(page), false);
  await page.locator('.cm-lineNumbers .cm-gutterElement', { hasText: /^1$/ }).click();
  assert.equal(await hasFocus(page), true);
  await page.keyboard.type('>', { delay: 5 });
  await waitText(page, '>first\nsecond!');
  await serverText(doc, '>first\nsecond!');
  await ctx.close();
});

test('the editor fills its area and scrolls inside it', async () => {
  const doc = docName();
  const ctx = await env.browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await open(ctx, env.base, doc);
  const main = await box(page, 'main');
  const ed = await box(page, '[data-testid=editor]');
  const content = await box(page, '.cm-content');
  // The box fills the page below the header (main's 24 px padding around it)...
  assert.ok(Math.abs(ed.y + ed.height - (main.y + main.height - 24)) <= 2, `editor bottom ${ed.y + ed.height}, main ${main.y + main.height}`);
  // ...and the text area fills the box.
  assert.ok(content.y + content.height >= ed.y + ed.height - 3, `content bottom ${content.y + content.height}, editor ${ed.y + ed.height}`);
  // A long text scrolls inside the editor; the box keeps its size.
  await page.evaluate(() => window.weft.view.dispatch({ changes: { from: 0, insert: 'line\n'.repeat(200) } }));
  await waitText(page, 'line\n'.repeat(200));
  const after = await box(page, '[data-testid=editor]');
  assert.equal(Math.round(after.height), Math.round(ed.height));
  const scroll = await page.evaluate(() => { const s = window.weft.view.scrollDOM; return [s.scrollHeight, s.clientHeight]; });
  assert.ok(scroll[0] > scroll[1], `scroller ${scroll}`);
  assert.equal((await textOf(page)).length, 1000);
  await ctx.close();
});
