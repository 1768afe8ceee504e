/** The CodeMirror 6 editor bound to the shared `code` text. */
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import {
  bracketMatching,
  defaultHighlightStyle,
  indentOnInput,
  syntaxHighlighting,
} from '@codemirror/language'
import { highlightSelectionMatches, searchKeymap } from '@codemirror/search'
import { Compartment, EditorState, type Extension } from '@codemirror/state'
import {
  crosshairCursor,
  drawSelection,
  dropCursor,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
  rectangularSelection,
  type KeyBinding,
} from '@codemirror/view'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import type { Awareness } from 'y-protocols/awareness'
import * as Y from 'yjs'
import { findLanguage } from './languages'

export interface CodeEditor {
  view: EditorView
  undoManager: Y.UndoManager
  setReadOnly(readOnly: boolean): void
  setLanguage(id: string | undefined): Promise<void>
}

const theme = EditorView.theme({
  '&': { height: '100%', fontSize: '14px', backgroundColor: '#fff' },
  '.cm-scroller': {
    fontFamily: "ui-monospace, 'SF Mono', 'Cascadia Code', 'DejaVu Sans Mono', Menlo, Consolas, monospace",
    lineHeight: '1.55',
  },
  '.cm-content': { paddingTop: '18px', paddingBottom: '40vh' },
  '.cm-gutters': { backgroundColor: '#f6f7f9', borderRight: '1px solid #e3e6ea', color: '#6b7280' },
  '&.cm-focused': { outline: 'none' },
  // Remote carets always show their owner's name (the stock theme shows it on hover).
  '.cm-ySelectionInfo': {
    opacity: '1',
    fontFamily: 'system-ui, sans-serif',
    fontSize: '11px',
    fontWeight: '600',
    padding: '1px 4px',
    borderRadius: '3px 3px 3px 0',
    top: '-1.35em',
    color: '#fff',
  },
  '.cm-ySelectionCaret': { borderLeftWidth: '2px' },
})

export function createEditor(
  parent: HTMLElement,
  ytext: Y.Text,
  awareness: Awareness,
  options: {
    readOnly: boolean
    label: string
    describedBy?: string
    extraKeys?: KeyBinding[]
    extensions?: Extension[]
  },
): CodeEditor {
  const undoManager = new Y.UndoManager(ytext)
  const readOnly = new Compartment()
  const language = new Compartment()
  const readOnlyExtension = (ro: boolean) => [
    EditorState.readOnly.of(ro),
    EditorView.contentAttributes.of({ 'aria-readonly': String(ro) }),
  ]

  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        drawSelection(),
        dropCursor(),
        indentOnInput(),
        bracketMatching(),
        rectangularSelection(),
        crosshairCursor(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        EditorState.tabSize.of(4),
        keymap.of([...(options.extraKeys ?? []), ...yUndoManagerKeymap, ...defaultKeymap, ...searchKeymap, indentWithTab]),
        EditorView.contentAttributes.of({
          'aria-label': options.label,
          'aria-multiline': 'true',
          ...(options.describedBy ? { 'aria-describedby': options.describedBy } : {}),
        }),
        readOnly.of(readOnlyExtension(options.readOnly)),
        language.of([]),
        yCollab(ytext, awareness, { undoManager }),
        theme,
        ...(options.extensions ?? []),
      ],
    }),
  })

  let languageRequest = 0
  return {
    view,
    undoManager,
    setReadOnly(ro) {
      // Called from Yjs observers (the room's meta, a role change): dispatching there, before
      // the binding has put the same transaction's text into the editor, makes the remote
      // cursor plugin read positions past the editor's end, and crash for good.
      queueMicrotask(() => view.dispatch({ effects: readOnly.reconfigure(readOnlyExtension(ro)) }))
    },
    async setLanguage(id) {
      const request = ++languageRequest
      const found = findLanguage(id)
      const extension = found ? await found.load() : []
      if (request === languageRequest) view.dispatch({ effects: language.reconfigure(extension) })
    },
  }
}
