// A small app of its own that embeds weft the way any app would: from the
// @weft npm packages, with its own page, styles and build. Its address says
// which server, document and user: ?server=ws://host:port/&doc=NAME&name=Ada
import { EditorState } from '@codemirror/state';
import { EditorView, keymap } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { loadWeft, randomReplicaId } from '@weft/core';
import { WeftProvider } from '@weft/provider';
import { weftCollab, viewRepairs } from '@weft/codemirror';

const params = new URLSearchParams(location.search);
const server = params.get('server') ?? `ws://${location.host}/`;
const docId = params.get('doc') ?? 'notes';
const user = { name: params.get('name') ?? 'guest', color: params.get('color') ?? '#3f51b5' };

const weft = await loadWeft();
const doc = new weft.Document(randomReplicaId());
const provider = new WeftProvider({ url: server, docId, doc });
const statusEl = document.getElementById('status');
provider.addEventListener('status', (e) => { statusEl.textContent = e.detail; });
document.getElementById('doc').textContent = docId;

const view = new EditorView({
  parent: document.getElementById('editor'),
  state: EditorState.create({
    doc: doc.text(),
    extensions: [history(), keymap.of([...defaultKeymap, ...historyKeymap]), EditorView.lineWrapping,
      weftCollab(provider, { user, verify: params.has('verify') })],
  }),
});
provider.connect();
view.focus();

// For automation: the browser test drives the app through this.
window.app = { doc, provider, view, repairs: () => viewRepairs(view) };
