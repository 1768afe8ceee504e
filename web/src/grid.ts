/**
 * The teacher's grid `/x/{id}?token=…`: one tile per student of an exercise, live.
 *
 * The page holds ONE connection, a viewer of the exercise's own room `{id}.exercise`,
 * whatever the class size: the server keeps a summary per student room and writes it
 * into that room's `class` root as `student:{key}` (throttled, only when it changed),
 * next to the definition `exercise:{id}`. A summary that changed redraws its tile only;
 * the clock ticks the "edited N s ago" texts once a second.
 */
import * as Y from 'yjs'
import { ApiError } from './api'
import { connect } from './connection'
import { h, replace } from './dom'
import { CLASS_ROOT, classEntry, countdown, exerciseApi, saveBlob, type ExerciseView, type StudentListing, type StudentSummary } from './exercise-api'
import { Tile } from './grid-tile'
import { icon } from './icons'
import { connectionIndicator } from './indicators'
import { Notices } from './notices'
import { decodeToken } from './token'
import './grid.css'

type SortKey = 'name' | 'edit' | 'tests' | 'hands'
type FilterKey = 'all' | 'stuck' | 'hands'

const SORTS: [SortKey, string][] = [
  ['hands', 'Hands first'],
  ['name', 'Name'],
  ['edit', 'Last edit'],
  ['tests', 'Tests'],
]
const FILTERS: [FilterKey, string][] = [
  ['all', 'All'],
  ['stuck', 'Stuck'],
  ['hands', 'Hands'],
]

