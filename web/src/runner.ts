/**
 * Run the room's code (only when GET /api/config says `runner: true`).
 *
 * `POST /api/rooms/{room}/runs {stdin}` answers `{run_id}` at once; the server writes the
 * run's progress and result into the shared `runs` map (id -> {status, stdout, stderr,
 * compile_output, message, time, memory, exit_code, by, ts, ..._cut}), so everyone in the
 * room sees the same output panel change live. Owners and editors may run (in broadcast
 * rooms the owner only); Ctrl/Cmd+Enter runs from the editor or the input box.
 */
import * as Y from 'yjs'
import { api, ApiError } from './api'
import { formatTime, h, replace } from './dom'
import { icon } from './icons'
import type { Session } from './session'

const LABELS: Record<string, string> = {
  queued: 'Queued',
  running: 'Running',
  accepted: 'Finished',
  compile_error: 'Compile error',
  runtime_error: 'Runtime error',
  time_limit: 'Time limit exceeded',
  memory_limit: 'Memory limit exceeded',
  internal_error: 'Runner error',
  unavailable: 'Runner unavailable',
  interrupted: 'Interrupted',
}
const IN_FLIGHT = new Set(['queued', 'running'])

type Run = Record<string, unknown>

export interface RunnerUi {
  button: HTMLButtonElement
  panel: HTMLElement
  /** Start a run if this participant may; false when nothing happened (key fall-through). */
  run(): boolean
}

function text(run: Run, key: string): string {
  const value = run[key]
  return typeof value === 'string' ? value : ''
}

function num(run: Run, key: string): number | null {
  const value = run[key]
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

function latestRun(runs: Y.Map<unknown>): Run | null {
  let latest: Run | null = null
  runs.forEach((value) => {
    if (!(value instanceof Y.Map)) return
    const run = value.toJSON() as Run
    if (!latest || (num(run, 'ts') ?? 0) > (num(latest, 'ts') ?? 0)) latest = run
  })
  return latest
}

function outputBlock(title: string, run: Run, key: string, cls: string): HTMLElement | null {
  const body = text(run, key)
  if (!body) return null
  const cut = run[`${key}_cut`] === true
  return h(
    'section',
    { class: `run-stream ${cls}`, 'aria-label': title },
    h('h3', {}, title, cut ? h('span', { class: 'run-cut' }, ' (cut: too long)') : null),
    h('pre', { class: 'run-output', tabindex: 0 }, body),
  )
}

/** Mirrors the server, which checks the token's role (a live role change does not grant runs). */
export function canRun(session: Session): boolean {
  const role = session.tokenRole
  return role === 'owner' || (role === 'editor' && session.state.mode !== 'broadcast')
}

export function runnerPanel(runs: Y.Map<unknown>, session: Session): RunnerUi {
  const statusEl = h('span', { class: 'run-status', role: 'status', 'aria-live': 'polite' })
  const facts = h('p', { class: 'run-facts muted small' })
  const message = h('p', { class: 'run-message small', hidden: true })
  const outputs = h('div', { class: 'run-outputs' }, h('p', { class: 'muted small empty' }, 'No runs yet.'))
  const refusal = h('p', { class: 'run-refusal error small', role: 'alert', hidden: true })
  const stdin = h('textarea', {
    id: 'run-stdin',
    class: 'run-stdin',
    rows: 2,
    placeholder: 'Input for the program (stdin)',
    'aria-label': 'Program input (stdin)',
    spellcheck: 'false',
  })
  const stdinField = h('div', { class: 'run-input' }, stdin)
  const panel = h(
    'section',
    { class: 'panel runs', 'aria-labelledby': 'runs-heading' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'runs-heading' }, 'Output'), statusEl),
    stdinField,
    refusal,
    facts,
    message,
    outputs,
  )
  const button = h(
    'button',
    {
      type: 'button',
      class: 'btn primary run-button',
      'aria-keyshortcuts': 'Control+Enter Meta+Enter',
      title: 'Run the code (Ctrl+Enter)',
    },
    icon('play'),
    h('span', { class: 'run-label' }, 'Run'),
  )

  let inFlight = false
  let requesting = false
  const updateButton = () => {
    button.disabled = inFlight || requesting
    const label = button.querySelector('.run-label')
    if (label) label.textContent = inFlight ? 'Running…' : 'Run'
  }

  const run = (): boolean => {
    if (!canRun(session) || inFlight || requesting || document.body.dataset.closed === 'true') return false
    requesting = true
    refusal.hidden = true
    updateButton()
    api
      .run(session.room, session.token, stdin.value)
      .catch((err: unknown) => {
        refusal.textContent =
          err instanceof ApiError
            ? err.status === 429
              ? `Too many runs: ${err.message}. Try again in a moment.`
              : `Run refused: ${err.message}`
            : `Run failed: ${String(err)}`
        refusal.hidden = false
      })
      .finally(() => {
        requesting = false
        updateButton()
      })
    return true
  }
  button.addEventListener('click', () => run())
  stdin.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault()
      run()
    }
  })

  const render = () => {
    const latest = latestRun(runs)
    inFlight = latest !== null && IN_FLIGHT.has(text(latest, 'status'))
    updateButton()
    if (!latest) return
    const status = text(latest, 'status')
    statusEl.textContent = LABELS[status] ?? status
    statusEl.dataset.status = status
    panel.dataset.status = status
    const parts: string[] = []
    const by = text(latest, 'by')
    if (by) parts.push(`by ${by}`)
    const ts = num(latest, 'ts')
    if (ts) parts.push(`at ${formatTime(ts * 1000)}`)
    const time = num(latest, 'time')
    if (time !== null) parts.push(`${time.toFixed(3)} s`)
    const memory = num(latest, 'memory')
    if (memory !== null) parts.push(`${(memory / 1024).toFixed(1)} MB`)
    const exitCode = num(latest, 'exit_code')
    if (exitCode !== null && exitCode !== 0) parts.push(`exit code ${exitCode}`)
    facts.textContent = parts.join(' · ')
    const note = text(latest, 'message')
    message.hidden = !note || status === 'accepted'
    message.textContent = note
    const blocks = [
      outputBlock('Compiler', latest, 'compile_output', 'compile'),
      outputBlock('Output', latest, 'stdout', 'stdout'),
      outputBlock('Errors', latest, 'stderr', 'stderr'),
    ].filter((b): b is HTMLElement => b !== null)
    if (blocks.length === 0) {
      const empty = IN_FLIGHT.has(status) ? 'Waiting for the result…' : '(no output)'
      replace(outputs, h('p', { class: 'muted small empty' }, empty))
    } else {
      replace(outputs, ...blocks)
    }
  }
  runs.observeDeep(render)
  render()
  session.watch(() => {
    const allowed = canRun(session)
    button.hidden = !allowed
    stdinField.hidden = !allowed
  })
  return { button, panel, run }
}
