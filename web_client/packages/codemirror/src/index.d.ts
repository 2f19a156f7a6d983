// Types of @weft/codemirror (src/index.js).
import type { Extension, StateField } from '@codemirror/state';
import type { EditorView } from '@codemirror/view';
import type { WeftProvider } from '@weft/provider';

/** Where a text's astral characters are: converts positions between code points and UTF-16
 *  units in O(log k) for k astral characters. Immutable; edit() returns a new index. */
export class AstralIndex {
  static of(text: string): AstralIndex;
  /** The index after replacing UTF-16 range [from, to) with `inserted`. */
  edit(from: number, to: number, inserted: string): AstralIndex;
  toUtf16(codePoints: number): number;
  toCodePoints(utf16: number): number;
  utf16Length(codePoints: number): number;
}

/** The astral-character index of every editor state that has weftCollab(). */
export const astralField: StateField<AstralIndex>;

export interface WeftCollabOptions {
  /** Sent as presence with the selection (anchor, head in code points). Without it none is
   *  sent (a viewer). Others' carets are drawn either way, with their `name` and `color`. */
  user?: { name: string; /** #rgb or #rrggbb (others are drawn grey) */ color: string; [key: string]: unknown };
  /** Read-only until the provider's first sync ends, then the text is shown once (default:
   *  the replica is empty, the provider not yet online and the browser not offline). */
  opening?: boolean;
  /** Upper bound of the opening phase in ms (default 5000). */
  openingMaxMs?: number;
  /** Minimum interval between presence messages in ms (default 100). */
  presenceIntervalMs?: number;
  /** Compare the whole texts after every remote batch, not only lengths (default false). */
  verify?: boolean;
}

/** Binds the editor to `provider.doc`: local edits become ops, remote changes become
 *  transactions kept out of the undo history (so CodeMirror's history() undoes only this
 *  editor's edits), other users' carets are drawn. Create the state with
 *  `doc: provider.doc.text()`; one binding per provider. */
export function weftCollab(provider: WeftProvider, options?: WeftCollabOptions): Extension;

/** The smallest replacement (UTF-16 offsets of `have`, never splitting a surrogate pair) that
 *  turns `have` into `want`; empty when they are equal. */
export function textDifference(have: string, want: string): { from: number; to: number; insert: string };

/** Repairs of the view's text after remote batches (should stay 0), or -1 without a binding. */
export function viewRepairs(view: EditorView): number;

/** Whether the binding of `view` is still opening (read-only, waiting for the first sync). */
export function isOpening(view: EditorView): boolean;
