// The astral-character index (@weft/codemirror, src/astral.js) against the full-text scans it
// replaces (utf16ToCodePoints / codePointsToUtf16), on random texts and
// random edits: every conversion and every edited index must equal the scan
// of the edited text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AstralIndex } from '../packages/codemirror/src/astral.js';
import { utf16ToCodePoints, codePointsToUtf16 } from '@weft/core';

// A small deterministic PRNG (xorshift32), so a failure replays.
function rng(seed) {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s % n;
  };
}
const PIECES = ['a', 'b', ' ', '\n', 'é', '中', '😀', '🎉', '𝔸'];
function randomText(r, n) {
  let t = '';
  for (let i = 0; i < n; i++) t += PIECES[r(PIECES.length)];
  return t;
}
const cpLength = (t) => [...t].length;
// A UTF-16 offset on a code point boundary.
const boundary = (t, r) => codePointsToUtf16(t, r(cpLength(t) + 1));

function checkConversions(idx, text) {
  assert.deepEqual([...idx.offsets], [...AstralIndex.of(text).offsets]);
  const n = cpLength(text);
  assert.equal(idx.utf16Length(n), text.length);
  for (let cp = 0; cp <= n; cp++) assert.equal(idx.toUtf16(cp), codePointsToUtf16(text, cp), `toUtf16(${cp}) of ${JSON.stringify(text)}`);
  for (let u = 0; u <= text.length; u++) assert.equal(idx.toCodePoints(u), utf16ToCodePoints(text, u), `toCodePoints(${u}) of ${JSON.stringify(text)}`);
}

test('conversions match the full-text scans, inside surrogate pairs too', () => {
  const r = rng(7);
  for (let round = 0; round < 200; round++) {
    const text = randomText(r, r(40));
    checkConversions(AstralIndex.of(text), text);
  }
  checkConversions(AstralIndex.of('😀'), '😀');
  checkConversions(AstralIndex.of(''), '');
});

test('edits keep the index equal to a scan of the edited text', () => {
  const r = rng(12345);
  for (let round = 0; round < 100; round++) {
    let text = randomText(r, r(30));
    let idx = AstralIndex.of(text);
    for (let step = 0; step < 30; step++) {
      const a = boundary(text, r), b = boundary(text, r);
      const from = Math.min(a, b), to = Math.max(a, b);
      const inserted = r(3) === 0 ? '' : randomText(r, 1 + r(4));
      const before = idx;
      const beforeOffsets = [...idx.offsets];
      idx = idx.edit(from, to, inserted);
      text = text.slice(0, from) + inserted + text.slice(to);
      checkConversions(idx, text);
      assert.deepEqual([...before.offsets], beforeOffsets, 'edit() must leave the old index unchanged');
    }
  }
});

test('an edit after every astral character returns the same index (no copy)', () => {
  const idx = AstralIndex.of('😀 hello');
  assert.equal(idx.edit(8, 8, 'x'), idx);
  assert.equal(idx.edit(3, 5, ''), idx);
  assert.notEqual(idx.edit(0, 0, 'x'), idx);
});
