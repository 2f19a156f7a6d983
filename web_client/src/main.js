// The weft editor page: CodeMirror 6 bound to a weft replica (the C++ core in
// WebAssembly), synced through weft-server, kept in IndexedDB for offline use.
import { EditorState, Transaction, StateEffect, StateField, Compartment } from '@codemirror/state';
import { EditorView, Decoration, WidgetType, keymap, lineNumbers, drawSelection, highlightActiveLine } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { loadWeft, randomReplicaId } from './weft.js';
import { AstralIndex } from './astral.js';
import { WeftProvider } from './provider.js';
import { loadReplica, saveReplica } from './storage.js';

// Every change that comes from the replica rather than from this page's user
// (remote ops, a resync of the view) is dispatched with these annotations.
// Transaction.remote keeps the binding from sending it back as a local edit;
// addToHistory(false) keeps it out of CodeMirror's undo history, which then
// maps its own entries through it instead of recording it. So undo and redo
// touch only this page's edits, with everyone else's mapped through: an undo
// of one's insert leaves the text others typed inside it. An undo or redo is
// a local edit like any other and goes to the server as ordinary ops.
const REMOTE = [Transaction.remote.of(true), Transaction.addToHistory.of(false)];
const COLORS = ['#e91e63', '#3f51b5', '#009688', '#ff9800', '#9c27b0', '#4caf50', '#f44336', '#00bcd4'];
const NAMES = ['Ada', 'Grace', 'Alan', 'Barbara', 'Edsger', 'Margaret', 'Donald', 'Frances', 'Ken', 'Radia'];

function landing() {
  document.getElementById('app').innerHTML = `
    <div class="landing">
      <h1>weft</h1>
      <p>Real-time collaborative text. Open a document by name and share its address.</p>
      <form id="open"><input id="name" placeholder="document name" pattern="[A-Za-z0-9._~-]{1,128}" required autofocus>
      <button>Open</button></form>
    </div>`;
  document.getElementById('open').addEventListener('submit', (e) => {
    e.preventDefault();
    location.href = '/d/' + encodeURIComponent(document.getElementById('name').value);
  });
}

// The replica counts code points, CodeMirror UTF-16 units. Every editor state
// carries the index of its text's astral characters (src/astral.js), kept up
// to date from each transaction's changes, so a position converts in
// O(log k) without reading the text: the work per keystroke and per remote
// change is O(edit), not O(document).
// A change set's replacements as [from, to, inserted text], in offsets of the
// document before it, back to front: applying them in this order one by one
// keeps the offsets of those still to come valid.
function backToFront(changes) {
  const edits = [];
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => edits.push([fromA, toA, inserted.toString()]));
  return edits.reverse();
}

const astralField = StateField.define({
  create: (state) => AstralIndex.of(state.doc.toString()),
  update(idx, tr) {
    if (!tr.docChanged) return idx;
    for (const [from, to, inserted] of backToFront(tr.changes)) idx = idx.edit(from, to, inserted);
    return idx;
  },
});

// A page whose replica starts empty (nothing stored for this document) is
// "opening" until its first sync with the server ends: remote ops go into the
// replica without change events, the view stays empty and read-only, and
// then shows the replica's text once. Without this a large document arrives
// as one view transaction per change. Opening ends at the latest after this
// long (a server that never answers); later ops update the view one by one.
const OPENING_MAX_MS = 5000;
// Presence goes out at most this often (the last state always goes out).
const PRESENCE_INTERVAL_MS = 100;
// With ?verify in the page's address, every remote batch compares the whole
// view with the replica's text (O(document): tests and debugging). Otherwise
// only the lengths are compared, which is O(1).
const VERIFY_VIEW = new URLSearchParams(location.search).has('verify');

