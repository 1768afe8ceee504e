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
/** A focus this soon after a pointer press came from the pointer. */
const POINTER_FOCUS_MS = 800
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

let lastPointerDown = 0
let pointerListening = false

const tracker = ViewPlugin.define((view) => {
  if (!pointerListening) {
    pointerListening = true
    window.addEventListener('pointerdown', () => (lastPointerDown = Date.now()), { capture: true, passive: true })
  }
  const show = (hint: Hint) => {
    if (view.state.field(hintField) !== hint) view.dispatch({ effects: setHint.of(hint) })
  }
  const onFocus = () => {
    if (Date.now() - lastPointerDown < POINTER_FOCUS_MS) return show(null)
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
