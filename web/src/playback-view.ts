/** The playback view: the workspace at a chosen moment, read-only, in place of the live
 * editor (which stays bound to the shared document, so everyone else keeps editing and
 * this page keeps receiving their changes). It shows the files of that moment as tabs,
 * the chosen file in a read-only CodeMirror with its language, the run output as it
 * stood then and the chat up to then, under a banner that leads back to live. */
import { defaultHighlightStyle, syntaxHighlighting } from '@codemirror/language'
import { Compartment, EditorState } from '@codemirror/state'
import { oneDarkHighlightStyle } from '@codemirror/theme-one-dark'
import { EditorView, highlightSpecialChars, lineNumbers } from '@codemirror/view'
import { h, replace } from './dom'
import { editorTheme } from './editor-theme'
import type { Moment } from './history-api'
import { clockTime } from './history-timeline'
import { findLanguage } from './languages'
import { LABELS as RUN_LABELS } from './runner'
import { settings } from './settings'
import { languageFor } from './workspace'

export interface PlaybackView {
  readonly element: HTMLElement
  /** Show the workspace as it was at `moment`. */
  show(moment: Moment): void
  /** The file shown now. */
  readonly path: string | null
  /** Back to live: the view is destroyed (a next moment starts afresh). */
  close(): void
}

