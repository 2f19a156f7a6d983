// WeftProvider against a scripted server (a fake WebSocket): the session of
// docs/protocol.md, and frames the C++ codec refuses (@weft/provider's messages.js,
// test/codec-crosscheck.test.mjs) are ignored whole, as weft::client does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadWeft } from '@weft/core';
import { FakeSocket, tick, connectedProvider } from './helpers.mjs';


test('a session, and frames the codec refuses change nothing', async () => {
  const weft = await loadWeft();
  const doc = new weft.Document(1);
  const remote = new weft.Document(2);
  const changes = [];
  const { provider, ws } = await connectedProvider(doc, { onRemoteChanges: (c) => changes.push(...c) });
  assert.deepEqual(ws.sent, [{ type: 'hello', protocol: 1, client: 'weft-web', binary: true }]);

  ws.receive('{"type":"welcome"}'); // no protocol: refused
  assert.equal(ws.sent.length, 1);
  ws.receive('{"type":"welcome","protocol":1,"server":"weft 0.1.0","max_message_bytes":1048576,"newer":{"field":[1]}}');
  assert.deepEqual(ws.sent[1], { type: 'open', doc: 'd', version: [] });

  remote.insert(0, 'hello');
  const ops = remote.takeOutgoing();
  const version = JSON.stringify(remote.version());
  // Each of these is refused by the codec, so the provider must not act on it.
  for (const bad of [
    `{"type":"sync","doc":"d","ops":${ops}}`, // no version
    `{"type":"sync","doc":"d","ops":${ops},"version":${version},"session":"1"}`, // a known field of the wrong type
    `{"type":"sync","doc":"x","doc":"d","ops":${ops},"version":${version}}`, // doc given twice
    `{"type":"sync","doc":"d","ops":${ops.replace('"text"', '"note":1,"text"')},"version":${version}}`, // unknown op field
    `{"type":"sync","doc":"d","ops":${ops},"version":${version},"ref":1.0}`, // not an integer
  ]) {
    ws.receive(bad);
    assert.equal(doc.text(), '', bad);
    assert.equal(provider.status, 'syncing', bad);
  }
  ws.receive(`{"type":"sync","doc":"d","ops":${ops},"version":${version}}`);
  assert.equal(doc.text(), 'hello');
  assert.equal(provider.status, 'online');
  assert.deepEqual(changes, [{ insert: 'hello', pos: 0 }]);

  remote.insert(5, '!');
  const more = remote.takeOutgoing();
  ws.receive(`{"type":"ops","doc":"d","ops":${more},"version":5}`); // a known field, ignored by ops, of the wrong type: refused
  ws.receive(`{"type":"ops","doc":"e","ops":${more}}`); // another document
  assert.equal(doc.text(), 'hello');
  ws.receive(`{"type":"ops","doc":"d","ops":${more}}`);
  assert.equal(doc.text(), 'hello!');

  ws.receive('{"type":"presence","doc":"d","session":"7","state":{"name":"Ada"}}'); // session not an integer
  ws.receive('{"type":"presence","doc":"d","state":{"name":"Ada"}}'); // no session
  assert.equal(provider.presence.size, 0);
  ws.receive('{"type":"presence","doc":"d","session":7,"state":{"name":"Ada"}}');
  ws.receive('{"type":"presence","doc":"d","session":18446744073709551615,"state":{"name":"Bo"}}');
  assert.deepEqual([...provider.presence], [[7, { name: 'Ada' }], [18446744073709551615n, { name: 'Bo' }]]);
  ws.receive('{"type":"presence","doc":"d","session":7,"state":null}');
  assert.deepEqual([...provider.presence.keys()], [18446744073709551615n]);

  const errors = [];
  provider.addEventListener('servererror', (e) => errors.push(e.detail));
  const warn = console.warn;
  console.warn = () => {};
  try {
    ws.receive('{"type":"error","message":"no code"}'); // refused
    ws.receive('{"type":"error","code":"forbidden","message":"read only","doc":"d"}');
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(errors, [{ type: 'error', code: 'forbidden', message: 'read only', doc: 'd' }]);

  provider.destroy();
  doc.dispose();
  remote.dispose();
});

test('an op the replica refuses neither loses the others nor leaves the provider syncing', async () => {
  const weft = await loadWeft();
  const a = new weft.Document(1), b = new weft.Document(2);
  a.insert(0, 'abc');
  const good = JSON.parse(a.takeOutgoing());
  b.applyOps(good);
  b.insert(0, 'x');
  b.erase(0, 1); // (2,2) is an erase: a known id that is no character
  const setup = JSON.parse(b.opsSince([]));
  // Valid JSON and well formed, so the codec passes it; the core refuses it,
  // as its right origin is no character.
  const bad = { kind: 'insert', id: [3, 1], left: [1, 3], right: [2, 2], text: 'Z' };
  a.insert(3, 'd');
  const after = JSON.parse(a.takeOutgoing());

  const direct = new weft.Document(7);
  try {
    direct.applyOps([...setup, bad, ...after]);
    assert.fail('applyOps should throw');
  } catch (e) {
    assert.match(e.message, /origin|character/);
    // 'x' came as a tombstone (no visible change); the op after the bad one applied.
    assert.deepEqual(e.changes, [{ insert: 'abc', pos: 0 }, { insert: 'd', pos: 3 }]);
  }
  assert.equal(direct.text(), 'abcd');

  const doc = new weft.Document(9);
  const seen = [];
  const { provider, ws } = await connectedProvider(doc, { onRemoteChanges: (c) => seen.push(...c) });
  const warn = console.warn;
  console.warn = () => {};
  try {
    ws.receive('{"type":"welcome","protocol":1,"server":"weft","max_message_bytes":1048576}');
    ws.receive(JSON.stringify({ type: 'sync', doc: 'd', ops: [...setup, bad], version: b.version() }));
    assert.equal(provider.status, 'online');
    assert.equal(doc.text(), 'abc');
    assert.deepEqual(seen, [{ insert: 'abc', pos: 0 }]);
  } finally {
    console.warn = warn;
    provider.destroy();
  }
});

test('binary frames: live ops and acks in, keystrokes out, JSON when a frame would be too large', async () => {
  const weft = await loadWeft();
  const doc = new weft.Document(1), remote = new weft.Document(2);
  const changes = [];
  const { provider, ws } = await connectedProvider(doc, { onRemoteChanges: (c) => changes.push(...c) });
  const warn = console.warn;
  console.warn = () => {};
  try {
    assert.equal(ws.binaryType, 'arraybuffer');
    ws.receive('{"type":"welcome","protocol":1,"server":"weft","max_message_bytes":4096,"binary":true}');
    remote.insert(0, 'hi');
    const hi = remote.takeOutgoingFrame(3, 4096);
    ws.receive(hi.slice().buffer); // before the sync named the document: ignored
    assert.equal(doc.text(), '');
    ws.receive('{"type":"sync","doc":"d","ops":[],"version":[],"ref":3}');
    assert.equal(provider.status, 'online');
    ws.receive(hi.slice().buffer);
    assert.equal(doc.text(), 'hi');
    assert.deepEqual(changes, [{ insert: 'hi', pos: 0 }]);

    remote.insert(2, '!');
    ws.receive(remote.takeOutgoingFrame(4, 4096).buffer); // another document's number: ignored
    ws.receive(new Uint8Array([1, 3, 0xff, 0xff]).buffer); // the codec refuses it: ignored
    ws.receive(new Uint8Array([7, 3]).buffer); // an unknown kind: ignored
    assert.equal(doc.text(), 'hi');

    // A keystroke goes out as one binary frame for document 3.
    const before = ws.sent.length;
    doc.insert(2, '?');
    provider.flush();
    await tick();
    assert.equal(ws.sent.length, before + 1);
    const out = ws.sent[before];
    assert.ok(out instanceof Uint8Array);
    assert.deepEqual([...out.slice(0, 2)], [1, 3]);
    assert.equal(remote.applyFrame(out, { ref: 3 }).type, 'ops');
    assert.equal(remote.text(), 'hi?!');

    // An ack frame for this replica.
    const acked = [];
    provider.addEventListener('acked', (e) => acked.push(e.detail));
    ws.receive(new Uint8Array([2, 3, 2, 1, 1, 2, 3]).buffer); // version [[1,1],[2,3]]
    assert.equal(provider.acked, 1);
    assert.deepEqual(acked, [1]);

    // A paste larger than a frame may be: JSON ops messages, cut to the budget.
    doc.insert(0, 'x'.repeat(5000));
    provider.flush();
    await tick();
    const json = ws.raw.slice(before + 1).filter((m) => typeof m === 'string');
    assert.ok(json.length >= 2, 'cut into several messages');
    for (const m of json) {
      assert.ok(m.length <= 2048 + 100, `message of ${m.length} bytes`);
      assert.equal(JSON.parse(m).type, 'ops');
    }

    // A new connection forgets the number until its own sync.
    ws.close();
    await new Promise((r) => setTimeout(r, 700));
    const ws2 = FakeSocket.last;
    assert.notEqual(ws2, ws);
    remote.insert(0, '>');
    const again = remote.takeOutgoingFrame(3, 4096);
    ws2.receive(again.slice().buffer);
    assert.ok(!doc.text().includes('>'), 'ignored before the new sync');
  } finally {
    console.warn = warn;
    provider.destroy();
  }
});

test('without binary frames (binary: false, or a server that does not confirm them) everything is JSON', async () => {
  const weft = await loadWeft();
  for (const [wanted, confirmed] of [[false, false], [true, false]]) {
    const doc = new weft.Document(1);
    const { provider, ws } = await connectedProvider(doc, { binary: wanted });
    assert.equal(ws.sent[0].binary, wanted ? true : undefined);
    ws.receive(`{"type":"welcome","protocol":1,"server":"weft","max_message_bytes":4096${confirmed ? ',"binary":true' : ''}}`);
    ws.receive('{"type":"sync","doc":"d","ops":[],"version":[],"ref":3}');
    doc.insert(0, 'a');
    provider.flush();
    await tick();
    const last = ws.raw[ws.raw.length - 1];
    assert.equal(typeof last, 'string');
    assert.equal(JSON.parse(last).type, 'ops');
    provider.destroy();
    doc.dispose();
  }
});

test('a view that throws on remote changes does not stop the sync', async () => {
  const weft = await loadWeft();
  const doc = new weft.Document(1), remote = new weft.Document(2);
  doc.insert(0, 'offline edit');
  const { provider, ws } = await connectedProvider(doc, { onRemoteChanges: () => { throw new RangeError('view out of step'); } });
  const error = console.error;
  const logged = [];
  console.error = (...a) => logged.push(a.join(' '));
  try {
    ws.receive('{"type":"welcome","protocol":1,"server":"weft","max_message_bytes":1048576}');
    remote.insert(0, 'hello');
    ws.receive(JSON.stringify({ type: 'sync', doc: 'd', ops: JSON.parse(remote.takeOutgoing()), version: remote.version() }));
    assert.equal(provider.status, 'online');
    assert.ok(doc.text().includes('hello'));
    const sent = ws.sent.filter((m) => m.type === 'ops').flatMap((m) => m.ops);
    assert.ok(sent.some((op) => op.text === 'offline edit'), 'the offline edit was sent after the sync');
    assert.ok(logged.some((l) => l.includes('onRemoteChanges threw')));
  } finally {
    console.error = error;
    provider.destroy();
  }
});

/** A snapshot frame as weft-server sends it: kind 3, varint ref, varint n, doc id, snapshot. */
function snapshotFrame(ref, docId, snapshot) {
  const id = new TextEncoder().encode(docId);
  const head = [3];
  for (const v of [ref, id.length]) {
    let x = v;
    do { head.push((x & 0x7f) | (x >= 0x80 ? 0x80 : 0)); x = Math.floor(x / 128); } while (x > 0);
  }
  const out = new Uint8Array(head.length + id.length + snapshot.length);
  out.set(head, 0);
  out.set(id, head.length);
  out.set(snapshot, head.length + id.length);
  return out;
}

test('an empty replica opens from a snapshot frame; one that is not empty, or a bad snapshot, gets the history as ops', async () => {
  const weft = await loadWeft();
  const server = new weft.Document(9);
  server.insert(0, 'the whole document 🙂');
  server.erase(0, 4);
  const snapshot = server.encodeSnapshot();
  const welcome = '{"type":"welcome","protocol":1,"server":"weft","max_message_bytes":1048576,"binary":true,"snapshot":true}';
  const warn = console.warn;
  console.warn = () => {};
  try {
    // Empty: asks, loads the frame (one change), then the sync without ops.
    const doc = new weft.Document(1);
    const changes = [];
    const { provider, ws } = await connectedProvider(doc, { onRemoteChanges: (c) => changes.push(...c) });
    ws.receive(welcome);
    assert.deepEqual(ws.sent[1], { type: 'open', doc: 'd', version: [], snapshot: true });
    ws.receive(snapshotFrame(5, 'other', snapshot).buffer); // another document: ignored
    assert.equal(doc.text(), '');
    ws.receive(snapshotFrame(5, 'd', snapshot).buffer);
    assert.equal(doc.text(), 'whole document 🙂');
    assert.deepEqual(changes, [{ insert: 'whole document 🙂', pos: 0 }]);
    assert.equal(provider.snapshotsLoaded, 1);
    ws.receive(JSON.stringify({ type: 'sync', doc: 'd', ops: [], version: server.version(), ref: 5 }));
    assert.equal(provider.status, 'online');
    assert.deepEqual(doc.version(), server.version());
    // The replica edits and merges on from the snapshot's state.
    doc.insert(doc.length(), '!');
    server.applyOps(doc.takeOutgoing());
    assert.equal(server.text(), 'whole document 🙂!');
    ws.receive(snapshotFrame(5, 'd', snapshot).buffer); // not asked for any more: ignored
    assert.equal(provider.snapshotsLoaded, 1);
    provider.destroy();

    // A replica with ops of its own does not ask.
    const mine = new weft.Document(2);
    mine.insert(0, 'x');
    const second = await connectedProvider(mine);
    second.ws.receive(welcome);
    assert.deepEqual(second.ws.sent[1], { type: 'open', doc: 'd', version: [[2, 1]] });
    second.provider.destroy();
    // And the core would not load one over its ops.
    assert.throws(() => mine.applyFrame(snapshotFrame(5, 'd', snapshot), { ref: 5 }), (e) => e.snapshot === true);
    assert.equal(mine.text(), 'x');

    // A server that does not offer snapshots (an older one refuses the field) is not asked.
    const older = await connectedProvider(new weft.Document(5));
    older.ws.receive('{"type":"welcome","protocol":1,"server":"weft","max_message_bytes":1048576,"binary":true}');
    assert.deepEqual(older.ws.sent[1], { type: 'open', doc: 'd', version: [] });
    older.provider.destroy();

    // A snapshot asked for that never loads (a frame that cannot be read is
    // ignored): its sync, without ops, makes the provider open again.
    const lost = new weft.Document(6);
    const fourth = await connectedProvider(lost);
    fourth.ws.receive(welcome);
    fourth.ws.receive(new Uint8Array([3, 5, 0x80]).buffer); // a cut header: ignored
    fourth.ws.receive(JSON.stringify({ type: 'sync', doc: 'd', ops: [], version: server.version(), ref: 5 }));
    assert.equal(fourth.provider.status, 'syncing');
    assert.deepEqual(fourth.ws.sent[2], { type: 'open', doc: 'd', version: [] });
    fourth.ws.receive(JSON.stringify({ type: 'sync', doc: 'd', ops: JSON.parse(server.opsSince([])), version: server.version(), ref: 5 }));
    assert.equal(fourth.provider.status, 'online');
    assert.equal(lost.text(), server.text());
    fourth.provider.destroy();

    // Without binary frames there is no snapshot frame to ask for.
    const json = await connectedProvider(new weft.Document(3), { binary: false });
    json.ws.receive('{"type":"welcome","protocol":1,"server":"weft","max_message_bytes":1048576}');
    assert.equal(json.ws.sent[1].snapshot, undefined);
    json.provider.destroy();

    // A corrupt snapshot changes nothing: the provider opens again without
    // asking, skips the first sync (it has no ops) and syncs from the second.
    const fresh = new weft.Document(4);
    const third = await connectedProvider(fresh);
    third.ws.receive(welcome);
    const bad = snapshot.slice();
    bad[bad.length - 1] ^= 0xff;
    third.ws.receive(snapshotFrame(6, 'd', bad).buffer);
    assert.equal(fresh.text(), '');
    assert.deepEqual(third.ws.sent[2], { type: 'open', doc: 'd', version: [] });
    third.ws.receive(JSON.stringify({ type: 'sync', doc: 'd', ops: [], version: server.version(), ref: 6 }));
    assert.equal(third.provider.status, 'syncing', 'the first sync is skipped');
    third.ws.receive(JSON.stringify({ type: 'sync', doc: 'd', ops: JSON.parse(server.opsSince([])), version: server.version(), ref: 6 }));
    assert.equal(third.provider.status, 'online');
    assert.equal(fresh.text(), server.text());
    third.provider.destroy();
  } finally {
    console.warn = warn;
  }
});
