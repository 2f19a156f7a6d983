// The WebAssembly and native builds must produce byte-identical ops, texts
// and snapshots for the same edits. The native side is tests/crosscheck
// (weft-crosscheck); WEFT_CROSSCHECK names it (default: ../build/tests/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { loadWeft } from '@weft/core';
import { native, rng } from './helpers.mjs';

// Makes random edits on three wasm replicas (with real lengths, so every
// edit is in range) and records them as a weft-crosscheck script, with the
// output lines weft-crosscheck must print for it.
function runWasm(weft, seed) {
  const rand = rng(seed);
  const pick = (n) => Math.floor(rand() * n);
  const alphabet = ['a', 'b', ' ', '\n', 'é', '中', '😀', '"', '\\', '\t'];
  const replicas = [11, 22, 9007199254740991];
  const docs = replicas.map((r) => new weft.Document(r));
  const script = replicas.map((r, k) => `new ${k} ${r}`);
  const out = [];
  const sync = (from, to) => {
    const changes = docs[to].applyOps(docs[from].opsSince(docs[to].version()));
    script.push(`sync ${from} ${to}`);
    out.push(`changes ${changes.length}`);
  };
  for (let i = 0; i < 300; i++) {
    const k = pick(3);
    const d = docs[k];
    const r = pick(10);
    if (r < 6 || d.length() === 0) {
      let t = '';
      for (let j = 0, m = 1 + pick(4); j < m; j++) t += alphabet[pick(alphabet.length)];
      const pos = pick(d.length() + 1);
      d.insert(pos, t);
      script.push(`ins ${k} ${pos} ${JSON.stringify(t)}`);
      out.push('op ' + d.takeOutgoing());
    } else if (r < 9) {
      const pos = pick(d.length());
      const n = 1 + pick(Math.min(4, d.length() - pos));
      d.erase(pos, n);
      script.push(`del ${k} ${pos} ${n}`);
      out.push('op ' + d.takeOutgoing());
    } else {
      sync(pick(3), k);
      script.push(`text ${k}`);
      out.push('text ' + JSON.stringify(d.text()));
    }
  }
  for (const [a, b] of [[0, 1], [1, 2], [2, 0], [0, 1], [1, 2]]) sync(a, b);
  for (let k = 0; k < 3; k++) {
    script.push(`text ${k}`, `snap ${k}`);
    out.push('text ' + JSON.stringify(docs[k].text()));
    out.push('snap ' + Buffer.from(docs[k].encodeSnapshot()).toString('hex'));
  }
  assert.equal(docs[0].text(), docs[1].text());
  assert.equal(docs[1].text(), docs[2].text());
  for (const d of docs) d.dispose();
  return { script, out };
}

test('wasm and native produce identical ops, texts and snapshots', async () => {
  assert.ok(fs.existsSync(native), `native cross-check tool missing: ${native} (build the C++ tests first)`);
  const weft = await loadWeft();
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const { script, out } = runWasm(weft, seed);
    const nativeOut = execFileSync(native, { input: script.join('\n') + '\n' }).toString().trimEnd().split('\n');
    assert.equal(nativeOut.length, out.length, `seed ${seed}: line count`);
    for (let i = 0; i < out.length; i++) {
      if (out[i].startsWith('text ')) {
        assert.equal(JSON.parse(nativeOut[i].slice(5)), JSON.parse(out[i].slice(5)), `seed ${seed} line ${i}`);
      } else {
        assert.equal(nativeOut[i], out[i], `seed ${seed} line ${i}`);
      }
    }
  }
});
