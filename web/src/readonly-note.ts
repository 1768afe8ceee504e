/**
 * Typing into a read-only editor changes nothing; without a word that looks broken. A
 * short note appears at the cursor ("Read-only: select lines and press Comment") and
 * fades after a few seconds.
 */
import { Prec, StateEffect, StateField, type Extension } from '@codemirror/state'
import { EditorView, showTooltip, type Tooltip } from '@codemirror/view'
import type { Role } from './api'

const NOTE_MS = 3500

/** The note for a role whose editor is read-only. */
export function readOnlyNoteText(role: Role): string {
  if (role === 'reviewer') return 'Read-only: select lines and press Comment'
  if (role === 'viewer') return 'Read-only: you are viewing'
  return 'Read-only: this page is disconnected'
}

const showNote = StateEffect.define<{ pos: number; text: string } | null>()

const noteField = StateField.define<Tooltip | null>({
  create: () => null,
  update(value, tr) {
    for (const effect of tr.effects) {
      if (!effect.is(showNote)) continue
      const note = effect.value
      value = note
        ? {
            pos: note.pos,
            above: true,
            strictSide: false,
            create: () => {
              const dom = document.createElement('div')
              dom.className = 'cm-readonly-note'
              dom.setAttribute('role', 'status')
              dom.textContent = note.text
              return { dom }
            },
          }
        : null
    }
    if (value && tr.docChanged) value = { ...value, pos: tr.changes.mapPos(value.pos) }
    return value
  },
  provide: (field) => showTooltip.from(field),
})

/** Keys that would change the text (printable characters, deleting, Enter, pasting). */
function isEditKey(event: KeyboardEvent): boolean {
  if (event.ctrlKey || event.metaKey) return ['v', 'x'].includes(event.key.toLowerCase())
  return event.key.length === 1 || ['Backspace', 'Delete', 'Enter'].includes(event.key)
}

export function readOnlyNote(text: () => string): Extension {
  let timer: number | undefined
  const note = (view: EditorView) => {
    if (!view.state.readOnly) return false
    window.clearTimeout(timer)
    view.dispatch({ effects: showNote.of({ pos: view.state.selection.main.head, text: text() }) })
    timer = window.setTimeout(() => view.dispatch({ effects: showNote.of(null) }), NOTE_MS)
    return false
  }
  return [
    noteField,
    // Before the keymaps: a read-only Backspace or Enter must still be noticed.
    Prec.highest(
      EditorView.domEventHandlers({
        keydown: (event, view) => isEditKey(event) && note(view),
        paste: (_event, view) => note(view),
        drop: (_event, view) => note(view),
      }),
    ),
    EditorView.theme({
      '.cm-tooltip.cm-readonly-note': {
        padding: '4px 10px',
        fontFamily: 'system-ui, -apple-system, sans-serif',
        fontSize: '12.5px',
        fontWeight: '600',
        color: 'var(--text)',
        backgroundColor: 'var(--panel)',
        border: '1px solid var(--warn)',
        borderRadius: '6px',
        boxShadow: '0 4px 14px rgb(0 0 0 / 0.18)',
        animation: `cm-readonly-fade ${NOTE_MS}ms ease-in forwards`,
      },
      '@keyframes cm-readonly-fade': { '0%, 75%': { opacity: '1' }, '100%': { opacity: '0' } },
      '@media (prefers-reduced-motion: reduce)': { '.cm-tooltip.cm-readonly-note': { animation: 'none' } },
    }),
  ]
}
