// Replaying real editing traces through the WebAssembly core must reproduce
// their final text exactly, as the native build does (tests/core/trace_test.cc).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { loadWeft } from '@weft/core';

const traces = process.env.WEFT_TRACES_DIR ?? new URL('../../../shared/traces/', import.meta.url).pathname;
const ownData = new URL('../../tests/data/', import.meta.url).pathname;

function loadTrace(path) {
  return JSON.parse(zlib.gunzipSync(fs.readFileSync(path)).toString('utf8'));
}

function replayLocal(weft, trace) {
  const doc = new weft.Document(1);
  for (const txn of trace.txns) {
    for (const [pos, del, ins] of txn.patches) {
      if (del > 0) doc.erase(pos, del);
      if (ins.length > 0) doc.insert(pos, ins);
    }
  }
  return doc;
}

for (const [name, path] of [
  ['tiny-sequential', ownData + 'tiny-sequential.json.gz'],
  ['automerge-paper', traces + 'automerge-paper.json.gz'],
  ['seph-blog1', traces + 'seph-blog1.json.gz'],
]) {
  test(`replays ${name} to its endContent, locally and remotely`, async () => {
    assert.ok(fs.existsSync(path), `missing trace ${path}`);
    const weft = await loadWeft();
    const trace = loadTrace(path);
    const doc = replayLocal(weft, trace);
    assert.equal(doc.text(), trace.endContent);
    const ops = doc.takeOutgoing();
    const remote = new weft.Document(2);
    remote.applyOps(ops);
    assert.equal(remote.text(), trace.endContent);
    // Snapshot round trip.
    const restored = new weft.Document(3);
    restored.loadSnapshot(doc.encodeSnapshot());
    assert.equal(restored.text(), trace.endContent);
    for (const d of [doc, remote, restored]) d.dispose();
  });
}
