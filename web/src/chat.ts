/** The chat panel on the shared `chat` array of Y.Map {id, author, text, ts}; with the AI on,
 * also its entries ({ai: true, pending}), rendered as Markdown (`markdown.ts`, loaded on
 * first use), its suggestions ({kind: "suggestion", status, old_text, new_text,
 * start_line}: one card with the explanation, the diff, Apply/Dismiss and the status),
 * its code changes ({change, undone, undone_by}: an "Undo AI change" action), an
 * "Ask AI" button and a "Stop" button. */
import * as Y from 'yjs'
import './ai-chat.css'
import { undoAiChange, undoErrorText } from './ai-undo'
import { api, ApiError, type Mode, type Role } from './api'
import { formatTime, h } from './dom'
import { safeColor } from './identity'
import type { Notices } from './notices'
import type { Session } from './session'

interface Me {
  name: string
  color: string
}

export interface ChatAi {
  /** GET /api/config said `ai: true`. */
  ai: boolean
  notices: Notices
  /** The main editor selection, in UTF-16 indices (CodeMirror's positions). */
  selection: () => { anchor: number; head: number }
  /** The file shown in the editor (the selection is in it): the question is about it. */
  path?: () => string
  /** The room's `meta` map: `ai_edits` says whether the AI edits or suggests. */
  meta?: Y.Map<unknown>
}

/** Mirrors the server's `may_ask` (ai_assist/service.py). */
export function mayAskAi(mode: Mode, role: Role): boolean {
  if (mode === 'broadcast') return role === 'owner'
  if (mode === 'review') return role === 'owner' || role === 'reviewer'
  return role === 'owner' || role === 'editor'
}

/** Mirrors the server's `may_apply`: owners, and editors outside broadcast rooms. */
export function mayApplySuggestion(mode: Mode, role: Role): boolean {
  return role === 'owner' || (role === 'editor' && mode !== 'broadcast')
}

let markdownModule: Promise<typeof import('./markdown')> | null = null
const markdown = () => (markdownModule ??= import('./markdown'))

/** An AI answer as Markdown; until the renderer has loaded (the first time), as text.
 * (The log's stick-to-bottom sees the entry grow when the Markdown is in.) */
function showAnswer(target: HTMLElement, text: string, language: string): void {
  if (target.dataset.source === text) return
  target.dataset.source = text
  target.replaceChildren(h('p', {}, text))
  void markdown().then((m) => {
    if (target.dataset.source !== text) return
    m.renderMarkdown(target, text, language)
  })
}

function showDiff(target: HTMLElement, before: string, after: string): void {
  const key = JSON.stringify([before, after])
  if (target.dataset.source === key) return
  target.dataset.source = key
  target.replaceChildren(h('span', { class: 'diff-line diff-add' }, after))
  void markdown().then((m) => {
    if (target.dataset.source !== key) return
    m.renderDiff(target, before, after)
  })
}

/** Where a suggestion applies: its line and file ("Suggested change at line 3 in
 * `utils/math.py`"), or the file it creates. The path is the AI's (the server strips a
 * peer's), shown as code text. Entries made before workspaces have no path. */
function suggestionWhere(item: unknown, read: (item: unknown, key: string) => unknown): (string | HTMLElement)[] {
  const line = Number(read(item, 'start_line') ?? 0)
  const raw = read(item, 'path')
  const path = typeof raw === 'string' && raw ? raw : null
  const file = () => h('code', { class: 'suggestion-path' }, path ?? '')
  if (path && read(item, 'new_file') === true) return ['Suggested new file ', file()]
  const head = line ? `Suggested change at line ${line}` : 'Suggested change'
  return path ? [`${head} in `, file()] : [head]
}

