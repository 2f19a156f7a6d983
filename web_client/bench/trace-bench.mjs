// Replays an editing trace through the WebAssembly core in node and prints
// the same JSON lines as the native weft-trace-bench:
//   node bench/trace-bench.mjs --trace ../../shared/traces/automerge-paper.json.gz [--runs 5]
// Exits non-zero if the final text differs from the trace's endContent.
import fs from 'node:fs';
import os from 'node:os';
import zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { loadWeft } from '@weft/core';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const path = opt('--trace');
const runs = Number(opt('--runs', '5'));
if (!path) {
  console.error('usage: node bench/trace-bench.mjs --trace FILE.json.gz [--runs N]');
  process.exit(2);
}
const trace = JSON.parse(zlib.gunzipSync(fs.readFileSync(path)).toString('utf8'));
if (trace.kind === 'concurrent') {
  console.error('error: the wasm benchmark replays sequential traces only');
  process.exit(2);
}
const name = path.split('/').pop().replace(/\.json(\.gz)?$/, '');
const machine = `${os.cpus()[0]?.model ?? 'unknown cpu'}, ${os.cpus().length} cores, node ${process.version}`;
const weft = await loadWeft();

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const print = (metric, value, unit) =>
  console.log(JSON.stringify({ trace: name, metric, value: Number(value.toPrecision(6)), unit, machine, runtime: 'wasm' }));

// One JSON op per keystroke, for the remote-apply workload (not timed).
const perOp = [];
{
  const d = new weft.Document(1);
  for (const txn of trace.txns)
    for (const [pos, del, ins] of txn.patches) {
      if (del > 0) { d.erase(pos, del); perOp.push(d.takeOutgoing()); }
      if (ins.length > 0) { d.insert(pos, ins); perOp.push(d.takeOutgoing()); }
    }
  d.dispose();
}

// What the editor does instead (binary frames, as @weft/provider): after
// each transaction (a keystroke) the outgoing ops become one binary ops
// frame, and a receiving page applies each frame as the server relays it,
// change events on. The frames are made by the timed loop below.
const frames = [];
const local = [], toJson = [], remote = [], enc = [], dec = [], localFramed = [], remoteFramed = [];
let snapshot, memory = 0;
for (let run = 0; run < runs; run++) {
  const doc = new weft.Document(1);
  let t0 = performance.now();
  for (const txn of trace.txns)
    for (const [pos, del, ins] of txn.patches) {
      if (del > 0) doc.erase(pos, del);
      if (ins.length > 0) doc.insert(pos, ins);
    }
  local.push(performance.now() - t0); // the ops are made and queued in the outbox
  t0 = performance.now();
  doc.takeOutgoing(); // all 260k ops as one JSON text (an editor takes a few per flush)
  toJson.push(performance.now() - t0);
  if (doc.text() !== trace.endContent) {
    console.error('error: local replay does not reproduce endContent');
    process.exit(1);
  }
  const r = new weft.Document(2);
  t0 = performance.now();
  for (const op of perOp) r.applyOps(op);
  remote.push(performance.now() - t0);
  // The editor's path: edit, then encode the keystroke's frame to send.
  const typist = new weft.Document(4);
  frames.length = 0;
  t0 = performance.now();
  for (const txn of trace.txns) {
    for (const [pos, del, ins] of txn.patches) {
      if (del > 0) typist.erase(pos, del);
      if (ins.length > 0) typist.insert(pos, ins);
    }
    const frame = typist.takeOutgoingFrame(1, 1 << 20);
    if (frame) frames.push(frame);
  }
  localFramed.push(performance.now() - t0);
  const page = new weft.Document(5);
  t0 = performance.now();
  for (const frame of frames) page.applyFrame(frame, { ref: 1, changes: true });
  remoteFramed.push(performance.now() - t0);
  if (page.text() !== trace.endContent) {
    console.error('error: remote apply of frames does not reproduce endContent');
    process.exit(1);
  }
  typist.dispose();
  page.dispose();
  if (r.text() !== trace.endContent) {
    console.error('error: remote apply does not reproduce endContent');
    process.exit(1);
  }
  memory = doc.memoryUsage();
  t0 = performance.now();
  snapshot = doc.encodeSnapshot();
  enc.push(performance.now() - t0);
  const back = new weft.Document(3);
  t0 = performance.now();
  back.loadSnapshot(snapshot);
  dec.push(performance.now() - t0);
  if (back.text() !== trace.endContent) {
    console.error('error: snapshot round trip failed');
    process.exit(1);
  }
  for (const d of [doc, r, back]) d.dispose();
}
print('local_replay_ms', median(local), 'ms');
print('outbox_to_json_ms', median(toJson), 'ms');
print('remote_apply_ms', median(remote), 'ms');
print('local_edit_and_frame_ms', median(localFramed), 'ms');
print('remote_apply_frames_ms', median(remoteFramed), 'ms');
print('frames', frames.length, 'count');
print('snapshot_bytes', snapshot.length, 'bytes');
print('snapshot_encode_ms', median(enc), 'ms');
print('snapshot_decode_ms', median(dec), 'ms');
print('memory_bytes', memory, 'bytes');
print('ops', perOp.length, 'count');
