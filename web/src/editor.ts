/** The CodeMirror 6 editor, bound to one workspace file's shared text at a time.
 *
 * Switching files gives the view a new EditorState (`bind`): y-codemirror.next's sync
 * plugin keeps the text it was built with, so a new state (all plugins rebuilt) is the one
 * safe way to point it at another Y.Text. Each file keeps its own Y.UndoManager (the
 * caller's), so Ctrl+Z in one file never undoes another's edits. */
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
  /** The undo history of the file shown now. */
  readonly undoManager: Y.UndoManager
  /** The shared text shown now. */
  readonly ytext: Y.Text
  setReadOnly(readOnly: boolean): void
  setLanguage(id: string | undefined): Promise<void>
  /** Shows another file: its text, its undo history, the selection and scroll it had. */
  bind(ytext: Y.Text, undoManager: Y.UndoManager, place?: { anchor: number; head: number; scrollTop: number }): void
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
  let undoManager = new Y.UndoManager(ytext)
  let current = ytext
  const readOnly = new Compartment()
  const language = new Compartment()
  const personal = new Compartment()
  const readOnlyExtension = (ro: boolean) => [
    EditorState.readOnly.of(ro),
    EditorView.contentAttributes.of({ 'aria-readonly': String(ro) }),
    placeholder(emptyHint(ro, options.runnable ?? false)),
  ]
  const prefs = settings()
  // What the compartments hold now: a new state (another file) starts from them.
  let readOnlyNow = options.readOnly
  let languageNow: Extension = indentUnit.of(DEFAULT_INDENT)

  const stateFor = (text: Y.Text, manager: Y.UndoManager, selection?: { anchor: number; head: number }) => {
    const length = text.length
    return EditorState.create({
      doc: text.toString(),
      selection: selection ? { anchor: Math.min(selection.anchor, length), head: Math.min(selection.head, length) } : undefined,
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
        readOnly.of(readOnlyExtension(readOnlyNow)),
        language.of(languageNow),
        // Remote carets are drawn by cursor-labels (names that fade), not the stock plugin.
        yCollab(text, null, { undoManager: manager }),
        remoteCursors(text, awareness),
        keyboardFocus(),
        readOnlyNote(options.readOnlyNote ?? (() => 'Read-only')),
        editorTheme,
        ...(options.extensions ?? []),
      ],
    })
  }

  const view = new EditorView({ parent, state: stateFor(ytext, undoManager) })
  prefs.watch((value, dark) => view.dispatch({ effects: personal.reconfigure(settingsExtension(value, dark)) }))

  let languageRequest = 0
  return {
    view,
    get undoManager() {
      return undoManager
    },
    get ytext() {
      return current
    },
    setReadOnly(ro) {
      readOnlyNow = ro
      // Called from Yjs observers (the room's meta, a role change): dispatching there, before
      // the binding has put the same transaction's text into the editor, makes the remote
      // cursor plugin read positions past the editor's end, and crash for good.
      queueMicrotask(() => view.dispatch({ effects: readOnly.reconfigure(readOnlyExtension(readOnlyNow)) }))
    },
    bind(text, manager, place) {
      const hadFocus = view.hasFocus
      current = text
      undoManager = manager
      languageRequest++ // a language still loading was for the file shown before
      view.setState(stateFor(text, manager, place))
      const top = place?.scrollTop ?? 0
      view.requestMeasure({ read: () => null, write: () => (view.scrollDOM.scrollTop = top) })
      if (hadFocus) view.focus()
    },
    async setLanguage(id) {
      const request = ++languageRequest
      const found = findLanguage(id)
      const extension = found ? await found.load() : []
      const indent = indentUnit.of(found?.indent ?? DEFAULT_INDENT)
      if (request !== languageRequest) return
      languageNow = [extension, indent]
      view.dispatch({ effects: language.reconfigure(languageNow) })
    },
  }
}
