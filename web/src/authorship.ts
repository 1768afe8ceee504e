/** Authorship colours: the current file's text tinted by who wrote each character
 * (GET /history/authorship), in each person's cursor colour where this page knows it (the
 * AI in its own), their name on hover. Off by default; while on, it is asked again a
 * moment after the text changes and when another file is shown. The spans map through
 * local edits in between, so typing never shows colours on the wrong characters. */
import { StateEffect, StateField, type Extension, type Range } from '@codemirror/state'
import { Decoration, EditorView, type DecorationSet } from '@codemirror/view'
import { ApiError } from './api'
import { h, replace } from './dom'
import type { Authorship, HistoryApi, Who } from './history-api'
import { COLORS } from './identity'

export interface AuthorSpan {
  from: number
  to: number
  name: string
  color: string
}

const setSpans = StateEffect.define<AuthorSpan[] | null>()

const authorField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(value, tr) {
    let next = value.map(tr.changes)
    for (const effect of tr.effects) {
      if (!effect.is(setSpans)) continue
      const length = tr.state.doc.length
      const ranges: Range<Decoration>[] = []
      for (const span of effect.value ?? []) {
        const from = Math.max(0, Math.min(span.from, length))
        const to = Math.max(0, Math.min(span.to, length))
        if (to <= from) continue
        ranges.push(
          Decoration.mark({
            class: 'cm-author',
            attributes: { title: span.name, 'data-author': span.name, style: `--author:${span.color}` },
          }).range(from, to),
        )
      }
      next = Decoration.set(ranges, true)
    }
    return next
  },
  provide: (field) => EditorView.decorations.from(field),
})

/** The editor extension (part of every file's state). */
export const authorshipField: Extension = authorField

const HEX = /^#[0-9a-f]{6}$/i
export const AI_COLOR = '#7b3fc4'

/** One colour per person: their cursor colour when known, the AI its own, else a
 * palette colour by their place in the list. */
export function personColor(who: Who, index: number, known: (id: string) => string | null): string {
  if (who.role === 'ai') return AI_COLOR
  const color = known(who.id)
  if (color && HEX.test(color)) return color
  return COLORS[index % COLORS.length].value
}

export function spansOf(data: Authorship, known: (id: string) => string | null): AuthorSpan[] {
  const colors = data.people.map((who, i) => personColor(who, i, known))
  return data.spans
    .filter((s) => data.people[s.who])
    .map((s) => ({ from: s.from, to: s.to, name: data.people[s.who].name, color: colors[s.who] }))
}

export interface AuthorshipToggle {
  readonly button: HTMLButtonElement
  /** The names and colours of the file shown (shown while on). */
  readonly legend: HTMLElement
  /** Ask again (a file change, the text changed). */
  refresh(): void
}

export function authorshipToggle(options: {
  history: HistoryApi
  view: () => EditorView
  path: () => string
  /** A person's cursor colour by their verified id, when they are here. */
  colorOf: (id: string) => string | null
  /** Something went wrong (said to the person). */
  onError: (message: string) => void
}): AuthorshipToggle {
  const button = h('button', { type: 'button', class: 'btn authorship-toggle', 'aria-pressed': 'false', title: 'Colour the code by who wrote it' }, 'Authorship')
  const legend = h('div', { class: 'authorship-legend', hidden: true, 'aria-live': 'polite' })
  let on = false
  let timer = 0
  let request = 0

  const apply = (spans: AuthorSpan[] | null) => options.view().dispatch({ effects: setSpans.of(spans) })

  const load = async () => {
    const mine = ++request
    const path = options.path()
    try {
      const data = await options.history.authorship(path)
      if (!on || mine !== request || path !== options.path()) return
      const spans = spansOf(data, options.colorOf)
      // The server's text is the shared text now; while the two differ (an edit on its
      // way), the offsets would be off: the next refresh, after the edit, fixes it.
      if (data.text === options.view().state.doc.toString()) apply(spans)
      const colors = new Map<string, string>()
      for (const s of spans) colors.set(s.name, s.color)
      replace(
        legend,
        h('span', { class: 'muted small' }, `Written by (${path}):`),
        ...[...colors].map(([name, color]) =>
          h('span', { class: 'authorship-person' }, h('span', { class: 'dot', style: `background:${color}`, 'aria-hidden': 'true' }), name),
        ),
        colors.size ? null : h('span', { class: 'muted small' }, 'no recorded authors yet'),
      )
    } catch (err) {
      if (mine !== request) return
      if (err instanceof ApiError && err.status === 422) return apply(null) // a file not known to the server yet
      options.onError(`Could not load authorship: ${err instanceof Error ? err.message : String(err)}`)
    }
  }

  const set = (next: boolean) => {
    on = next
    button.setAttribute('aria-pressed', String(on))
    legend.hidden = !on
    window.clearTimeout(timer)
    if (on) void load()
    else {
      request++
      apply(null)
    }
  }
  button.addEventListener('click', () => set(!on))

  return {
    button,
    legend,
    refresh() {
      if (!on) return
      window.clearTimeout(timer)
      timer = window.setTimeout(() => void load(), 800)
    },
  }
}
