/** Ctrl/Cmd+Z after the AI changed the code for you.
 *
 * The AI's edits and the suggestions a person applies are written by the server (the
 * AI's replica): in this browser they are remote changes, which this person's
 * `Y.UndoManager` does not hold, so its Ctrl+Z would undo an older edit of their own
 * instead. The server records each AI change on its chat entry (`change`, `change_for`:
 * the user id it was done for, `undone`) and reverts it as one unit on
 * `POST /api/rooms/{room}/ai/changes/{id}/undo`.
 *
 * This keeps one history: every own undo step gets a sequence number (in its stack
 * item's meta), every AI change done for this person while the page is open gets the
 * next one as it arrives (and ends the undo manager's capture, so typing after it is a
 * new step). Ctrl+Z undoes whichever is newest: an AI change through the server, else
 * the person's own step through the undo manager. A refused AI undo is said in a notice
 * and that key press stops there; the change is then dropped from the history, so the
 * next Ctrl+Z goes on into the person's own older edits.
 *
 * In a workspace each file has its own undo manager: an AI change names its file
 * (`path` on the record; absent = the entry file), and Ctrl+Z in a file weighs only
 * that file's AI changes against that file's own steps. */
import type * as Y from 'yjs'
import { api, ApiError } from './api'
import type { Notices } from './notices'
import type { Session } from './session'

const SEQ = 'codementor-seq'

interface AiStep {
  id: string
  seq: number
  path: string
}

/** Where the page's files are: the file open now, the entry file, each file's manager. */
export interface UndoFiles {
  active(): string
  entry(): string
  managerOf(path: string): Y.UndoManager | null
}

type StackEvent = { stackItem: { meta: Map<string, unknown> }; type: 'undo' | 'redo' }

export class AiUndo {
  private seq = 0
  private steps: AiStep[] = []
  /** Entry id -> its `change` record as last seen (a new edit in one answer changes it). */
  private seen = new Map<string, unknown>()
  private busy = false

  constructor(
    private readonly chat: Y.Array<unknown>,
    private readonly files: UndoFiles,
    private readonly session: Session,
    private readonly notices: Notices,
    /** False while the first sync loads the document: its AI changes are not news. */
    private readonly live: () => boolean,
  ) {
    this.scan(false) // what is already there is not this page's history
    chat.observeDeep(() => this.scan(this.live()))
  }

  /** Numbers a file's own undo steps (call once per undo manager). */
  attach(undoManager: Y.UndoManager): void {
    const stamp = ({ stackItem, type }: StackEvent) => {
      if (type === 'undo') stackItem.meta.set(SEQ, ++this.seq)
    }
    undoManager.on('stack-item-added', stamp)
    undoManager.on('stack-item-updated', stamp)
  }

  /** The Ctrl/Cmd+Z binding: true when it handled the key (an AI change was newest). */
  undo(): boolean {
    const path = this.files.active()
    const mine = this.steps.filter((s) => s.path === path)
    const top = mine[mine.length - 1]
    if (!top) return false
    const manager = this.files.managerOf(path)
    const own = manager?.undoStack[manager.undoStack.length - 1]
    const ownSeq = Number(own?.meta.get(SEQ) ?? 0)
    if (ownSeq > top.seq) return false
    if (this.busy) return true
    this.busy = true
    undoAiChange(this.session, top.id)
      .then(() => {
        this.drop(top.id)
        this.notices.show('Undid the AI’s change.', 'info', 4000)
      })
      .catch((err: unknown) => {
        if (err instanceof ApiError && (err.status === 404 || err.status === 409 || err.status === 403)) {
          this.drop(top.id)
          this.notices.show(`${undoErrorText(err)} Press Ctrl+Z again to undo your own earlier edits.`, 'error', 10000)
        } else {
          this.notices.show(undoErrorText(err), 'error', 8000)
        }
      })
      .finally(() => (this.busy = false))
    return true
  }

  private drop(id: string): void {
    this.steps = this.steps.filter((s) => s.id !== id)
  }

  private scan(live: boolean): void {
    for (const item of this.chat.toArray()) {
      const entry = item as Y.Map<unknown>
      if (typeof entry?.get !== 'function' || entry.get('ai') !== true) continue
      const id = String(entry.get('id') ?? '')
      const change = entry.get('change')
      if (!id || !change) continue
      if (entry.get('undone') === true) {
        this.drop(id)
        this.seen.set(id, change)
        continue
      }
      if (this.seen.get(id) === change) continue
      this.seen.set(id, change)
      if (!live || entry.get('change_for') !== this.session.userId) continue
      this.drop(id)
      const named = entry.get('path')
      const path = typeof named === 'string' && named ? named : this.files.entry()
      this.steps.push({ id, seq: ++this.seq, path })
      this.files.managerOf(path)?.stopCapturing() // typing from now on is a step after this one
    }
  }
}

export function undoAiChange(session: Session, id: string): Promise<{ undone: boolean }> {
  return api.undoAiChange(session.room, session.token, id)
}

export function undoErrorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 409) return `Could not undo the AI’s change: ${err.message}.`
    if (err.status === 403) return `You may not undo the AI’s change: ${err.message}.`
    if (err.status === 404) return 'That AI change is gone.'
    return `Undo failed (${err.status}): ${err.message}`
  }
  return navigator.onLine ? 'Undo failed: the server could not be reached.' : 'You are offline; undo again when reconnected.'
}