export function playbackView(onBack: () => void): PlaybackView {
  const prefs = settings()
  const language = new Compartment()
  const look = new Compartment()
  const lookOf = () => [
    syntaxHighlighting(prefs.dark ? oneDarkHighlightStyle : defaultHighlightStyle, { fallback: true }),
    EditorView.theme({ '&': { fontSize: `${prefs.value.fontSize}px` } }, { dark: prefs.dark }),
  ]
  const host = h('div', { class: 'playback-editor' })
  // Made on the first moment shown and destroyed back in live: while live, the page has
  // one editor (the shared one) and nothing else to keep up to date.
  const makeView = () =>
    new EditorView({
      parent: host,
      state: EditorState.create({
        doc: '',
        extensions: [
          lineNumbers(),
          highlightSpecialChars(),
          EditorState.readOnly.of(true),
          EditorView.editable.of(false),
          EditorView.contentAttributes.of({ 'aria-label': 'Code at the chosen moment (read-only)', 'aria-readonly': 'true', tabindex: '0' }),
          language.of([]),
          look.of(lookOf()),
          editorTheme,
        ],
      }),
    })
  let view: EditorView | null = null
  prefs.watch(() => view?.dispatch({ effects: look.reconfigure(lookOf()) }))

  const when = h('strong', { class: 'playback-when' })
  const back = h('button', { type: 'button', class: 'btn small primary playback-back' }, 'Back to live')
  back.addEventListener('click', onBack)
  const banner = h('div', { class: 'playback-banner', role: 'status' }, h('span', {}, 'Viewing ', when, ' — '), back)
  const tabs = h('div', { class: 'playback-tabs', role: 'tablist', 'aria-label': 'Files at the chosen moment' })
  const run = h('section', { class: 'playback-run', 'aria-label': 'Run output at the chosen moment' })
  const chat = h('section', { class: 'playback-chat', 'aria-label': 'Chat up to the chosen moment' })
  const element = h(
    'section',
    { class: 'playback', 'aria-label': 'History playback', hidden: true },
    banner,
    tabs,
    host,
    h('div', { class: 'playback-extras' }, run, chat),
  )

  // Escape anywhere in the playback view goes back to live, like the banner's button.
  element.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return
    event.preventDefault()
    onBack()
  })

  let current: Moment | null = null
  let path: string | null = null
  let languageRequest = 0

  const showFile = (next: string) => {
    if (!current || !view) return
    path = next
    const text = current.files[next] ?? ''
    if (view.state.doc.toString() !== text) view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } })
    for (const tab of tabs.querySelectorAll<HTMLElement>('[role=tab]')) {
      const on = tab.dataset.path === next
      tab.setAttribute('aria-selected', String(on))
      tab.tabIndex = on ? 0 : -1
    }
    const request = ++languageRequest
    const found = findLanguage(languageFor(next, current.language))
    void (found ? found.load() : Promise.resolve([])).then((extension) => {
      if (request === languageRequest) view?.dispatch({ effects: language.reconfigure(extension) })
    })
  }

  const renderTabs = (paths: string[]) => {
    replace(
      tabs,
      ...paths.map((p) => {
        const tab = h('button', { type: 'button', role: 'tab', class: 'playback-tab', 'data-path': p, 'aria-selected': 'false', tabindex: -1 }, p)
        tab.addEventListener('click', () => showFile(p))
        return tab
      }),
    )
  }
  tabs.addEventListener('keydown', (event) => {
    const all = Array.from(tabs.querySelectorAll<HTMLElement>('[role=tab]'))
    const at = all.findIndex((t) => t.dataset.path === path)
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0
    if (!step || at < 0) return
    event.preventDefault()
    const next = all[(at + step + all.length) % all.length]
    showFile(next.dataset.path!)
    next.focus()
  })

  const renderRun = (moment: Moment) => {
    const r = moment.run
    if (!r) return replace(run, h('h3', {}, 'Output'), h('p', { class: 'muted small' }, 'No run yet at this moment.'))
    const parts = [
      ['Compiler output', r.compile_output],
      ['Standard output', r.stdout],
      ['Standard error', r.stderr],
    ].filter(([, text]) => text)
    replace(
      run,
      h('h3', {}, 'Output'),
      h('p', { class: `playback-run-status run-${r.status}` }, `${r.entry}: ${RUN_LABELS[r.status] ?? r.status}${r.exit_code === null ? '' : `, exit code ${r.exit_code}`}`),
      ...parts.map(([label, text]) => h('div', {}, h('span', { class: 'label' }, label), h('pre', { class: 'playback-pre' }, text))),
    )
  }

  const renderChat = (moment: Moment) => {
    const list = h(
      'ol',
      { class: 'playback-chat-log' },
      ...moment.chat.map((m) =>
        h(
          'li',
          { class: m.ai ? 'ai' : '' },
          h('span', { class: 'playback-chat-author' }, m.author),
          ' ',
          typeof m.ts === 'number' ? h('span', { class: 'muted small' }, clockTime(chatSeconds(m.ts))) : null,
          h('p', {}, m.text),
        ),
      ),
    )
    replace(chat, h('h3', {}, 'Chat'), moment.chat.length ? list : h('p', { class: 'muted small' }, 'No messages yet at this moment.'))
    list.scrollTop = list.scrollHeight
  }

  return {
    element,
    get path() {
      return path
    },
    close() {
      view?.destroy()
      view = null
      current = null
      path = null
      languageRequest++
      replace(tabs)
    },
    show(moment) {
      view ??= makeView()
      const first = current === null
      current = moment
      when.textContent = clockTime(moment.ts)
      const paths = Object.keys(moment.files).sort((a, b) => (a === moment.entry ? -1 : b === moment.entry ? 1 : a.localeCompare(b)))
      const known = Array.from(tabs.querySelectorAll<HTMLElement>('[role=tab]'), (t) => t.dataset.path).join('\n')
      if (known !== paths.join('\n')) renderTabs(paths)
      const keep = !first && path !== null && path in moment.files
      if (paths.length) showFile(keep ? path! : moment.entry in moment.files ? moment.entry : paths[0])
      else {
        path = null
        view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: '' } })
        replace(tabs)
      }
      renderRun(moment)
      renderChat(moment)
    },
  }
}

/** A chat entry's time in unix seconds: the browser writes milliseconds (Date.now()). */
export function chatSeconds(ts: number): number {
  return ts > 1e11 ? ts / 1000 : ts
}
