// The weft editor page: CodeMirror 6 bound to a weft replica (the C++ core in
// WebAssembly), synced through weft-server, kept in IndexedDB for offline use.
import { EditorState } from '@codemirror/state';
import { EditorView, keymap, lineNumbers, drawSelection, highlightActiveLine } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { loadWeft, randomReplicaId } from '@weft/core';
import { WeftProvider } from '@weft/provider';
import { weftCollab, viewRepairs, textDifference } from '@weft/codemirror';
import { loadReplica, saveReplica, deleteReplica } from './storage.js';

// The page is built from the same packages other apps use (packages/): the
// core, the provider and the CodeMirror binding, which keeps remote changes
// out of the undo history (undo touches only this page's edits) and draws
// other people's carets.
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

// With ?verify in the page's address, every remote batch compares the whole
// view with the replica's text (O(document): tests and debugging). Otherwise
// only the lengths are compared, which is O(1). The browser tests open every
// page with it and fail on any repair (window.weft.viewRepairs).
const VERIFY_VIEW = new URLSearchParams(location.search).has('verify');

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
  performance.mark('weft:ready'); // wasm, lock and stored replica (the page benchmark's phases)
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
  let discarded = false; // the replica was refused as another user's: never stored again
  const writeNow = () => {
    clearTimeout(saveTimer);
    if (discarded) return Promise.resolve();
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
    if (!owner || discarded) return;
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
  // ?nosnapshot: a fresh replica gets the history as ops, as clients
  // without snapshot support do (tests of that path).
  const snapshot = !new URLSearchParams(location.search).has('nosnapshot');
  const provider = new WeftProvider({ url, docId, doc, token, snapshot });
  // A fresh replica opens read-only and shows the server's text once its
  // first sync has ended (the binding's `opening`).
  const view = new EditorView({
    parent: document.querySelector('[data-testid=editor]'),
    state: EditorState.create({
      doc: doc.text(),
      extensions: [lineNumbers(), history(), drawSelection(), highlightActiveLine(), EditorView.lineWrapping,
        keymap.of([...defaultKeymap, ...historyKeymap]),
        weftCollab(provider, { user: me, verify: VERIFY_VIEW }),
        EditorView.updateListener.of((u) => { if (u.docChanged) save(); })],
    }),
  });
  provider.addEventListener('changed', save);

  // A replica id belongs to the user who first wrote under it. One stored in
  // this browser by someone else (another account, another token) gets every
  // op refused: forget it and start over with a new replica id, carrying the
  // text this page shows across the reload, where it is typed again (as the
  // difference to what the server has) under the new id.
  const carryKey = `weft-carry:${docId}`;
  provider.addEventListener('replicarefused', async () => {
    if (discarded) return;
    discarded = true;
    console.warn('weft: the server refuses this replica id as another user\'s; starting a new replica');
    sessionStorage.setItem(carryKey, view.state.doc.toString());
    provider.destroy();
    try { await deleteReplica(docId); } catch (e) { console.error('weft: could not forget the stored replica:', e); }
    location.reload();
  });
  const carried = sessionStorage.getItem(carryKey);
  if (carried !== null) {
    const retype = (e) => {
      if (e.detail !== 'online') return;
      provider.removeEventListener('status', retype);
      sessionStorage.removeItem(carryKey);
      // After the binding has shown the synced text (its status listener ran first).
      queueMicrotask(() => {
        const change = textDifference(view.state.doc.toString(), carried);
        if (change.from !== change.to || change.insert) view.dispatch({ changes: change });
      });
    };
    provider.addEventListener('status', retype);
  }
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

  const renderPeople = () => {
    peopleEl.innerHTML = '';
    for (const [, p] of provider.presence) {
      if (typeof p !== 'object' || p === null) continue;
      const chip = document.createElement('span');
      chip.className = 'person';
      chip.style.background = typeof p.color === 'string' ? p.color : '#888';
      chip.textContent = typeof p.name === 'string' ? p.name : '?';
      peopleEl.appendChild(chip);
    }
  };
  provider.addEventListener('presence', renderPeople);
  // When the page first showed the server's text (ms since the navigation):
  // the page benchmark's "open" figure.
  let openedAt = null;
  provider.addEventListener('status', (e) => {
    if (e.detail === 'online' && openedAt === null) {
      openedAt = performance.now();
      performance.mark('weft:shown');
    }
    statusEl.textContent = e.detail;
    statusEl.className = `status ${e.detail}`;
  });
  statusEl.textContent = provider.status;
  statusEl.className = `status ${provider.status}`;
  provider.connect();
  // For debugging and automation (the browser tests use all of it).
  window.weft = { doc, provider, view, whenSaved, get viewRepairs() { return viewRepairs(view); }, get openedAt() { return openedAt; } };
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
