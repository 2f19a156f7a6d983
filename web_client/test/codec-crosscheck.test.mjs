// The browser decodes the server's messages in JavaScript (@weft/provider, src/messages.js);
// weft::client decodes them with the C++ codec (weft::protocol::decoder::
// server). Both get the same frames — every message type, edge cases,
// variants of every field and seeded random mutations — and must agree on
// accepting or refusing each and on the values decoded; on frames that are
// JSON (as JSON.parse sees it) they must also give the same error kind. The
// native side is `weft-crosscheck`'s "server HEX" command; WEFT_CROSSCHECK
// names it (default: ../build/tests/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { decodeServerMessage, MessageError } from '../packages/provider/src/messages.js';
import { native, rng } from './helpers.mjs';

// ---- frames ------------------------------------------------------------------

// Messages as [field, JSON text of its value] pairs, so fields can be
// dropped, repeated and replaced.
const OPS = '[{"kind":"insert","id":[7,12],"left":[7,11],"right":[3,4],"text":"hi"},'
  + '{"kind":"tombstone","id":[7,1],"left":[3,2],"count":5},{"kind":"erase","id":[7,14],"targets":[[3,5,2],[7,12,1]]}]';
const UNICODE_OPS = '[{"kind":"insert","id":[9007199254740991,4294967294],"left":null,"right":null,'
  + '"text":"é中😀\\n\\"\\\\\\/\\b\\f\\r\\t\\u0000\\u00e9\\ud83d\\ude00\u007f"},'
  + '{"kind":"tombstone","id":[1,1],"count":4294967294},{"kind":"erase","id":[2,3],"targets":[[9007199254740991,4294967294,4294967294]]}]';
