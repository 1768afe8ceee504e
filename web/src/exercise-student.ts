/**
 * What students see of exercises.
 *
 * - In the class (a broadcast room): a bar per exercise in the class root
 *   (`exercise:{id}`), "Exercise: <title> — Open": POST /api/exercises/{id}/join makes
 *   (once) the student's own room and answers its link, opened in a new tab.
 * - In their own room (its class root has `exercise:{id}`): a banner with the title, the
 *   due countdown (or "Locked: submitted"), the visible tests, and Check: POST
 *   /api/exercises/{id}/check runs every test; the result (also written into `runs` as a
 *   record of kind "check", so a reload shows the last one) lists each visible test with
 *   expected vs got, hidden ones pass/fail only.
 */
import * as Y from 'yjs'
import { rememberFork } from './class-fork'
import { h, inMicrotask, replace } from './dom'
import { CLASS_ROOT, classEntries, countdown, exerciseApi, type CheckRecord, type CheckResult, type ClassExercise, type StudentExercise } from './exercise-api'
import { describe } from './exercise-staff'
import { icon } from './icons'
import type { Notices } from './notices'
import type { Session } from './session'

/** The class's exercises as bars above a student's editor. */
export function classExerciseBar(doc: Y.Doc, session: Session, notices: Notices): HTMLElement {
  const element = h('div', { class: 'exercise-bars', role: 'region', 'aria-label': 'Exercises' })
  const render = () => {
    const exercises = [...classEntries<ClassExercise>(doc, 'exercise').values()]
    element.hidden = exercises.length === 0
    replace(
      element,
      ...exercises.map((exercise) => {
        const open = h('button', { type: 'button', class: 'btn small primary' }, 'Open')
        open.setAttribute('aria-label', `Open the exercise ${exercise.title}`)
        open.addEventListener('click', async () => {
          const tab = window.open('', '_blank')
          open.disabled = true
          try {
            const joined = await exerciseApi.join(exercise.id, session.token)
            // Its page links back here (class-fork.ts), as a fork's does.
            const title = document.title.split(' · ')[0]
            rememberFork(joined.room, { room: session.room, title, url: window.location.href, kind: 'exercise' })
            if (tab) tab.location.href = joined.url
            else window.open(joined.url, '_blank')
          } catch (err) {
            tab?.close()
            notices.show(`Could not open the exercise: ${describe(err)}`, 'error', 8000)
          } finally {
            open.disabled = false
          }
        })
        return h(
          'div',
          { class: 'exercise-bar', 'data-id': exercise.id },
          icon('edit'),
          h('span', { class: 'exercise-bar-text' }, 'Exercise: ', h('strong', {}, exercise.title)),
          exercise.due_at ? h('span', { class: 'exercise-bar-due' }, countdown(exercise.due_at)) : null,
          open,
        )
      }),
    )
  }
  doc.getMap<unknown>(CLASS_ROOT).observe(inMicrotask(render))
  render()
  window.setInterval(render, 15_000)
  return element
}

