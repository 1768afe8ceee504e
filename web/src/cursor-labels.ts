/**
 * Other people's carets and selections in the editor, from awareness. Replaces
 * y-codemirror.next's stock remote selections for two reasons: a name label shows only on
 * hover of the caret and for a moment after that person moves or types (always-on labels
 * cover the line above and collide), and a rename re-renders the label at once (the stock
 * widget compares colours only). This plugin also publishes the local selection as
 * awareness `cursor`, the field every Yjs editor reads.
 */
import { RangeSet, type Extension, type Range } from '@codemirror/state'
import { Decoration, EditorView, ViewPlugin, WidgetType, type DecorationSet, type ViewUpdate } from '@codemirror/view'
import type { Awareness } from 'y-protocols/awareness'
import * as Y from 'yjs'
import { FALLBACK_COLOR, lightColor, safeColor, safeLightColor } from './identity'

/** How long a name stays after its owner moved or typed. */
export const LABEL_MS = 2000

class CaretWidget extends WidgetType {
  constructor(
    readonly clientId: number,
    readonly color: string,
    readonly name: string,
    readonly active: boolean,
  ) {
    super()
  }

  toDOM(): HTMLElement {
    const caret = document.createElement('span')
    caret.className = 'cm-ySelectionCaret'
    caret.dataset.clientId = String(this.clientId)
    caret.style.backgroundColor = this.color
    caret.style.borderColor = this.color
    if (this.active) caret.classList.add('cm-ySelectionCaret-active')
    const dot = document.createElement('span')
    dot.className = 'cm-ySelectionCaretDot'
    const info = document.createElement('span')
    info.className = 'cm-ySelectionInfo'
    info.textContent = this.name
    caret.append('\u2060', dot, '\u2060', info, '\u2060')
    return caret
  }

  eq(other: CaretWidget): boolean {
    return other.clientId === this.clientId && other.color === this.color && other.name === this.name && other.active === this.active
  }

  get estimatedHeight(): number {
    return -1
  }

  ignoreEvent(): boolean {
    return true
  }
}

interface Seen {
  cursor: string
  name: string
}

