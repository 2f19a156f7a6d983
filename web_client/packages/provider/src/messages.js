// Decoding of the messages weft-server sends (docs/protocol.md), for the
// browser: the JavaScript twin of the C++ codec's server-message decoder
// (weft::protocol::decoder::server in include/weft/protocol.h, which
// weft::client runs). test/codec-crosscheck.test.mjs feeds both the same
// frames and requires the same verdict and the same values, so change the
// two together.
//
//   decodeServerMessage(text) returns one of
//     {type: 'welcome', protocol, server, max_message_bytes, binary, snapshot}
//     {type: 'sync', doc, ops, version, ref}
//     {type: 'ops', doc, ops}
//     {type: 'ack', doc, version}
//     {type: 'presence', doc, session, state}   state: an object, or null
//     {type: 'closed', doc}
//     {type: 'replicated', doc, version, regions}
//     {type: 'pong'}
//     {type: 'error', code, message, doc}       message, doc: '' when absent
//   or throws a MessageError whose `kind` is the codec's error kind
//   (bad_json, bad_message, unknown_type, bad_doc_id or too_large).
//
// The codec's rules: strict JSON (RFC 8259) within the limits of its JSON
// reader (numbers that fit a double, integers that fit 64 bits, at most 1024
// levels of nesting, no lone surrogates); a "type"; known fields of the right
// type, each at most once, and none that is not part of the message's type;
// valid document ids; ops and version vectors by the rules of the codec's op
// parser (src/protocol/op_json_reader.cc, which the WebAssembly core runs
// too). Fields this decoder does not know are ignored (a newer server may add
// some), but must still be JSON.
//
// Values: ops as in docs/protocol.md ({kind, id, left, right, text | count |
// targets}, absent or null origins left out); a version as [[replica,
// counter], ...] sorted by replica; the integers that may exceed 2^53 - 1
// (protocol, max_message_bytes, session, ref) are numbers up to 2^53 - 1 and
// BigInts above, so that no value is rounded.

/** A frame the decoder refuses; `kind` names the reason as the codec does. */
export class MessageError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'MessageError';
    this.kind = kind;
  }
}

// The limits weft::client decodes with (src/client/client.cc): the server is
// trusted, only a presence state has a bound that a frame can reach.
const MAX_PRESENCE_BYTES = 1 << 20;
const MAX_DEPTH = 1024; // the codec's JSON reader's
const MAX_REPLICA = 2 ** 53 - 1;
const MAX_COUNTER = 0xfffffffe;
const U64_MAX = 0xffffffffffffffffn;
const I64_MIN = -0x8000000000000000n;

const FIELDS = {
  type: 1 << 0, doc: 1 << 1, version: 1 << 2, ops: 1 << 3, state: 1 << 4, protocol: 1 << 5, client: 1 << 6,
  token: 1 << 7, session: 1 << 8, server: 1 << 9, max_message_bytes: 1 << 10, code: 1 << 11, message: 1 << 12,
  id: 1 << 13, binary: 1 << 14, ref: 1 << 15, regions: 1 << 16, snapshot: 1 << 17,
};
const F = FIELDS;
const STRING_FIELDS = F.type | F.doc | F.client | F.token | F.server | F.code | F.message;
const U64_FIELDS = F.protocol | F.session | F.max_message_bytes | F.ref | F.regions;

const DOC_ID = /^[A-Za-z0-9._~-]{1,128}$/;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const DIGITS = /[0-9]+/y;

const fail = (kind, message) => {
  throw new MessageError(kind, message);
};

