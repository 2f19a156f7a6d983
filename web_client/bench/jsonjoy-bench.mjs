// The same workload as trace-bench.mjs's binary-frame metrics, run through
// json-joy (the fastest JavaScript peer in ../../shared/targets.md), so the
// two can be compared in one node on one machine:
//   mkdir -p /tmp/jj && (cd /tmp/jj && npm init -y >/dev/null && npm install json-joy@18.28)
//   node bench/jsonjoy-bench.mjs --json-joy /tmp/jj/node_modules/json-joy \
//        --trace ../../shared/traces/automerge-paper.json.gz [--runs 5]
// json-joy is not a dependency of weft: point --json-joy at any install.
// local_edit_and_encode_ms: each transaction's edits, then the patch a peer
// is sent (Patch.toBinary), as weft's local_edit_and_frame_ms; remote_apply_ms:
// every patch decoded (Patch.fromBinary) and applied to a fresh replica, as
// weft's remote_apply_frames_ms.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const tracePath = opt('--trace'), lib = opt('--json-joy'), runs = Number(opt('--runs', '5'));
if (!tracePath || !lib) {
  console.error('usage: node bench/jsonjoy-bench.mjs --json-joy DIR --trace FILE.json.gz [--runs N]');
  process.exit(2);
}
const { Model } = await import(pathToFileURL(path.join(lib, 'lib/json-crdt/index.js')).href);
const { Patch } = await import(pathToFileURL(path.join(lib, 'lib/json-crdt-patch/index.js')).href);
const version = JSON.parse(fs.readFileSync(path.join(lib, 'package.json'), 'utf8')).version;
const trace = JSON.parse(zlib.gunzipSync(fs.readFileSync(tracePath)).toString('utf8'));
const name = tracePath.split('/').pop().replace(/\.json(\.gz)?$/, '');
const machine = `${os.cpus()[0]?.model ?? 'unknown cpu'}, ${os.cpus().length} cores, node ${process.version}`;
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const print = (metric, value, unit) =>
  console.log(JSON.stringify({ trace: name, metric, value: Number(value.toPrecision(6)), unit, machine, library: `json-joy ${version}` }));

const local = [], remote = [];
let patches = [];
for (let run = 0; run < runs; run++) {
  const sid = 100000 + run;
  const model = Model.create(undefined, sid);
  model.api.root({ text: '' });
  const str = model.api.str(['text']);
  model.api.flush();  // the root, which the receiver starts from too
  patches = [];
  let t0 = performance.now();
  for (const txn of trace.txns) {
    for (const [pos, del, ins] of txn.patches) {
      if (del > 0) str.del(pos, del);
      if (ins.length > 0) str.ins(pos, ins);
    }
    patches.push(model.api.flush().toBinary());
  }
  local.push(performance.now() - t0);
  if (str.view() !== trace.endContent) throw new Error('local replay does not reproduce endContent');
  const start = Model.create(undefined, sid);
  start.api.root({ text: '' });
  const receiver = Model.fromBinary(start.toBinary()).fork(200000 + run);
  t0 = performance.now();
  for (const bytes of patches) receiver.applyPatch(Patch.fromBinary(bytes));
  remote.push(performance.now() - t0);
  if (receiver.view().text !== trace.endContent) throw new Error('remote apply does not reproduce endContent');
}
print('local_edit_and_encode_ms', median(local), 'ms');
print('remote_apply_ms', median(remote), 'ms');
print('patches', patches.length, 'count');
