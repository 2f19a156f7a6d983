// The terminal editor (examples/terminal_editor, weft-edit, a native C++
// replica on weft::client) and the browser editor edit one document on a real
// weft-server at the same time, and converge.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { buildDir, startServer, launchBrowser, openPage, textOf, waitText, typeAt } from './harness.mjs';

const editorBin = process.env.WEFT_EDIT ?? path.join(buildDir, 'examples/weft-edit');
let server, browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

/** weft-edit in script mode; send(cmd) resolves to its one-line answer. */
function startEditor(doc, name) {
  const proc = spawn(editorBin, ['--script', '--name', name, '--url', `ws://127.0.0.1:${server.port}`, doc],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: proc.stdout });
  const waiting = [];
  lines.on('line', (l) => waiting.shift()?.(l));
  return {
    send(cmd) {
      return new Promise((resolve) => {
        waiting.push(resolve);
        proc.stdin.write(cmd + '\n');
      });
    },
    async quit() {
      const exited = new Promise((resolve) => proc.on('exit', resolve));
      proc.stdin.end('quit\n');
      return exited;
    },
  };
}

test('the terminal editor and the browser edit one document live and converge', async () => {
  const doc = `native-${process.pid}`;
  const ctx = await browser.newContext();
  const page = await openPage(ctx, server.base, doc);
  const term = startEditor(doc, 'terminal-bot');

  // Browser -> terminal.
  await typeAt(page, 0, 'from the browser');
  assert.equal(await term.send(`expect ${JSON.stringify('from the browser')} 10000`), 'ok');

  // Terminal -> browser, with a multi-line and non-ASCII edit.
  assert.equal(await term.send('move 16'), 'ok');
  assert.equal(await term.send(`type ${JSON.stringify('\nand the terminal ✓')}`), 'ok');
  await waitText(page, 'from the browser\nand the terminal ✓');

  // The browser shows the terminal's cursor and name (presence).
  await page.locator('[data-testid=people] .person').filter({ hasText: 'terminal-bot' }).waitFor({ timeout: 10000 });

  // Concurrent edits at the same moment from both sides.
  await Promise.all([
    typeAt(page, 0, '> '),
    (async () => {
      assert.equal(await term.send('move 1000000'), 'ok'); // clamped to the end
      for (const w of [' one', ' two', ' three']) assert.equal(await term.send(`type ${JSON.stringify(w)}`), 'ok');
      assert.equal(await term.send('backspace 2'), 'ok');
    })(),
  ]);
  const final = '> from the browser\nand the terminal ✓ one two thr';
  await waitText(page, final);
  assert.equal(await term.send(`expect ${JSON.stringify(final)} 10000`), 'ok');
  assert.equal(await term.send('wait-synced 10000'), 'ok');
  const res = await fetch(`${server.base}/api/docs/${doc}/text`);
  assert.equal(await res.text(), final);
  assert.equal(await textOf(page), final);

  assert.equal(await term.quit(), 0);
  await ctx.close();
});
