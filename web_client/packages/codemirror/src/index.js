// @weft/codemirror: binds a CodeMirror 6 editor to a weft Document that a
// WeftProvider keeps in sync with weft-server.
//
//   const view = new EditorView({ parent, state: EditorState.create({
//     doc: doc.text(),
//     extensions: [history(), keymap.of(historyKeymap), weftCollab(provider, { user: { name: 'Ada', color: '#e91e63' } })],
//   }) });
//
// Local edits go into the replica and out to the server; remote changes come
// into the view as transactions marked Transaction.remote and
// addToHistory(false). The second keeps them out of CodeMirror's undo
// history, which then maps its own entries through them instead of recording
// them: undo and redo touch only this editor's edits, with everyone else's
// mapped through (an undo of one's insert leaves the text others typed inside
// it). An undo is a local edit like any other and reaches the server as ops.
//
// The work per keystroke and per remote change is O(edit), not O(document):
// the replica counts code points and CodeMirror UTF-16 units, and every
// editor state carries an index of its text's astral characters (astral.js)
// kept up to date from each transaction's changes, so a position converts by
// a binary search without reading the text.
import { StateEffect, StateField, Compartment, EditorState, Transaction } from '@codemirror/state';
import { EditorView, ViewPlugin, Decoration, WidgetType } from '@codemirror/view';
import { AstralIndex } from './astral.js';

export { AstralIndex };

const REMOTE = [Transaction.remote.of(true), Transaction.addToHistory.of(false)];

// A change set's replacements as [from, to, inserted text], in offsets of the
// document before it, back to front: applying them in this order one by one
// keeps the offsets of those still to come valid.
function backToFront(changes) {
  const edits = [];
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => edits.push([fromA, toA, inserted.toString()]));
  return edits.reverse();
}

/** The astral-character index of every editor state that has weftCollab(). */
export const astralField = StateField.define({
  create: (state) => AstralIndex.of(state.doc.toString()),
  update(idx, tr) {
    if (!tr.docChanged) return idx;
    for (const [from, to, inserted] of backToFront(tr.changes)) idx = idx.edit(from, to, inserted);
    return idx;
  },
});

class CursorWidget extends WidgetType {
  constructor(name, color) { super(); this.name = name; this.color = color; }
  eq(o) { return o.name === this.name && o.color === this.color; }
  toDOM() {
    const el = document.createElement('span');
    el.className = 'cm-weft-caret';
    el.style.borderColor = this.color;
    const label = document.createElement('span');
    label.className = 'cm-weft-label';
    label.style.background = this.color;
    label.textContent = this.name;
    el.appendChild(label);
    return el;
  }
  ignoreEvent() { return true; }
}

const setCursors = StateEffect.define();
const cursorField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects) if (e.is(setCursors)) deco = e.value;
    return deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

const theme = EditorView.baseTheme({
  '.cm-weft-caret': { position: 'relative', borderLeft: '2px solid', marginLeft: '-1px', marginRight: '-1px' },
  '.cm-weft-label': {
    position: 'absolute', top: '-1.35em', left: '-2px', font: '11px/1.4 system-ui, sans-serif', color: '#fff',
    padding: '0 5px', borderRadius: '3px 3px 3px 0', whiteSpace: 'nowrap', pointerEvents: 'none',
  },
});

const bindings = new WeakMap(); // EditorView -> its Binding

