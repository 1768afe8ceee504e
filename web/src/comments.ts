/** The comments panel: compose, list by file and line, reply, resolve; and the editor
 * highlights of the file shown. */
import type { EditorView } from '@codemirror/view'
import type * as Y from 'yjs'
import { formatTime, h, inMicrotask, replace } from './dom'
import { safeColor } from './identity'
import { setCommentRanges } from './comments-decorations'
import { followRenames } from './comments-files'
import {
  addComment,
  addReply,
  anchorRange,
  readComments,
  setResolved,
  type CommentView,
  type PendingAnchor,
} from './comments-model'
import type { Session } from './session'
import { fileText, filesMap } from './workspace'
import './comments.css'

export interface CommentsPanel {
  element: HTMLElement
  /** Start a comment on the editor's selection (the Comment button and Mod-Alt-m). */
  startComment(): void
}

interface Me {
  name: string
  color: string
}

/** What the panel needs of the files open on this page (open-files.ts OpenFiles). */
export interface CommentFiles {
  /** The path of the file shown in the editor. */
  readonly active: string
  /** Every path of the workspace, in the tree's order (the entry file first). */
  paths(): string[]
  /** Shows the file in the editor (opening its tab); false when there is no such file. */
  openFile(path: string): boolean
  /** Hears when the file shown (or the set of tabs) changes. */
  onChange(listener: () => void): void
}

