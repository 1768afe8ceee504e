/** What a slow network shows: the page frame at once, with "Connecting…", instead of a
 * blank page while the config, the personal token and the first sync arrive; then a
 * placeholder over the editor until the document has synced. */
import { h, replace } from './dom'

/** The room page's frame before anything is known but the room's name. */
export function showLoadingFrame(app: HTMLElement, room: string): void {
  const lines = [72, 46, 58, 30, 64, 40, 52]
  replace(
    app,
    h(
      'header',
      { class: 'topbar' },
      h('span', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '</>'), h('span', { class: 'brand-text' }, 'CodeMentor')),
      h('div', { class: 'room-heading' }, h('h1', { class: 'room-title' }, room)),
      h('div', { class: 'topbar-right' }, h('span', { class: 'conn', 'data-state': 'connecting' }, h('span', { class: 'conn-dot' }), 'Connecting…')),
    ),
    h(
      'main',
      { id: 'main', class: 'room-loading', 'aria-busy': 'true' },
      h('p', { class: 'loading-text', role: 'status' }, 'Connecting to the room…'),
      h('div', { class: 'skeleton', 'aria-hidden': 'true' }, ...lines.map((w) => h('span', { class: 'skeleton-line', style: `width:${w}%` }))),
    ),
  )
}

/** A placeholder over the editor until `synced` says the document has arrived. */
export function syncPlaceholder(host: HTMLElement, onSynced: (done: () => void) => void): void {
  const cover = h(
    'div',
    { class: 'editor-loading' },
    h('p', { class: 'loading-text', role: 'status' }, 'Loading the code…'),
    h('div', { class: 'skeleton', 'aria-hidden': 'true' }, ...[60, 38, 52, 26].map((w) => h('span', { class: 'skeleton-line', style: `width:${w}%` }))),
  )
  host.classList.add('syncing')
  host.append(cover)
  onSynced(() => {
    cover.remove()
    host.classList.remove('syncing')
  })
}
