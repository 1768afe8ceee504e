/**
 * Tabs for the open files, above the editor: the active one marked, a close button on
 * each, a row that scrolls sideways when there are many. Arrow keys move between tabs
 * (WAI-ARIA tabs: one tab stop); Delete closes the focused tab.
 */
import { h, replace } from './dom'
import type { OpenFiles } from './open-files'

const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1)

export function fileTabs(files: OpenFiles): HTMLElement {
  const bar = h('div', { class: 'file-tabs', role: 'tablist', 'aria-label': 'Open files' })

  const render = () => {
    const hadFocus = bar.contains(document.activeElement)
    replace(
      bar,
      ...files.open.map((path) => {
        const active = path === files.active
        const tab = h(
          'button',
          {
            type: 'button',
            role: 'tab',
            class: 'file-tab-name',
            'aria-selected': String(active),
            'aria-controls': 'editor-host',
            tabindex: active ? 0 : -1,
            title: path,
            'aria-keyshortcuts': files.open.length > 1 ? 'Delete' : undefined,
            'data-path': path,
          },
          basename(path),
          path === files.entry ? h('span', { class: 'entry-dot', title: 'Entry file', 'aria-label': ' (entry file)' }, '●') : null,
        )
        // A tablist may hold only tabs: the close button is for the mouse; by keyboard (and
        // to assistive technology) a tab closes with Delete, which the tab announces.
        const close = h('button', { type: 'button', class: 'file-tab-close', tabindex: -1, 'aria-hidden': 'true', title: `Close ${path}` }, '×')
        tab.addEventListener('click', () => files.openFile(path))
        close.addEventListener('click', (event) => {
          event.stopPropagation()
          files.closeFile(path)
        })
        return h('span', { class: `file-tab${active ? ' active' : ''}`, role: 'presentation', 'data-path': path }, tab, files.open.length > 1 ? close : null)
      }),
    )
    // The active tab in view, scrolling the bar only (scrollIntoView would scroll the page too).
    const activeTab = bar.querySelector<HTMLElement>('.file-tab.active')
    if (activeTab) {
      const left = activeTab.offsetLeft
      if (left < bar.scrollLeft) bar.scrollLeft = left
      else if (left + activeTab.offsetWidth > bar.scrollLeft + bar.clientWidth) bar.scrollLeft = left + activeTab.offsetWidth - bar.clientWidth
    }
    if (hadFocus) bar.querySelector<HTMLElement>('[role="tab"][tabindex="0"]')?.focus()
  }

  bar.addEventListener('keydown', (event) => {
    const tabs = [...bar.querySelectorAll<HTMLElement>('[role="tab"]')]
    const at = tabs.indexOf(event.target as HTMLElement)
    if (at < 0) return
    const go = (i: number) => {
      const path = tabs[(i + tabs.length) % tabs.length]?.dataset.path
      if (path) files.openFile(path)
      bar.querySelector<HTMLElement>('[role="tab"][tabindex="0"]')?.focus()
    }
    if (event.key === 'ArrowRight') go(at + 1)
    else if (event.key === 'ArrowLeft') go(at - 1)
    else if (event.key === 'Home') go(0)
    else if (event.key === 'End') go(tabs.length - 1)
    else if (event.key === 'Delete') files.closeFile(tabs[at].dataset.path ?? '')
    else return
    event.preventDefault()
  })

  files.onChange(render)
  render()
  return bar
}
