// Op lists over the server's limits (long offline work, a big paste) are
// sent in pieces the server accepts, and the pieces mean the same ops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadWeft } from '@weft/core';
import { chunkOps } from '../packages/provider/src/chunk.js';
import { connectedProvider } from './helpers.mjs';


test('chunkOps keeps every piece under the limits and the meaning intact', async () => {
  const weft = await loadWeft();
  const a = new weft.Document(11), b = new weft.Document(22);
  b.applyOps(JSON.parse((a.insert(0, 'x'.repeat(70000)), a.takeOutgoing())));
  b.insert(0, 'y'.repeat(200000) + 'é😀');
  for (let i = 0; i < 30000; ++i) b.erase(200002 + i, 1); // every other x: many targets
  const all = b.opsSince([]);
  const chunks = chunkOps(all, 64 * 1024, 1000);
  assert.ok(chunks.length > 5, `${chunks.length} chunks`);
  const c = new weft.Document(33);
  for (const ch of chunks) {
    assert.ok(ch.length <= 64 * 1024 + 4096, `chunk of ${ch.length} bytes`);
    const ops = JSON.parse(ch);
    assert.ok(ops.length <= 1000);
    c.applyOps(ops);
  }
  assert.equal(c.text(), b.text());
  assert.deepEqual(c.version(), b.version());
  assert.deepEqual(chunkOps('[]', 4096), []);
  assert.deepEqual(chunkOps('[{"kind":"insert","id":[1,1],"text":"a"}]', 4096), ['[{"kind":"insert","id":[1,1],"text":"a"}]']);
  for (const d of [a, b, c]) d.dispose?.();
});

test('after long offline work the provider resends in pieces, from the last ack', async () => {
  const weft = await loadWeft();
  const doc = new weft.Document(5);
  doc.insert(0, 'z'.repeat(300000));
  for (let i = 0; i < 20000; ++i) doc.erase(i, 1);
  const { provider, ws } = await connectedProvider(doc);
  ws.receive('{"type":"welcome","protocol":1,"server":"weft","max_message_bytes":65536}');
  // The server has ids 1..100 of ours (stored before a crash) but never
  // acknowledged them: they are sent again, to earn the ack.
  ws.receive('{"type":"sync","doc":"d","ops":[],"version":[[5,100]]}');
  const ops = ws.raw.filter((t) => t.startsWith('{"type":"ops"'));
  assert.ok(ops.length > 5, `${ops.length} ops messages`);
  for (const t of ops) assert.ok(t.length <= 32768 + 4096, `message of ${t.length} bytes`);
  const copy = new weft.Document(6);
  for (const t of ops) copy.applyOps(JSON.parse(t).ops);
  assert.equal(copy.text(), doc.text());
  assert.equal(Math.min(...ops.flatMap((t) => JSON.parse(t).ops.map((o) => o.id[1]))), 1);
  ws.receive('{"type":"ack","doc":"d","version":[[5,320000]]}');
  assert.equal(provider.acked, 320000);
  provider.destroy();
});