const BASES = [
  [['type', '"welcome"'], ['protocol', '1'], ['server', '"weft 0.1.0"'], ['max_message_bytes', '1048576']],
  [['type', '"welcome"'], ['protocol', '1'], ['server', '"weft 0.1.0"'], ['max_message_bytes', '1048576'], ['binary', 'true']],
  [['type', '"sync"'], ['doc', '"notes"'], ['ops', OPS], ['version', '[[7,14],[3,44]]']],
  [['type', '"sync"'], ['doc', '"notes"'], ['ops', '[]'], ['version', '[[7,12]]'], ['ref', '3']],
  [['type', '"ops"'], ['doc', '"notes"'], ['ops', OPS]],
  [['type', '"ops"'], ['doc', '"A-z.0_9~"'], ['ops', UNICODE_OPS]],
  [['type', '"ack"'], ['doc', '"notes"'], ['version', '[[7,13]]']],
  [['type', '"replicated"'], ['doc', '"notes"'], ['version', '[[7,13]]'], ['regions', '2']],
  [['type', '"presence"'], ['doc', '"notes"'], ['session', '17'],
    ['state', '{"name":"Ada \\"é\\" 😀","color":"#e91e63","anchor":4,"head":9,"x":[1.5,-2,null,true,{"y":"\\u00e9"}]}']],
  [['type', '"presence"'], ['doc', '"notes"'], ['session', '17'], ['state', 'null']],
  [['type', '"closed"'], ['doc', '"notes"']],
  [['type', '"pong"']],
  [['type', '"error"'], ['code', '"invalid_op"'], ['message', '"invalid operation: insert (7,13) has origins ..."'], ['doc', '"notes"']],
  [['type', '"error"'], ['code', '"a_newer_code"'], ['message', '"from a newer server"']],
];
const frameOf = (pairs, sep = ',') => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(sep)}}`;

// Values that stand in for a field's, of every JSON type and at every edge.
const VALUES = [
  'null', 'true', 'false', '0', '-0', '1', '-1', '1.0', '1e2', '0.5', '-0.0', '01', '1.', '.5', '+1',
  '9007199254740991', '9007199254740992', '9007199254740993', '4294967294', '4294967295',
  '18446744073709551615', '18446744073709551616', '-9223372036854775808', '-9223372036854775809',
  '1e400', '-1e400', '1e-400', 'NaN', 'Infinity', '""', '"x"', '"notes"', '"welcome"', '"sync"', '"ops"',
  '"ack"', '"presence"', '"closed"', '"pong"', '"error"', '"a b"', `"${'a'.repeat(128)}"`, `"${'a'.repeat(129)}"`,
  '"é"', '"\\u00e9"', '"\\ud83d\\ude00"', '"\\ud800"', '"\\udc00"', '"\\ud800\\ud800"', '"\\ud800x"', '"\\x"',
  '"\\u12"', '"tab\\there"', '[]', '[[]]', '[1]', '[[1,1]]', '[[7,12],[3,44]]', '[[1,0]]', '[[0,1]]', '[[1,1],[1,2]]',
  '[[1,1,1]]', '[[-0,1]]', '[[1.0,1]]', '[[9007199254740991,4294967294]]', '[[9007199254740992,1]]', '[1,]',
  '[{"kind":"insert","id":[1,1],"text":"a"}]', '{}', '{"a":1}', '{"a":1,"a":2}', '{"__proto__":{"a":1}}', '{,}',
  'tru', 'nul', '"unterminated', '[[[[[[[[]]]]]]]]',
];

// Ops, field by field, for variants inside an op.
const OP_BASES = [
  [['kind', '"insert"'], ['id', '[7,12]'], ['left', '[7,11]'], ['right', '[3,4]'], ['text', '"hi"']],
  [['kind', '"tombstone"'], ['id', '[7,1]'], ['left', '[3,2]'], ['right', 'null'], ['count', '5']],
  [['kind', '"erase"'], ['id', '[7,14]'], ['targets', '[[3,5,2],[7,12,1]]']],
];
const OP_VALUES = [
  'null', '0', '-0', '1', '5', '1.0', '1e1', '01', '-1', '4294967294', '4294967295', '"x"', '""', '"insert"',
  '"tombstone"', '"erase"', '"😀"', '"\\ud800"', '[7,12]', '[7,0]', '[0,1]', '[-0,1]', '[7, 12 ]', '[7,12,1]', '[7]',
  '[9007199254740991,4294967294]', '[9007199254740992,1]', '[18446744073709551616,1]', '[1.0,1]', '[]', '[[]]',
  '[[3,5,2]]', '[[3,5,0]]', '[[3,0,2]]', '[[3,5]]', '[[9007199254740992,1,1]]', '[[1,1,4294967295]]', '{}', 'true',
];

const deep = (n) => '['.repeat(n) + ']'.repeat(n);

const EDGES = [
  '', ' ', 'null', '[]', '"pong"', '1', 'true', '{}', '[{"type":"pong"}]', '{"type":"pong"}\n', '\t\r\n {"type":"pong"} \n',
  '{"type":"pong"} x', '{"type":"pong"}{}', '{"type":"pong"}\u0000', '{"type":"pong",}', '{"type":"pong"', '{"type":"pong"}}',
  '\ufeff{"type":"pong"}', '{"type":"PONG"}', '{"type":"pong","type":"pong"}', '{"type":"pong","zz":1,"zz":2}',
  '{"type":"pong","id":1}', '{"typ\\u0065":"p\\u006fng"}', '{"type":"pong","":1}', '{"type":1}', '{"type":null}',
  '{"Type":"pong"}', '{type:"pong"}', "{'type':'pong'}", '{"type":"pong"/*x*/}', '{"type":"pong","zz":0x10}',
  '{"type":"pong","zz":"\u0001"}', '{"type":"pong","zz":"\u007f"}', '{"type":"pong","zz":"\\u0000"}',
  '{"type":"pong","zz":"😀"}', '{"type":"pong","😀":"😀"}', '{"type":"pong","zz":"\\ud83d\\ude00"}',
  `{"type":"pong","zz":${deep(1022)}}`, `{"type":"pong","zz":${deep(1023)}}`, `{"type":"pong","zz":${deep(1024)}}`,
  `{"type":"presence","doc":"a","session":1,"state":{"a":${deep(1022)}}}`,
  `{"type":"presence","doc":"a","session":1,"state":{"a":${deep(1023)}}}`,
  `{"type":"presence","doc":"a","session":1,"state":{"a":${deep(1024)}},"zz":0}`,
  `{"type":"presence","doc":"a","session":1,"state":{"a":${deep(1022)}},"zz":0}`,
  `{"type":"presence","doc":"a","session":1,"state":{"a":${deep(1022)}},"id":0}`,
  `{"type":"ops","doc":"a","ops":${deep(1030)}}`,
  '{"type":"presence","doc":"a","session":1,"state":{"a":-0,"b":-0.0,"c":1e-400,"d":12345678901234567890,"e":1.7976931348623157e308}}',
  '{"type":"presence","doc":"a","session":1,"state":{"e":1.7976931348623159e308}}',
  '{"type":"presence","doc":"a","session":1,"state":{"a":[1E400]}}', '{"type":"pong","zz":1.7976931348623158e308}',
  '{"type":"presence","doc":"a","session":1,"state":{"a":-1e-400,"b":4.9e-324,"c":2.4703282292062328e-324,"d":0.1000000000000000055511151231257827}}',
  '{"type":"presence","doc":"a","session":1,"state":{"e":-9223372036854775809}}',
  '{"type":"presence","doc":"a","session":1,"state":{"a":1,"a":{"b":2},"a":[3]}}',
  '{"type":"presence","doc":"a","session":1,"state":{"__proto__":{"polluted":1},"constructor":1}}',
  '{"type":"presence","doc":"a","session":1,"state":{"\\u0000":"\\u001f","é":"\\/"}}',
  '{"type":"presence","doc":"a","session":18446744073709551615,"state":{}}',
  '{"type":"presence","doc":"a","session":9007199254740993,"state":{}}',
  `{"type":"presence","doc":"a","session":1,"state":{"big":"${'x'.repeat(1000000)}"}}`,
  `{"type":"presence","doc":"a","session":1,"state":{"big":"${'x'.repeat(1100000)}"}}`,
  `{"type":"presence","doc":"a","session":1,"state":{"big":"${'😀'.repeat(270000)}"}}`,
  `{"type":"presence","doc":"a","session":1,"state":{"big":${' '.repeat(5000000)}1}}`,
  `{"type":"ops","doc":"a","ops":[${Array.from({ length: 10001 }, (_, i) => `{"kind":"insert","id":[1,${i + 1}],"text":"x"}`).join(',')}]}`,
  `{"type":"ack","doc":"a","version":[${Array.from({ length: 1000 }, (_, i) => `[${1000 - i},${i + 1}]`).join(',')}]}`,
  '{"type":"sync","doc":"a","ops":[],"version":null}', '{"type":"sync","doc":"a","ops":[]}',
  '{"type":"sync","doc":"a","ops":null,"version":[]}', '{"type":"ack","doc":"a","version":null}',
  '{"type":"sync","doc":"a","ops":[],"version":[],"ref":null}', '{"type":"ops","doc":"a","ops":[ ] }',
  '{"type":"ops","doc":"a","ops":[{}]}', '{"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1],"text":"a","x":1}]}',
  '{"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1],"text":"a"},]}', '{"type":"ops","doc":"a","ops":[1]}',
  '{"type":"ops","doc":"a","ops":[{"kind":"insert","kind":"insert","id":[1,1],"text":"a"}]}',
  '{"type":"ops","doc":"a","ops":[{"kin\\u0064":"insert","id":[1,1],"text":"\\ud83d\\ude00"}]}',
  '{"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1],"text":"a","left":null,"left":null}]}',
  '{"type":"ops","doc":"a","ops":[{"kind":"erase","id":[1,1],"targets":[[1,1,1]],"left":null}]}',
  '{"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1],"text":"a","left":nullx}]}',
  '{"type":"ops","doc":"a","ops":[{"kind":"insert","id":[ 1 , 1 ],"text":"a"}]\t}',
  '{"type":"welcome","protocol":1}', '{"type":"welcome","protocol":2,"zz":{"a":[1,2]}}', '{"type":"welcome"}',
  '{"type":"welcome","protocol":1,"binary":false,"doc":"a"}', '{"type":"welcome","protocol":1,"server":null}',
  '{"type":"error","code":"bad_json"}', '{"type":"error","code":"x","doc":"not a doc id!"}', '{"type":"error","message":"x"}',
  '{"type":"error","code":"x","session":1}', '{"type":"closed","doc":"a","ops":[]}', '{"type":"closed","doc":"a","id":{}}',
  '{"type":"closed"}', '{"type":"closed","doc":""}', `{"type":"closed","doc":"${'a'.repeat(129)}"}`,
  '{"type":"closed","doc":"a b"}', '{"type":"closed","doc":"é"}', '{"type":"unknown","doc":"a"}', '{"type":"unknown","doc":5}',
  '{"type":"unknown","doc":"!","ops":[1,]}', '{"type":"ops","doc":"!","ops":[1,]}', '{"type":"ops","doc":"!","ops":5}',
  '{"type":"hello","protocol":1}', '{"type":"open","doc":"a"}', '{"type":"ping"}',
];

// Every base; each with a field dropped, repeated, replaced by every value,
// or joined by an unknown field or a known field it lacks; ops likewise,
// field by field.
function structuredFrames() {
  const out = [];
  const known = ['type', 'doc', 'version', 'ops', 'state', 'protocol', 'client', 'token', 'session', 'server',
    'max_message_bytes', 'code', 'message', 'id', 'binary', 'ref'];
  for (const base of BASES) {
    out.push(frameOf(base), frameOf(base, ' ,\n'), frameOf([...base].reverse()));
    for (let i = 0; i < base.length; i++) {
      out.push(frameOf(base.filter((_, j) => j !== i)));
      out.push(frameOf([...base, base[i]]));
      for (const v of VALUES) out.push(frameOf(base.map((p, j) => (j === i ? [p[0], v] : p))));
    }
    for (const v of VALUES) out.push(frameOf([...base, ['zz', v]]), frameOf([['zz', v], ...base]));
    for (const k of known) if (!base.some(([b]) => b === k)) out.push(frameOf([...base, [k, VALUES[3]]]));
  }
  for (const op of OP_BASES) {
    const opsFrame = (o) => frameOf([['type', '"ops"'], ['doc', '"d"'], ['ops', `[${frameOf(o)}]`]]);
    out.push(opsFrame(op));
    for (let i = 0; i < op.length; i++) {
      out.push(opsFrame(op.filter((_, j) => j !== i)), opsFrame([...op, op[i]]));
      for (const v of OP_VALUES) out.push(opsFrame(op.map((p, j) => (j === i ? [p[0], v] : p))));
    }
    for (const k of ['kind', 'id', 'left', 'right', 'text', 'count', 'targets', 'zz'])
      if (!op.some(([b]) => b === k)) for (const v of OP_VALUES) out.push(opsFrame([...op, [k, v]]));
  }
  return out;
}

// Random edits of valid frames, made on code points (a WebSocket text frame
// is UTF-8, so a frame never holds half a surrogate pair).
const TOKENS = ['{', '}', '[', ']', '"', ':', ',', '\\', '0', '1', '9', '-', '+', '.', 'e', 'E', ' ', '\n', '\t', 't',
  'n', 'u', 'l', 'x', 'é', '😀', '\u0000', '\u001f', '\\u0000', '\\ud800', '\\udc00', '\\"', '\\n', 'null', 'true',
  '1e400', '-0', '18446744073709551616', '9007199254740993', '"zz":1,', '"id":[],', '"type":"pong",', '"doc":"a",',
  '"session":1,', '"ops":[],', '"version":[[1,1]],', '"state":{},'];
const EDGE_NUMBERS = ['0', '-0', '01', '1.0', '1e3', '4294967295', '9007199254740992', '18446744073709551616', '-1'];
function mutate(frame, rand) {
  const pick = (n) => Math.floor(rand() * n);
  let cps = Array.from(frame);
  for (let k = 0, n = 1 + pick(3); k < n; k++) {
    const at = pick(cps.length + 1);
    switch (pick(7)) {
      case 0: cps.splice(at, 1); break;
      case 1: cps.splice(at, 0, ...Array.from(TOKENS[pick(TOKENS.length)])); break;
      case 2: cps.splice(at, 1, ...Array.from(TOKENS[pick(TOKENS.length)])); break;
      case 3: { const from = pick(cps.length); cps.splice(at, 0, ...cps.slice(from, from + 1 + pick(12))); break; }
      case 4: { const b = pick(cps.length); [cps[at], cps[b]] = [cps[b], cps[at]]; cps = cps.filter((c) => c !== undefined); break; }
      case 5: cps = cps.slice(0, at); break;
      default: {
        // A number replaced by an edge value.
        const text = cps.join('');
        const nums = [...text.matchAll(/-?[0-9]+/g)];
        if (!nums.length) break;
        const m = nums[pick(nums.length)];
        cps = Array.from(text.slice(0, m.index) + EDGE_NUMBERS[pick(EDGE_NUMBERS.length)] + text.slice(m.index + m[0].length));
      }
    }
  }
  return cps.join('');
}

function randomFrames(seed, count) {
  const rand = rng(seed);
  const valid = [...BASES.map((b) => frameOf(b)), ...OP_BASES.map((o) => `{"type":"ops","doc":"d","ops":[${frameOf(o)}]}`)];
  return Array.from({ length: count }, () => mutate(valid[Math.floor(rand() * valid.length)], rand));
}

// ---- the two decoders ----------------------------------------------------------

// Both verdicts in the form weft-crosscheck prints: {msg} or {error: kind}.
function nativeDecode(frames) {
  const script = frames.map((f) => `server ${Buffer.from(f, 'utf8').toString('hex')}\n`).join('');
  const out = execFileSync(native, { input: script, maxBuffer: 1 << 28 }).toString().trimEnd().split('\n');
  assert.equal(out.length, frames.length, 'weft-crosscheck answers one line per frame');
  return out.map((line) => {
    if (line.startsWith('error ')) return { error: line.slice(6) };
    const msg = JSON.parse(line.slice(4));
    if ('state' in msg) msg.state = JSON.parse(msg.state);
    return { msg };
  });
}

function jsDecode(frame) {
  let m;
  try {
    m = decodeServerMessage(frame);
  } catch (e) {
    if (!(e instanceof MessageError)) throw e;
    return { error: e.kind };
  }
  // As weft-crosscheck prints them: the integers that may pass 2^53 as strings.
  const msg = { ...m };
  for (const k of ['protocol', 'max_message_bytes', 'session', 'ref', 'regions']) if (k in msg) msg[k] = String(msg[k]);
  return { msg };
}

const isJson = (f) => {
  try {
    JSON.parse(f);
    return true;
  } catch {
    return false;
  }
};

const show = (f) => JSON.stringify(f.length > 200 ? f.slice(0, 200) + '…' : f);

function crosscheck(frames) {
  assert.ok(fs.existsSync(native), `native cross-check tool missing: ${native} (build the C++ tests first)`);
  const want = nativeDecode(frames);
  const problems = [];
  let accepted = 0;
  frames.forEach((frame, i) => {
    const got = jsDecode(frame);
    const w = want[i];
    if (w.msg) accepted++;
    if (!w.msg !== !got.msg) {
      problems.push(`${show(frame)}: C++ ${w.msg ? 'accepts' : `refuses (${w.error})`}, JS ${got.msg ? 'accepts' : `refuses (${got.error})`}`);
    } else if (w.msg) {
      try {
        assert.deepStrictEqual(got.msg, w.msg);
      } catch {
        problems.push(`${show(frame)}: C++ ${show(JSON.stringify(w.msg))}, JS ${show(JSON.stringify(got.msg, (k, v) => v))}`);
      }
    } else if (w.error !== got.error && isJson(frame)) {
      problems.push(`${show(frame)}: C++ refuses with ${w.error}, JS with ${got.error}`);
    }
  });
  assert.deepEqual(problems, [], `${problems.length} of ${frames.length} frames decode differently:\n${problems.join('\n')}`);
  return accepted;
}

test('every message type and the edge cases decode as in the C++ codec', () => {
  const frames = [...BASES.map((b) => frameOf(b)), ...EDGES];
  const accepted = crosscheck(frames);
  assert.ok(accepted >= BASES.length + 20, `only ${accepted} accepted`);
});

test('variants of every field decode as in the C++ codec', () => {
  const frames = structuredFrames();
  const accepted = crosscheck(frames);
  assert.ok(frames.length > 2000 && accepted > 200, `${accepted} of ${frames.length} accepted`);
});

test('random mutations of valid frames decode as in the C++ codec', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) crosscheck(randomFrames(seed, 500));
});

test('decoded values', () => {
  assert.deepStrictEqual(decodeServerMessage(frameOf(BASES[2])), {
    type: 'sync', doc: 'notes', ref: 0, version: [[3, 44], [7, 14]],
    ops: [{ kind: 'insert', id: [7, 12], left: [7, 11], right: [3, 4], text: 'hi' },
      { kind: 'tombstone', id: [7, 1], left: [3, 2], count: 5 }, { kind: 'erase', id: [7, 14], targets: [[3, 5, 2], [7, 12, 1]] }],
  });
  const p = decodeServerMessage('{"type":"presence","doc":"a","session":18446744073709551615,"state":{"__proto__":{"x":1}}}');
  assert.equal(p.session, 18446744073709551615n);
  assert.equal(Object.getPrototypeOf(p.state), Object.prototype);
  assert.deepEqual(Object.keys(p.state), ['__proto__']);
  assert.equal(decodeServerMessage('{"type":"presence","doc":"a","session":9007199254740991,"state":null}').session, 9007199254740991);
  assert.deepStrictEqual(decodeServerMessage('{"type":"error","code":"x"}'), { type: 'error', code: 'x', message: '', doc: '' });
});

test('what a WebSocket cannot deliver is refused: lone surrogates, non-text frames', () => {
  for (const f of ['{"type":"pong","zz":"\ud800"}', '{"type":"error","code":"\udc00x"}', '{"type":"error","code":"x\ud800y"}',
    '{"type":"pong","\ud83d":1}', '{"type":"presence","doc":"a","session":1,"state":{"a":"\ude00\ud83d"}}'])
    assert.throws(() => decodeServerMessage(f), (e) => e instanceof MessageError && e.kind === 'bad_json', f);
  assert.throws(() => decodeServerMessage('{"type":"ops","doc":"a","ops":[{"kind":"insert","id":[1,1],"text":"\ud800ab"}]}'),
    (e) => e instanceof MessageError && e.kind === 'bad_message');
  assert.throws(() => decodeServerMessage(new ArrayBuffer(2)), MessageError);
  assert.deepStrictEqual(decodeServerMessage('{"type":"pong","zz":"\ud83d\ude00"}'), { type: 'pong' });
});
