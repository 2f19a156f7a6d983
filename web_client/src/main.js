// The weft editor page: CodeMirror 6 bound to a weft replica (the C++ core in
// WebAssembly), synced through weft-server, kept in IndexedDB for offline use.
import { EditorState, Annotation, StateEffect, StateField } from '@codemirror/state';
import { EditorView, Decoration, WidgetType, keymap, lineNumbers, drawSelection, highlightActiveLine } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { loadWeft, randomReplicaId, utf16ToCodePoints, codePointsToUtf16 } from './weft.js';
import { WeftProvider } from './provider.js';
import { loadReplica, saveReplica } from './storage.js';

const remote = Annotation.define();
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

// Code point <-> UTF-16: identical while the text has no astral characters
// (no surrogates), which is the common case and skips the scan.
const hasSurrogates = (text) => /[\uD800-\uDFFF]/.test(text);
function toUtf16(text, cp, same) { return same ? cp : codePointsToUtf16(text, cp); }
function toCodePoints(text, u16, same) { return same ? u16 : utf16ToCodePoints(text, u16); }

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

  const weft = await loadWeft();
  // One live replica per id: the tab that holds the lock owns the stored replica.
  let owner = true;
  if (navigator.locks) {
    owner = await new Promise((resolve) => {
      navigator.locks.request(`weft:${docId}`, { ifAvailable: true }, (lock) => {
        resolve(!!lock);
        return lock ? new Promise(() => {}) : undefined; // hold it for the page's life
      });
    });
  }
  const stored = await loadReplica(docId).catch(() => null);
  const doc = new weft.Document(owner && stored ? stored.replica : randomReplicaId());
  if (stored) {
    try { doc.loadSnapshot(stored.snapshot); } catch (e) { console.warn('stored replica unreadable', e); }
  }
  let saveTimer = null;
  const save = () => {
    if (!owner) return;
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => saveReplica(docId, { replica: doc.replica(), snapshot: doc.encodeSnapshot() }), 150);
  };
  addEventListener('pagehide', () => owner && saveReplica(docId, { replica: doc.replica(), snapshot: doc.encodeSnapshot() }));

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
  let view;
  const provider = new WeftProvider({
    url, docId, doc, token,
    onRemoteChanges(changes) {
      for (const c of changes) {
        const text = view.state.doc.toString();
        const same = !hasSurrogates(text);
        const from = toUtf16(text, c.pos, same);
        const to = 'erase' in c ? toUtf16(text, c.pos + c.erase, same) : from;
        view.dispatch({ changes: { from, to, insert: c.insert ?? '' }, annotations: remote.of(true) });
      }
      // Safety net: the view must show exactly the replica's text.
      const want = doc.text();
      if (view.state.doc.toString() !== want) {
        console.warn('weft: editor view out of step with the replica; reloading its text');
        view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: want }, annotations: remote.of(true) });
      }
      save();
    },
  });

  const sendPresence = (state) => {
    const text = state.doc.toString();
    const same = !hasSurrogates(text);
    const sel = state.selection.main;
    provider.setPresence({ ...me, anchor: toCodePoints(text, sel.anchor, same), head: toCodePoints(text, sel.head, same) });
  };

  const bind = EditorView.updateListener.of((u) => {
    if (u.docChanged && !u.transactions.some((t) => t.annotation(remote))) {
      const old = u.startState.doc.toString();
      const same = !hasSurrogates(old);
      const edits = [];
      u.changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => edits.push([fromA, toA, inserted.toString()]));
      for (const [fromA, toA, ins] of edits.reverse()) {  // back to front: earlier offsets stay valid
        const from = toCodePoints(old, fromA, same);
        const to = toCodePoints(old, toA, same);
        if (to > from) doc.erase(from, to - from);
        if (ins) doc.insert(from, ins);
      }
      provider.flush();
      save();
    }
    if (u.selectionSet || u.docChanged) sendPresence(u.state);
  });

  view = new EditorView({
    parent: document.querySelector('[data-testid=editor]'),
    state: EditorState.create({
      doc: doc.text(),
      extensions: [lineNumbers(), history(), drawSelection(), highlightActiveLine(), EditorView.lineWrapping,
        keymap.of([...defaultKeymap, ...historyKeymap]), cursorField, bind],
    }),
  });
  view.focus();

  const renderPresence = () => {
    const text = view.state.doc.toString();
    const same = !hasSurrogates(text);
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
      const head = Math.min(len, toUtf16(text, Number(p.head) || 0, same));
      const anchor = Math.min(len, toUtf16(text, Number(p.anchor) || 0, same));
      if (anchor !== head)
        ranges.push(Decoration.mark({ attributes: { style: `background:${p.color}33` } }).range(Math.min(anchor, head), Math.max(anchor, head)));
      ranges.push(Decoration.widget({ widget: new CursorWidget(p.name ?? '?', p.color ?? '#888'), side: 1 }).range(head));
    }
    view.dispatch({ effects: setCursors.of(Decoration.set(ranges, true)) });
  };
  provider.addEventListener('presence', renderPresence);
  provider.addEventListener('status', (e) => {
    statusEl.textContent = e.detail;
    statusEl.className = `status ${e.detail}`;
  });
  statusEl.textContent = provider.status;
  statusEl.className = `status ${provider.status}`;
  provider.connect();
  sendPresence(view.state);
  window.weft = { doc, provider, view }; // for debugging and automation
}

if ('serviceWorker' in navigator) navigator.serviceWorker.register('/sw.js').catch(() => {});

const m = location.pathname.match(/^\/d\/([^/]+)$/);
if (m && /^[A-Za-z0-9._~-]{1,128}$/.test(decodeURIComponent(m[1]))) editor(decodeURIComponent(m[1]));
else landing();
