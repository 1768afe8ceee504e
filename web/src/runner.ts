/**
 * Run output (only when GET /api/config says `runner: true`). Results arrive in the
 * shared `runs` map, written by the server: id -> {status, stdout, stderr,
 * compile_output, time, memory, exit_code, by, ts}. The run request endpoint is not
 * part of the server yet; `POST /api/rooms/{room}/runs` is the assumed shape.
 */
import * as Y from 'yjs'
import { h } from './dom'
import { icon } from './icons'
import type { Session } from './session'

export function runnerPanel(runs: Y.Map<unknown>, session: Session): { button: HTMLButtonElement; panel: HTMLElement } {
  const output = h('pre', { class: 'run-output', tabindex: 0, 'aria-label': 'Run output' }, 'No runs yet.')
  const status = h('span', { class: 'muted small' })
  const panel = h(
    'section',
    { class: 'panel runs', 'aria-labelledby': 'runs-heading' },
    h('h2', { id: 'runs-heading' }, 'Output ', status),
    output,
  )
  const button = h('button', { type: 'button', class: 'btn primary' }, icon('play'), 'Run')
  button.addEventListener('click', async () => {
    button.disabled = true
    try {
      const headers: Record<string, string> = {}
      if (session.token) headers.Authorization = `Bearer ${session.token}`
      const response = await fetch(`/api/rooms/${encodeURIComponent(session.room)}/runs`, { method: 'POST', headers })
      if (!response.ok) status.textContent = `run refused (${response.status})`
    } finally {
      button.disabled = false
    }
  })
  const render = () => {
    let latest: Y.Map<unknown> | null = null
    runs.forEach((value) => {
      if (value instanceof Y.Map && (!latest || Number(value.get('ts')) > Number(latest.get('ts')))) latest = value
    })
    if (!latest) return
    const run = latest as Y.Map<unknown>
    status.textContent = `(${String(run.get('status') ?? '')}${run.get('by') ? `, by ${String(run.get('by'))}` : ''})`
    output.textContent =
      [run.get('compile_output'), run.get('stdout'), run.get('stderr')].filter((s) => typeof s === 'string' && s).join('\n') ||
      '(no output)'
  }
  runs.observeDeep(render)
  render()
  session.watch(() => (button.hidden = !session.canEdit))
  return { button, panel }
}