/** The student's own room: the exercise banner with Check. `room` is `{id}.s.{key}`. */
export function exerciseBanner(doc: Y.Doc, room: string, session: Session, notices: Notices): HTMLElement {
  const element = h('section', { class: 'exercise-banner', 'aria-label': 'Exercise', hidden: true })
  const runs = doc.getMap<unknown>('runs')
  const studentKey = room.includes('.s.') ? room.slice(room.indexOf('.s.') + 3) : null
  let exercise: StudentExercise | null = null
  let checking = false
  let shown: CheckRecord | null = null

  const titleEl = h('strong', { class: 'exercise-banner-title' })
  const dueEl = h('span', { class: 'exercise-banner-due' })
  const checkButton = h('button', { type: 'button', class: 'btn small primary exercise-check' }, icon('check'), 'Check')
  const testsEl = h('div', { class: 'exercise-banner-tests' })
  const resultEl = h('div', { class: 'exercise-result', role: 'status', 'aria-live': 'polite' })
  replace(
    element,
    h('div', { class: 'exercise-banner-head' }, h('span', { class: 'exercise-banner-label' }, 'Exercise'), titleEl, dueEl, checkButton),
    testsEl,
    resultEl,
  )

  const locked = () => !!exercise?.due_at && !!exercise.lock_after_due && exercise.due_at <= Date.now() / 1000
  const tickDue = () => {
    if (!exercise) return
    if (locked()) dueEl.textContent = 'Locked: submitted'
    else dueEl.textContent = exercise.due_at ? `Due: ${countdown(exercise.due_at)}` : ''
    dueEl.classList.toggle('locked', locked())
    checkButton.disabled = checking || locked() || (session.role !== 'owner' && session.role !== 'editor')
    checkButton.title = locked() ? 'Checks closed at the due time' : 'Run your code against the tests'
  }

  const renderTests = () => {
    const tests = exercise?.tests ?? []
    if (!tests.length) {
      replace(testsEl, h('p', { class: 'exercise-no-tests' }, 'No tests: Check runs your code.'))
      return
    }
    const visible = tests.filter((t) => !t.hidden)
    const hidden = tests.length - visible.length
    replace(
      testsEl,
      h(
        'details',
        { class: 'exercise-visible-tests', open: true },
        h('summary', {}, `${tests.length} ${tests.length === 1 ? 'test' : 'tests'}${hidden ? ` (${hidden} hidden)` : ''}`),
        h(
          'ul',
          {},
          ...visible.map((t, i) =>
            h(
              'li',
              { class: 'exercise-test-view' },
              h('span', { class: 'exercise-test-name' }, t.name || `Test ${i + 1}`),
              h('span', { class: 'exercise-io' }, 'input ', h('code', {}, t.stdin || '(none)')),
              h('span', { class: 'exercise-io' }, 'expected ', h('code', {}, t.expected_output ?? '')),
            ),
          ),
        ),
      ),
    )
  }

  const renderResult = (record: CheckRecord | null) => {
    shown = record
    if (!record) return replace(resultEl)
    const status = record.status ?? ''
    if (status === 'queued' || status === 'running') return replace(resultEl, h('p', { class: 'exercise-checking' }, 'Checking…'))
    const total = record.total ?? record.results?.length ?? 0
    const passed = record.passed ?? 0
    const all = total > 0 && passed === total
    replace(
      resultEl,
      h('p', { class: `exercise-score${all ? ' pass' : ' fail'}` }, `Passed ${passed}/${total}`),
      h('ul', { class: 'exercise-results' }, ...(record.results ?? []).map((r, i) => resultItem(r, i))),
    )
  }

  const latestCheck = (): CheckRecord | null => {
    let best: CheckRecord | null = null
    runs.forEach((value, id) => {
      const raw = (value instanceof Y.Map ? value.toJSON() : value) as Record<string, unknown> | null
      if (!raw || raw.kind !== 'check') return
      // In `runs` the results are a JSON list as text (runs entries hold primitives).
      const record = { ...raw, results: parseResults(raw.results) } as CheckRecord
      if (!best || (record.ts ?? 0) > (best.ts ?? 0)) best = { ...record, id }
    })
    return best
  }

  checkButton.addEventListener('click', async () => {
    if (!exercise) return
    checking = true
    tickDue()
    renderResult({ status: 'running' })
    try {
      const staff = session.tokenRole === 'owner' && studentKey ? studentKey : undefined
      renderResult(await exerciseApi.check(exercise.id, session.token, staff))
    } catch (err) {
      renderResult(shown && shown.status !== 'running' ? shown : latestCheck())
      notices.show(`Could not check: ${describe(err)}`, 'error', 8000)
    } finally {
      checking = false
      tickDue()
    }
  })

  const apply = () => {
    const found = [...classEntries<StudentExercise>(doc, 'exercise').values()][0] ?? null
    exercise = found
    element.hidden = !found
    if (!found) return
    titleEl.textContent = found.title
    renderTests()
    tickDue()
  }
  doc.getMap<unknown>(CLASS_ROOT).observe(inMicrotask(apply))
  runs.observeDeep(
    inMicrotask(() => {
      if (!checking) renderResult(latestCheck())
    }),
  )
  apply()
  renderResult(latestCheck())
  window.setInterval(tickDue, 1000)
  return element
}

function resultItem(result: CheckResult, i: number): HTMLElement {
  const name = result.name || `Test ${i + 1}`
  const mark = h('span', { class: `exercise-mark ${result.passed ? 'pass' : 'fail'}` }, result.passed ? '✓ pass' : '✗ fail')
  if (result.hidden) {
    return h('li', { class: 'exercise-result-item hidden-test' }, mark, h('span', {}, `${name} (hidden)`))
  }
  return h(
    'li',
    { class: 'exercise-result-item' },
    mark,
    h('span', {}, name),
    result.passed
      ? null
      : h(
          'div',
          { class: 'exercise-diff' },
          h('span', {}, 'expected ', h('code', {}, result.expected ?? '')),
          h('span', {}, 'got ', h('code', {}, result.stdout ?? result.stderr ?? '')),
        ),
  )
}

function parseResults(value: unknown): CheckResult[] {
  if (Array.isArray(value)) return value as CheckResult[]
  if (typeof value !== 'string') return []
  try {
    const parsed: unknown = JSON.parse(value)
    return Array.isArray(parsed) ? (parsed as CheckResult[]) : []
  } catch {
    return []
  }
}
