/** The side area's tabs (Output, People, Comments, Chat), following the WAI-ARIA tabs
 * pattern: one tab in the Tab order, arrow keys / Home / End move and show, each panel
 * labelled by its tab. A hidden tab carries an unread count, cleared when it is shown. */
import { h, replace } from './dom'

export interface TabSpec {
  id: string
  label: string
  panel: HTMLElement
}

export interface Tabs {
  readonly element: HTMLElement
  /** Show this tab's panel (and clear its unread count); `focus` moves focus to the tab.
   * `chosen: false` is the page's own default, which a later default may replace. */
  show(id: string, focus?: boolean, chosen?: boolean): void
  /** Whether the reader (or an action of theirs) picked a tab, now or earlier in this tab. */
  chosen(): boolean
  selected(): string
  isShown(id: string): boolean
  /** Add to a hidden tab's unread count; ignored while the tab is shown. */
  addUnread(id: string, n?: number): void
  unread(id: string): number
  onShow(listener: (id: string) => void): void
  /** Hide (or show again) a tab that does not apply to this person or room (yet); a
   * hidden shown tab gives way to the first one left. */
  setHidden(id: string, hidden: boolean): void
}

export function createTabs(specs: TabSpec[], initial: string, storageKey?: string): Tabs {
  const tablist = h('div', { class: 'tablist', role: 'tablist', 'aria-label': 'Room panels' })
  const counts = new Map<string, number>()
  const listeners: ((id: string) => void)[] = []
  const tabs = new Map<string, { tab: HTMLButtonElement; badge: HTMLElement; panel: HTMLElement; label: string }>()
  const panels = h('div', { class: 'tabpanels' })

  for (const spec of specs) {
    const badge = h('span', { class: 'tab-unread', hidden: true })
    const tab = h(
      'button',
      {
        type: 'button',
        role: 'tab',
        id: `tab-${spec.id}`,
        class: 'tab',
        'aria-controls': `tabpanel-${spec.id}`,
        'data-tab': spec.id,
      },
      h('span', { class: 'tab-label' }, spec.label),
      badge,
    )
    const panel = h(
      'div',
      { role: 'tabpanel', id: `tabpanel-${spec.id}`, class: `tabpanel tabpanel-${spec.id}`, 'aria-labelledby': `tab-${spec.id}` },
      spec.panel,
    )
    tab.addEventListener('click', () => show(spec.id))
    tabs.set(spec.id, { tab, badge, panel, label: spec.label })
    tablist.append(tab)
    panels.append(panel)
  }

  const allIds = specs.map((s) => s.id)
  let ids = allIds
  tablist.addEventListener('keydown', (event) => {
    const order = ids.filter((id) => !tabs.get(id)!.tab.hidden)
    const current = order.indexOf(selectedId)
    let next: number | null = null
    if (event.key === 'ArrowRight' || event.key === 'ArrowDown') next = (current + 1) % order.length
    else if (event.key === 'ArrowLeft' || event.key === 'ArrowUp') next = (current - 1 + order.length) % order.length
    else if (event.key === 'Home') next = 0
    else if (event.key === 'End') next = order.length - 1
    if (next === null) return
    event.preventDefault()
    show(order[next], true)
  })

  const renderBadge = (id: string) => {
    const entry = tabs.get(id)
    if (!entry) return
    const n = counts.get(id) ?? 0
    entry.badge.hidden = n === 0
    if (n === 0) replace(entry.badge)
    else replace(entry.badge, n > 99 ? '99+' : String(n), h('span', { class: 'sr-only' }, ' new'))
    entry.tab.title = n ? `${entry.label}: ${n} new` : ''
  }

  let selectedId = ''
  let chosen = false
  const show = (id: string, focus = false, byReader = true) => {
    if (!tabs.has(id)) return
    selectedId = id
    chosen ||= byReader
    for (const [key, entry] of tabs) {
      const on = key === id
      entry.tab.setAttribute('aria-selected', String(on))
      entry.tab.tabIndex = on ? 0 : -1
      entry.panel.hidden = !on
    }
    counts.set(id, 0)
    renderBadge(id)
    if (storageKey && byReader) {
      try {
        sessionStorage.setItem(storageKey, id)
      } catch {
        // storage refused (private mode): the choice lasts for this page only
      }
    }
    if (focus) tabs.get(id)!.tab.focus()
    for (const listener of listeners) listener(id)
  }

  let stored: string | null = null
  try {
    stored = storageKey ? sessionStorage.getItem(storageKey) : null
  } catch {
    stored = null
  }
  show(stored && tabs.has(stored) ? stored : tabs.has(initial) ? initial : ids[0], false, false)
  chosen = stored !== null && tabs.has(stored)

  return {
    element: h('div', { class: 'tabs' }, tablist, panels),
    show,
    selected: () => selectedId,
    chosen: () => chosen,
    isShown: (id) => selectedId === id,
    addUnread(id, n = 1) {
      if (id === selectedId || !tabs.has(id) || n <= 0) return
      counts.set(id, (counts.get(id) ?? 0) + n)
      renderBadge(id)
    },
    unread: (id) => counts.get(id) ?? 0,
    onShow: (listener) => listeners.push(listener),
    setHidden(id, hidden) {
      const entry = tabs.get(id)
      if (!entry || entry.tab.hidden === hidden) return
      entry.tab.hidden = hidden
      ids = allIds.filter((key) => !tabs.get(key)!.tab.hidden)
      if (hidden && selectedId === id && ids.length) show(ids[0], false, false)
    },
  }
}
