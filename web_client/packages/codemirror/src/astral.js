// Where a text's astral characters (those outside the Basic Multilingual
// Plane: most emoji) are, so that positions convert between Unicode code
// points (the weft core's unit) and UTF-16 code units (CodeMirror's, and
// JavaScript's) without scanning the text.
//
// An AstralIndex is immutable: edit() returns a new index and leaves the old
// one valid (an editor state keeps its own). Costs, for a text with k astral
// characters: building it scans the text once; a conversion is a binary
// search, O(log k); an edit is O(inserted text + log k) when no astral
// character lies after it, and O(k) otherwise (the offsets after it shift).
// A text with no astral characters (the common case) costs nothing.

const EMPTY = Object.freeze([]);

/** UTF-16 offsets of the astral characters (their high surrogates) in `text`, plus `base`. */
function scan(text, base, out) {
  for (let i = text.search(/[\uD800-\uDBFF]/); i !== -1 && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out.push(base + i);
        i++;
      }
    }
  }
  return out;
}

/** First index i of sorted `a` with pred(a[i], i) false (pred is true on a prefix). */
function partition(a, pred) {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(a[mid], mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class AstralIndex {
  /** The index of `text` (one scan of it). */
  static of(text) {
    return new AstralIndex(Object.freeze(scan(text, 0, [])));
  }

  /** @param {readonly number[]} offsets sorted UTF-16 offsets of the astral characters */
  constructor(offsets = EMPTY) {
    this.offsets = offsets;
  }

  /** UTF-16 offset of code point offset `cp`. */
  toUtf16(cp) {
    const a = this.offsets;
    if (a.length === 0) return cp;
    // Astral character i sits at code point a[i] - i: increasing in i.
    return cp + partition(a, (u, i) => u - i < cp);
  }

  /** Code point offset of UTF-16 offset `u16`; an offset inside a surrogate pair rounds down. */
  toCodePoints(u16) {
    const a = this.offsets;
    if (a.length === 0) return u16;
    // Each astral character starting before u16 takes one unit more than a
    // code point; one whose pair u16 splits counts as before it (rounds down).
    return u16 - partition(a, (u) => u < u16);
  }

  /** UTF-16 length of a text of `cpLength` code points that this index describes. */
  utf16Length(cpLength) { return cpLength + this.offsets.length; }

  /**
   * The index after replacing UTF-16 range [from, to) with `inserted`
   * (offsets of the text before the edit). Returns this when nothing moved.
   */
  edit(from, to, inserted) {
    const a = this.offsets;
    const delta = inserted.length - (to - from);
    const first = partition(a, (u) => u < from); // kept as they are
    const last = partition(a, (u) => u < to);    // [first, last) are deleted
    const added = inserted.length ? scan(inserted, from, []) : EMPTY;
    if (first === a.length && added.length === 0) return this; // nothing at or after the edit
    if (delta === 0 && first === last && added.length === 0) return this;
    const out = a.slice(0, first);
    for (const u of added) out.push(u);
    for (let i = last; i < a.length; i++) out.push(a[i] + delta);
    return new AstralIndex(Object.freeze(out));
  }
}
