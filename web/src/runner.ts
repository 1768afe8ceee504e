/**
 * Run the room's code (only when GET /api/config says `runner: true`).
 *
 * `POST /api/rooms/{room}/runs {stdin}` answers `{run_id}` at once; the server writes the
 * run's progress and result into the shared `runs` map (id -> {status, stdout, stderr,
 * compile_output, message, time, memory, exit_code, by, ts, ..._cut}), so everyone in the
 * room sees the same output panel change live. Owners and editors may run (in broadcast
 * rooms the owner only), reviewers too when the owner lets them (`reviewers_run`);
 * Ctrl/Cmd+Enter runs from the editor or the input box. Stop (`POST .../runs/{id}/cancel`)
 * is offered to the person who started the run, owners and editors; the run then ends
 * `cancelled` for everyone. Each run shows who ran it (the server's verified name) and
 * the input it used; its error lines are marked in the editor (`run-marks.ts`), each in
 * its own file. A request that fails says so in a plain sentence, cleared by the next run.
 *
 * Workspaces: Run runs the entry file (`meta.entry`) unless the person chose another in
 * the menu next to it (`run-menu.ts`; the request then names it as `entry`), and the
 * output's header says what ran ("main.py · 3 files").
 */
import type { EditorView } from '@codemirror/view'
import * as Y from 'yjs'
import { api, ApiError, NetworkError } from './api'
import { formatTime, h, inMicrotask, replace } from './dom'
import { icon } from './icons'
import { parseRunErrors, WorkspaceRunMarks, type RunFiles, type RunMark } from './run-marks'
import { runMenu, runnableFiles } from './run-menu'
import type { Session } from './session'
import { entryPath, filePaths, fileText } from './workspace'
import './runs.css'

export const LABELS: Record<string, string> = {
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
  cancelled: 'Stopped',
  wrong_answer: 'Wrong answer', // a check (exercises): ran, printed something else
}
const IN_FLIGHT = new Set(['queued', 'running'])

type Run = Record<string, unknown>

export interface RunnerUi {
  button: HTMLButtonElement
  stopButton: HTMLButtonElement
  /** Run and Stop, for the toolbar. */
  controls: HTMLElement
  panel: HTMLElement
  /** Start a run if this participant may; false when nothing happened (key fall-through). */
  run(): boolean
  /** The owner's setting: may reviewers run? (for the Share dialog) */
  reviewersRun(): boolean
  setReviewersRun(allowed: boolean): Promise<void>
}

/** The open files (open-files.ts `OpenFiles`): which file the editor shows. */
export interface RunnerFiles {
  readonly active: string
  onChange(listener: () => void): void
  openFile(path: string): boolean
}

export interface RunnerOptions {
  /** The editor, to mark a run's error lines in. */
  view?: () => EditorView | null
  /** The room's `meta` map: `reviewers_run` changes live there. */
  meta?: Y.Map<unknown>
  /** The tabs: marks show in the file they belong to; "Run current file". */
  files?: RunnerFiles
}

const STDIN_SHOWN = 60

/** The input a run used, on one line: cut at a few dozen characters. */
export function stdinSummary(stdin: string): string {
  if (!stdin) return ''
  const lines = stdin.replace(/\n$/, '').split('\n')
  let shown = lines.join(' ⏎ ')
  if (shown.length > STDIN_SHOWN) shown = `${shown.slice(0, STDIN_SHOWN - 1)}…`
  return shown
}

/** A failed request as one plain sentence (never `TypeError: Failed to fetch`). */
export function problemSentence(err: unknown, action: 'run' | 'stop'): { text: string; kind: string } {
  const verb = action === 'run' ? 'run' : 'stop the run'
  if (err instanceof NetworkError) {
    return err.offline
      ? { text: `You are offline; ${action === 'run' ? 'run again' : 'try again'} when reconnected.`, kind: 'offline' }
      : { text: `Could not reach the server (network error); check your connection and ${verb} again.`, kind: 'offline' }
  }
  if (err instanceof ApiError) {
    const wait = err.retryAfter ? ` Try again in ${Math.ceil(err.retryAfter)} s.` : ' Try again in a moment.'
    switch (err.status) {
      case 429:
        return { text: `Too many runs in a short time.${wait}`, kind: 'busy' }
      case 503:
        return { text: `The runner is unavailable right now (${err.message}).${wait}`, kind: 'busy' }
      case 403:
        return { text: `You are not allowed to ${verb}: ${err.message}.`, kind: 'denied' }
      case 401:
        return { text: 'Your link is no longer valid: reload the page, or ask the owner for a new link.', kind: 'denied' }
      case 404:
        return { text: action === 'run' ? 'This room no longer exists.' : 'That run is no longer in this room.', kind: 'error' }
      case 409:
        return action === 'run'
          ? { text: 'A run is already in progress in this room.', kind: 'busy' }
          : { text: 'The run had already finished.', kind: 'busy' }
      case 422:
        return { text: `Nothing to run: ${err.message}.`, kind: 'error' }
      default:
        return { text: `The server could not ${verb} (HTTP ${err.status}): ${err.message}.`, kind: 'error' }
    }
  }
  return { text: `Could not ${verb}; try again.`, kind: 'error' }
}