// A presence colour is another user's input that ends up in a style
// attribute: only #rgb and #rrggbb pass (as #rrggbb, so that the selection's
// translucent "…33" suffix stays valid), so no one can inject CSS.
const safeColor = (c) => {
  if (typeof c !== 'string') return '#888888';
  if (/^#[0-9a-f]{6}$/i.test(c)) return c;
  if (/^#[0-9a-f]{3}$/i.test(c)) return `#${c[1]}${c[1]}${c[2]}${c[2]}${c[3]}${c[3]}`;
  return '#888888';
};

/** The smallest replacement { from, to, insert } (UTF-16 offsets of `have`)
 * that turns `have` into `want`: their common prefix and suffix stay, so the
 * undo history keeps what lies outside it. Its edges never split a surrogate
 * pair, so the replacement converts to code points exactly. Empty (from ===
 * to, insert '') when the texts are equal. */
export function textDifference(have, want) {
  const max = Math.min(have.length, want.length);
  let start = 0, end = 0;
  while (start < max && have.charCodeAt(start) === want.charCodeAt(start)) start++;
  while (end < max - start && have.charCodeAt(have.length - 1 - end) === want.charCodeAt(want.length - 1 - end)) end++;
  const high = (c) => c >= 0xd800 && c <= 0xdbff;
  if (start > 0 && high(have.charCodeAt(start - 1))) start--;
  if (end > 0 && high(have.charCodeAt(have.length - end - 1))) end--;
  return { from: start, to: have.length - end, insert: want.slice(start, want.length - end) };
}

class Binding {
  constructor(view, provider, config) {
    this.view = view;
    this.provider = provider;
    this.doc = provider.doc;
    this.config = config;
    this.repairs = 0;
    this.destroyed = false;
    this.presenceTimer = null;
    this.presenceLast = -Infinity;
    this.opening = config.opening;
    this.sentPresence = null; // [anchor, head] in code points, as last sent
    bindings.set(view, this);
    this.offChanges = provider.onChanges((changes) => this.applyRemote(changes));
    this.onPresence = () => this.renderCursors();
    this.onStatus = (e) => { if (e.detail !== 'syncing') this.endOpening(); };
    provider.addEventListener('presence', this.onPresence);
    provider.addEventListener('status', this.onStatus);
    provider.changeEvents = !this.opening;
    this.openingTimer = this.opening ? setTimeout(() => this.endOpening(), config.openingMaxMs) : null;
    // A view created with a text other than the replica's (or the replica
    // edited before the plugin came up) is put right once the view is built,
    // and the carets of people already there are drawn. A provider that is
    // already online will not announce the end of its sync: no opening then.
    queueMicrotask(() => {
      if (this.destroyed) return;
      if (this.opening && provider.status === 'online') this.endOpening();
      if (this.opening) return;
      if (!this.inStep(true)) this.repair(false);
      this.renderCursors();
    });
    if (config.user) queueMicrotask(() => this.sendPresence());
  }

  // The view's text is the replica's (`full`: compare the texts; otherwise
  // the lengths, which is O(1)).
  inStep(full) {
    const state = this.view.state;
    return full ? state.doc.toString() === this.doc.text()
      : state.doc.length === state.field(astralField).utf16Length(this.doc.length());
  }

  update(u) {
    if (u.docChanged && !u.transactions.some((t) => t.annotation(Transaction.remote))) {
      const idx = u.startState.field(astralField);
      try {
        for (const [fromA, toA, ins] of backToFront(u.changes)) {
          const from = idx.toCodePoints(fromA);
          const to = idx.toCodePoints(toA);
          if (to > from) this.doc.erase(from, to - from);
          if (ins) this.doc.insert(from, ins);
        }
      } catch (e) {
        // The view was out of step with the replica (a bug, or the replica
        // edited behind its back). An exception here would make CodeMirror
        // drop the plugin, and with it the collaboration: repair instead,
        // after this update (no dispatch may happen inside one).
        console.error('weft: a local edit did not fit the replica:', e);
        queueMicrotask(() => { if (!this.destroyed) this.repair(true); });
      }
      this.provider.flush();
    }
    if (this.config.user && (u.selectionSet || u.docChanged)) this.sendPresence();
  }

  applyRemote(changes) {
    if (this.destroyed || this.opening) return;
    const view = this.view;
    // One transaction per change, each on the state the one before made
    // (positions are sequential), dispatched together: one view update.
    let state = view.state;
    const trs = [];
    for (const c of changes) {
      const idx = state.field(astralField);
      // Clamped: a view out of step with the replica (a bug) must not throw
      // here; the safety net below repairs it.
      const len = state.doc.length;
      const from = Math.min(len, idx.toUtf16(c.pos));
      const to = 'erase' in c ? Math.min(len, idx.toUtf16(c.pos + c.erase)) : from;
      const tr = state.update({ changes: { from, to, insert: c.insert ?? '' }, annotations: REMOTE });
      trs.push(tr);
      state = tr.state;
    }
    if (trs.length) view.dispatch(trs);
    if (!this.inStep(this.config.verify)) this.repair(true);
  }

  // Safety net: the view must show exactly the replica's text. Only the part
  // that differs is replaced, so the undo history keeps what lies outside it
  // (replacing the whole text would drop every entry). After a remote batch,
  // firing means its change events were wrong (or the replica was edited
  // behind the view's back): a bug, counted (viewRepairs) and logged.
  repair(isBug) {
    const view = this.view;
    const want = this.doc.text();
    const have = view.state.doc.toString();
    if (have === want) return;
    if (isBug) {
      this.repairs++;
      console.error('weft: editor view out of step with the replica; reloading its text');
    }
    view.dispatch({ changes: textDifference(have, want), annotations: REMOTE });
  }

  endOpening() {
    if (!this.opening || this.destroyed) return;
    this.opening = false;
    this.provider.changeEvents = true;
    clearTimeout(this.openingTimer);
    const view = this.view;
    view.dispatch({ changes: textDifference(view.state.doc.toString(), this.doc.text()),
      effects: this.config.editable.reconfigure(EditorState.readOnly.of(false)), annotations: REMOTE });
    this.renderCursors();
  }

  // Presence is throttled: a burst of keystrokes sends the first state and
  // then the latest one every presenceIntervalMs, not one per key.
  sendPresence() {
    if (this.presenceTimer !== null || this.destroyed) return;
    const wait = this.presenceLast + this.config.presenceIntervalMs - performance.now();
    const now = () => {
      this.presenceTimer = null;
      if (this.destroyed) return;
      this.presenceLast = performance.now();
      const state = this.view.state;
      const idx = state.field(astralField);
      const sel = state.selection.main;
      const anchor = idx.toCodePoints(sel.anchor), head = idx.toCodePoints(sel.head);
      // Remote edits move the caret's offset too, so they lead here; only a
      // caret that really moved (in code points) is sent again.
      if (this.sentPresence && this.sentPresence[0] === anchor && this.sentPresence[1] === head) return;
      this.sentPresence = [anchor, head];
      this.provider.setPresence({ ...this.config.user, anchor, head });
    };
    if (wait <= 0) now();
    else this.presenceTimer = setTimeout(now, wait);
  }

  renderCursors() {
    if (this.destroyed || this.opening) return;
    const view = this.view;
    const idx = view.state.field(astralField);
    const len = view.state.doc.length;
    const ranges = [];
    for (const [, p] of this.provider.presence) {
      if (typeof p !== 'object' || p === null || !('head' in p)) continue;
      const color = safeColor(p.color);
      const name = typeof p.name === 'string' ? p.name : '?';
      const head = Math.min(len, idx.toUtf16(Math.max(0, Number(p.head) || 0)));
      const anchor = Math.min(len, idx.toUtf16(Math.max(0, Number(p.anchor) || 0)));
      if (anchor !== head)
        ranges.push(Decoration.mark({ attributes: { style: `background:${color}33` } }).range(Math.min(anchor, head), Math.max(anchor, head)));
      ranges.push(Decoration.widget({ widget: new CursorWidget(name, color), side: 1 }).range(head));
    }
    view.dispatch({ effects: setCursors.of(Decoration.set(ranges, true)) });
  }

  destroy() {
    this.destroyed = true;
    this.offChanges();
    this.provider.removeEventListener('presence', this.onPresence);
    this.provider.removeEventListener('status', this.onStatus);
    clearTimeout(this.openingTimer);
    clearTimeout(this.presenceTimer);
    if (this.opening) this.provider.changeEvents = true;
    if (this.config.user) this.provider.setPresence(null);
    bindings.delete(this.view);
  }
}

/**
 * The CodeMirror extension that binds the editor to `provider.doc` (see the
 * top of this file). Create the editor state with `doc: provider.doc.text()`;
 * one binding per provider. Options:
 * - `user` ({ name, color, ... }): sent as presence with the selection
 *   (`anchor`, `head` in code points), at most every `presenceIntervalMs`
 *   (default 100). Without it none is sent (a viewer). Other users' carets
 *   and selections are drawn either way.
 * - `opening` (default: the replica is empty and the provider not yet online,
 *   nor the browser offline; a provider already online ends it at once): until the provider's first
 *   sync ends (or `openingMaxMs`, default 5000), remote ops go into the
 *   replica without change events and the editor is read-only; then the
 *   text is shown once. This is what makes a large document open fast.
 * - `verify` (default false): after every remote batch compare the whole
 *   texts, not only the lengths (O(document): tests and debugging).
 */
export function weftCollab(provider, options = {}) {
  const editable = new Compartment();
  const config = {
    user: options.user ?? null,
    opening: options.opening ?? (provider.doc.length() === 0 && provider.status !== 'online' &&
      !(typeof navigator !== 'undefined' && navigator.onLine === false)),
    openingMaxMs: options.openingMaxMs ?? 5000,
    presenceIntervalMs: options.presenceIntervalMs ?? 100,
    verify: !!options.verify,
    editable,
  };
  const plugin = ViewPlugin.define((view) => new Binding(view, provider, config));
  return [astralField, cursorField, theme, plugin, editable.of(EditorState.readOnly.of(config.opening))];
}

/** How often the binding of `view` had to repair the view's text after a remote batch (a bug
 * indicator: it should stay 0), or -1 when the view has no binding. */
export function viewRepairs(view) {
  const b = bindings.get(view);
  return b ? b.repairs : -1;
}

/** Whether the binding of `view` is still opening (read-only, waiting for the first sync). */
export function isOpening(view) {
  const b = bindings.get(view);
  return !!b && b.opening;
}
