// The JavaScript API of the WebAssembly core.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadWeft, utf16ToCodePoints, codePointsToUtf16, randomReplicaId } from '@weft/core';

test('two replicas converge through JSON ops, with change events', async () => {
  const weft = await loadWeft();
  const a = new weft.Document(1), b = new weft.Document(2);
  a.insert(0, 'hello world');
  b.applyOps(a.takeOutgoing());
  a.insert(5, ',');          // concurrent edits
  b.erase(0, 1);
  b.insert(0, 'J');
  const fromA = a.takeOutgoing(), fromB = b.takeOutgoing();
  const changesAtB = b.applyOps(fromA);
  assert.deepEqual(changesAtB, [{ insert: ',', pos: 5 }]);
  a.applyOps(fromB);
  assert.equal(a.text(), 'Jello, world');
  assert.equal(b.text(), a.text());
  assert.deepEqual(a.version(), b.version());
  a.dispose(); b.dispose();
});

test('ops in any order are buffered until their dependencies arrive', async () => {
  const weft = await loadWeft();
  const a = new weft.Document(1), b = new weft.Document(2);
  a.insert(0, 'ab');
  const first = a.takeOutgoing();
  a.insert(2, 'cd');
  const second = a.takeOutgoing();
  assert.deepEqual(b.applyOps(second), []);
  assert.equal(b.pending(), 1);
  assert.deepEqual(b.applyOps(first), [{ insert: 'ab', pos: 0 }, { insert: 'cd', pos: 2 }]);
  assert.equal(b.text(), 'abcd');
});

test('sync by version vector sends exactly what is missing', async () => {
  const weft = await loadWeft();
  const a = new weft.Document(1), b = new weft.Document(2);
  for (let i = 0; i < 20; i++) a.insert(i, 'x');
  a.erase(3, 4);
  b.applyOps(a.opsSince([]));
  assert.equal(b.text(), a.text());
  assert.equal(a.opsSince(b.version()), '[]');
});

test('bad input is an error, not a crash', async () => {
  const weft = await loadWeft();
  const d = new weft.Document(1);
  assert.throws(() => d.insert(5, 'x'), RangeError);
  assert.throws(() => d.applyOps('{nope'), /JSON array/);
  assert.throws(() => d.applyOps('[{"kind":"insert","id":[3,0],"text":"x"}]'), /range/);
  assert.deepEqual(d.applyOps('[{"kind":"insert","id":[3,1],"left":[9,9],"text":"x"}]'), []);
  assert.equal(d.pending(), 1); // waits for (9,9), which may still come
  assert.throws(() => d.loadSnapshot(new Uint8Array([1, 2, 3])), /snapshot|short|magic|truncated/);
  d.insert(0, 'still fine');
  assert.equal(d.text(), 'still fine');
});

test('UTF-16 offsets convert to code points and back (emoji)', () => {
  const s = 'a😀b';
  assert.equal(utf16ToCodePoints(s, 3), 2);
  assert.equal(utf16ToCodePoints(s, 2), 1); // inside the pair: rounds down
  assert.equal(codePointsToUtf16(s, 2), 3);
  const r = randomReplicaId();
  assert.ok(Number.isSafeInteger(r) && r > 0);
});

test('ids map to positions: an insert returns its first id, positionOf follows it through remote edits', async () => {
  const weft = await loadWeft();
  const a = new weft.Document(7), b = new weft.Document(8);
  const mine = a.insert(0, 'héllo 😀');
  assert.deepEqual(mine, [7, 1]);
  b.applyOps(a.takeOutgoing());
  const theirs = b.insert(1, 'XY');
  assert.deepEqual(theirs, [8, 1]);
  a.applyOps(b.takeOutgoing());
  assert.equal(a.text(), 'hXYéllo 😀');
  assert.equal(a.positionOf([7, 2]), 3); // 'é', moved right by b's insert
  assert.equal(a.positionOf(theirs), 1);
  assert.equal(a.positionOf([7, 7]), 8); // the emoji: one code point
  assert.deepEqual(a.idAt(8), [7, 7]);
  assert.equal(a.idAt(a.length()), null);
  a.erase(0, 1);
  assert.equal(a.positionOf([7, 1]), -1, 'deleted');
  assert.equal(a.positionOf([9, 1]), -1, 'unknown replica');
  for (let p = 0; p < a.length(); p++) assert.equal(a.positionOf(a.idAt(p)), p);
  a.dispose();
  b.dispose();
});