export function commentsPanel(
  doc: Y.Doc,
  comments: Y.Map<unknown>,
  files: CommentFiles,
  view: () => EditorView,
  session: Session,
  me: () => Me,
): CommentsPanel {
  const count = h('span', { class: 'count' })
  const list = h('ol', { class: 'comment-list', 'aria-label': 'Comments by line' })
  const empty = h('p', { class: 'muted small empty' })
  const showResolved = h('input', { type: 'checkbox', id: 'show-resolved' })
  const resolvedToggle = h('label', { class: 'small toggle', for: 'show-resolved' }, showResolved, ' Show resolved')
  const composer = h('form', { class: 'composer', hidden: true, 'aria-label': 'New comment' })
  const element = h(
    'section',
    { class: 'panel comments', 'aria-labelledby': 'comments-heading' },
    h('h2', { id: 'comments-heading' }, 'Comments ', count),
    composer,
    empty,
    list,
    resolvedToggle,
  )

  let active: string | null = null
  const items = new Map<string, { li: HTMLElement; render: (c: CommentView) => void }>()

  // -- composing ---------------------------------------------------------------
  let pending: (PendingAnchor & { path: string; snippet: string; line: number }) | null = null
  const textarea = h('textarea', {
    id: 'comment-text',
    rows: 3,
    maxlength: 2000,
    placeholder: 'Write a comment…',
    'aria-label': 'Comment text',
  })
  const where = h('p', { class: 'small where' })
  const cancel = () => {
    composer.hidden = true
    pending = null
    textarea.value = ''
    view().focus()
  }
  replace(
    composer,
    where,
    textarea,
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'submit', class: 'btn primary small' }, 'Add comment'),
      h('button', { type: 'button', class: 'btn small', onclick: cancel }, 'Cancel'),
      h('span', { class: 'muted small hint' }, 'Ctrl+Enter to send'),
    ),
  )
  composer.addEventListener('submit', (event) => {
    event.preventDefault()
    const text = textarea.value.trim()
    if (!text || !pending) return
    const { name, color } = me()
    const { path, snippet, line } = pending
    active = addComment(doc, comments, pending, { path, author: name, color, text, snippet, line })
    composer.hidden = true
    pending = null
    textarea.value = ''
    view().focus()
  })
  textarea.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) composer.requestSubmit()
    if (event.key === 'Escape') cancel()
  })

  const startComment = () => {
    if (!session.canComment) return
    // The file shown in the editor: its text is what the selection is in.
    const path = files.active
    const ytext = fileText(doc, path)
    if (!ytext) return
    const v = view()
    const sel = v.state.selection.main
    let { from, to } = sel
    if (from === to) {
      const line = v.state.doc.lineAt(from)
      from = line.from
      to = line.to
    }
    const first = v.state.doc.lineAt(from).number
    pending = { ...anchorRange(ytext, from, to), path, snippet: v.state.sliceDoc(from, to), line: first }
    const last = v.state.doc.lineAt(to).number
    const snippet = v.state.sliceDoc(from, Math.min(to, from + 60)).replace(/\s+/g, ' ').trim()
    replace(
      where,
      `${path} · ${first === last ? `Line ${first}` : `Lines ${first}–${last}`}`,
      snippet ? h('code', {}, ` ${snippet}${to - from > 60 ? '…' : ''}`) : null,
    )
    composer.hidden = false
    textarea.focus()
  }

  // -- one comment -------------------------------------------------------------
  const jumpTo = (c: CommentView) => {
    if (c.from === null || c.fileGone) return
    // In another file: show that file first (its tab opens), then the comment's code.
    if (c.path !== files.active && !files.openFile(c.path)) return
    active = c.id
    const v = view()
    const to = c.to ?? c.from
    v.dispatch({ selection: { anchor: c.from, head: to }, scrollIntoView: true })
    v.focus()
    schedule()
  }

  const createItem = (id: string) => {
    const file = h('span', { class: 'comment-file' })
    const lineButton = h('button', { type: 'button', class: 'comment-line' })
    const author = h('span', { class: 'author' })
    const time = h('time', { class: 'muted small' })
    const outdated = h('span', { class: 'badge outdated', hidden: true }, 'Outdated')
    const original = h('pre', { class: 'comment-snippet', hidden: true })
    const originalLabel = h('p', { class: 'small muted snippet-label', hidden: true })
    const body = h('p', { class: 'comment-text' })
    const replies = h('ul', { class: 'replies', 'aria-label': 'Replies' })
    const resolve = h('button', { type: 'button', class: 'btn small subtle' })
    const replyInput = h('input', { type: 'text', maxlength: 2000, placeholder: 'Reply…' })
    const replyForm = h(
      'form',
      { class: 'reply-form' },
      replyInput,
      h('button', { type: 'submit', class: 'btn small' }, 'Reply'),
    )
    const li = h(
      'li',
      { class: 'comment', 'data-id': id },
      h('div', { class: 'comment-head' }, h('span', { class: 'comment-where' }, file, h('span', { class: 'sep', 'aria-hidden': 'true' }, '·'), lineButton), outdated, author, time),
      originalLabel,
      original,
      body,
      replies,
      h('div', { class: 'comment-actions' }, replyForm, resolve),
    )
    let current: CommentView | null = null
    let replyCount = -1
    lineButton.addEventListener('click', () => current && jumpTo(current))
    resolve.addEventListener('click', () => current && setResolved(comments, id, !current.resolved))
    replyForm.addEventListener('submit', (event) => {
      event.preventDefault()
      const text = replyInput.value.trim()
      if (!text) return
      addReply(comments, id, { author: me().name, text, ts: Date.now() })
      replyInput.value = ''
    })
    const render = (c: CommentView) => {
      current = c
      const deleted = c.state === 'deleted'
      const line = deleted ? null : c.fromLine
      const endLine = c.toLine
      const was = c.line !== null ? ` (was line ${c.line})` : ''
      file.textContent = c.fileGone ? `in ${c.path} (deleted)` : c.path
      li.dataset.path = c.path
      li.dataset.fileGone = String(c.fileGone)
      lineButton.textContent =
        line === null
          ? c.fileGone
            ? `File deleted${was}`
            : `Code deleted${was}`
          : endLine !== null && endLine !== line
            ? `Lines ${line}–${endLine}`
            : `Line ${line}`
      lineButton.setAttribute('aria-label', `${file.textContent}, ${lineButton.textContent}: show in the editor`)
      lineButton.disabled = line === null
      li.dataset.line = line === null ? '' : String(line)
      li.dataset.state = c.state
      outdated.hidden = c.state === 'current'
      outdated.title = c.fileGone
        ? 'The file this comment was on has been deleted.'
        : deleted
          ? 'The code this comment was on has been deleted.'
          : 'The code changed since this comment.'
      // What the comment was about, once the code no longer shows it.
      const showOriginal = c.state !== 'current' && !!c.snippet
      original.hidden = originalLabel.hidden = !showOriginal
      original.textContent = showOriginal ? clip(c.snippet ?? '') : ''
      originalLabel.textContent = deleted ? 'The code, as commented on:' : 'Originally:'
      li.classList.toggle('resolved', c.resolved)
      li.classList.toggle('outdated', c.state !== 'current')
      li.classList.toggle('active', c.id === active)
      author.textContent = c.author
      // Written by peers: hex colours only. style.css makes it readable in both themes.
      author.style.setProperty('--person', safeColor(c.color, '') || null)
      time.textContent = c.ts ? formatTime(c.ts) : ''
      body.textContent = c.text
      if (c.replies.length !== replyCount) {
        replyCount = c.replies.length
        replace(
          replies,
          ...c.replies.map((r) =>
            h('li', {}, h('span', { class: 'author' }, r.author), ' ', h('span', {}, r.text)),
          ),
        )
      }
      resolve.textContent = c.resolved ? 'Reopen' : 'Resolve'
      resolve.setAttribute('aria-label', `${c.resolved ? 'Reopen' : 'Resolve'} the comment on ${lineButton.textContent}`)
      replyInput.setAttribute('aria-label', `Reply to ${c.author}`)
      const canAct = session.canComment
      replyForm.hidden = !canAct || c.resolved
      resolve.hidden = !canAct
    }
    return { li, render }
  }

  /** At most 8 lines, without the indentation they share. */
  const clip = (code: string): string => {
    let lines = code.split('\n')
    const indents = lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length)
    const common = indents.length ? Math.min(...indents) : 0
    lines = lines.map((l) => l.slice(Math.min(common, l.length - l.trimStart().length)))
    return lines.length > 8 ? `${lines.slice(0, 8).join('\n')}\n…` : lines.join('\n')
  }

  // -- refresh -----------------------------------------------------------------
  const schedule = inMicrotask(() => refresh())

  /** By file (the tree's order, deleted files last), then by position in the file. */
  const byFile = (): ((a: CommentView, b: CommentView) => number) => {
    const order = new Map(files.paths().map((path, i) => [path, i]))
    const rank = (c: CommentView) => (c.fileGone ? Infinity : (order.get(c.path) ?? Infinity))
    return (a, b) =>
      rank(a) - rank(b) ||
      (a.path < b.path ? -1 : a.path > b.path ? 1 : 0) ||
      (a.from ?? Infinity) - (b.from ?? Infinity) ||
      a.ts - b.ts
  }

  const refresh = () => {
    const all = readComments(comments, doc).sort(byFile())
    const visible = all.filter((c) => showResolved.checked || !c.resolved)
    const open = all.filter((c) => !c.resolved).length
    count.textContent = `(${open})`
    empty.hidden = visible.length > 0
    const resolvedCount = all.length - open
    resolvedToggle.hidden = resolvedCount === 0
    resolvedToggle.lastChild!.textContent = ` Show resolved (${resolvedCount})`

    const seen = new Set<string>()
    for (const c of visible) {
      seen.add(c.id)
      let item = items.get(c.id)
      if (!item) {
        item = createItem(c.id)
        items.set(c.id, item)
      }
      item.render(c)
    }
    for (const [id, item] of items) {
      if (!seen.has(id)) {
        item.li.remove()
        items.delete(id)
      }
    }
    // Reorder only when needed: moving a node that holds focus would drop the focus.
    const wanted = visible.map((c) => items.get(c.id)!.li)
    const currentOrder = Array.from(list.children)
    if (wanted.length !== currentOrder.length || wanted.some((li, i) => li !== currentOrder[i])) {
      replace(list, ...wanted)
    }
    // Positions are in each comment's own file: only the shown file's comments go on the editor.
    const shown = all.filter((c) => !c.fileGone && c.path === files.active)
    view().dispatch({ effects: setCommentRanges.of({ comments: shown, active }) })
  }

  followRenames(doc, comments)
  comments.observeDeep(schedule)
  doc.getText('code').observe(schedule)
  filesMap(doc).observeDeep(schedule)
  doc.getMap('meta').observe(schedule) // meta.entry: the entry file renamed
  files.onChange(schedule)
  showResolved.addEventListener('change', schedule)
  session.watch(() => {
    empty.textContent = session.canComment
      ? 'No comments yet. Select code and press Comment (Ctrl+Alt+M).'
      : 'No comments yet.'
    if (!session.canComment) composer.hidden = true
    schedule()
  })
  schedule()
  return { element, startComment }
}
