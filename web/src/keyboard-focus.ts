/**
 * Keyboard users are never trapped in the editor (CodeMirror's accessibility guidance):
 * arriving by keyboard turns on tab-focus mode until the person types, so Tab keeps
 * moving through the page instead of indenting the shared code; Escape then Tab leaves
 * (CodeMirror's own temporary tab-focus mode). A visible line under the code says so
 * while the editor has keyboard focus.
 */
import { StateEffect, StateField, type Extension } from '@codemirror/state'
import { EditorView, showPanel, ViewPlugin, type Panel } from '@codemirror/view'

type Hint = 'arrived' | 'typing' | 'escaped' | null

const setHint = StateEffect.define<Hint>()
const hintField = StateField.define<Hint>({
  create: () => null,
  update(value, tr) {
    for (const effect of tr.effects) if (effect.is(setHint)) value = effect.value
    return value
  },
})

const HINTS: Record<Exclude<Hint, null>, string> = {
  arrived: 'Tab moves on to the next control until you type. Press Escape, then Tab, to leave the editor.',
  typing: 'Tab indents. Press Escape, then Tab, to leave the editor. Ctrl+M: Tab always moves focus.',
  escaped: 'Press Tab now to leave the editor (Shift+Tab to go back).',
}

/** Until another key: long enough that only typing ends it. */
const UNTIL_TYPED_MS = 24 * 60 * 60 * 1000
const MODIFIERS = new Set(['Shift', 'Control', 'Alt', 'Meta', 'CapsLock', 'Tab', 'Escape'])

function hintPanel(view: EditorView): Panel {
  const dom = document.createElement('div')
  dom.className = 'cm-keyboard-hint'
  dom.setAttribute('aria-hidden', 'true') // the same words reach screen readers via aria-describedby
  const render = () => {
    const hint = view.state.field(hintField)
    dom.textContent = hint ? HINTS[hint] : ''
  }
  render()
  return { dom, update: render }
}

const hintPanelExtension = showPanel.from(hintField, (hint) => (hint ? hintPanel : null))

/** What the person last used, pointer or keyboard: a focus after a key press came by keyboard. */
let lastInput: 'pointer' | 'key' = 'pointer'
let inputListening = false

const tracker = ViewPlugin.define((view) => {
  if (!inputListening) {
    inputListening = true
    window.addEventListener('pointerdown', () => (lastInput = 'pointer'), { capture: true, passive: true })
    window.addEventListener('keydown', () => (lastInput = 'key'), { capture: true, passive: true })
  }
  const show = (hint: Hint) => {
    if (view.state.field(hintField) !== hint) view.dispatch({ effects: setHint.of(hint) })
  }
  const onFocus = () => {
    if (lastInput === 'pointer') return show(null)
    view.setTabFocusMode(UNTIL_TYPED_MS)
    show('arrived')
  }
  const onBlur = () => window.setTimeout(() => view.hasFocus || show(null))
  const onKey = (event: KeyboardEvent) => {
    if (event.key === 'Escape') show('escaped')
    else if (!MODIFIERS.has(event.key) && view.state.field(hintField) !== null) show('typing')
  }
  const onPointer = () => show(null)
  view.contentDOM.addEventListener('focus', onFocus)
  view.contentDOM.addEventListener('blur', onBlur)
  view.contentDOM.addEventListener('keydown', onKey)
  view.dom.addEventListener('pointerdown', onPointer)
  return {
    destroy() {
      view.contentDOM.removeEventListener('focus', onFocus)
      view.contentDOM.removeEventListener('blur', onBlur)
      view.contentDOM.removeEventListener('keydown', onKey)
      view.dom.removeEventListener('pointerdown', onPointer)
    },
  }
})

const hintTheme = EditorView.theme({
  '.cm-keyboard-hint': {
    padding: '5px 12px',
    fontFamily: 'system-ui, -apple-system, sans-serif',
    fontSize: '12.5px',
    color: 'var(--text)',
    backgroundColor: 'var(--accent-soft)',
  },
})

export function keyboardFocus(): Extension {
  return [hintField, hintPanelExtension, tracker, hintTheme]
}
