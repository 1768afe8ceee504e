/**
 * One student's tile on the teacher's grid, drawn from their `student:{key}` summary.
 * A tile is rebuilt only when its summary changes; the "edited 12 s ago" text is the
 * one part that changes with time, and `tick` updates just that.
 */
import { h, replace } from './dom'
import { ago, type StudentSummary } from './exercise-api'
import { icon } from './icons'
import { LABELS } from './runner'

const STATUS_LABELS: Record<string, string> = { wrong_answer: 'Wrong answer', passed: 'Passed' }

/** No edit for this long (or a failing check) is "stuck". */
export const STUCK_AFTER_S = 5 * 60

export interface TileActions {
  open(summary: StudentSummary): void
  spotlight(summary: StudentSummary): void
}

export class Tile {
  readonly element: HTMLElement
  summary: StudentSummary
  private raw = ''
  private agoEl: HTMLElement

  constructor(
    readonly key: string,
    private actions: TileActions,
  ) {
    this.summary = { key }
    this.agoEl = h('span', { class: 'tile-ago' })
    this.element = h('article', { class: 'tile', 'data-key': key })
    this.element.addEventListener('click', (event) => {
      // The buttons inside do their own thing; anywhere else opens the room.
      if ((event.target as HTMLElement).closest('button')) return
      this.actions.open(this.summary)
    })
  }

  /** Redraw when the summary's JSON changed; false when nothing did. */
  update(raw: string, summary: StudentSummary): boolean {
    if (raw === this.raw) return false
    this.raw = raw
    this.summary = { ...summary, key: this.key }
    this.render()
    return true
  }

  get name(): string {
    return this.summary.name || 'Student'
  }

  get handRaised(): boolean {
    return !!this.summary.hand
  }

  get lastEdit(): number {
    return this.summary.last_edit ?? 0
  }

  /** Passed fraction (for sorting): -1 when never checked. */
  get score(): number {
    const t = this.summary.tests
    if (!t || !t.total) return -1
    return (t.passed ?? 0) / t.total
  }

  /** A check still running has no verdict yet. */
  checking(): boolean {
    const status = this.summary.tests?.status
    return status === 'running' || status === 'queued'
  }

  failing(): boolean {
    const t = this.summary.tests
    return !!t && !!t.total && !this.checking() && (t.passed ?? 0) < t.total
  }

  stuck(now = Date.now() / 1000): boolean {
    const since = this.summary.last_edit ?? this.summary.joined_at ?? null
    return this.failing() || (since !== null && now - since >= STUCK_AFTER_S)
  }

  /** Only the time-dependent bits: "edited N s ago" and the stuck mark. */
  tick(now = Date.now() / 1000): void {
    const edit = this.summary.last_edit
    this.agoEl.textContent = edit ? `edited ${ago(edit, now)}` : 'no edits yet'
    this.element.classList.toggle('stuck', this.stuck(now))
  }

  private render(): void {
    const s = this.summary
    const online = !!s.online
    const hand = s.hand
    const tests = s.tests && s.tests.total ? s.tests : null
    const allPassed = !!tests && (tests.passed ?? 0) === tests.total
    const status = s.last_run?.status
    const handQuestion = hand?.question ? `Hand raised: ${hand.question}` : 'Hand raised'

    const openButton = h(
      'button',
      { type: 'button', class: 'tile-name', title: `Open ${this.name}'s room in a new tab` },
      this.name,
    )
    openButton.addEventListener('click', () => this.actions.open(this.summary))
    const spotlightButton = h(
      'button',
      { type: 'button', class: 'btn small subtle tile-spotlight', 'aria-label': `Spotlight ${this.name}'s code`, title: `Show ${this.name}'s code to the class` },
      icon('follow'),
    )
    spotlightButton.addEventListener('click', () => this.actions.spotlight(this.summary))

    this.element.dataset.online = String(online)
    this.element.classList.toggle('hand-up', !!hand)
    replace(
      this.element,
      h(
        'header',
        { class: 'tile-head' },
        h('span', { class: `tile-dot${online ? ' on' : ''}`, title: online ? 'Online' : 'Offline', 'aria-label': online ? 'online' : 'offline', role: 'img' }),
        openButton,
        hand ? h('span', { class: 'tile-hand', title: handQuestion, 'aria-label': handQuestion, role: 'img' }, icon('hand')) : null,
        spotlightButton,
      ),
      h(
        'div',
        { class: 'tile-meta' },
        this.agoEl,
        h('span', { class: 'tile-lines' }, `${s.lines ?? 0} ${s.lines === 1 ? 'line' : 'lines'}`),
      ),
      h(
        'div',
        { class: 'tile-status' },
        status ? h('span', { class: 'run-status tile-run', 'data-status': status }, STATUS_LABELS[status] ?? LABELS[status] ?? status) : h('span', { class: 'tile-run none' }, 'not run'),
        tests && this.checking()
          ? h('span', { class: 'tile-tests checking' }, 'checking…')
          : tests
          ? h('span', { class: `tile-tests${allPassed ? ' pass' : ' fail'}`, title: 'Tests passed at the last check' }, `tests ${tests.passed ?? 0}/${tests.total}`)
          : h('span', { class: 'tile-tests none' }, 'not checked'),
      ),
      h('pre', { class: 'tile-code', 'aria-label': `The first lines of ${this.name}'s code` }, s.first_lines ?? ''),
    )
    this.tick()
  }
}
