/**
 * Following someone: the editor shows the file they have open (awareness `file`) and
 * keeps their caret in view. Used by the People tab's "Follow" toggle (anyone follows
 * anyone) and by broadcast students' "Follow the teacher". Following stops when the
 * person types or picks a file themselves: they have taken the wheel.
 */
import { EditorView } from '@codemirror/view'
import * as Y from 'yjs'
import { inMicrotask } from './dom'
import type { CodeEditor } from './editor'
import type { OpenFiles } from './open-files'
import type { PeerState, Presence } from './presence'

export class Follow {
  private pick: (() => PeerState | null) | null = null
  private label = ''
  private lastHead: number | null = null
  private readonly listeners: (() => void)[] = []

  constructor(
    presence: Presence,
    private readonly files: OpenFiles,
    private readonly editor: CodeEditor,
    /** Stops on the person's own typing and file picks (false: only the toggle stops it). */
    yieldToPerson = true,
  ) {
    const schedule = inMicrotask(() => this.step())
    presence.awareness.on('change', (_changes: unknown, origin: unknown) => {
      if (origin !== 'local') schedule()
    })
    // A caret can arrive before the text it points into: try again when text arrives.
    files.doc.on('update', schedule)
    if (yieldToPerson) {
      files.onPick(() => this.stop())
      editor.view.contentDOM.addEventListener('beforeinput', () => this.stop())
    }
  }

  /** Whom this page follows (a label for buttons), or '' when nobody. */
  get following(): string {
    return this.pick ? this.label : ''
  }

  /** Follows whoever `pick` finds now (a person, or "the teacher": the first owner). */
  start(pick: () => PeerState | null, label: string): void {
    this.pick = pick
    this.label = label
    this.lastHead = null
    this.step(true)
    this.emit()
  }

  stop(): void {
    if (!this.pick) return
    this.pick = null
    this.emit()
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener)
  }

  /** Goes to the followed person's file, then their caret (when it moved). */
  step(force = false): void {
    const peer = this.pick?.()
    if (!peer) return
    // Their file, whenever it is not the one shown (they switched, or it was just made).
    if (peer.file && peer.file !== this.files.active && this.files.openFile(peer.file, 'follow')) this.lastHead = null
    if (peer.file && peer.file !== this.files.active) return
    const head = this.headOf(peer)
    if (head === null || (head === this.lastHead && !force)) return
    this.lastHead = head
    const view = this.editor.view
    const pos = Math.min(head, view.state.doc.length)
    view.dispatch({ effects: EditorView.scrollIntoView(pos, { y: 'center' }) })
  }

  /** Their caret as an index into the text shown here, or null (another file, none). */
  private headOf(peer: PeerState): number | null {
    if (!peer.cursor?.head) return null
    try {
      const rel = Y.createRelativePositionFromJSON(peer.cursor.head)
      const abs = Y.createAbsolutePositionFromRelativePosition(rel, this.files.doc)
      return abs && abs.type === this.editor.ytext ? abs.index : null
    } catch {
      return null // a malformed cursor: ignore it
    }
  }

  private emit(): void {
    for (const listener of this.listeners) listener()
  }
}
