/**
 * What Run runs, in a workspace of several files: a small menu next to the Run button
 * ("Run main.py ▾") listing the files that can run (the entry file first), and "Run current
 * file" when the tab shown is another runnable file. Choosing one runs it at once and Run
 * keeps running it (the button says which) until another is chosen; the entry file is the
 * default. A workspace of one file has no menu (the toggle is hidden).
 *
 * Keyboard: the toggle opens the menu with the chosen item focused; arrow keys, Home and
 * End move, Enter or Space chooses, Escape closes and returns to the toggle.
 */
import { h, replace } from './dom'
import { languageFor } from './workspace'

/** Headers hold declarations, not a program: never offered as what to run. */
const NOT_RUNNABLE = new Set(['.h', '.hpp', '.hh'])

/** Can `path` be run as the entry of a run? A file of a language the runner knows (by its
 * extension: `notes.txt` is not a program), not a header. */
export function isRunnable(path: string): boolean {
  const dot = path.lastIndexOf('.')
  if (dot > path.lastIndexOf('/') && NOT_RUNNABLE.has(path.slice(dot).toLowerCase())) return false
  return languageFor(path, undefined) !== undefined
}

/** The files offered to run: the entry file first (whatever its extension), then every
 * other runnable file in `paths` order. */
export function runnableFiles(paths: string[], entry: string): string[] {
  return [entry, ...paths.filter((p) => p !== entry && isRunnable(p))]
}

export interface RunMenuOptions {
  /** The workspace's paths, the entry file first. */
  paths: () => string[]
  entry: () => string
  /** The file shown in the editor now. */
  active: () => string
  /** The file Run runs now. */
  chosen: () => string
  /** The person chose `path`: remember it and run it. */
  choose: (path: string) => void
}

export interface RunMenu {
  toggle: HTMLButtonElement
  menu: HTMLElement
  /** The toggle and the menu, to put next to the Run button. */
  element: HTMLElement
  /** Is there a choice to make (more than one file to run)? */
  hasChoice(): boolean
  /** The workspace, the active tab or the choice changed. */
  update(): void
}

let menus = 0

export function runMenu(options: RunMenuOptions): RunMenu {
  const id = `run-menu-${++menus}`
  const toggle = h(
    'button',
    {
      type: 'button',
      class: 'btn primary run-menu-toggle',
      'aria-haspopup': 'menu',
      'aria-expanded': 'false',
      'aria-controls': id,
      'aria-label': 'Choose what to run',
      title: 'Choose what to run',
      hidden: true,
    },
    h('span', { 'aria-hidden': 'true' }, '▾'),
  )
  const menu = h('div', { id, class: 'run-menu', role: 'menu', 'aria-label': 'Run which file', hidden: true })
  const element = h('span', { class: 'run-menu-wrap' }, toggle, menu)

  const items = () => [...menu.querySelectorAll<HTMLButtonElement>('[role^="menuitem"]')]
  const choices = () => runnableFiles(options.paths(), options.entry())
  const hasChoice = () => choices().length > 1

  const close = (focusToggle: boolean) => {
    if (menu.hidden) return
    menu.hidden = true
    toggle.setAttribute('aria-expanded', 'false')
    if (focusToggle) toggle.focus()
  }
  const render = () => {
    const entry = options.entry()
    const active = options.active()
    const chosen = options.chosen()
    const current =
      active !== entry && isRunnable(active) && options.paths().includes(active)
        ? [
            h(
              'button',
              { type: 'button', role: 'menuitem', class: 'run-menu-item run-current', 'data-path': active, tabindex: -1 },
              'Run current file ',
              h('span', { class: 'run-menu-path' }, `(${active})`),
            ),
            h('div', { role: 'separator', class: 'run-menu-separator' }),
          ]
        : []
    replace(
      menu,
      ...current,
      ...choices().map((path) =>
        h(
          'button',
          {
            type: 'button',
            role: 'menuitemradio',
            class: 'run-menu-item',
            'aria-checked': String(path === chosen),
            'data-path': path,
            tabindex: -1,
          },
          h('span', { class: 'run-menu-check', 'aria-hidden': 'true' }, path === chosen ? '✓' : ''),
          h('span', { class: 'run-menu-path' }, path),
          path === entry ? h('span', { class: 'badge entry-badge' }, 'entry') : null,
        ),
      ),
    )
  }
  const open = () => {
    render()
    menu.hidden = false
    toggle.setAttribute('aria-expanded', 'true')
    const all = items()
    ;(all.find((b) => b.getAttribute('aria-checked') === 'true') ?? all[0])?.focus()
  }

  toggle.addEventListener('click', () => (menu.hidden ? open() : close(false)))
  toggle.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault()
      open()
    }
  })
  menu.addEventListener('click', (event) => {
    const item = (event.target as HTMLElement).closest<HTMLButtonElement>('[data-path]')
    if (!item?.dataset.path) return
    close(true)
    options.choose(item.dataset.path)
  })
  menu.addEventListener('keydown', (event) => {
    const all = items()
    const at = all.indexOf(document.activeElement as HTMLButtonElement)
    const move = (to: number) => {
      event.preventDefault()
      all[(to + all.length) % all.length]?.focus()
    }
    if (event.key === 'ArrowDown') move(at + 1)
    else if (event.key === 'ArrowUp') move(at - 1)
    else if (event.key === 'Home') move(0)
    else if (event.key === 'End') move(all.length - 1)
    else if (event.key === 'Escape') {
      event.preventDefault()
      close(true)
    } else if (event.key === 'Tab') close(false)
  })
  document.addEventListener('pointerdown', (event) => {
    if (!element.contains(event.target as Node)) close(false)
  })

  const update = () => {
    toggle.hidden = !hasChoice()
    if (toggle.hidden) close(false)
    else if (!menu.hidden) render()
  }
  return { toggle, menu, element, hasChoice, update }
}