function isWs(c) {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

// A cursor over the frame. `kind` is what a malformed string or number is
// reported as (bad_json in the envelope, bad_message inside ops).
class Reader {
  constructor(s) {
    this.s = s;
    this.p = 0;
  }
  ws() {
    const s = this.s;
    let p = this.p;
    while (p < s.length && isWs(s.charCodeAt(p))) p++;
    this.p = p;
  }
  peek() {
    this.ws();
    return this.p < this.s.length ? this.s.charCodeAt(this.p) : -1;
  }
  eat(c) {
    if (this.peek() !== c) return false;
    this.p++;
    return true;
  }
  expect(c, kind) {
    if (!this.eat(c)) fail(kind, `expected '${String.fromCharCode(c)}' at ${this.p}`);
  }
  literal(word) {
    if (!this.s.startsWith(word, this.p)) return false;
    this.p += word.length;
    return true;
  }

  // A string (at a '"'), unescaped.
  string(kind) {
    const s = this.s;
    if (this.peek() !== 0x22) fail(kind, `expected a string at ${this.p}`);
    let p = ++this.p;
    let out = '';
    let start = p;
    for (;;) {
      if (p >= s.length) fail(kind, 'unterminated string');
      const c = s.charCodeAt(p);
      if (c === 0x22) break;
      if (c < 0x20) fail(kind, 'control character in a string');
      if (c >= 0xd800 && c <= 0xdfff) {
        // Raw surrogates: only as pairs (a WebSocket text frame holds UTF-8).
        const d = s.charCodeAt(p + 1);
        if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) fail(kind, 'lone surrogate in a string');
        p += 2;
        continue;
      }
      if (c !== 0x5c) {
        p++;
        continue;
      }
      out += s.slice(start, p);
      const e = s.charCodeAt(p + 1);
      p += 2;
      switch (e) {
        case 0x22: out += '"'; break;
        case 0x5c: out += '\\'; break;
        case 0x2f: out += '/'; break;
        case 0x62: out += '\b'; break;
        case 0x66: out += '\f'; break;
        case 0x6e: out += '\n'; break;
        case 0x72: out += '\r'; break;
        case 0x74: out += '\t'; break;
        case 0x75: {
          let cp = hex4(s, p, kind);
          p += 4;
          if (cp >= 0xd800 && cp < 0xdc00) {
            if (s.charCodeAt(p) !== 0x5c || s.charCodeAt(p + 1) !== 0x75) fail(kind, 'lone surrogate escape');
            const lo = hex4(s, p + 2, kind);
            if (lo < 0xdc00 || lo > 0xdfff) fail(kind, 'lone surrogate escape');
            p += 6;
            out += String.fromCharCode(cp, lo);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            fail(kind, 'lone surrogate escape');
          } else {
            out += String.fromCharCode(cp);
          }
          break;
        }
        default:
          fail(kind, 'bad escape in a string');
      }
      start = p;
    }
    this.p = p + 1;
    return out + s.slice(start, p);
  }

  // The text of a JSON number at the cursor, or null when there is none.
  numberText() {
    this.ws();
    NUMBER.lastIndex = this.p;
    const m = NUMBER.exec(this.s);
    if (!m) return null;
    this.p = NUMBER.lastIndex;
    return m;
  }

  // A field the codec reads as a 64-bit unsigned integer ("-0" is 0).
  u64() {
    const m = this.numberText();
    if (!m || m[1] !== undefined || m[2] !== undefined) fail('bad_message', 'expected a non-negative integer');
    const t = m[0];
    if (t === '-0') return 0;
    if (t[0] === '-') fail('bad_message', 'expected a non-negative integer');
    if (t.length < 16) return Number(t);
    const v = BigInt(t);
    if (v > U64_MAX) fail('bad_message', 'integer out of range');
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  // Any JSON value, checked as the codec's JSON reader does; built into a
  // JavaScript value (as JSON.parse would) when `build`.
  value(depth, build) {
    const c = this.peek();
    if (c === 0x7b || c === 0x5b) {
      if (depth >= MAX_DEPTH) fail('bad_json', 'nested too deeply');
      this.p++;
      const obj = c === 0x7b;
      const out = build ? (obj ? {} : []) : null;
      const close = obj ? 0x7d : 0x5d;
      if (this.eat(close)) return out;
      do {
        if (obj) {
          const key = this.string('bad_json');
          this.expect(0x3a, 'bad_json');
          const v = this.value(depth + 1, build);
          // As JSON.parse: an own property even for "__proto__"; the last of duplicates wins.
          if (build) Object.defineProperty(out, key, { value: v, writable: true, enumerable: true, configurable: true });
        } else {
          const v = this.value(depth + 1, build);
          if (build) out.push(v);
        }
      } while (this.eat(0x2c));
      this.expect(close, 'bad_json');
      return out;
    }
    if (c === 0x22) return this.string('bad_json');
    if (this.literal('true')) return true;
    if (this.literal('false')) return false;
    if (this.literal('null')) return null;
    const m = this.numberText();
    if (!m) fail('bad_json', `not valid JSON at ${this.p}`);
    const t = m[0];
    if (m[1] === undefined && m[2] === undefined) {
      // An integer must fit 64 bits, signed or unsigned; "-0" is 0.
      if (t.length > 18) {
        const v = BigInt(t);
        if (v > U64_MAX || v < I64_MIN) fail('bad_json', 'integer out of range');
      }
      return Number(t) + 0;
    }
    const v = Number(t);
    if (!Number.isFinite(v)) fail('bad_json', 'number out of range');
    return v;
  }

  // Moves past one value without checking it (the codec checks it later, or
  // refuses the message for another reason first): a string, a bracketed
  // value, or a scalar.
  skip() {
    const s = this.s;
    let c = this.peek();
    let p = this.p;
    if (c === 0x22) {
      p = skipString(s, p);
    } else if (c === 0x7b || c === 0x5b) {
      let depth = 0;
      for (;;) {
        if (p >= s.length) fail('bad_json', 'unterminated value');
        c = s.charCodeAt(p);
        if (c === 0x22) {
          p = skipString(s, p);
          continue;
        }
        p++;
        if (c === 0x7b || c === 0x5b) depth++;
        else if ((c === 0x7d || c === 0x5d) && --depth === 0) break;
      }
    } else {
      while (p < s.length) {
        c = s.charCodeAt(p);
        if (c === 0x2c || c === 0x7d || c === 0x5d || isWs(c)) break;
        p++;
      }
      if (p === this.p) fail('bad_json', `not valid JSON at ${p}`);
    }
    const start = this.p;
    this.p = p;
    return start;
  }
}

function skipString(s, p) {
  for (p++; p < s.length; p++) {
    const c = s.charCodeAt(p);
    if (c === 0x22) return p + 1;
    if (c === 0x5c) p++;
  }
  fail('bad_json', 'unterminated string');
}

function hex4(s, p, kind) {
  let v = 0;
  for (let i = 0; i < 4; i++) {
    const c = s.charCodeAt(p + i);
    let d;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
    else fail(kind, 'bad \\u escape');
    v = (v << 4) | d;
  }
  return v;
}

// ---- ops and version vectors: the rules of src/protocol/op_json_reader.cc ----

// An unsigned integer as the op parser reads it ("-0" is 0; the callers
// bound every value below 2^53, so larger ones need no exactness).
function opUint(r) {
  r.ws();
  const s = r.s;
  if (s.startsWith('-0', r.p) && !(s.charCodeAt(r.p + 2) >= 0x30 && s.charCodeAt(r.p + 2) <= 0x39)) {
    r.p += 2;
  } else {
    DIGITS.lastIndex = r.p;
    const m = DIGITS.exec(s);
    if (!m || (m[0][0] === '0' && m[0].length > 1)) fail('bad_message', `expected an unsigned integer at ${r.p}`);
    r.p = DIGITS.lastIndex;
    const c = s.charCodeAt(r.p);
    if (c === 0x2e || c === 0x65 || c === 0x45) fail('bad_message', 'expected an integer');
    return Number(m[0]);
  }
  const c = s.charCodeAt(r.p);
  if (c === 0x2e || c === 0x65 || c === 0x45) fail('bad_message', 'expected an integer');
  return 0;
}

function opId(r, what) {
  r.expect(0x5b, 'bad_message');
  const replica = opUint(r);
  r.expect(0x2c, 'bad_message');
  const counter = opUint(r);
  r.expect(0x5d, 'bad_message');
  if (replica > MAX_REPLICA || counter < 1 || counter > MAX_COUNTER) fail('bad_message', `${what} out of range`);
  return [replica, counter];
}

const OP_KEYS = { kind: 1, id: 2, left: 4, right: 8, text: 16, count: 32, targets: 64 };

function readOp(r) {
  r.expect(0x7b, 'bad_message');
  let seen = 0;
  let kind = null, id = null, left = null, right = null, text = null, count = null, targets = null;
  if (r.peek() !== 0x7d) {
    do {
      const key = r.string('bad_message');
      r.expect(0x3a, 'bad_message');
      const bit = Object.hasOwn(OP_KEYS, key) ? OP_KEYS[key] : 0;
      if (!bit) fail('bad_message', `unknown field "${key}" in an operation`);
      if (seen & bit) fail('bad_message', `field "${key}" given twice in an operation`);
      seen |= bit;
      if (key === 'kind') kind = r.string('bad_message');
      else if (key === 'id') id = opId(r, 'operation id');
      else if (key === 'left' || key === 'right') {
        r.ws();
        if (r.literal('null')) continue;
        const o = opId(r, 'origin');
        if (key === 'left') left = o;
        else right = o;
      } else if (key === 'text') text = r.string('bad_message');
      else if (key === 'count') count = opUint(r);
      else {
        targets = [];
        r.expect(0x5b, 'bad_message');
        if (r.peek() !== 0x5d) {
          do {
            r.expect(0x5b, 'bad_message');
            const t = [opUint(r), 0, 0];
            r.expect(0x2c, 'bad_message');
            t[1] = opUint(r);
            r.expect(0x2c, 'bad_message');
            t[2] = opUint(r);
            r.expect(0x5d, 'bad_message');
            if (t[0] > MAX_REPLICA || t[1] === 0 || t[1] > MAX_COUNTER || t[2] === 0 || t[2] > MAX_COUNTER)
              fail('bad_message', 'erase targets must be [replica, counter, length] in range');
            targets.push(t);
          } while (r.eat(0x2c));
        }
        r.expect(0x5d, 'bad_message');
      }
    } while (r.eat(0x2c));
  }
  r.expect(0x7d, 'bad_message');
  if (!id) fail('bad_message', 'operation without "id"');
  const op = { kind, id };
  if (kind === 'insert') {
    if (text === null || count !== null || targets !== null || text === '')
      fail('bad_message', 'insert needs non-empty "text" and nothing else');
  } else if (kind === 'tombstone') {
    if (count === null || text !== null || targets !== null || count === 0 || count > MAX_COUNTER)
      fail('bad_message', 'tombstone needs a "count" in range and nothing else');
  } else if (kind === 'erase') {
    if (targets === null || text !== null || count !== null || targets.length === 0 || seen & (4 | 8))
      fail('bad_message', 'erase needs non-empty "targets" and nothing else');
    op.targets = targets;
    return op;
  } else {
    fail('bad_message', 'unknown or missing operation kind');
  }
  if (left) op.left = left;
  if (right) op.right = right;
  if (kind === 'insert') op.text = text;
  else op.count = count;
  return op;
}

// The ops array between `start` and `end`.
function readOps(s, start, end) {
  const r = new Reader(s.slice(start, end));
  const ops = [];
  r.expect(0x5b, 'bad_message');
  if (!r.eat(0x5d)) {
    do ops.push(readOp(r));
    while (r.eat(0x2c));
    r.expect(0x5d, 'bad_message');
  }
  r.ws();
  if (r.p !== r.s.length) fail('bad_message', 'malformed ops array');
  return ops;
}

function readVersion(s, start, end) {
  const r = new Reader(s.slice(start, end));
  const version = [];
  const replicas = new Set();
  r.expect(0x5b, 'bad_message');
  if (r.peek() !== 0x5d) {
    do {
      const e = opId(r, 'version entry');
      if (replicas.has(e[0])) fail('bad_message', 'a replica is listed twice in a version');
      replicas.add(e[0]);
      version.push(e);
    } while (r.eat(0x2c));
  }
  r.expect(0x5d, 'bad_message');
  r.ws();
  if (r.p !== r.s.length) fail('bad_message', 'a version must be [[replica, counter], ...]');
  return version.sort((a, b) => a[0] - b[0]);
}

function utf8Length(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) n += c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 1 : 2;
  }
  return n;
}