export function remoteCursors(ytext: Y.Text, awareness: Awareness): Extension {
  const plugin = ViewPlugin.fromClass(
    class {
      decorations: DecorationSet = RangeSet.empty
      private seen = new Map<number, Seen>()
      private activeUntil = new Map<number, number>()
      private timer: number | undefined
      private readonly listener: (changes: { added: number[]; updated: number[]; removed: number[] }) => void

      constructor(readonly view: EditorView) {
        this.listener = ({ added, updated, removed }) => {
          const now = Date.now()
          for (const id of removed) {
            this.seen.delete(id)
            this.activeUntil.delete(id)
          }
          let changed = removed.length > 0
          for (const id of [...added, ...updated]) {
            if (id === awareness.clientID) continue
            const state = awareness.getStates().get(id) as { cursor?: unknown; user?: { name?: unknown } } | undefined
            const next: Seen = { cursor: JSON.stringify(state?.cursor ?? null), name: String(state?.user?.name ?? '') }
            const before = this.seen.get(id)
            this.seen.set(id, next)
            if (!before || before.cursor !== next.cursor || before.name !== next.name) {
              // Someone already here who moved, typed or was renamed: show the name a moment.
              if (before || state?.cursor) this.activeUntil.set(id, now + LABEL_MS)
              changed = true
            }
          }
          if (changed) this.schedule()
        }
        awareness.on('change', this.listener)
        ytext.observe(this.observer)
        this.decorations = this.build()
      }

      /** Typing in the middle of a line leaves the caret's relative position as it was: an
       * insert names its author; a deletion, whoever's caret sits where it happened. */
      private readonly observer = (event: Y.YTextEvent): void => {
        if (event.transaction.local) return
        const until = Date.now() + LABEL_MS
        let touched = false
        // Whose clock moved in this transaction wrote something (a Yjs client id is the
        // awareness client id of the same page).
        const { beforeState, afterState } = event.transaction
        afterState.forEach((clock, client) => {
          if (clock !== (beforeState.get(client) ?? 0) && client !== awareness.clientID && this.seen.has(client)) {
            this.activeUntil.set(client, until)
            touched = true
          }
        })
        const deletedAt: number[] = []
        let index = 0
        for (const op of event.delta) {
          if (op.retain) index += op.retain
          else if (typeof op.insert === 'string') index += op.insert.length
          else if (op.delete) deletedAt.push(index)
        }
        if (deletedAt.length && ytext.doc) {
          awareness.getStates().forEach((peer, clientId) => {
            const head = (peer.cursor as { head?: unknown } | null | undefined)?.head
            if (clientId === awareness.clientID || !head) return
            const at = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(head), ytext.doc as Y.Doc)
            if (at && deletedAt.includes(at.index)) {
              this.activeUntil.set(clientId, until)
              touched = true
            }
          })
        }
        if (touched) this.schedule()
      }

      /** Redraw now, and again when the next label is due to fade. */
      private schedule(): void {
        window.clearTimeout(this.timer)
        queueMicrotask(() => this.view.dispatch({}))
        const now = Date.now()
        const next = Math.min(...[...this.activeUntil.values()].filter((t) => t > now))
        if (Number.isFinite(next)) this.timer = window.setTimeout(() => this.schedule(), next - now + 20)
      }

      update(update: ViewUpdate): void {
        this.publishLocal(update)
        this.decorations = this.build()
      }

      destroy(): void {
        awareness.off('change', this.listener)
        ytext.unobserve(this.observer)
        window.clearTimeout(this.timer)
      }

      /** This person's selection, as relative positions, for everyone else. */
      private publishLocal(update: ViewUpdate): void {
        const local = awareness.getLocalState()
        if (local == null) return
        const hasFocus = update.view.hasFocus && update.view.dom.ownerDocument.hasFocus()
        const sel = hasFocus ? update.state.selection.main : null
        const cursor = local.cursor as { anchor: unknown; head: unknown } | null | undefined
        if (sel) {
          const anchor = Y.createRelativePositionFromTypeIndex(ytext, sel.anchor)
          const head = Y.createRelativePositionFromTypeIndex(ytext, sel.head)
          const currentAnchor = cursor ? Y.createRelativePositionFromJSON(cursor.anchor) : null
          const currentHead = cursor ? Y.createRelativePositionFromJSON(cursor.head) : null
          if (!cursor || !Y.compareRelativePositions(currentAnchor, anchor) || !Y.compareRelativePositions(currentHead, head)) {
            awareness.setLocalStateField('cursor', { anchor, head })
          }
        } else if (cursor != null && hasFocus) {
          awareness.setLocalStateField('cursor', null)
        }
      }

      private build(): DecorationSet {
        const doc = ytext.doc
        if (!doc) return RangeSet.empty
        const decorations: Range<Decoration>[] = []
        const now = Date.now()
        const state = this.view.state
        awareness.getStates().forEach((peer, clientId) => {
          if (clientId === awareness.clientID) return
          const cursor = peer.cursor as { anchor?: unknown; head?: unknown } | null | undefined
          if (!cursor?.anchor || !cursor.head) return
          const anchor = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(cursor.anchor), doc)
          const head = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(cursor.head), doc)
          if (!anchor || !head || anchor.type !== ytext || head.type !== ytext) return
          const length = state.doc.length
          const a = Math.min(anchor.index, length)
          const hd = Math.min(head.index, length)
          const user = (peer.user ?? {}) as { color?: unknown; colorLight?: unknown; name?: unknown }
          const color = safeColor(user.color, FALLBACK_COLOR)
          const light = safeLightColor(user.colorLight, lightColor(color))
          const name = typeof user.name === 'string' && user.name ? user.name : 'Anonymous'
          const style = `background-color: ${light}`
          const from = Math.min(a, hd)
          const to = Math.max(a, hd)
          if (from < to) {
            const startLine = state.doc.lineAt(from)
            const endLine = state.doc.lineAt(to)
            if (startLine.number === endLine.number) {
              decorations.push(Decoration.mark({ attributes: { style }, class: 'cm-ySelection' }).range(from, to))
            } else {
              decorations.push(Decoration.mark({ attributes: { style }, class: 'cm-ySelection' }).range(from, startLine.to))
              if (endLine.from < to) decorations.push(Decoration.mark({ attributes: { style }, class: 'cm-ySelection' }).range(endLine.from, to))
              for (let n = startLine.number + 1; n < endLine.number; n++) {
                const line = state.doc.line(n)
                decorations.push(Decoration.line({ attributes: { style, class: 'cm-yLineSelection' } }).range(line.from))
              }
            }
          }
          const active = (this.activeUntil.get(clientId) ?? 0) > now
          decorations.push(
            Decoration.widget({ side: hd - a > 0 ? -1 : 1, widget: new CaretWidget(clientId, color, name, active) }).range(hd),
          )
        })
        return Decoration.set(decorations, true)
      }
    },
    { decorations: (v) => v.decorations },
  )
  return [plugin, cursorTheme]
}

const cursorTheme = EditorView.theme({
  '.cm-ySelectionCaret': {
    position: 'relative',
    borderLeft: '2px solid',
    marginLeft: '-1px',
    marginRight: '-1px',
    boxSizing: 'border-box',
    display: 'inline',
  },
  // A wider, invisible hover target than the 2 px caret.
  '.cm-ySelectionCaret::after': { content: '""', position: 'absolute', top: '0', bottom: '0', left: '-5px', right: '-5px' },
  '.cm-ySelectionCaretDot': {
    position: 'absolute',
    top: '-3px',
    left: '-4px',
    width: '6px',
    height: '6px',
    borderRadius: '50%',
    backgroundColor: 'inherit',
  },
  '.cm-ySelectionInfo': {
    position: 'absolute',
    bottom: '100%',
    left: '-2px',
    zIndex: '101',
    padding: '1px 5px',
    borderRadius: '4px 4px 4px 0',
    backgroundColor: 'inherit',
    color: '#fff',
    fontFamily: 'system-ui, -apple-system, sans-serif',
    fontSize: '11px',
    fontStyle: 'normal',
    fontWeight: '600',
    lineHeight: '1.4',
    whiteSpace: 'nowrap',
    userSelect: 'none',
    pointerEvents: 'none',
    opacity: '0',
    transition: 'opacity 0.4s ease-in-out',
  },
  '.cm-ySelectionCaret:hover > .cm-ySelectionInfo, .cm-ySelectionCaret-active > .cm-ySelectionInfo': { opacity: '1', transition: 'opacity 0.15s' },
  '.cm-yLineSelection': { padding: '0', margin: '0 2px 0 4px' },
  '@media (prefers-reduced-motion: reduce)': {
    '.cm-ySelectionInfo, .cm-ySelectionCaret:hover > .cm-ySelectionInfo, .cm-ySelectionCaret-active > .cm-ySelectionInfo': { transition: 'none' },
  },
})