class CursorWidget extends WidgetType {
  constructor(name, color) { super(); this.name = name; this.color = color; }
  eq(o) { return o.name === this.name && o.color === this.color; }
  toDOM() {
    const el = document.createElement('span');
    el.className = 'remote-caret';
    el.style.borderColor = this.color;
    const label = document.createElement('span');
    label.className = 'remote-label';
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

async function editor(docId) {
  document.title = `${docId} · weft`;
  document.getElementById('app').innerHTML = `
    <header><a class="logo" href="/">weft</a><span class="docname"></span>
      <span class="people" data-testid="people"></span>
      <span class="status" data-testid="status">syncing</span></header>
    <main><div class="editor" data-testid="editor"></div></main>`;
  document.querySelector('.docname').textContent = docId;
  const statusEl = document.querySelector('[data-testid=status]');
  const peopleEl = document.querySelector('[data-testid=people]');

  // The wasm core, the lock and the stored replica load at the same time.
  // One live replica per id: the tab that holds the lock owns the stored replica.
  const ownerPromise = !navigator.locks ? Promise.resolve(true) : new Promise((resolve) => {
    navigator.locks.request(`weft:${docId}`, { ifAvailable: true }, (lock) => {
      resolve(!!lock);
      return lock ? new Promise(() => {}) : undefined; // hold it for the page's life
    });
  });
  const [weft, owner, stored] = await Promise.all([loadWeft(), ownerPromise, loadReplica(docId).catch(() => null)]);
  const doc = new weft.Document(owner && stored ? stored.replica : randomReplicaId());
  if (stored) {
    try { doc.loadSnapshot(stored.snapshot); } catch (e) { console.warn('stored replica unreadable', e); }
  }
  // Saving is debounced: a burst of keystrokes is one IndexedDB write. Each
  // state to save gets a generation; whenSaved() resolves once the state as
  // of its call is committed (its transaction complete), and a 'weft-saved'
  // event on window says so too. Tests wait for that before a reload, not for
  // a guess at the debounce. (A tab that does not own the stored replica never
  // saves: whenSaved() resolves at once there.)
  let saveTimer = null, wantGen = 0, savedGen = 0;
  let saveWaiters = [];
  const writeNow = () => {
    clearTimeout(saveTimer);
    const gen = wantGen;
    return saveReplica(docId, { replica: doc.replica(), snapshot: doc.encodeSnapshot() }).then(() => {
      savedGen = Math.max(savedGen, gen);
      const done = saveWaiters.filter((w) => w.gen <= savedGen);
      saveWaiters = saveWaiters.filter((w) => w.gen > savedGen);
      for (const w of done) w.resolve(savedGen);
      dispatchEvent(new CustomEvent('weft-saved', { detail: savedGen }));
    }, (e) => {
      console.error('weft: saving the replica to IndexedDB failed:', e);
      const failed = saveWaiters.filter((w) => w.gen <= gen);
      saveWaiters = saveWaiters.filter((w) => w.gen > gen);
      for (const w of failed) w.reject(e);
    });
  };
  const save = () => {
    if (!owner) return;
    wantGen++;
    clearTimeout(saveTimer);
    saveTimer = setTimeout(writeNow, 150);
  };
  const whenSaved = () => new Promise((resolve, reject) => {
    if (savedGen >= wantGen) resolve(savedGen);
    else saveWaiters.push({ gen: wantGen, resolve, reject });
  });
  addEventListener('pagehide', () => owner && writeNow());

  const me = { name: NAMES[Math.floor(Math.random() * NAMES.length)], color: COLORS[Math.floor(Math.random() * COLORS.length)] };
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
  // An access token travels in the URL fragment (#token=...), which browsers
  // never send to servers or put in logs; it is kept for this tab's reloads.
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem('weft-token', fromHash);
    window.history.replaceState(null, "", location.pathname + location.search);  // `history` is CodeMirror's here
  }
  const token = sessionStorage.getItem('weft-token') ?? undefined;
  let view, viewRepairs = 0;
  const provider = new WeftProvider({
    url, docId, doc, token,
    onRemoteChanges(changes) {
      // One transaction per change, each on the state the one before made
      // (positions are sequential), dispatched together: one view update.
      let state = view.state;
      const trs = [];
      for (const c of changes) {
        const idx = state.field(astralField);
        // Clamped: a view out of step with the replica (a bug) must not
        // throw here; the safety net below repairs it.
        const len = state.doc.length;
        const from = Math.min(len, idx.toUtf16(c.pos));
        const to = 'erase' in c ? Math.min(len, idx.toUtf16(c.pos + c.erase)) : from;
        const tr = state.update({ changes: { from, to, insert: c.insert ?? '' }, annotations: REMOTE });
        trs.push(tr);
        state = tr.state;
      }
      if (trs.length) view.dispatch(trs);
      // Safety net: the view must show exactly the replica's text. Only the
      // part that differs is replaced, so the undo history keeps what lies
      // outside it (replacing the whole text would drop every entry).
      // Firing means the change events above were wrong (or the replica was
      // edited behind the view's back): a bug, which users never see
      // but tests must. So it is counted (window.weft.viewRepairs) and
      // logged as an error, and the browser tests fail on either (they open
      // pages with ?verify, which compares the texts, not only the lengths).
      const inStep = VERIFY_VIEW
        ? view.state.doc.toString() === doc.text()
        : view.state.doc.length === view.state.field(astralField).utf16Length(doc.length());
      if (!inStep) {
        const want = doc.text();
        const have = view.state.doc.toString();
        viewRepairs++;
        console.error('weft: editor view out of step with the replica; reloading its text');
        const max = Math.min(have.length, want.length);
        let start = 0, end = 0;
        while (start < max && have.charCodeAt(start) === want.charCodeAt(start)) start++;
        while (end < max - start && have.charCodeAt(have.length - 1 - end) === want.charCodeAt(want.length - 1 - end)) end++;
        view.dispatch({ changes: { from: start, to: have.length - end, insert: want.slice(start, want.length - end) }, annotations: REMOTE });
      }
      save();
    },
  });

  // Presence is throttled: a burst of keystrokes sends the first state and
  // then the latest one every PRESENCE_INTERVAL_MS, not one per key.
  let presenceTimer = null, presenceLast = -Infinity;
  const sendPresenceNow = () => {
    presenceTimer = null;
    presenceLast = performance.now();
    const state = view.state;
    const idx = state.field(astralField);
    const sel = state.selection.main;
    provider.setPresence({ ...me, anchor: idx.toCodePoints(sel.anchor), head: idx.toCodePoints(sel.head) });
  };
  const sendPresence = () => {
    if (presenceTimer !== null) return;
    const wait = presenceLast + PRESENCE_INTERVAL_MS - performance.now();
    if (wait <= 0) sendPresenceNow();
    else presenceTimer = setTimeout(sendPresenceNow, wait);
  };

  const bind = EditorView.updateListener.of((u) => {
    if (u.docChanged && !u.transactions.some((t) => t.annotation(Transaction.remote))) {
      const idx = u.startState.field(astralField);
      for (const [fromA, toA, ins] of backToFront(u.changes)) {
        const from = idx.toCodePoints(fromA);
        const to = idx.toCodePoints(toA);
        if (to > from) doc.erase(from, to - from);
        if (ins) doc.insert(from, ins);
      }
      provider.flush();
      save();
    }
    if (u.selectionSet || u.docChanged) sendPresence();
  });

  let opening = doc.length() === 0 && navigator.onLine !== false;
  const editable = new Compartment();
  view = new EditorView({
    parent: document.querySelector('[data-testid=editor]'),
    state: EditorState.create({
      doc: doc.text(),
      extensions: [lineNumbers(), history(), drawSelection(), highlightActiveLine(), EditorView.lineWrapping,
        keymap.of([...defaultKeymap, ...historyKeymap]), cursorField, astralField, bind,
        editable.of(EditorState.readOnly.of(opening))],
    }),
  });
  const endOpening = () => {
    if (!opening) return;
    opening = false;
    provider.changeEvents = true;
    clearTimeout(openingTimer);
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: doc.text() },
      effects: editable.reconfigure(EditorState.readOnly.of(false)), annotations: REMOTE });
    renderPresence();
    save(); // what the sync brought (its last message's 'changed' may come after this)
  };
  provider.changeEvents = !opening;
  const openingTimer = opening ? setTimeout(endOpening, OPENING_MAX_MS) : null;
  provider.addEventListener('changed', () => { if (opening) save(); });
  view.focus();
  // A click in the editor's box outside the text (the line-number gutter, the
  // border) focuses the editor too, with the caret on the clicked line. Clicks
  // in the text are CodeMirror's, and one on the scroller itself is on its
  // scrollbar (the text fills the scroller; see style.css).
  view.dom.parentElement.addEventListener('mousedown', (e) => {
    if (e.button !== 0 || e.defaultPrevented || view.contentDOM.contains(e.target) || e.target === view.scrollDOM) return;
    e.preventDefault();
    const text = view.contentDOM.getBoundingClientRect();
    const pos = view.posAtCoords({ x: Math.min(Math.max(e.clientX, text.left + 1), text.right - 1), y: e.clientY }, false);
    view.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
    view.focus();
  });

  const renderPresence = () => {
    const idx = view.state.field(astralField);
    const ranges = [];
    peopleEl.innerHTML = '';
    for (const [, p] of provider.presence) {
      if (typeof p !== 'object' || p === null) continue;
      const chip = document.createElement('span');
      chip.className = 'person';
      chip.style.background = p.color ?? '#888';
      chip.textContent = p.name ?? '?';
      peopleEl.appendChild(chip);
      const len = view.state.doc.length;
      const head = Math.min(len, idx.toUtf16(Number(p.head) || 0));
      const anchor = Math.min(len, idx.toUtf16(Number(p.anchor) || 0));
      if (anchor !== head)
        ranges.push(Decoration.mark({ attributes: { style: `background:${p.color}33` } }).range(Math.min(anchor, head), Math.max(anchor, head)));
      ranges.push(Decoration.widget({ widget: new CursorWidget(p.name ?? '?', p.color ?? '#888'), side: 1 }).range(head));
    }
    view.dispatch({ effects: setCursors.of(Decoration.set(ranges, true)) });
  };
  provider.addEventListener('presence', renderPresence);
  // When the page first showed the server's text (ms since the navigation):
  // the page benchmark's "open" figure.
  let openedAt = null;
  provider.addEventListener('status', (e) => {
    // The first sync has ended (online), or failed (offline): show the text.
    if (e.detail !== 'syncing') endOpening();
    if (e.detail === 'online' && openedAt === null) openedAt = performance.now();
    statusEl.textContent = e.detail;
    statusEl.className = `status ${e.detail}`;
  });
  statusEl.textContent = provider.status;
  statusEl.className = `status ${provider.status}`;
  provider.connect();
  sendPresence();
  // For debugging and automation (the browser tests use all of it).
  window.weft = { doc, provider, view, whenSaved, get viewRepairs() { return viewRepairs; }, get openedAt() { return openedAt; } };
}

// The service worker (offline reloads) is registered once the page has
// loaded, so that its install (which fetches the editor's files again) does
// not compete with the page's own loading.
const registerServiceWorker = () => {
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('/sw.js').catch(() => {});
};
if (document.readyState === 'complete') registerServiceWorker();
else addEventListener('load', registerServiceWorker, { once: true });

const m = location.pathname.match(/^\/d\/([^/]+)$/);
if (m && /^[A-Za-z0-9._~-]{1,128}$/.test(decodeURIComponent(m[1]))) editor(decodeURIComponent(m[1]));
else landing();