// A presence state: an object checked and built as the codec's JSON reader
// does. The codec bounds its compacted text; JSON.stringify's measures the
// same but for the spelling of numbers (1.0, 1e2), close enough for a bound.
function readState(s, start, end) {
  if (utf8Length(s.slice(start, end)) > 4 * MAX_PRESENCE_BYTES + 1024) fail('too_large', 'presence state too large');
  const r = new Reader(s.slice(start, end));
  const state = r.value(0, true);
  r.ws();
  if (r.p !== r.s.length) fail('bad_json', 'not valid JSON');
  if (utf8Length(JSON.stringify(state)) > MAX_PRESENCE_BYTES) fail('too_large', 'presence state too large');
  return state;
}

// Refuses a message that has fields known to the decoder but not part of its type.
// Fails when a field the message type requires is absent. Fields a type does
// not use are ignored, known names too, so that a newer server may add fields
// (the C++ codec's lenient mode); their values were still type-checked while
// reading.
function need(seen, bits, type) {
  for (const k of ['doc', 'ops', 'state', 'protocol', 'version', 'session', 'code', 'regions'])
    if (bits & FIELDS[k] && !(seen & FIELDS[k])) fail('bad_message', `${type} without "${k}"`);
}

/**
 * Decodes one text frame from weft-server; throws a MessageError when the
 * codec would refuse it. See the top of this file for what it returns.
 *
 * With `rawOps`, the ops of ops and sync messages are left as the JSON text
 * of their array (a slice of `text`), unread: for a caller that hands them
 * to the WebAssembly core, whose op parser (the codec's) checks them, instead
 * of building objects only to turn them back into JSON. An ops array the
 * codec would refuse is then refused by applyOps, not here.
 * @param {string} text
 * @param {{rawOps?: boolean}} [options]
 */
