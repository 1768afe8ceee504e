/** The connection and "saved" indicators in the top bar. */
import type { ConnState } from './connection'
import { h } from './dom'
import type { SaveState } from './saved'

const CONN_TEXT: Record<ConnState, string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  closed: 'Disconnected',
}

const SAVE_TEXT: Record<SaveState, string> = {
  saved: 'All changes saved',
  saving: 'Saving…',
  unsaved: 'Edits kept locally until reconnected',
}

export function connectionIndicator(): { element: HTMLElement; set: (state: ConnState, detail?: string) => void } {
  const label = h('span', { class: 'conn-label' })
  const element = h(
    'span',
    { class: 'conn', role: 'status', 'aria-live': 'polite', 'data-state': 'connecting' },
    h('span', { class: 'conn-dot', 'aria-hidden': 'true' }),
    label,
  )
  return {
    element,
    set(state, detail) {
      element.dataset.state = state
      label.textContent = CONN_TEXT[state]
      element.title = detail ?? CONN_TEXT[state]
    },
  }
}

export function saveIndicator(): { element: HTMLElement; set: (state: SaveState) => void } {
  const element = h('span', { class: 'save', 'data-state': 'saved', 'aria-live': 'off' })
  return {
    element,
    set(state) {
      element.dataset.state = state
      element.textContent = state === 'saved' ? '✓ Saved' : state === 'saving' ? 'Saving…' : 'Not saved yet'
      element.title = SAVE_TEXT[state]
    },
  }
}
