/**
 * The Exercises tab of a broadcast class, for its staff (owner, editors): make an
 * exercise from the current workspace (tests: stdin -> expected output, each visible
 * or hidden; optional due time, locked after it) and open the class's exercises' grids.
 *
 * The class's exercises are the class root's `exercise:{id}` entries (the server's). A
 * grid needs a viewer token of the exercise's room: the create answer carries one (kept
 * in localStorage per exercise); for an exercise made elsewhere, GET /api/exercises/{id}
 * with the staff token is asked for one (`grid_url`, when the server offers it).
 */
import * as Y from 'yjs'
import { ApiError } from './api'
import { h, inMicrotask, replace } from './dom'
import { CLASS_ROOT, classEntries, countdown, exerciseApi, type ClassExercise, type ExerciseTest } from './exercise-api'
import type { Notices } from './notices'
import type { Session } from './session'
import { decodeToken } from './token'
import { filePaths } from './workspace'

const GRID_KEY = 'codementor.grid.'
const MAX_TESTS = 50

export function rememberGrid(id: string, url: string): void {
  try {
    localStorage.setItem(GRID_KEY + id, url)
  } catch {
    // storage refused: the grid link lasts for this page only
  }
}

/** The grid link kept for exercise `id`, while its token lasts. */
function storedGrid(id: string): string | null {
  try {
    const url = localStorage.getItem(GRID_KEY + id)
    const token = url ? new URL(url, window.location.origin).searchParams.get('token') : null
    const exp = token ? decodeToken(token)?.exp : null
    return url && !(exp && exp * 1000 < Date.now()) ? url : null
  } catch {
    return null
  }
}

interface TestRow {
  element: HTMLElement
  value(): ExerciseTest
}

