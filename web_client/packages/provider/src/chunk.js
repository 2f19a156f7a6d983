// Splits op lists that a user can make large (a paste, long offline work)
// into messages the server accepts: each below a byte budget (half the
// server's max_message_bytes) and at most 10,000 ops. Long inserts and erases
// with many targets are cut into consecutive ops with the same meaning, as
// the C++ codec's encode_ops_chunked does (docs/protocol.md, question 5).

/** Limits of one "ops" message. */
export const MAX_OPS_PER_MESSAGE = 10000;

// An insert of more characters than `maxChars`, as consecutive inserts:
// character k > 0 of an insert has the previous character as left origin.
function splitInsert(op, maxChars) {
  const chars = Array.from(op.text); // code points: one id each
  if (chars.length <= maxChars) return [op];
  const out = [];
  const [replica] = op.id;
  let counter = op.id[1];
  let left = op.left ?? null;
  for (let at = 0; at < chars.length; at += maxChars) {
    const text = chars.slice(at, at + maxChars).join('');
    const n = Math.min(maxChars, chars.length - at);
    const piece = { kind: 'insert', id: [replica, counter] };
    if (left) piece.left = left;
    if (op.right) piece.right = op.right;
    piece.text = text;
    out.push(piece);
    left = [replica, counter + n - 1];
    counter += n;
  }
  return out;
}

// An erase with more targets than `maxTargets`, as consecutive erases: its
// ids map to its targets in order.
function splitErase(op, maxTargets) {
  if (op.targets.length <= maxTargets) return [op];
  const out = [];
  let counter = op.id[1];
  for (let at = 0; at < op.targets.length; at += maxTargets) {
    const targets = op.targets.slice(at, at + maxTargets);
    out.push({ kind: 'erase', id: [op.id[0], counter], targets });
    for (const t of targets) counter += t[2];
  }
  return out;
}

/**
 * Splits `opsJson` (a JSON array of ops, as Document.opsSince and
 * takeOutgoing give) into JSON arrays that each fit one message.
 * @param {string} opsJson
 * @param {number} budget bytes per message for the ops (>= 1024)
 * @param {number} [maxOps]
 * @returns {string[]} empty when there are no ops
 */
export function chunkOps(opsJson, budget, maxOps = MAX_OPS_PER_MESSAGE) {
  budget = Math.max(1024, budget);
  if (opsJson === '[]') return [];
  // Common case: a keystroke or a small batch. Under budget/64 bytes it
  // cannot hold more than maxOps ops (every op takes at least ~40 bytes).
  if (opsJson.length <= Math.min(budget, 40 * maxOps)) return [opsJson];
  const pieces = [];
  for (const op of JSON.parse(opsJson)) {
    if (op.kind === 'insert') pieces.push(...splitInsert(op, Math.max(1, Math.floor(budget / 48))));
    else if (op.kind === 'erase') pieces.push(...splitErase(op, Math.max(1, Math.floor(budget / 64))));
    else pieces.push(op);
  }
  const out = [];
  let group = [];
  let bytes = 2;
  for (const p of pieces) {
    const s = JSON.stringify(p);
    if (group.length && (bytes + s.length + 1 > budget || group.length >= maxOps)) {
      out.push(`[${group.join(',')}]`);
      group = [];
      bytes = 2;
    }
    group.push(s);
    bytes += s.length + 1;
  }
  if (group.length) out.push(`[${group.join(',')}]`);
  return out;
}
