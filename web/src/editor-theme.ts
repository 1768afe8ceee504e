/**
 * The editor's look in the page's colours (style.css's variables), so one theme serves
 * light and dark: the editor, its gutters, and CodeMirror's search/replace panel styled
 * like the page's buttons and inputs. Syntax colours are chosen per theme in editor.ts.
 */
import { EditorView } from '@codemirror/view'

const control = {
  font: 'inherit',
  fontSize: '13px',
  color: 'var(--text)',
  backgroundColor: 'var(--panel)',
  border: '1px solid var(--border)',
  borderRadius: '6px',
  minHeight: '30px',
  margin: '3px 6px 3px 0',
  boxSizing: 'border-box',
}

export const editorTheme = EditorView.theme({
  '&': { height: '100%', backgroundColor: 'var(--panel)', color: 'var(--text)' },
  '.cm-scroller': {
    fontFamily: "ui-monospace, 'SF Mono', 'Cascadia Code', 'DejaVu Sans Mono', Menlo, Consolas, monospace",
    lineHeight: '1.55',
  },
  '.cm-content': { paddingTop: '18px', paddingBottom: '40vh', caretColor: 'var(--text)' },
  '.cm-cursor, .cm-dropCursor': { borderLeftColor: 'var(--text)' },
  '.cm-gutters': { backgroundColor: 'var(--bg)', borderRight: '1px solid var(--border)', color: 'var(--muted)' },
  '.cm-activeLineGutter': { backgroundColor: 'var(--accent-soft)', color: 'var(--text)' },
  // The current line, faint enough that every syntax colour on it keeps AA contrast.
  '.cm-activeLine': { backgroundColor: 'var(--active-line)' },
  '&.cm-focused': { outline: 'none' },
  '.cm-placeholder': { color: 'var(--muted)', fontStyle: 'italic' },

  // -- search / replace panel (Ctrl+F) ------------------------------------------------
  '.cm-panels': { backgroundColor: 'var(--bg)', color: 'var(--text)' },
  '.cm-panels.cm-panels-bottom': { borderTop: '1px solid var(--border)' },
  '.cm-panels.cm-panels-top': { borderBottom: '1px solid var(--border)' },
  '.cm-panel.cm-search': {
    padding: '6px 40px 6px 10px',
    fontFamily: 'system-ui, -apple-system, sans-serif',
    fontSize: '13px',
  },
  '.cm-panel.cm-search > *': { verticalAlign: 'middle' },
  '.cm-panel.cm-search .cm-textfield': { ...control, padding: '4px 8px', width: '14em', maxWidth: '100%' },
  '.cm-panel.cm-search .cm-textfield:focus': { outline: '2px solid var(--accent)', outlineOffset: '0', borderColor: 'var(--accent)' },
  '.cm-panel.cm-search .cm-button': {
    ...control,
    backgroundImage: 'none',
    padding: '3px 10px',
    fontWeight: '500',
    cursor: 'pointer',
    textTransform: 'capitalize',
  },
  '.cm-panel.cm-search .cm-button:hover': { backgroundColor: 'var(--accent-soft)' },
  '.cm-panel.cm-search .cm-button:active': { backgroundImage: 'none', backgroundColor: 'var(--accent-soft)' },
  '.cm-panel.cm-search .cm-button:focus-visible': { outline: '2px solid var(--accent)', outlineOffset: '1px' },
  '.cm-panel.cm-search label': { display: 'inline-flex', alignItems: 'center', gap: '4px', margin: '3px 10px 3px 2px', fontSize: '13px', color: 'var(--text)' },
  '.cm-panel.cm-search input[type=checkbox]': { margin: '0', width: '15px', height: '15px', accentColor: 'var(--accent)' },
  '.cm-panel.cm-search button[name=close]': {
    position: 'absolute',
    top: '6px',
    right: '8px',
    width: '28px',
    height: '28px',
    fontSize: '20px',
    lineHeight: '1',
    color: 'var(--muted)',
    background: 'none',
    border: '0',
    borderRadius: '6px',
    cursor: 'pointer',
  },
  '.cm-panel.cm-search button[name=close]:hover': { backgroundColor: 'var(--accent-soft)', color: 'var(--text)' },
  '.cm-tooltip': { backgroundColor: 'var(--panel)', color: 'var(--text)', border: '1px solid var(--border)' },
})