function aiErrorText(err: unknown): string {
  if (err instanceof ApiError) {
    switch (err.status) {
      case 403:
        return `You may not ask the AI here: ${err.message}`
      case 409:
        return `The AI could not do that: ${err.message}`
      case 429:
        return `The AI is busy: ${err.message}`
      case 503:
        return `The AI is unavailable: ${err.message}`
      default:
        return `AI request failed (${err.status}): ${err.message}`
    }
  }
  return `AI request failed: ${String(err)}`
}

/** A composer in place of the chat's own form while `active()` (a class's students post
 * through the REST API: class-student.ts). */
export interface ChatComposer {
  element: HTMLElement
  active(): boolean
}

export function chatPanel(chat: Y.Array<unknown>, session: Session, me: () => Me, aiOptions?: ChatAi, composer?: ChatComposer): HTMLElement {
  const aiOn = aiOptions?.ai === true
  const log = h('ol', { class: 'chat-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Chat messages' })
  const empty = h('p', { class: 'muted small empty' }, 'No messages yet.')
  const input = h('input', {
    type: 'text',
    id: 'chat-input',
    maxlength: 2000,
    autocomplete: 'off',
    placeholder: 'Message everyone…',
    'aria-label': 'Chat message',
  })
  const askButton = h(
    'button',
    { type: 'button', class: 'btn small ask-ai', hidden: true, title: 'Ask the AI about the selected code (the message box is the question)' },
    'Ask AI',
  )
  const stopButton = h('button', { type: 'button', class: 'btn small stop-ai', hidden: true }, 'Stop')
  const form = h(
    'form',
    { class: 'chat-form' },
    input,
    h('button', { type: 'submit', class: 'btn small primary' }, 'Send'),
    askButton,
    stopButton,
  )
  const readOnlyNote = h('p', { class: 'muted small' }, 'Viewers can read the chat but not post.')
  // Pair rooms: the owner lets the AI apply its edits itself (meta.ai_edits) instead of
  // offering them as suggestions.
  const aiEditsBox = h('input', { type: 'checkbox', id: 'ai-edits' })
  const aiEdits = h(
    'label',
    { class: 'ai-edits small', hidden: true, title: 'When on, the AI changes the code itself (one undoable edit each); when off, it suggests and a person applies' },
    aiEditsBox,
    ' Let the AI edit the code',
  )
  const element = h(
    'section',
    { class: 'panel chat', 'aria-labelledby': 'chat-heading' },
    h('h2', { id: 'chat-heading' }, 'Chat'),
    empty,
    log,
    form,
    composer?.element,
    aiEdits,
    readOnlyNote,
  )
  const canAsk = () => aiOn && mayAskAi(session.state.mode, session.role)
  const canApply = () => aiOn && mayApplySuggestion(session.state.mode, session.role)
  const canDismiss = () => canAsk() || canApply()
  const notify = (err: unknown) => aiOptions?.notices.show(aiErrorText(err), 'error', 8000)

  askButton.addEventListener('click', () => {
    const prompt = input.value.trim()
    if (!prompt) {
      aiOptions?.notices.show('Type your question for the AI in the message box first.', 'info')
      input.focus()
      return
    }
    const selection = aiOptions?.selection()
    askButton.disabled = true
    api
      .askAi(session.room, session.token, prompt, selection, aiOptions?.path?.())
      .then((accepted) => {
        input.value = ''
        if (accepted.ahead > 0) aiOptions?.notices.show(`The AI will answer after ${accepted.ahead} earlier question(s).`, 'info')
      })
      .catch(notify)
      .finally(() => (askButton.disabled = false))
  })
  const meta = aiOptions?.meta
  const showAiEdits = () => {
    aiEdits.hidden = !(aiOn && meta && session.state.mode === 'pair' && session.role === 'owner')
    aiEditsBox.checked = meta?.get('ai_edits') === true
  }
  meta?.observe(showAiEdits)
  aiEditsBox.addEventListener('change', () => {
    const wanted = aiEditsBox.checked
    aiEditsBox.disabled = true
    api
      .updateRoom(session.room, session.token, { ai_edits: wanted })
      .catch((err) => {
        aiEditsBox.checked = !wanted
        aiOptions?.notices.show(`Could not change AI edits: ${err instanceof ApiError ? err.message : String(err)}`, 'error')
      })
      .finally(() => (aiEditsBox.disabled = false))
  })

  stopButton.addEventListener('click', () => {
    stopButton.disabled = true
    api
      .stopAi(session.room, session.token)
      .catch(notify)
      .finally(() => (stopButton.disabled = false))
  })

  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const text = input.value.trim()
    if (!text) return
    const { name, color } = me()
    const message = new Y.Map<unknown>()
    message.set('id', `m${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`)
    message.set('author', name)
    message.set('color', color)
    message.set('text', text)
    message.set('ts', Date.now())
    chat.push([message])
    input.value = ''
  })

  // Messages are appended; an existing one may still change (a streamed reply), so
  // each rendered message is updated in place and the log is never rebuilt.
  const rendered: { li: HTMLElement; update: (item: unknown) => void; refresh: () => void }[] = []
  const read = (item: unknown, key: string): unknown =>
    item instanceof Y.Map ? item.get(key) : (item as Record<string, unknown> | null)?.[key]
  const create = () => {
    const author = h('span', { class: 'author' })
    const badge = h('span', { class: 'badge ai-badge', hidden: true }, 'AI')
    const questionBadge = h('span', { class: 'badge question-badge', hidden: true }, 'Question')
    const publishedBy = h('p', { class: 'muted small published-by', hidden: true })
    const time = h('time', { class: 'muted small' })
    const typing = h('span', { class: 'typing muted small', hidden: true, 'aria-label': 'The AI is typing' }, 'typing…')
    const text = h('div', { class: 'chat-text' })
    const where = h('p', { class: 'muted small suggestion-where' })
    const diff = h('pre', { class: 'ai-diff', 'aria-label': 'Suggested change' })
    const applyButton = h('button', { type: 'button', class: 'btn small primary' }, 'Apply')
    const dismissButton = h('button', { type: 'button', class: 'btn small' }, 'Dismiss')
    const status = h('p', { class: 'suggestion-status small' })
    const actions = h('div', { class: 'suggestion-actions' }, applyButton, dismissButton)
    const suggestion = h('div', { class: 'suggestion', hidden: true }, where, diff, actions, status)
    const undoButton = h('button', { type: 'button', class: 'btn small ai-undo', title: 'Put the code back as it was before this AI change' }, 'Undo AI change')
    const undoneNote = h('span', { class: 'muted small ai-undone' })
    const undoRow = h('div', { class: 'ai-change', hidden: true }, undoButton, undoneNote)
    const header = h('div', { class: 'chat-head' }, author, badge, questionBadge, time, typing)
    const li = h('li', { class: 'chat-message' }, header, text, publishedBy, suggestion, undoRow)
    let entryId = ''
    const resolve = (action: 'apply' | 'dismiss') => {
      applyButton.disabled = dismissButton.disabled = true
      api
        .resolveSuggestion(session.room, session.token, entryId, action)
        .catch(notify)
        .finally(() => (applyButton.disabled = dismissButton.disabled = false))
    }
    applyButton.addEventListener('click', () => resolve('apply'))
    dismissButton.addEventListener('click', () => resolve('dismiss'))
    undoButton.addEventListener('click', () => {
      undoButton.disabled = true
      undoAiChange(session, entryId)
        .catch((err: unknown) => aiOptions?.notices.show(undoErrorText(err), 'error', 8000))
        .finally(() => (undoButton.disabled = false))
    })
    let last: unknown = null
    const update = (item: unknown) => {
      last = item
      entryId = String(read(item, 'id') ?? '')
      author.textContent = String(read(item, 'author') ?? 'someone')
      // Entries are written by peers: only a hex colour reaches the style.
      const color = safeColor(read(item, 'color'), '')
      author.style.setProperty('--person', color || null) // style.css: readable in both themes
      const ts = Number(read(item, 'ts') ?? 0)
      time.textContent = ts ? formatTime(ts) : ''
      const isAi = read(item, 'ai') === true
      const body = String(read(item, 'text') ?? '')
      if (isAi) showAnswer(text, body, String(aiOptions?.meta?.get('language') ?? ''))
      else if (text.dataset.source !== body) {
        text.dataset.source = body
        text.replaceChildren(h('p', {}, body))
      }
      text.hidden = !body
      // A student's question the teacher published (the server's entry: peers cannot
      // write these fields, rooms/authorship.py).
      const isQuestion = read(item, 'question') === true
      li.classList.toggle('question', isQuestion)
      questionBadge.hidden = !isQuestion
      const by = read(item, 'published_by')
      publishedBy.hidden = !isQuestion || typeof by !== 'string' || !by
      publishedBy.textContent = !publishedBy.hidden ? `Question shared by ${String(by)}` : ''
      const pending = isAi && read(item, 'pending') === true
      li.classList.toggle('ai', isAi)
      li.classList.toggle('pending', pending)
      li.style.borderLeftColor = isAi ? color : ''
      badge.hidden = !isAi
      typing.hidden = !pending
      li.setAttribute('aria-busy', pending ? 'true' : 'false')
      // Only the AI's own entries are suggestions (the server strips these fields from
      // anything a person posts, and only applies what the AI proposed).
      const isSuggestion = isAi && read(item, 'kind') === 'suggestion'
      li.classList.toggle('suggestion-entry', isSuggestion)
      suggestion.hidden = !isSuggestion
      if (isSuggestion) {
        where.replaceChildren(...suggestionWhere(item, read))
        showDiff(diff, String(read(item, 'old_text') ?? ''), String(read(item, 'new_text') ?? ''))
        const state = String(read(item, 'status') ?? 'open')
        li.dataset.status = state
        const open = state === 'open'
        applyButton.hidden = !open || !canApply()
        dismissButton.hidden = !open || !canDismiss()
        actions.hidden = applyButton.hidden && dismissButton.hidden
        status.hidden = open
        status.textContent = state === 'applied' ? 'Applied' : state === 'dismissed' ? 'Dismissed' : state
      }
      // A code change the AI made (an edit, an applied suggestion): undoable as one unit.
      const changed = isAi && !!read(item, 'change')
      const undone = read(item, 'undone') === true
      undoRow.hidden = !changed || (!undone && !session.canEdit)
      undoButton.hidden = undone || !session.canEdit
      undoneNote.hidden = !undone
      undoneNote.textContent = undone ? `Undone by ${String(read(item, 'undone_by') ?? 'someone')}` : ''
      li.classList.toggle('undone', undone)
    }
    const refresh = () => update(last)
    return { li, update, refresh }
  }
  const render = () => {
    const items = chat.toArray()
    while (rendered.length > items.length) rendered.pop()!.li.remove()
    items.forEach((item, i) => {
      if (!rendered[i]) {
        rendered[i] = create()
        log.append(rendered[i].li)
      }
      rendered[i].update(item)
    })
    empty.hidden = items.length > 0
    stopButton.hidden = !canAsk() || !items.some((item) => read(item, 'ai') === true && read(item, 'pending') === true)
  }
  chat.observeDeep(render)
  session.watch(() => {
    const alternative = composer?.active() ?? false
    if (composer) composer.element.hidden = !alternative
    form.hidden = alternative || !session.canChat
    readOnlyNote.hidden = alternative || session.canChat
    askButton.hidden = !canAsk()
    showAiEdits()
    for (const entry of rendered) entry.refresh()
    stopButton.hidden = !canAsk() || !chat.toArray().some((item) => read(item, 'ai') === true && read(item, 'pending') === true)
  })
  render()
  showAiEdits()
  return element
}
