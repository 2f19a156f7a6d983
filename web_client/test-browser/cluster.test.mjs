// The cluster page (/cluster) in a real browser against two real weft-server
// nodes linked by replication: node b dials node a. The page on b must show
// both nodes and the link up, then the link down once a is killed, then say
// that b itself is unreachable once b is gone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { startServer, launchBrowser } from './harness.mjs';

const shots = process.env.WEFT_SCREENSHOT_DIR ?? os.tmpdir();
const MAX_LAG_S = 2;  // node b: a link down longer than this is degraded
let a, b, browser, page;
const pageErrors = [];

before(async () => {
  a = await startServer(['--node-id', 'a']);
  b = await startServer(['--node-id', 'b', '--peer', `ws://127.0.0.1:${a.port}`,
    '--max-replication-lag-s', String(MAX_LAG_S)]);
  browser = await launchBrowser();
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  await browser?.close();
  a?.stop();
  b?.stop();
});

const link = (state) => page.locator(`#map [data-link="a-b"][data-state="${state}"]`);
const row = (peer, state) => page.locator(`[data-testid=links] tr[data-peer="${peer}"][data-state="${state}"]`);

test('the page shows nodes a and b linked, and the link down once a is killed', async () => {
  await page.goto(`${b.base}/cluster`);
  // Both ends must have gossiped the link before it is drawn: bounded wait.
  await link('up').waitFor({ timeout: 15000 });
  assert.equal(await page.locator('#map [data-node="a"]').count(), 1);
  assert.equal(await page.locator('#map [data-node="b"][data-self]').count(), 1, 'b is drawn as this node');
  assert.equal(await page.locator('#map line.ok').count(), 1, 'one green line');
  await row('a', 'up').waitFor({ timeout: 5000 });
  assert.match(await row('a', 'up').textContent(), /out/, 'b dialled a');
  assert.equal(await page.locator('[data-testid=routes] tr[data-origin="a"] td').nth(1).textContent(), 'a');
  assert.equal(await page.locator('[data-testid^=banner]').count(), 0, 'no banner while all is well');
  assert.equal(await page.locator('body').getAttribute('data-state'), 'live');
  await page.screenshot({ path: path.join(shots, 'weft-cluster-up.png') });

  a.kill('SIGKILL');
  await link('down').waitFor({ timeout: 15000 });
  assert.equal(await link('up').count(), 0, 'no up line left between a and b');
  assert.equal(await page.locator('#map [data-link="a-b"] line.down').count(), 1, 'dashed grey');
  await row('a', 'down').waitFor({ timeout: 5000 });
  // Down longer than --max-replication-lag-s: the degraded banner names the link.
  const degraded = page.locator('[data-testid=banner-degraded]');
  await degraded.waitFor({ timeout: (MAX_LAG_S + 5) * 1000 });
  assert.match(await degraded.textContent(), /link b – a: down for [\d.]+ s/);
  await page.screenshot({ path: path.join(shots, 'weft-cluster-down.png') });
});

test('the page says so when its own node is unreachable', async () => {
  b.kill('SIGKILL');
  const banner = page.locator('[data-testid=banner-unreachable]');
  await banner.waitFor({ timeout: 10000 });
  assert.match(await banner.textContent(), /Node unreachable since/);
  assert.equal(await page.locator('body').getAttribute('data-state'), 'unreachable');
  // The last picture stays (dimmed) so the operator still sees what it was.
  assert.equal(await page.locator('#map [data-node="a"]').count(), 1);
  assert.deepEqual(pageErrors, []);
});
