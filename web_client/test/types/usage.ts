// How an app uses the @weft packages, in TypeScript: `tsc --noEmit` on this
// file (test/types.test.mjs) checks that their .d.ts files compile, resolve
// through the packages' "exports", and describe the API as documented. The
// lines marked to expect an error must stay errors: a declaration that
// loosened to `any` would make them compile, and then tsc fails.
import { loadWeft, randomReplicaId, codePointsToUtf16, type Change, type IdRange, type Version } from '@weft/core';
import { WeftProvider, type Status } from '@weft/provider';
import { weftCollab, textDifference, viewRepairs, isOpening, AstralIndex } from '@weft/codemirror';
import { EditorState } from '@codemirror/state';
import { EditorView } from '@codemirror/view';

export async function app(parent: HTMLElement): Promise<EditorView> {
  const weft = await loadWeft({ wasmUrl: new URL('https://example.invalid/weft_core.wasm') });
  const doc = new weft.Document(randomReplicaId());
  const first: [number, number] = doc.insert(0, 'hello');
  const where: number = doc.positionOf(first);
  const applied: { changes: Change[]; applied: IdRange[] } = doc.applyOps('[]', { ids: true });
  const plain: Change[] = doc.applyOps([], { changes: false });
  const version: Version = doc.version();
  const frame: Uint8Array | null = doc.takeOutgoingFrame(7, 65536);
  // @ts-expect-error positions are numbers
  doc.insert('0', 'x');
  // @ts-expect-error ids are [replica, counter] pairs
  doc.positionOf(5);

  const provider = new WeftProvider({ url: 'ws://127.0.0.1:8080', docId: 'notes', doc, snapshot: true });
  const status: Status = provider.status;
  const stop: () => void = provider.onChanges((changes: Change[]) => void changes.length);
  // @ts-expect-error docId is required
  new WeftProvider({ url: 'ws://127.0.0.1:8080', doc });

  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: doc.text(),
      extensions: [weftCollab(provider, { user: { name: 'Ada', color: '#e91e63' }, presenceIntervalMs: 100 })],
    }),
  });
  const diff: { from: number; to: number; insert: string } = textDifference('ab', 'acb');
  const repairs: number = viewRepairs(view);
  const opening: boolean = isOpening(view);
  // @ts-expect-error the binding takes a provider, not a document
  weftCollab(doc);
  void [where, applied, plain, version, frame, status, stop, diff, repairs, opening, AstralIndex,
    codePointsToUtf16('a😀', 2)];
  return view;
}