export function exercisesPanel(doc: Y.Doc, session: Session, notices: Notices): HTMLElement {
  const root = doc.getMap<unknown>(CLASS_ROOT)
  // The grid (another tab) spotlights in this class with this token.
  const gridUrls = new Map<string, string>()

  // -- the form ---------------------------------------------------------------------
  const title = h('input', { id: 'exercise-title', type: 'text', maxlength: 200, required: true, placeholder: 'e.g. Sum of two numbers' })
  const starter = h('p', { class: 'exercise-starter' })
  const due = h('input', { id: 'exercise-due', type: 'datetime-local' })
  const lock = h('input', { id: 'exercise-lock', type: 'checkbox', checked: true })
  const testsEl = h('ol', { class: 'exercise-tests', 'aria-label': 'Tests' })
  const rows: TestRow[] = []
  const addTest = h('button', { type: 'button', class: 'btn small' }, '+ Add test')
  const submit = h('button', { type: 'submit', class: 'btn primary' }, 'Create exercise')
  const error = h('p', { class: 'exercise-error', role: 'alert', hidden: true })

  const renumber = () => {
    rows.forEach((row, i) => {
      const n = i + 1
      row.element.querySelector('.exercise-test-n')!.textContent = `Test ${n}`
      row.element.querySelectorAll<HTMLElement>('[data-label]').forEach((el) => el.setAttribute('aria-label', `Test ${n} ${el.dataset.label}`))
    })
    addTest.disabled = rows.length >= MAX_TESTS
  }
  const newRow = (): TestRow => {
    const stdin = h('textarea', { class: 'exercise-stdin', rows: 2, 'data-label': 'input', placeholder: 'stdin' })
    const expected = h('textarea', { class: 'exercise-expected', rows: 2, 'data-label': 'expected output', placeholder: 'expected output' })
    const hidden = h('input', { type: 'checkbox', 'data-label': 'hidden' })
    const remove = h('button', { type: 'button', class: 'btn small subtle', 'data-label': 'remove' }, 'Remove')
    const element = h(
      'li',
      { class: 'exercise-test' },
      h('div', { class: 'exercise-test-head' }, h('span', { class: 'exercise-test-n' }), h('label', { class: 'exercise-hidden' }, hidden, ' Hidden'), remove),
      h('div', { class: 'exercise-test-io' }, h('span', { 'aria-hidden': 'true' }, 'Input (stdin)'), h('span', { 'aria-hidden': 'true' }, 'Expected output'), stdin, expected),
    )
    const row: TestRow = {
      element,
      value: () => ({ stdin: stdin.value, expected_output: expected.value, hidden: hidden.checked }),
    }
    remove.addEventListener('click', () => {
      rows.splice(rows.indexOf(row), 1)
      element.remove()
      renumber()
    })
    return row
  }
  addTest.addEventListener('click', () => {
    const row = newRow()
    rows.push(row)
    testsEl.append(row.element)
    renumber()
    row.element.querySelector('textarea')?.focus()
  })

  const form = h(
    'form',
    { class: 'exercise-form', 'aria-labelledby': 'exercise-form-heading' },
    h('h3', { id: 'exercise-form-heading' }, 'New exercise'),
    h('label', { for: 'exercise-title' }, 'Title'),
    title,
    starter,
    h('div', { class: 'exercise-tests-head' }, h('span', {}, 'Tests (stdin → expected output)'), addTest),
    testsEl,
    h('div', { class: 'exercise-due-row' }, h('label', { for: 'exercise-due' }, 'Due (optional)'), due),
    h('label', { class: 'exercise-lock' }, lock, ' Lock students’ rooms after the due time'),
    error,
    h('div', { class: 'exercise-submit' }, submit),
  )
  const showError = (text: string | null) => {
    error.hidden = text === null
    error.textContent = text ?? ''
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const name = title.value.trim()
    if (!name) return showError('Give the exercise a title.')
    let dueAt: number | undefined
    if (due.value) {
      dueAt = Math.floor(new Date(due.value).getTime() / 1000)
      if (!Number.isFinite(dueAt) || dueAt <= Date.now() / 1000) return showError('The due time must be in the future.')
    }
    const tests = rows.map((r, i) => ({ name: `Test ${i + 1}`, ...r.value() }))
    showError(null)
    submit.disabled = true
    try {
      const created = await exerciseApi.create(session.room, session.token, {
        title: name,
        tests,
        ...(dueAt ? { due_at: dueAt } : {}),
        lock_after_due: lock.checked,
      })
      gridUrls.set(created.id, created.grid_url)
      rememberGrid(created.id, created.grid_url)
      notices.show(`Exercise “${created.title}” created: students can open it now.`, 'info', 5000)
      title.value = ''
      due.value = ''
      for (const row of rows.splice(0)) row.element.remove()
      renumber()
      render()
    } catch (err) {
      showError(`Could not create the exercise: ${describe(err)}`)
    } finally {
      submit.disabled = false
    }
  })

  // -- the class's exercises ------------------------------------------------------------
  const list = h('ul', { class: 'exercise-list', 'aria-label': 'Exercises of this class' })
  const openGrid = async (exercise: ClassExercise, button: HTMLButtonElement) => {
    // The tab is opened within the click (no popup blocker), then pointed at the grid.
    const tab = window.open('', '_blank')
    let url = gridUrls.get(exercise.id) ?? storedGrid(exercise.id)
    try {
      if (!url) {
        button.disabled = true
        const view = (await exerciseApi.get(exercise.id, session.token)) as { grid_url?: string }
        url = view.grid_url ?? null
        if (!url) throw new ApiError(404, 'no grid link for this exercise here (open it where it was created)')
        gridUrls.set(exercise.id, url)
        rememberGrid(exercise.id, url)
      }
      if (tab) tab.location.href = url
      else window.open(url, '_blank')
    } catch (err) {
      tab?.close()
      notices.show(`Could not open the grid: ${describe(err)}`, 'error')
    } finally {
      button.disabled = false
    }
  }
  const render = () => {
    const exercises = [...classEntries<ClassExercise>(doc, 'exercise').values()]
    if (!exercises.length) {
      replace(list, h('li', { class: 'exercise-none' }, 'No exercises yet.'))
      return
    }
    replace(
      list,
      ...exercises.map((exercise) => {
        const button = h('button', { type: 'button', class: 'btn small' }, 'Open grid')
        button.setAttribute('aria-label', `Open the grid of ${exercise.title}`)
        button.addEventListener('click', () => void openGrid(exercise, button))
        return h(
          'li',
          { class: 'exercise-item', 'data-id': exercise.id },
          h('span', { class: 'exercise-item-title' }, exercise.title),
          h('span', { class: 'exercise-item-due' }, exercise.due_at ? countdown(exercise.due_at) : 'no due time'),
          button,
        )
      }),
    )
  }
  const renderStarter = () => {
    const n = filePaths(doc).length
    starter.textContent = `Starter code: this room’s workspace (${n} ${n === 1 ? 'file' : 'files'}), copied into each student’s own room.`
  }
  const later = inMicrotask(() => {
    render()
    renderStarter()
  })
  root.observe(later)
  doc.getMap('files').observe(later)
  render()
  renderStarter()
  window.setInterval(render, 30_000) // due countdowns in the list, coarse

  return h(
    'div',
    { class: 'exercises-panel' },
    h('h3', { class: 'exercise-list-heading' }, 'Exercises'),
    list,
    form,
  )
}

export function describe(err: unknown): string {
  return err instanceof ApiError ? err.message : String(err)
}
