/**
 * Search across every file of the workspace (Ctrl+Shift+F, or the Search button): a panel
 * with the query and "Match case", results grouped by file, each line with its number
 * and the matches marked; choosing one opens that file at that line (`open`, given by the
 * room page). Results follow the document live while the panel is open.
 */
import { h, replace } from './dom'
import { filePaths, fileText } from './workspace'
import * as Y from 'yjs'
import './workspace-search.css'

/** Matches shown at most: a one-letter query in a big workspace stays quick to draw. */
export const MAX_MATCHES = 500
/** Characters of a long line shown before its first match. */
const LEAD = 40
const LINE_CHARS = 200

export interface LineHit {
  /** 1-based, as the editor's gutter counts. */
  line: number
  text: string
  /** [start, end) offsets of each match within `text`. */
  ranges: [number, number][]
}

export interface FileHits {
  path: string
  lines: LineHit[]
}

export interface SearchResult {
  files: FileHits[]
  matches: number
  truncated: boolean
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

/** Every match of `query` in the workspace's files, the entry file first. */
export function searchWorkspace(doc: Y.Doc, query: string, matchCase: boolean, max = MAX_MATCHES): SearchResult {
  const result: SearchResult = { files: [], matches: 0, truncated: false }
  if (!query) return result
  // A RegExp, not toLowerCase + indexOf: case folding may change a string's length.
  const pattern = new RegExp(escapeRegExp(query), matchCase ? 'gu' : 'giu')
  for (const path of filePaths(doc)) {
    const text = fileText(doc, path)?.toString() ?? ''
    const hits: LineHit[] = []
    text.split('\n').forEach((line, index) => {
      if (result.truncated) return
      const ranges: [number, number][] = []
      for (const match of line.matchAll(pattern)) {
        if (result.matches >= max) {
          result.truncated = true
          break
        }
        ranges.push([match.index, match.index + match[0].length])
        result.matches++
      }
      if (ranges.length) hits.push({ line: index + 1, text: line.replace(/\r$/, ''), ranges })
    })
    if (hits.length) result.files.push({ path, lines: hits })
    if (result.truncated) break
  }
  return result
}

/** The line's text with its matches in <mark>, long lines cut around the first match. */
function lineView(hit: LineHit): HTMLElement {
  // Indentation says nothing here; a long line is cut to show its first match.
  const indent = hit.text.length - hit.text.trimStart().length
  const start = Math.max(Math.min(indent, hit.ranges[0][0]), hit.ranges[0][0] - LEAD)
  const end = Math.min(hit.text.length, start + LINE_CHARS)
  const code = h('span', { class: 'ws-line-text' }, start > indent ? '…' : '')
  let at = start
  for (const [from, to] of hit.ranges) {
    if (from >= end) break
    code.append(hit.text.slice(at, from), h('mark', {}, hit.text.slice(from, Math.min(to, end))))
    at = Math.min(to, end)
  }
  code.append(hit.text.slice(at, end), end < hit.text.length ? '…' : '')
  return code
}

export interface SearchOptions {
  doc: Y.Doc
  /** Opens `path` in the editor with the cursor at the start of `line` (1-based). */
  open: (path: string, line: number) => void
}

export interface SearchUi {
  /** The toolbar's Search button. */
  button: HTMLButtonElement
  /** The panel (position: fixed; appended to the page by mountSearch). */
  panel: HTMLElement
  show(): void
  hide(): void
}

export function mountSearch({ doc, open }: SearchOptions): SearchUi {
  const input = h('input', { type: 'search', class: 'ws-query', 'aria-label': 'Search across files', placeholder: 'Search all files', autocomplete: 'off', spellcheck: 'false' })
  const matchCase = h('input', { type: 'checkbox', id: 'ws-match-case' })
  const status = h('p', { class: 'ws-status', role: 'status', 'aria-live': 'polite' })
  const results = h('div', { class: 'ws-results' })
  const close = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close the search' }, '×')
  const panel = h(
    'section',
    { class: 'ws-search', role: 'search', 'aria-labelledby': 'ws-search-heading', hidden: true },
    h('div', { class: 'ws-head' }, h('h2', { id: 'ws-search-heading' }, 'Search files'), close),
    input,
    h('label', { class: 'ws-option', for: 'ws-match-case' }, matchCase, 'Match case'),
    status,
    results,
  )
  const button = h(
    'button',
    { type: 'button', class: 'btn search-files-button', 'aria-keyshortcuts': 'Control+Shift+F', title: 'Search across files (Ctrl+Shift+F)', 'aria-expanded': 'false' },
    h('span', { class: 'btn-label' }, 'Search'),
  )
  let returnFocus: HTMLElement | null = null

  const render = () => {
    const found = searchWorkspace(doc, input.value, matchCase.checked)
    replace(results)
    if (!input.value) {
      status.textContent = ''
      return
    }
    const fileCount = found.files.length
    status.textContent = found.matches
      ? `${found.truncated ? 'The first ' : ''}${found.matches} match${found.matches === 1 ? '' : 'es'} in ${fileCount} file${fileCount === 1 ? '' : 's'}${found.truncated ? ': refine the search to see the rest' : ''}.`
      : 'No matches.'
    for (const file of found.files) {
      const count = file.lines.reduce((n, l) => n + l.ranges.length, 0)
      results.append(
        h(
          'div',
          { class: 'ws-file', 'data-path': file.path },
          h('h3', { class: 'ws-file-name' }, h('span', { class: 'ws-path' }, file.path), h('span', { class: 'ws-count', 'aria-label': `${count} matches` }, String(count))),
          h(
            'ul',
            { class: 'ws-lines' },
            ...file.lines.map((hit) => {
              const item = h(
                'button',
                { type: 'button', class: 'ws-hit', 'data-line': hit.line, 'aria-label': `${file.path} line ${hit.line}: ${hit.text.trim()}` },
                h('span', { class: 'ws-line-no', 'aria-hidden': 'true' }, String(hit.line)),
                lineView(hit),
              )
              item.addEventListener('click', () => open(file.path, hit.line))
              return h('li', {}, item)
            }),
          ),
        ),
      )
    }
  }

  let timer: number | undefined
  const later = () => {
    window.clearTimeout(timer)
    timer = window.setTimeout(render, 120)
  }
  const onUpdate = () => {
    if (!panel.hidden && input.value) later()
  }
  input.addEventListener('input', later)
  input.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter') return
    event.preventDefault()
    render() // what is typed now, not what the debounce last saw
    results.querySelector<HTMLButtonElement>('.ws-hit')?.click()
  })
  matchCase.addEventListener('change', render)

  const show = () => {
    if (panel.hidden) returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null
    panel.hidden = false
    button.setAttribute('aria-expanded', 'true')
    doc.on('update', onUpdate)
    // What is selected in the editor is a good first query.
    const selected = window.getSelection()?.toString() ?? ''
    if (selected && !selected.includes('\n') && selected.length <= 100) input.value = selected
    input.focus()
    input.select()
    render()
  }
  const hide = () => {
    if (panel.hidden) return
    panel.hidden = true
    button.setAttribute('aria-expanded', 'false')
    doc.off('update', onUpdate)
    returnFocus?.focus()
  }
  button.addEventListener('click', () => (panel.hidden ? show() : hide()))
  close.addEventListener('click', hide)
  panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault()
      hide()
    }
  })
  // Capture: before the editor, whose own keymap has no Ctrl+Shift+F.
  document.addEventListener(
    'keydown',
    (event) => {
      if ((event.ctrlKey || event.metaKey) && event.shiftKey && !event.altKey && event.key.toLowerCase() === 'f') {
        event.preventDefault()
        show()
      }
    },
    true,
  )
  document.body.append(panel)
  return { button, panel, show, hide }
}
