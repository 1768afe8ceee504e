/** The History panel's timeline: the whole session as a strip of markers (runs coloured
 * by status, AI turns, comments, large inserts), a scrubber (a range input, so the
 * keyboard moves it too), play/pause at 1×, 4×, 16× of session time, and the time shown.
 * It only says which moment is chosen; history-panel.ts fetches what that moment held. */
import { h, replace } from './dom'
import type { HistoryEvent } from './history-api'
import { LABELS as RUN_LABELS } from './runner'

export const SPEEDS = [1, 4, 16] as const
/** Scrubber steps: a tenth of a second of session time. */
const STEP_MS = 100

export interface Timeline {
  readonly element: HTMLElement
  /** The session's events (replaces the markers and the scrubber's range). */
  setEvents(events: HistoryEvent[], start: number, end: number): void
  /** The moment chosen, unix seconds; null while live. */
  readonly moment: number | null
  /** Choose a moment (clamped to the session), as the scrubber would. */
  seek(ts: number): void
  /** Leave playback: no moment chosen, playing stopped. */
  reset(): void
  readonly playing: boolean
  pause(): void
}

/** A clock time with seconds: playback moves within minutes. */
export function clockTime(ts: number): string {
  return new Date(ts * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
}

/** What a marker stands for, said in its title and accessible name. */
export function markerLabel(event: HistoryEvent): string {
  const at = clockTime(event.ts_first)
  if (event.kind === 'run') return `Run: ${RUN_LABELS[event.run?.status ?? ''] ?? event.run?.status ?? 'result'} at ${at}`
  if (event.kind === 'ai') return `AI at ${at}`
  if (event.kind === 'comment') return `Comment by ${event.who.name} at ${at}`
  if (event.large) return `${event.who.name} inserted ${event.large} characters at ${at}${event.files.length ? ` in ${event.files.join(', ')}` : ''}`
  return `${event.who.name} at ${at}`
}

/** The events that get a marker: the ones a reader looks for in a session. */
export function markerKind(event: HistoryEvent): string | null {
  if (event.kind === 'run') return `run run-${event.run?.status ?? 'unknown'}`
  if (event.kind === 'ai') return 'ai'
  if (event.kind === 'comment') return 'comment'
  if (event.large) return 'large'
  return null
}

export function historyTimeline(onMoment: (ts: number | null) => void): Timeline {
  let start = 0
  let end = 0
  let moment: number | null = null
  let speed: number = SPEEDS[0]
  let playing = false
  let frame = 0
  let lastFrame = 0

  const markers = h('div', { class: 'history-markers', role: 'group', 'aria-label': 'Session events' })
  const scrubber = h('input', {
    type: 'range',
    class: 'history-scrubber',
    id: 'history-scrubber',
    min: 0,
    max: 0,
    step: STEP_MS,
    value: 0,
    'aria-label': 'Moment in the session',
  })
  const time = h('output', { class: 'history-time', for: 'history-scrubber', 'aria-live': 'off' }, 'Live')
  const playButton = h('button', { type: 'button', class: 'btn small history-play', 'aria-pressed': 'false' }, 'Play')
  const speedSelect = h(
    'select',
    { class: 'history-speed', 'aria-label': 'Playback speed' },
    ...SPEEDS.map((s) => h('option', { value: s }, `${s}×`)),
  )
  const startLabel = h('span', { class: 'history-edge' })
  const endLabel = h('span', { class: 'history-edge' })
  const element = h(
    'div',
    { class: 'history-timeline' },
    markers,
    scrubber,
    h('div', { class: 'history-edges' }, startLabel, endLabel),
    h('div', { class: 'history-controls' }, playButton, speedSelect, time),
  )

  const fraction = (ts: number) => (end > start ? (ts - start) / (end - start) : 0)
  const render = () => {
    if (moment === null) {
      scrubber.value = scrubber.max
      time.textContent = 'Live'
      scrubber.setAttribute('aria-valuetext', 'Live')
    } else {
      scrubber.value = String(Math.round((moment - start) * 1000))
      const text = `${clockTime(moment)} (${Math.round(fraction(moment) * 100)}% of the session)`
      time.textContent = clockTime(moment)
      scrubber.setAttribute('aria-valuetext', text)
    }
    playButton.textContent = playing ? 'Pause' : 'Play'
    playButton.setAttribute('aria-pressed', String(playing))
    playButton.disabled = end <= start
  }

  const choose = (ts: number | null) => {
    moment = ts === null ? null : Math.min(Math.max(ts, start), end)
    render()
    onMoment(moment)
  }

  const tick = (now: number) => {
    if (!playing) return
    const dt = lastFrame ? (now - lastFrame) / 1000 : 0
    lastFrame = now
    const next = (moment ?? start) + dt * speed
    if (next >= end) {
      playing = false
      choose(end)
      return
    }
    choose(next)
    frame = requestAnimationFrame(tick)
  }
  const play = () => {
    if (end <= start) return
    if (moment === null || moment >= end) choose(start)
    playing = true
    lastFrame = 0
    render()
    frame = requestAnimationFrame(tick)
  }
  const pause = () => {
    playing = false
    cancelAnimationFrame(frame)
    render()
  }

  scrubber.addEventListener('input', () => {
    const ts = start + Number(scrubber.value) / 1000 // before pause() renders the old moment
    pause()
    choose(ts)
  })
  // While live the scrubber sits at its end: End there changes no value (no input event),
  // yet it asks for the last moment. Home and End choose the ends themselves.
  scrubber.addEventListener('keydown', (event) => {
    if (event.key !== 'Home' && event.key !== 'End') return
    event.preventDefault()
    pause()
    choose(event.key === 'Home' ? start : end)
  })
  playButton.addEventListener('click', () => (playing ? pause() : play()))
  speedSelect.addEventListener('change', () => {
    speed = Number(speedSelect.value) || 1
  })

  render()
  return {
    element,
    get moment() {
      return moment
    },
    get playing() {
      return playing
    },
    setEvents(events, first, last) {
      start = first
      end = Math.max(last, first)
      // A whole number of steps (the range snaps to them), so its end reaches the session's.
      scrubber.max = String(Math.ceil(((end - start) * 1000) / STEP_MS) * STEP_MS)
      scrubber.dataset.start = String(start) // unix seconds at 0: value is milliseconds after it
      startLabel.textContent = end > start ? clockTime(start) : ''
      endLabel.textContent = end > start ? clockTime(end) : ''
      // A run writes several rows (queued, running, its result): one marker, at its result.
      const lastOfRun = new Map<string, number>()
      events.forEach((event, i) => event.run && lastOfRun.set(event.run.id, i))
      replace(
        markers,
        ...events.flatMap((event, i) => {
          const kind = markerKind(event)
          if (!kind || (event.run && lastOfRun.get(event.run.id) !== i)) return []
          const label = markerLabel(event)
          const marker = h('button', {
            type: 'button',
            class: `history-marker ${kind}`,
            style: `left:${(fraction(event.ts_first) * 100).toFixed(3)}%`,
            title: label,
            'aria-label': label,
            'data-kind': event.kind,
            'data-seq': event.seq,
          })
          marker.addEventListener('click', () => {
            pause()
            choose(event.ts)
          })
          return [marker]
        }),
      )
      if (moment !== null) choose(moment)
      else render()
    },
    seek(ts) {
      pause()
      choose(ts)
    },
    reset() {
      pause()
      moment = null
      render()
    },
    pause,
  }
}
