/**
 * Editor settings kept per browser (localStorage): theme, font size, tab width, line wrap.
 * They are personal, never shared through the room. The theme also decides the page's
 * colours: `data-theme` on <html> is `light` or `dark` (`system` follows the OS, live).
 */
import { h } from './dom'
import './settings.css'

export type ThemeChoice = 'light' | 'dark' | 'system'

export interface EditorSettings {
  theme: ThemeChoice
  fontSize: number
  tabWidth: number
  lineWrap: boolean
}

export const DEFAULT_SETTINGS: EditorSettings = { theme: 'system', fontSize: 14, tabWidth: 4, lineWrap: false }
export const FONT_SIZES = [12, 13, 14, 15, 16, 18, 20, 22]
export const TAB_WIDTHS = [2, 4, 8]
const KEY = 'codementor.editor-settings'
const THEMES: ThemeChoice[] = ['light', 'dark', 'system']

function load(): EditorSettings {
  let saved: Partial<EditorSettings> = {}
  try {
    saved = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Partial<EditorSettings>
  } catch {
    saved = {}
  }
  return {
    theme: THEMES.includes(saved.theme as ThemeChoice) ? (saved.theme as ThemeChoice) : DEFAULT_SETTINGS.theme,
    fontSize: FONT_SIZES.includes(saved.fontSize as number) ? (saved.fontSize as number) : DEFAULT_SETTINGS.fontSize,
    tabWidth: TAB_WIDTHS.includes(saved.tabWidth as number) ? (saved.tabWidth as number) : DEFAULT_SETTINGS.tabWidth,
    lineWrap: typeof saved.lineWrap === 'boolean' ? saved.lineWrap : DEFAULT_SETTINGS.lineWrap,
  }
}

type Listener = (settings: EditorSettings, dark: boolean) => void

/** The settings and the resolved theme; listeners hear every change (and `system` flips). */
class SettingsStore {
  private current = load()
  private listeners: Listener[] = []
  private readonly query = window.matchMedia('(prefers-color-scheme: dark)')

  constructor() {
    this.query.addEventListener('change', () => {
      if (this.current.theme === 'system') this.emit()
    })
    this.applyTheme()
  }

  get value(): EditorSettings {
    return this.current
  }

  get dark(): boolean {
    return this.current.theme === 'dark' || (this.current.theme === 'system' && this.query.matches)
  }

  update(change: Partial<EditorSettings>): void {
    this.current = { ...this.current, ...change }
    try {
      localStorage.setItem(KEY, JSON.stringify(this.current))
    } catch {
      // Private mode or a full store: the setting still applies to this page.
    }
    this.emit()
  }

  /** Calls `listener` now and on every change. */
  watch(listener: Listener): void {
    this.listeners.push(listener)
    listener(this.current, this.dark)
  }

  private applyTheme(): void {
    document.documentElement.dataset.theme = this.dark ? 'dark' : 'light'
  }

  private emit(): void {
    this.applyTheme()
    for (const listener of this.listeners) listener(this.current, this.dark)
  }
}

let store: SettingsStore | null = null

/** The one store of this page (created on first use, which also applies the theme). */
export function settings(): SettingsStore {
  store ??= new SettingsStore()
  return store
}

let menuCount = 0

/** The "Settings" button and its popover: changes apply at once. Escape or a click
 * elsewhere closes it (the browser's popover light dismiss), focus returns to the button. */
export function settingsMenu(): HTMLElement {
  const s = settings()
  const id = `editor-settings-${++menuCount}`
  const button = h(
    'button',
    { type: 'button', class: 'btn small settings-button', 'aria-haspopup': 'dialog', 'aria-expanded': 'false', 'aria-controls': id, title: 'Editor settings' },
    h('span', { class: 'settings-gear', 'aria-hidden': 'true' }, '⚙'),
    h('span', { class: 'settings-button-label' }, 'Settings'),
  )
  const themeGroup = h(
    'fieldset',
    { class: 'settings-themes' },
    h('legend', {}, 'Theme'),
    ...THEMES.map((theme) =>
      h(
        'label',
        { class: 'settings-choice' },
        h('input', { type: 'radio', name: `${id}-theme`, value: theme, checked: s.value.theme === theme }),
        h('span', {}, theme === 'system' ? 'System' : theme === 'dark' ? 'Dark' : 'Light'),
      ),
    ),
  )
  themeGroup.addEventListener('change', (event) => {
    const value = (event.target as HTMLInputElement).value as ThemeChoice
    s.update({ theme: value })
  })
  const fontSize = h('select', { id: `${id}-font` })
  for (const size of FONT_SIZES) fontSize.append(h('option', { value: String(size) }, `${size} px`))
  fontSize.value = String(s.value.fontSize)
  fontSize.addEventListener('change', () => s.update({ fontSize: Number(fontSize.value) }))
  const tabWidth = h('select', { id: `${id}-tab` })
  for (const width of TAB_WIDTHS) tabWidth.append(h('option', { value: String(width) }, `${width} columns`))
  tabWidth.value = String(s.value.tabWidth)
  tabWidth.addEventListener('change', () => s.update({ tabWidth: Number(tabWidth.value) }))
  const wrap = h('input', { type: 'checkbox', id: `${id}-wrap`, checked: s.value.lineWrap })
  wrap.addEventListener('change', () => s.update({ lineWrap: wrap.checked }))

  const panel = h(
    'div',
    { id, class: 'settings-popover', popover: 'auto', role: 'dialog', 'aria-label': 'Editor settings' },
    h('h2', { class: 'settings-title' }, 'Editor settings'),
    themeGroup,
    h('div', { class: 'settings-row' }, h('label', { for: fontSize.id }, 'Font size'), fontSize),
    h('div', { class: 'settings-row' }, h('label', { for: tabWidth.id }, 'Tab width'), tabWidth),
    h('div', { class: 'settings-row' }, h('label', { for: wrap.id }, 'Wrap long lines'), wrap),
    h('p', { class: 'settings-note' }, 'Kept in this browser only. Indentation follows the language (Python 4 spaces, Go tabs).'),
  )
  const place = () => {
    const box = button.getBoundingClientRect()
    const width = Math.min(300, window.innerWidth - 16)
    panel.style.width = `${width}px`
    panel.style.left = `${Math.max(8, Math.min(box.right - width, window.innerWidth - width - 8))}px`
    panel.style.top = `${box.bottom + 6}px`
  }
  button.popoverTargetElement = panel
  panel.addEventListener('beforetoggle', (event) => {
    if ((event as ToggleEvent).newState === 'open') place()
  })
  panel.addEventListener('toggle', (event) => {
    const open = (event as ToggleEvent).newState === 'open'
    button.setAttribute('aria-expanded', String(open))
    if (open) panel.querySelector<HTMLInputElement>('input:checked')?.focus()
    else if (panel.contains(document.activeElement) || document.activeElement === document.body) button.focus()
  })
  document.body.append(panel)
  window.addEventListener('resize', () => {
    if (panel.matches(':popover-open')) place()
  })
  return button
}