export async function gridPage(app: HTMLElement, id: string): Promise<void> {
  document.body.classList.add('grid-page')
  document.title = 'Exercise grid · CodeMentor Collab'
  const token = new URLSearchParams(window.location.search).get('token')
  const claims = token ? decodeToken(token) : null
  if (!token || !claims) return errorPage(app, 'This grid link has no valid access token.', 'Open the grid from the Exercises tab of your class.')

  const notices = new Notices()
  const doc = new Y.Doc()
  const root = doc.getMap<unknown>(CLASS_ROOT)
  const conn = connectionIndicator()

  // -- header: title, due countdown, tests, students; actions ------------------------
  const titleEl = h('h1', { class: 'grid-title' }, 'Exercise')
  const dueEl = h('span', { class: 'grid-due' })
  const testsEl = h('span', { class: 'grid-tests-count' })
  const countEl = h('span', { class: 'grid-count', role: 'status', 'aria-live': 'off' })
  const gradesButton = h('button', { type: 'button', class: 'btn small' }, icon('download'), 'Download grades (CSV)')
  const endSpotlight = h('button', { type: 'button', class: 'btn small', hidden: true }, 'End spotlight')
  const spotlightNote = h('span', { class: 'grid-spotlight-note', hidden: true })
  const sortSelect = h('select', { id: 'grid-sort', class: 'grid-sort' })
  replace(sortSelect, ...SORTS.map(([value, label]) => h('option', { value }, label)))
  const filterGroup = h('div', { class: 'grid-filter', role: 'radiogroup', 'aria-label': 'Show' })
  const filterButtons = new Map<FilterKey, HTMLButtonElement>()
  for (const [value, label] of FILTERS) {
    const button = h('button', { type: 'button', class: 'btn small toggle-btn', role: 'radio', 'aria-checked': 'false', 'data-filter': value }, label)
    button.addEventListener('click', () => setFilter(value))
    filterButtons.set(value, button)
    filterGroup.append(button)
  }
  const empty = h('p', { class: 'grid-empty' }, 'No student has opened the exercise yet.')
  const tilesEl = h('section', { class: 'grid-tiles', 'aria-label': 'Students' })

  replace(
    app,
    h(
      'header',
      { class: 'topbar grid-topbar' },
      h('a', { class: 'brand', href: '/', 'aria-label': 'CodeMentor Collab home' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '</>'), h('span', { class: 'brand-text' }, 'CodeMentor')),
      h('div', { class: 'room-heading' }, titleEl, h('span', { class: 'badge mode' }, 'Grid')),
      h('div', { class: 'topbar-right' }, conn.element),
    ),
    h(
      'main',
      { id: 'main', class: 'grid-main' },
      h(
        'div',
        { class: 'grid-bar' },
        h('div', { class: 'grid-facts' }, dueEl, testsEl, countEl),
        h(
          'div',
          { class: 'grid-controls' },
          h('label', { for: 'grid-sort', class: 'grid-label' }, 'Sort'),
          sortSelect,
          filterGroup,
          spotlightNote,
          endSpotlight,
          gradesButton,
        ),
      ),
      empty,
      tilesEl,
    ),
    notices.element,
  )

  // -- tiles ------------------------------------------------------------------------
  const tiles = new Map<string, Tile>()
  let sortKey: SortKey = 'hands'
  let filterKey: FilterKey = 'all'
  let definition: ExerciseView | null = null
  let order: string[] = []
  let listing = new Map<string, StudentListing>()


  const loadListing = async (): Promise<void> => {
    const students = await exerciseApi.students(id, token)
    listing = new Map(students.map((s) => [s.key, s]))
  }

  const openStudent = async (summary: StudentSummary) => {
    // Opened at once (a popup allowed by the click), pointed at the room when known.
    const tab = window.open('', '_blank')
    try {
      if (!listing.get(summary.key)?.open_url) await loadListing()
      const url = listing.get(summary.key)?.open_url
      if (!url) throw new ApiError(404, 'this student has no room yet')
      if (tab) tab.location.href = url
      else window.open(url, '_blank')
    } catch (err) {
      tab?.close()
      notices.show(`Could not open ${summary.name ?? 'the room'}: ${message(err)}`, 'error')
    }
  }

  // The student room on the class's stage: the exercise room's `spotlight:current`
  // (the server writes it whoever started the spotlight, here or from the class).
  let spotlit: string | null = null
  const showSpotlight = (room: string | null, name = '') => {
    spotlit = room
    endSpotlight.hidden = room === null
    spotlightNote.hidden = room === null
    spotlightNote.textContent = room ? `Spotlight: ${name}` : ''
    for (const tile of tiles.values()) tile.element.classList.toggle('spotlit', room !== null && tile.summary.room === room)
  }
  const spotlight = async (summary: StudentSummary) => {
    if (!summary.room) return notices.show('This student has no room yet.', 'error')
    try {
      await exerciseApi.spotlightFromGrid(id, token, summary.room)
      showSpotlight(summary.room, summary.name ?? 'a student')
      notices.show(`${summary.name ?? 'The student'}'s code is on the class's screen.`, 'info', 3000)
    } catch (err) {
      notices.show(`Could not spotlight: ${message(err)}`, 'error')
    }
  }
  endSpotlight.addEventListener('click', async () => {
    try {
      await exerciseApi.endSpotlightFromGrid(id, token)
      showSpotlight(null)
    } catch (err) {
      notices.show(`Could not end the spotlight: ${message(err)}`, 'error')
    }
  })
  gradesButton.addEventListener('click', async () => {
    gradesButton.disabled = true
    try {
      saveBlob(await exerciseApi.grades(id, token), `grades-${id}.csv`)
    } catch (err) {
      notices.show(`Could not download the grades: ${message(err)}`, 'error')
    } finally {
      gradesButton.disabled = false
    }
  })

  const actions = { open: openStudent, spotlight }

  const compare = (a: Tile, b: Tile): number => {
    const byName = a.name.localeCompare(b.name) || a.key.localeCompare(b.key)
    switch (sortKey) {
      case 'hands': {
        if (a.handRaised !== b.handRaised) return a.handRaised ? -1 : 1
        if (a.handRaised) return (a.summary.hand?.raised_at ?? 0) - (b.summary.hand?.raised_at ?? 0) || byName
        return byName
      }
      case 'edit':
        return b.lastEdit - a.lastEdit || byName
      case 'tests':
        // The ones failing most first; never checked last.
        if ((a.score < 0) !== (b.score < 0)) return a.score < 0 ? 1 : -1
        return a.score - b.score || byName
      default:
        return byName
    }
  }
  const visible = (tile: Tile, now: number): boolean =>
    filterKey === 'all' || (filterKey === 'hands' ? tile.handRaised : tile.stuck(now))

  /** Put the tiles in order, moving DOM nodes only when the order changed. */
  const arrange = () => {
    const now = Date.now() / 1000
    const sorted = [...tiles.values()].sort(compare)
    let shown = 0
    for (const tile of sorted) {
      const show = visible(tile, now)
      if (tile.element.hidden === show) tile.element.hidden = !show
      if (show) shown++
    }
    const next = sorted.map((t) => t.key)
    if (next.join('\n') !== order.join('\n')) {
      order = next
      tilesEl.append(...sorted.map((t) => t.element)) // append moves: the nodes are reused
    }
    empty.hidden = tiles.size > 0
    countEl.textContent = `${tiles.size} ${tiles.size === 1 ? 'student' : 'students'}${filterKey === 'all' ? '' : ` · ${shown} shown`}`
  }

  const setFilter = (value: FilterKey) => {
    filterKey = value
    for (const [key, button] of filterButtons) button.setAttribute('aria-checked', String(key === value))
    arrange()
  }
  sortSelect.addEventListener('change', () => {
    sortKey = sortSelect.value as SortKey
    arrange()
  })

  const renderHeader = () => {
    const title = definition?.title ?? 'Exercise'
    titleEl.textContent = title
    document.title = `${title} · Grid · CodeMentor Collab`
    const tests = definition?.tests ?? []
    const hidden = tests.filter((t) => t.hidden).length
    testsEl.textContent = tests.length ? `${tests.length} ${tests.length === 1 ? 'test' : 'tests'}${hidden ? ` (${hidden} hidden)` : ''}` : 'no tests'
    tickDue()
  }
  const tickDue = () => {
    const due = definition?.due_at
    dueEl.textContent = due ? `Due: ${countdown(due)}` : 'No due time'
    dueEl.classList.toggle('past', !!due && due <= Date.now() / 1000)
  }

  /** Apply what changed in the `class` root: only the keys named. */
  const applyKeys = (keys: Iterable<string>) => {
    let changed = false
    for (const key of keys) {
      if (key === `exercise:${id}`) {
        definition = classEntry<ExerciseView>(doc, 'exercise', id)
        renderHeader()
        continue
      }
      if (key === 'spotlight:current') {
        const mark = classEntry<{ room: string; name?: string }>(doc, 'spotlight', 'current')
        showSpotlight(mark?.room ?? null, mark?.name ?? 'a student')
        continue
      }
      if (!key.startsWith('student:')) continue
      const studentKey = key.slice('student:'.length)
      const raw = root.get(key)
      if (typeof raw !== 'string') {
        const gone = tiles.get(studentKey)
        if (gone) {
          gone.element.remove()
          tiles.delete(studentKey)
          changed = true
        }
        continue
      }
      let summary: StudentSummary
      try {
        summary = JSON.parse(raw) as StudentSummary
      } catch {
        continue
      }
      let tile = tiles.get(studentKey)
      if (!tile) {
        tile = new Tile(studentKey, actions)
        tiles.set(studentKey, tile)
        changed = true
      }
      if (tile.update(raw, summary)) {
        changed = true
        if (spotlit !== null) tile.element.classList.toggle('spotlit', tile.summary.room === spotlit)
      }
    }
    if (changed) arrange()
  }
  root.observe((event) => applyKeys(event.keysChanged))

  // The definition also comes over REST, before (or without) the first sync.
  exerciseApi
    .get(id, token)
    .then((view) => {
      if (!definition) {
        definition = view
        renderHeader()
      }
    })
    .catch((err: unknown) => notices.show(`Could not load the exercise: ${message(err)}`, 'error'))

  let closedBanner: HTMLElement | null = null
  connect(`${id}.exercise`, token, doc, {
    onState: (state, detail) => {
      conn.set(state, detail)
      // Refused for good (the grid's token ended): say how to get a new one.
      if (state === 'closed' && !closedBanner) {
        closedBanner = h('div', { class: 'banner error', role: 'alert' }, detail ?? 'Disconnected.', ' Open the grid again from the class room’s Exercises tab.')
        tilesEl.before(closedBanner)
      }
    },
    onReceipt: () => undefined,
    onRoleChange: () => undefined,
    onDenied: () => undefined,
  })
  applyKeys([...root.keys()])
  setFilter('all')
  renderHeader()

  window.setInterval(() => {
    const now = Date.now() / 1000
    for (const tile of tiles.values()) tile.tick(now)
    tickDue()
    if (filterKey === 'stuck') arrange()
  }, 1000)
}

function message(err: unknown): string {
  return err instanceof ApiError ? err.message : String(err)
}

function errorPage(app: HTMLElement, title: string, detail: string): void {
  replace(
    app,
    h(
      'main',
      { id: 'main', class: 'landing' },
      h('section', { class: 'card' }, h('h1', {}, title), h('p', {}, detail), h('p', {}, h('a', { class: 'btn', href: '/' }, 'Go to the start page'))),
    ),
  )
}
