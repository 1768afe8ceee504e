/** The room page's columns: the file tree, the editor, a drag handle
 * and the side area. The handle is a focusable `separator`: drag it, or use the arrow keys
 * (Shift for bigger steps, Home/End for the limits). The width is kept per browser. */
import { h } from './dom'

const STORAGE_KEY = 'codementor.sideWidth'
const DEFAULT_PX = 400
const MIN_PX = 280
const MIN_EDITOR_PX = 360
const STEP_PX = 16
const BIG_STEP_PX = 64

export interface RoomLayout {
  readonly element: HTMLElement
  /** The file tree's column (file-tree.ts fills it). */
  readonly files: HTMLElement
  readonly handle: HTMLElement
  /** The side area's width now, in CSS pixels. */
  width(): number
}

function storedWidth(): number {
  try {
    const value = Number(localStorage.getItem(STORAGE_KEY))
    return Number.isFinite(value) && value >= MIN_PX ? value : DEFAULT_PX
  } catch {
    return DEFAULT_PX
  }
}

export function roomLayout(editorPane: HTMLElement, side: HTMLElement): RoomLayout {
  // Where the file tree goes (file-tree.ts shows it).
  const files = h('nav', { class: 'file-slot', 'aria-label': 'Files', hidden: true })
  const handle = h('div', {
    class: 'side-resizer',
    role: 'separator',
    tabindex: 0,
    'aria-orientation': 'vertical',
    'aria-label': 'Resize the side panels',
    'aria-controls': 'side',
    title: 'Drag, or focus and use the arrow keys, to resize',
  })
  side.id = 'side'
  const element = h('main', { id: 'main', class: 'room-layout', tabindex: -1 }, files, editorPane, handle, side)

  const maxWidth = () =>
    Math.max(MIN_PX, (element.clientWidth || window.innerWidth) - MIN_EDITOR_PX - handle.offsetWidth - files.offsetWidth)
  let width = storedWidth()
  const apply = (next: number, save: boolean) => {
    width = Math.round(Math.min(Math.max(next, MIN_PX), maxWidth()))
    element.style.setProperty('--side-w', `${width}px`)
    handle.setAttribute('aria-valuemin', String(MIN_PX))
    handle.setAttribute('aria-valuemax', String(Math.round(maxWidth())))
    handle.setAttribute('aria-valuenow', String(width))
    handle.setAttribute('aria-valuetext', `Side panels ${width} pixels wide`)
    if (save) {
      try {
        localStorage.setItem(STORAGE_KEY, String(width))
      } catch {
        // storage refused: the width lasts for this page only
      }
    }
  }
  // The stored width as asked for; clamped to the window once the page is laid out.
  element.style.setProperty('--side-w', `${width}px`)
  handle.setAttribute('aria-valuenow', String(width))
  requestAnimationFrame(() => apply(width, false))
  window.addEventListener('resize', () => apply(storedWidth(), false))

  handle.addEventListener('keydown', (event) => {
    const step = event.shiftKey ? BIG_STEP_PX : STEP_PX
    // The side area is on the right: moving the handle left widens it.
    const moves: Record<string, number> = {
      ArrowLeft: width + step,
      ArrowRight: width - step,
      ArrowUp: width + step,
      ArrowDown: width - step,
      Home: MIN_PX,
      End: maxWidth(),
    }
    if (!(event.key in moves)) return
    event.preventDefault()
    apply(moves[event.key], true)
  })

  handle.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return
    event.preventDefault()
    handle.setPointerCapture(event.pointerId)
    handle.classList.add('dragging')
    // Relative to where the handle was grabbed: the side follows the pointer exactly.
    const startX = event.clientX
    const startWidth = width
    const move = (e: PointerEvent) => apply(startWidth + startX - e.clientX, false)
    const up = (e: PointerEvent) => {
      apply(startWidth + startX - e.clientX, true)
      handle.classList.remove('dragging')
      handle.removeEventListener('pointermove', move)
      handle.removeEventListener('pointerup', up)
      handle.removeEventListener('pointercancel', up)
    }
    handle.addEventListener('pointermove', move)
    handle.addEventListener('pointerup', up)
    handle.addEventListener('pointercancel', up)
  })
  handle.addEventListener('dblclick', () => apply(DEFAULT_PX, true))

  return { element, files, handle, width: () => width }
}
