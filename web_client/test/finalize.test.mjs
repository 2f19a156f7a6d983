// A Document dropped without dispose() gives its wasm memory back once it is
// garbage-collected (@weft/core, src/weft.js, FinalizationRegistry); dispose() at once,
// and only once. Runs in a child node with --expose-gc to force collection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

const child = `
import { loadWeft } from ${JSON.stringify(new URL('../packages/core/src/weft.js', import.meta.url).href)};
const weft = await loadWeft();
const base = weft.liveDocuments();
const d = new weft.Document(1);
d.dispose();
d.dispose();
const afterDispose = weft.liveDocuments() - base;
(() => { for (let i = 0; i < 200; i++) new weft.Document(i + 2).insert(0, 'x'.repeat(1000)); })();
const beforeGc = weft.liveDocuments() - base;
let afterGc = beforeGc;
for (let round = 0; round < 50 && afterGc > 0; round++) {
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 20));
  afterGc = weft.liveDocuments() - base;
}
console.log(JSON.stringify({ afterDispose, beforeGc, afterGc }));
`;

test('documents are released by dispose() and, when forgotten, by the garbage collector', () => {
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', child], { encoding: 'utf8', timeout: 60000 });
  const r = JSON.parse(out.trim().split('\n').pop());
  assert.equal(r.afterDispose, 0, 'dispose() releases the document (twice is harmless)');
  assert.equal(r.beforeGc, 200, 'forgotten documents are alive until collected');
  assert.equal(r.afterGc, 0, 'and released once collected');
});
