/** The CodeMirror 6 editor bound to the shared `code` text. */
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import {
  bracketMatching,
  defaultHighlightStyle,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
} from '@codemirror/language'
import { highlightSelectionMatches, searchKeymap } from '@codemirror/search'
import { Compartment, EditorState, type Extension } from '@codemirror/state'
import { oneDarkHighlightStyle } from '@codemirror/theme-one-dark'
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
  placeholder,
  rectangularSelection,
  type KeyBinding,
} from '@codemirror/view'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import type { Awareness } from 'y-protocols/awareness'
import * as Y from 'yjs'
import { remoteCursors } from './cursor-labels'
import { editorTheme } from './editor-theme'
import { keyboardFocus } from './keyboard-focus'
import { DEFAULT_INDENT, findLanguage } from './languages'
import { readOnlyNote } from './readonly-note'
import { settings, type EditorSettings } from './settings'

export interface CodeEditor {
  view: EditorView
  undoManager: Y.UndoManager
  setReadOnly(readOnly: boolean): void
  setLanguage(id: string | undefined): Promise<void>
}

/** What an empty editor says: how to start, or (read-only) that nothing is there yet. */
function emptyHint(readOnly: boolean, runnable: boolean): string {
  if (readOnly) return 'Nothing here yet'
  return runnable ? 'Start typing, or press Ctrl+Enter to run' : 'Start typing'
}

/** The per-browser settings as editor extensions (theme, font size, tab width, wrap). */
function settingsExtension(value: EditorSettings, dark: boolean): Extension {
  return [
    EditorView.theme({ '&': { fontSize: `${value.fontSize}px` } }, { dark }),
    syntaxHighlighting(dark ? oneDarkHighlightStyle : defaultHighlightStyle, { fallback: true }),
    EditorState.tabSize.of(value.tabWidth),
    value.lineWrap ? EditorView.lineWrapping : [],
  ]
}

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
    /** Ctrl+Enter runs the code (the empty-editor hint says so). */
    runnable?: boolean
    /** What a read-only editor says where someone tries to type. */
    readOnlyNote?: () => string
  },
): CodeEditor {
  const undoManager = new Y.UndoManager(ytext)
  const readOnly = new Compartment()
  const language = new Compartment()
  const personal = new Compartment()
  const readOnlyExtension = (ro: boolean) => [
    EditorState.readOnly.of(ro),
    EditorView.contentAttributes.of({ 'aria-readonly': String(ro) }),
    placeholder(emptyHint(ro, options.runnable ?? false)),
  ]
  const prefs = settings()

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
        personal.of(settingsExtension(prefs.value, prefs.dark)),
        keymap.of([...(options.extraKeys ?? []), ...yUndoManagerKeymap, ...defaultKeymap, ...searchKeymap, indentWithTab]),
        EditorView.contentAttributes.of({
          'aria-label': options.label,
          'aria-multiline': 'true',
          ...(options.describedBy ? { 'aria-describedby': options.describedBy } : {}),
        }),
        readOnly.of(readOnlyExtension(options.readOnly)),
        language.of(indentUnit.of(DEFAULT_INDENT)),
        // Remote carets are drawn by cursor-labels (names that fade), not the stock plugin.
        yCollab(ytext, null, { undoManager }),
        remoteCursors(ytext, awareness),
        keyboardFocus(),
        readOnlyNote(options.readOnlyNote ?? (() => 'Read-only')),
        editorTheme,
        ...(options.extensions ?? []),
      ],
    }),
  })
  prefs.watch((value, dark) => view.dispatch({ effects: personal.reconfigure(settingsExtension(value, dark)) }))

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
      const indent = indentUnit.of(found?.indent ?? DEFAULT_INDENT)
      if (request === languageRequest) view.dispatch({ effects: language.reconfigure([extension, indent]) })
    },
  }
}