function text(run: Run, key: string): string {
  const value = run[key]
  return typeof value === 'string' ? value : ''
}

function num(run: Run, key: string): number | null {
  const value = run[key]
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

/** What a run names files by: its `entry` and `paths` (runs before workspaces have
 * neither: the entry file now). */
function runFiles(run: Run, doc: Y.Doc | null): RunFiles {
  const paths = text(run, 'paths')
  return { entry: text(run, 'entry') || (doc ? entryPath(doc) : ''), paths: paths ? paths.split('\n') : [] }
}

/** "main.py · 3 files": what ran, for the output's header (runs of several files). */
export function ranSummary(run: Run): string {
  const entry = text(run, 'entry')
  const count = num(run, 'file_count') ?? 0
  if (!entry || count < 2) return ''
  return `${entry} · ${count} files`
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

/** "Marked line 2 in the editor." (one file); with several, each file named, as a button
 * that opens it: "Marked lines 1, 4 in main.py and line 3 in util.py." */
function marksSentence(found: RunMark[], several: boolean, open: (path: string) => void): Array<string | HTMLElement> {
  const lines = (list: RunMark[]) =>
    list.length === 1 ? `line ${list[0].line}` : `lines ${list.map((m) => m.line).join(', ')}`
  if (!several) return [`Marked ${lines(found)} in the editor.`]
  const byFile = new Map<string, RunMark[]>()
  for (const mark of found) byFile.set(mark.path ?? '', [...(byFile.get(mark.path ?? '') ?? []), mark])
  const parts: Array<string | HTMLElement> = ['Marked ']
  ;[...byFile].forEach(([path, list], i) => {
    if (i > 0) parts.push(i === byFile.size - 1 ? ' and ' : ', ')
    const link = h('button', { type: 'button', class: 'link run-marks-file', title: `Open ${path}` }, path)
    link.addEventListener('click', () => open(path))
    parts.push(`${lines(list)} in `, link)
  })
  parts.push('.')
  return parts
}

/** Mirrors the server, which checks the token's role (a live role change does not grant runs). */
export function canRun(session: Session, reviewersRun = false): boolean {
  const role = session.tokenRole
  return (
    role === 'owner' || (role === 'editor' && session.state.mode !== 'broadcast') || (role === 'reviewer' && reviewersRun)
  )
}

/** Mirrors the server: the person who started it (a personal token), owners and editors. */
function canStop(session: Session, run: Run): boolean {
  const role = session.tokenRole
  return role === 'owner' || role === 'editor' || (text(run, 'by_id') !== '' && text(run, 'by_id') === session.userId)
}

export function runnerPanel(runs: Y.Map<unknown>, session: Session, options: RunnerOptions = {}): RunnerUi {
  const statusEl = h('span', { class: 'run-status', role: 'status', 'aria-live': 'polite' })
  const ranEl = h('span', { class: 'run-ran', hidden: true })
  const doc = runs.doc
  const files = options.files
  const activeFile = () => files?.active ?? (doc ? entryPath(doc) : '')
  const marks = doc ? new WorkspaceRunMarks(doc, () => options.view?.() ?? null, activeFile) : null
  const facts = h('p', { class: 'run-facts muted small' })
  const message = h('p', { class: 'run-message small', hidden: true })
  const outputs = h('div', { class: 'run-outputs' }, h('p', { class: 'muted small empty' }, 'No runs yet.'))
  const refusal = h('p', { class: 'run-problem', role: 'alert', hidden: true })
  const who = h('p', { class: 'run-who', hidden: true })
  const stdinUsed = h('p', { class: 'run-stdin-used', hidden: true })
  const marksNote = h('p', { class: 'run-marks-note', hidden: true })
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
    h('div', { class: 'panel-head' }, h('h2', { id: 'runs-heading' }, 'Output'), ranEl, statusEl),
    stdinField,
    refusal,
    who,
    stdinUsed,
    facts,
    message,
    marksNote,
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

  const stopButton = h(
    'button',
    { type: 'button', class: 'btn run-stop', hidden: true, title: 'Stop the run for everyone' },
    h('span', { class: 'run-stop-glyph', 'aria-hidden': 'true' }, '■'),
    h('span', {}, 'Stop'),
  )
  // What Run runs: the entry file, unless this person chose another (null: the entry).
  let chosen: string | null = null
  const entryNow = () => (doc ? entryPath(doc) : '')
  const workspacePaths = () => (doc ? filePaths(doc) : [])
  const target = () => {
    if (chosen !== null && doc && fileText(doc, chosen) && runnableFiles(workspacePaths(), entryNow()).includes(chosen)) return chosen
    chosen = null // deleted, renamed or no longer runnable: back to the entry file
    return entryNow()
  }
  const menu = runMenu({
    paths: workspacePaths,
    entry: entryNow,
    active: activeFile,
    chosen: target,
    choose: (path) => {
      chosen = path === entryNow() ? null : path
      updateButton()
      run()
    },
  })
  const controls = h('span', { class: 'run-actions' }, h('span', { class: 'run-split' }, button, menu.element), stopButton)

  let reviewersRun = false
  let inFlight = false
  let requesting = false
  let stopping = false
  let latestInFlight: Run | null = null
  const updateButton = () => {
    button.disabled = inFlight || requesting
    const label = button.querySelector('.run-label')
    // One file: "Run", as before workspaces. Several: the button says which one runs.
    const what = menu.hasChoice() ? target() : ''
    if (label) label.textContent = inFlight ? 'Running…' : what ? `Run ${what}` : 'Run'
    button.title = what ? `Run ${what} (Ctrl+Enter)` : 'Run the code (Ctrl+Enter)'
    menu.toggle.disabled = inFlight || requesting
    stopButton.hidden = !(inFlight && latestInFlight && canStop(session, latestInFlight))
    stopButton.disabled = stopping
  }
  const showProblem = (err: unknown, action: 'run' | 'stop') => {
    const problem = problemSentence(err, action)
    refusal.textContent = problem.text
    refusal.dataset.kind = problem.kind
    refusal.hidden = false
  }

  const run = (): boolean => {
    if (!canRun(session, reviewersRun) || inFlight || requesting || document.body.dataset.closed === 'true') return false
    requesting = true
    refusal.hidden = true
    marks?.clear()
    updateButton()
    api
      .run(session.room, session.token, stdin.value, chosen === null ? undefined : target())
      .catch((err: unknown) => showProblem(err, 'run'))
      .finally(() => {
        requesting = false
        updateButton()
      })
    return true
  }
  button.addEventListener('click', () => run())
  stopButton.addEventListener('click', () => {
    const target = latestInFlight
    if (!target || stopping) return
    stopping = true
    refusal.hidden = true
    updateButton()
    api
      .cancelRun(session.room, session.token, text(target, 'id'))
      .catch((err: unknown) => showProblem(err, 'stop'))
      .finally(() => {
        stopping = false
        updateButton()
      })
  })
  stdin.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault()
      run()
    }
  })

  let markedRun: string | null = null
  const mark = (latest: Run, status: string) => {
    if (!options.view?.()) return
    const id = text(latest, 'id')
    if (IN_FLIGHT.has(status)) {
      if (markedRun !== id) marks?.clear()
      markedRun = id
      marksNote.hidden = true
      return
    }
    if (markedRun === `${id}:done`) return // marked once: a fixed line stays unmarked
    markedRun = `${id}:done`
    const ran = runFiles(latest, doc)
    const found =
      status === 'compile_error' || status === 'runtime_error'
        ? parseRunErrors(
            text(latest, 'language'),
            { stderr: text(latest, 'stderr'), compile_output: text(latest, 'compile_output'), stdout: text(latest, 'stdout') },
            ran,
          )
        : []
    marks?.set(found)
    marksNote.hidden = found.length === 0
    replace(marksNote, ...marksSentence(found, ran.paths.length > 1, (path) => files?.openFile(path)))
  }

  const render = () => {
    const latest = latestRun(runs)
    inFlight = latest !== null && IN_FLIGHT.has(text(latest, 'status'))
    latestInFlight = inFlight ? latest : null
    updateButton()
    if (!latest) return
    const status = text(latest, 'status')
    statusEl.textContent = LABELS[status] ?? status
    statusEl.dataset.status = status
    ranEl.textContent = ranSummary(latest)
    ranEl.hidden = ranEl.textContent === ''
    ranEl.title = ranEl.hidden ? '' : `Ran ${text(latest, 'entry')}, with the workspace's ${num(latest, 'file_count')} files`
    panel.dataset.status = status
    mark(latest, status)
    const by = text(latest, 'by')
    const ts = num(latest, 'ts')
    replace(
      who,
      'Run by ',
      h('strong', { class: 'run-by' }, by || 'someone'),
      ts ? ` at ${formatTime(ts * 1000)}` : '',
      status === 'cancelled' && text(latest, 'cancelled_by') ? ` · stopped by ${text(latest, 'cancelled_by')}` : '',
    )
    who.hidden = false
    const input = text(latest, 'stdin')
    stdinUsed.hidden = !input
    replace(stdinUsed, 'Input:', h('code', { title: input.length > 2000 ? `${input.slice(0, 2000)}…` : input }, stdinSummary(input)))
    if (input && latest.stdin_cut === true) stdinUsed.append(' (cut)')
    const parts: string[] = []
    const time = num(latest, 'time')
    if (time !== null) parts.push(`${time.toFixed(3)} s`)
    const memory = num(latest, 'memory')
    if (memory !== null) parts.push(`${(memory / 1024).toFixed(1)} MB`)
    const exitCode = num(latest, 'exit_code')
    if (exitCode !== null && exitCode !== 0) parts.push(`exit code ${exitCode}`)
    facts.textContent = parts.join(' · ')
    const note = text(latest, 'message')
    message.hidden = !note || status === 'accepted' || status === 'cancelled'
    message.textContent = note
    const blocks = [
      outputBlock('Compiler', latest, 'compile_output', 'compile'),
      outputBlock('Output', latest, 'stdout', 'stdout'),
      outputBlock('Errors', latest, 'stderr', 'stderr'),
    ].filter((b): b is HTMLElement => b !== null)
    if (blocks.length === 0) {
      const empty = IN_FLIGHT.has(status) ? 'Waiting for the result…' : status === 'cancelled' ? 'Stopped before it finished.' : '(no output)'
      replace(outputs, h('p', { class: 'muted small empty' }, empty))
    } else {
      replace(outputs, ...blocks)
    }
  }
  runs.observeDeep(render)
  render()
  // A tab switch shows that file's marks; files added or removed change what can run.
  // (Not inside the Yjs observer that told OpenFiles: the editor may not have the text yet.)
  files?.onChange(
    inMicrotask(() => {
      marks?.refresh()
      menu.update()
      updateButton()
    }),
  )
  menu.update()
  const applyAllowed = () => {
    const allowed = canRun(session, reviewersRun)
    button.hidden = !allowed
    menu.element.hidden = !allowed
    stdinField.hidden = !allowed
    updateButton()
  }
  session.watch(applyAllowed)

  // The owner's reviewers_run: the REST view first, then live from meta.
  const setReviewers = (value: boolean) => {
    reviewersRun = value
    applyAllowed()
  }
  options.meta?.observe((event) => {
    const value = options.meta?.get('reviewers_run')
    if (event.keysChanged.has('reviewers_run') && typeof value === 'boolean') setReviewers(value)
  })
  const fromMeta = options.meta?.get('reviewers_run')
  if (typeof fromMeta === 'boolean') setReviewers(fromMeta)
  else
    api
      .room(session.room, session.token)
      .then((details) => {
        if (typeof options.meta?.get('reviewers_run') !== 'boolean') setReviewers(details.reviewers_run === true)
      })
      .catch(() => undefined)

  return {
    button,
    stopButton,
    controls,
    panel,
    run,
    reviewersRun: () => reviewersRun,
    setReviewersRun: async (allowed: boolean) => {
      const details = await api.updateRoom(session.room, session.token, { reviewers_run: allowed })
      setReviewers(details.reviewers_run === true)
    },
  }
}
