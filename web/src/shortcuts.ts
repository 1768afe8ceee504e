/**
 * The keyboard shortcuts dialog: opened with `?` anywhere but a text field, and from a
 * button. It lists the bindings the editor really has (editor.ts's keymaps).
 */
import { h } from './dom'
import './shortcuts.css'

const MAC = /Mac|iPhone|iPad/.test(navigator.platform)
const MOD = MAC ? 'Cmd' : 'Ctrl'

/** [keys, what] per group; each key of a chord is one <kbd>. */
const GROUPS: [string, [string[], string][]][] = [
  [
    'Room',
    [
      [[MOD, 'Enter'], 'Run the code (when running is on)'],
      [[MOD, 'Alt', 'M'], 'Comment on the selected lines'],
      [[MOD, 'Shift', 'F'], 'Search across all files'],
      [['?'], 'This list (outside the editor and text boxes)'],
    ],
  ],
  [
    'Leaving the editor',
    [
      [['Esc', 'Tab'], 'Escape, then Tab: move focus out of the editor'],
      [[MAC ? 'Shift' : 'Ctrl', MAC ? 'Alt' : '', 'M'].filter(Boolean), 'Tab moves focus / Tab indents (toggle)'],
    ],
  ],
  [
    'Editing',
    [
      [['Tab'], 'Indent (Shift+Tab: unindent)'],
      [[MOD, 'Z'], 'Undo your own edits'],
      [[MOD, 'Shift', 'Z'], 'Redo (also ' + MOD + '+Y)'],
      [[MOD, '/'], 'Comment or uncomment lines'],
      [['Alt', '↑'], 'Move line up (Alt+↓: down)'],
      [['Shift', 'Alt', '↑'], 'Copy line up (Shift+Alt+↓: down)'],
      [[MOD, 'Shift', 'K'], 'Delete line'],
      [[MOD, ']'], 'Indent more (' + MOD + '+[: less)'],
      [[MOD, 'D'], 'Select next occurrence'],
    ],
  ],
  [
    'Search',
    [
      [[MOD, 'F'], 'Find and replace'],
      [['F3'], 'Next match (Shift+F3: previous)'],
      [[MOD, 'Alt', 'G'], 'Go to line'],
      [['Esc'], 'Close the search panel'],
    ],
  ],
]

function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName)
}

let dialog: HTMLDialogElement | null = null

function build(): HTMLDialogElement {
  const close = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close' }, '×')
  const body = h('div', { class: 'dialog-body shortcuts-body' })
  for (const [title, rows] of GROUPS) {
    body.append(
      h('h3', {}, title),
      h(
        'dl',
        { class: 'shortcuts-list' },
        ...rows.flatMap(([keys, what]) => [
          h('dt', {}, ...keys.flatMap((key, i) => [i > 0 ? h('span', { class: 'plus', 'aria-hidden': 'true' }, key === 'Tab' && keys[0] === 'Esc' ? 'then' : '+') : null, h('kbd', {}, key)])),
          h('dd', {}, what),
        ]),
      ),
    )
  }
  const d = h(
    'dialog',
    { class: 'dialog shortcuts-dialog', 'aria-labelledby': 'shortcuts-heading' },
    h('div', { class: 'dialog-head' }, h('h2', { id: 'shortcuts-heading' }, 'Keyboard shortcuts'), close),
    body,
  )
  close.addEventListener('click', () => d.close())
  d.addEventListener('click', (event) => {
    if (event.target === d) d.close() // a click on the backdrop
  })
  document.body.append(d)
  return d
}

export function openShortcuts(): void {
  dialog ??= build()
  if (!dialog.open) dialog.showModal()
}

/** The "Shortcuts" button; also installs the `?` key for the page. */
export function shortcutsButton(): HTMLButtonElement {
  const button = h(
    'button',
    { type: 'button', class: 'btn small shortcuts-button', 'aria-keyshortcuts': 'Shift+?', title: 'Keyboard shortcuts (?)', 'aria-label': 'Keyboard shortcuts' },
    h('span', { class: 'shortcuts-key', 'aria-hidden': 'true' }, '?'),
  )
  button.addEventListener('click', openShortcuts)
  document.addEventListener('keydown', (event) => {
    if (event.key !== '?' || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return
    if (document.querySelector('dialog[open]')) return
    event.preventDefault()
    openShortcuts()
  })
  return button
}