export function decodeServerMessage(text, { rawOps = false } = {}) {
  if (typeof text !== 'string') fail('bad_message', 'not a text frame');
  const r = new Reader(text);
  if (r.peek() !== 0x7b) {
    // Tell JSON that is not an object from text that is not JSON.
    r.p = 0;
    r.value(0, false);
    r.ws();
    if (r.p !== text.length) fail('bad_json', 'not valid JSON');
    fail('bad_message', 'a message must be a JSON object');
  }
  r.p++;
  // Every field, in one pass; values the decoder reads later (ops, version,
  // state) or never (unknown fields, "id") are only skipped for now.
  let seen = 0;
  let unknown = false;
  const f = {};
  if (!r.eat(0x7d)) {
    do {
      const key = r.string('bad_json');
      r.expect(0x3a, 'bad_json');
      const bit = Object.hasOwn(FIELDS, key) ? FIELDS[key] : 0;
      if (!bit) {
        unknown = true;
        r.skip();
        continue;
      }
      if (seen & bit) fail('bad_message', `field "${key}" given twice`);
      seen |= bit;
      if (bit & STRING_FIELDS) {
        if (r.peek() !== 0x22) fail('bad_message', `"${key}" must be a string`);
        f[key] = r.string('bad_json');
      } else if (bit & U64_FIELDS) {
        f[key] = r.u64();
      } else if (bit === F.binary || bit === F.snapshot) {
        r.ws();
        if (r.literal('true')) f[key] = true;
        else if (r.literal('false')) f[key] = false;
        else fail('bad_message', `"${key}" must be true or false`);
      } else if (bit === F.id) {
        r.skip();
      } else {
        // version (or null), ops, state (or null): kept as [start, end) of the text.
        const c = r.peek();
        if ((bit === F.version || bit === F.state) && r.literal('null')) continue;
        if (c !== (bit === F.state ? 0x7b : 0x5b)) fail('bad_message', `"${key}" has the wrong type`);
        const start = r.skip();
        f[key] = [start, r.p];
      }
    } while (r.eat(0x2c));
    r.expect(0x7d, 'bad_json');
  }
  r.ws();
  if (r.p !== text.length) fail('bad_json', 'content after the message object');
  if (unknown || seen & F.id) {
    // Values nobody reads must still be JSON (the codec's rare path).
    r.p = 0;
    r.value(0, false);
  }

  if (!(seen & F.type)) fail('bad_message', 'missing "type" string');
  const type = f.type;
  if (type === 'welcome') {
    need(seen, F.protocol, type);
    return { type, protocol: f.protocol, server: f.server ?? '', max_message_bytes: f.max_message_bytes ?? 0,
      binary: f.binary ?? false, snapshot: f.snapshot ?? false };
  }
  if (type === 'pong') {
    return { type };
  }
  if (type === 'error') {
    need(seen, F.code, type);
    return { type, code: f.code, message: f.message ?? '', doc: f.doc ?? '' };
  }
  if (type !== 'sync' && type !== 'ops' && type !== 'ack' && type !== 'presence' && type !== 'closed' &&
      type !== 'replicated')
    fail('unknown_type', `unknown message type ${JSON.stringify(type)}`);
  if (!(seen & F.doc)) fail('bad_message', 'missing "doc" string');
  const doc = f.doc;
  if (!DOC_ID.test(doc)) fail('bad_doc_id', 'document ids are 1-128 characters of A-Z a-z 0-9 . _ ~ -');
  if (type === 'ops' || type === 'sync') {
    const sync = type === 'sync';
    need(seen, sync ? F.ops | F.version : F.ops, type);
    const ops = rawOps ? text.slice(f.ops[0], f.ops[1]) : readOps(text, f.ops[0], f.ops[1]);
    if (!sync) return { type, doc, ops };
    const version = f.version ? readVersion(text, f.version[0], f.version[1]) : [];
    return { type, doc, ops, version, ref: f.ref ?? 0 };
  }
  if (type === 'replicated') {
    need(seen, F.version | F.regions, type);
    return { type, doc, version: f.version ? readVersion(text, f.version[0], f.version[1]) : [], regions: f.regions };
  }
  if (type === 'ack') {
    need(seen, F.version, type);
    return { type, doc, version: f.version ? readVersion(text, f.version[0], f.version[1]) : [] };
  }
  if (type === 'presence') {
    need(seen, F.session | F.state, type);
    return { type, doc, session: f.session, state: f.state ? readState(text, f.state[0], f.state[1]) : null };
  }
  return { type, doc };
}
