/** The History side-panel tab: the session's timeline, the playback of a chosen moment
 * (in place of the live editor), "Restore this moment" and "Fork from here", and who
 * wrote what (typed, pasted, from the AI). Loaded when the tab is first shown; a 403
 * (viewers, where the room does not allow them) leaves a plain message instead. */
import { ApiError } from './api'
import { h, replace } from './dom'
import { historyApi, wholeHistory, type HistoryApi, type Moment, type Summary } from './history-api'
import { clockTime, historyTimeline } from './history-timeline'
import type { Notices } from './notices'
import { playbackView } from './playback-view'
import { rememberRoom } from './recent'
import type { Session } from './session'
import './history.css'

/** At most this many /history/at requests a second while playing or scrubbing. */
const MOMENT_INTERVAL_MS = 250
/** How long after the last change an open panel reloads the timeline. */
const AUTO_REFRESH_MS = 3000

export interface HistoryPanel {
  readonly element: HTMLElement
  readonly api: HistoryApi
  /** Load (or reload) the session; called when the tab is shown. */
  load(): void
  /** Leave playback (back to the live editor). */
  backToLive(): void
  /** The shared document changed (the timeline is reloaded a while later, if shown). */
  changed(): void
}

export function historyPanel(options: {
  session: Session
  notices: Notices
  /** Where the playback view goes, and the live parts it stands in for. */
  pane: HTMLElement
  live: () => HTMLElement[]
  /** Whether the panel is shown now. */
  visible: () => boolean
}): HistoryPanel {
  const { session, notices } = options
  const history = historyApi(session.room, () => session.token)
  const status = h('p', { class: 'history-status muted small', role: 'status' })
  const refresh = h('button', { type: 'button', class: 'btn small subtle' }, 'Refresh')
  const restore = h('button', { type: 'button', class: 'btn small history-restore', disabled: true }, 'Restore this moment')
  const fork = h('button', { type: 'button', class: 'btn small history-fork', disabled: true }, 'Fork from here')
  const summary = h('section', { class: 'history-summary', 'aria-labelledby': 'history-summary-heading' })
  const body = h('div', { class: 'history-body' })
  const element = h(
    'div',
    { class: 'panel history-panel', 'aria-labelledby': 'history-heading' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'history-heading' }, 'History'), refresh),
    status,
    body,
  )

  // -- playback: the moment chosen on the timeline, fetched at most a few times a second --
  let shownMoment: Moment | null = null
  let wanted: number | null = null
  let inflight: AbortController | null = null
  let lastFetch = 0
  let fetchTimer = 0
  const playback = playbackView(() => backToLive())

  const enterPlayback = () => {
    if (playback.element.isConnected) return
    for (const el of options.live()) el.hidden = true
    options.pane.append(playback.element)
    playback.element.hidden = false
    document.body.dataset.playback = 'true'
  }
  const backToLive = () => {
    wanted = null
    window.clearTimeout(fetchTimer)
    inflight?.abort()
    timeline.reset()
    shownMoment = null
    playback.element.remove()
    playback.close()
    for (const el of options.live()) el.hidden = false
    delete document.body.dataset.playback
    restore.disabled = true
    fork.disabled = true
  }

  const fetchMoment = async () => {
    const ts = wanted
    if (ts === null) return
    lastFetch = Date.now()
    inflight?.abort()
    const controller = new AbortController()
    inflight = controller
    try {
      const moment = await history.at(ts, controller.signal)
      if (controller.signal.aborted || wanted === null) return
      shownMoment = moment
      enterPlayback()
      playback.show(moment)
      restore.disabled = !session.canEdit
      fork.disabled = false
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') return
      notices.show(`Could not show that moment: ${message(err)}`, 'error')
    }
  }
  const onMoment = (ts: number | null) => {
    if (ts === null) return backToLive()
    wanted = ts
    window.clearTimeout(fetchTimer)
    const wait = Math.max(0, MOMENT_INTERVAL_MS - (Date.now() - lastFetch))
    fetchTimer = window.setTimeout(() => void fetchMoment(), wait)
  }
  const timeline = historyTimeline(onMoment)

  // -- restore and fork ---------------------------------------------------------------
  const confirmText = h('p', {})
  const confirmButton = h('button', { type: 'button', class: 'btn danger' }, 'Restore for everyone')
  const dialog = h(
    'dialog',
    { class: 'dialog', 'aria-labelledby': 'restore-heading' },
    h('div', { class: 'dialog-head' }, h('h2', { id: 'restore-heading' }, 'Restore this moment?')),
    h(
      'div',
      { class: 'dialog-body' },
      confirmText,
      h('p', { class: 'muted small' }, 'You can undo it: restore the moment just before the restore.'),
      h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => dialog.close() }, 'Cancel'), confirmButton),
    ),
  )
  document.body.append(dialog)
  restore.addEventListener('click', () => {
    if (!shownMoment) return
    timeline.pause()
    confirmText.textContent = `Every file goes back to how it was at ${clockTime(shownMoment.ts)}. Everyone in the room sees the change at once.`
    dialog.showModal()
    confirmButton.focus()
  })
  confirmButton.addEventListener('click', async () => {
    if (!shownMoment) return dialog.close()
    confirmButton.disabled = true
    try {
      const done = await history.restore(shownMoment.ts)
      dialog.close()
      backToLive()
      notices.show(`Restored the workspace to ${clockTime(done.ts)} (${done.files} files).`, 'info', 6000)
      load()
    } catch (err) {
      dialog.close()
      notices.show(`Could not restore: ${message(err)}`, 'error')
    } finally {
      confirmButton.disabled = false
    }
  })
  fork.addEventListener('click', async () => {
    if (!shownMoment) return
    fork.disabled = true
    // Opened now (while the click counts as the person's), pointed at the room once made.
    const tab = window.open('', '_blank')
    try {
      const created = await history.fork(shownMoment.ts)
      rememberRoom(created, 'pair', `${document.title.split(' · ')[0]} (from ${clockTime(shownMoment.ts)})`)
      if (tab) {
        tab.opener = null // the new room's page has no hold on this one
        tab.location.href = created.links.owner
      }
      else notices.show('The new room is ready: allow pop-ups to open it, or find it on the start page.', 'info', 8000)
    } catch (err) {
      tab?.close()
      notices.show(`Could not fork: ${message(err)}`, 'error')
    } finally {
      fork.disabled = false
    }
  })

  // -- loading -------------------------------------------------------------------------
  let loading = false
  let loaded = false // a refused panel (403, 409) is not asked again by itself
  let refreshTimer = 0
  const editorsNote = h('p', { class: 'muted small' }, 'Owners and editors can restore a moment.')
  const load = () => {
    if (loading) return
    loading = true
    status.textContent = 'Loading the history…'
    Promise.all([wholeHistory(history), history.summary()])
      .then(([page, sum]) => {
        const start = page.first_ts ?? page.events[0]?.ts_first ?? Date.now() / 1000
        const end = page.last_ts ?? page.events[page.events.length - 1]?.ts ?? start
        timeline.setEvents(page.events, start, end)
        status.textContent = page.events.length
          ? `${page.events.length} changes from ${clockTime(start)} to ${clockTime(end)}. Choose a moment to see the code as it was.`
          : 'Nothing recorded yet.'
        // Built once: a refresh keeps the scrubber (and its focus) where it is.
        if (!timeline.element.isConnected) replace(body, timeline.element, h('div', { class: 'history-actions' }, restore, fork), editorsNote, summary)
        restore.hidden = !session.canEdit
        editorsNote.hidden = session.canEdit
        renderSummary(summary, sum)
        loaded = true
      })
      .catch((err) => {
        if (err instanceof ApiError && err.status === 403) {
          replace(body)
          status.textContent = 'The history of this room is not shown to viewers.'
        } else if (err instanceof ApiError && err.status === 409) {
          replace(body)
          status.textContent = 'History is turned off on this server.'
        } else status.textContent = `Could not load the history: ${message(err)}`
      })
      .finally(() => (loading = false))
  }
  refresh.addEventListener('click', load)

  return {
    element,
    api: history,
    load,
    backToLive,
    changed() {
      // New changes while the panel is open and live: the timeline catches up, calmly.
      if (!loaded || !options.visible() || timeline.moment !== null) return
      window.clearTimeout(refreshTimer)
      refreshTimer = window.setTimeout(() => options.visible() && timeline.moment === null && load(), AUTO_REFRESH_MS)
    },
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Per person: typed, pasted, from the AI; then the large inserts, newest last. */
function renderSummary(section: HTMLElement, sum: Summary): void {
  // The server (a run's writes) inserts no characters of anyone's: no row for it.
  const rows = sum.people.filter((p) => p.typed + p.pasted + p.ai > 0).map((p) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, p.who.role === 'ai' ? `${p.who.name} (AI)` : p.who.name),
      h('td', {}, String(p.typed)),
      h('td', {}, String(p.pasted)),
      h('td', {}, String(p.ai)),
    ),
  )
  replace(
    section,
    h('h3', { id: 'history-summary-heading' }, 'Who wrote what'),
    rows.length
      ? h(
          'table',
          { class: 'history-table' },
          h('caption', { class: 'sr-only' }, 'Characters inserted per person'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Person'), h('th', { scope: 'col' }, 'Typed'), h('th', { scope: 'col' }, 'Pasted'), h('th', { scope: 'col' }, 'AI'))),
          h('tbody', {}, ...rows),
        )
      : h('p', { class: 'muted small' }, 'Nobody has written anything yet.'),
    sum.large_inserts.length ? h('h3', {}, 'Large inserts') : null,
    sum.large_inserts.length
      ? h(
          'ul',
          { class: 'history-large' },
          ...sum.large_inserts.map((l) => h('li', {}, `${clockTime(l.ts)} · ${l.who.name} · ${l.chars} characters in ${l.path}`)),
        )
      : null,
  )
}