test('applyOps with ids: true names the ops it applied, released buffered ops too, not waiting ones or duplicates', async () => {
  const weft = await loadWeft();
  const a = new weft.Document(7), b = new weft.Document(8), c = new weft.Document(9);
  a.insert(0, 'abc');
  const first = JSON.parse(a.takeOutgoing());
  a.insert(3, 'de');
  a.erase(0, 1);
  const second = JSON.parse(a.takeOutgoing());
  b.insert(0, 'Z');
  const fromB = b.takeOutgoing();

  // a's second batch before its first: it waits, so nothing is applied.
  let r = c.applyOps(second, { ids: true });
  assert.deepEqual(r, { changes: [], applied: [] });
  assert.ok(c.pending() > 0);
  // The first batch releases the second: counters 1-3 (abc), 4-5 (de), 6 (the erase).
  r = c.applyOps(first, { ids: true });
  assert.deepEqual(r.applied, [[7, 1, 6]]);
  assert.equal(c.text(), 'bcde');
  assert.equal(r.changes.length > 0, true);
  // A duplicate applies nothing; another replica's op is named by its own id.
  assert.deepEqual(c.applyOps(first, { ids: true }).applied, []);
  r = c.applyOps(fromB, { ids: true, changes: false });
  assert.deepEqual(r, { changes: [], applied: [[8, 1, 1]] });
  // Each applied insert id maps to where its character is now.
  assert.equal(c.positionOf([8, 1]), c.text().indexOf('Z'));
  assert.equal(c.positionOf([7, 4]), c.text().indexOf('d'));
  assert.equal(c.positionOf([7, 1]), -1, "'a' was erased");
  // Without the option the answer is the changes alone, as before.
  assert.ok(Array.isArray(new weft.Document(10).applyOps(first)));
  for (const d of [a, b, c]) d.dispose();
});

test('a disposed Document throws instead of touching freed memory', async () => {
  const weft = await loadWeft();
  const d = new weft.Document(3);
  d.insert(0, 'x');
  d.dispose();
  assert.throws(() => d.insert(0, 'y'), /disposed/);
  assert.throws(() => d.erase(0, 1), /disposed/);
  assert.throws(() => d.applyOps('[]'), /disposed/);
  assert.throws(() => d.applyFrame(new Uint8Array([2, 1, 0]), { ref: 1 }), /disposed/);
  assert.throws(() => d.takeOutgoingFrame(1, 100), /disposed/);
});

// Changes cross from wasm in a binary form (bindings.cc changes_binary,
// weft.js readAnswer): every kind of text, positions past one varint byte,
// erases, and the JSON answer of a refused op with its changes.
test('change events read from the binary answer match the edits, whatever the text', async () => {
  const weft = await loadWeft();
  const a = new weft.Document(1), b = new weft.Document(2), c = new weft.Document(3);
  const long = 'x'.repeat(300);  // positions above 127 and 16383 take two and three varint bytes
  a.insert(0, long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long + long);
  b.applyOps(a.takeOutgoing());
  const cases = [
    [() => a.insert(5, 'q'), [{ insert: 'q', pos: 5 }]],
    [() => a.insert(200, 'é'), [{ insert: 'é', pos: 200 }]],
    [() => a.insert(16500, '😀 ünï'), [{ insert: '😀 ünï', pos: 16500 }]],
    [() => a.insert(0, 'hello'), [{ insert: 'hello', pos: 0 }]],
    [() => a.erase(16000, 3), [{ erase: 3, pos: 16000 }]],
  ];
  for (const [edit, want] of cases) {
    edit();
    const ref = 9;
    const frame = a.takeOutgoingFrame(ref, 1 << 20);
    const json = a.opsSince(c.version());
    assert.deepEqual(b.applyFrame(frame, { ref }), { type: 'ops', changes: want });
    assert.deepEqual(c.applyOps(json).slice(-want.length), want);
  }
  assert.equal(b.text(), a.text());
  // Without change events: an empty list, nothing else.
  a.insert(1, 'z');
  assert.deepEqual(b.applyOps(a.takeOutgoing(), { changes: false }), []);
  // A refused op comes back as an Error that carries the changes of the rest.
  a.insert(0, 'ok');
  const ops = JSON.parse(a.takeOutgoing());
  const forged = { ...ops[0], text: 'XY' };  // its ids again, with other text: an id conflict
  assert.throws(() => b.applyOps(JSON.stringify([ops[0], forged])), (e) => {
    assert.deepEqual(e.changes, [{ insert: 'ok', pos: 0 }]);
    return true;
  });
  for (const d of [a, b, c]) d.dispose();
});
