/** A tiny element builder: h('button', { class: 'x', onclick: fn }, 'Label'). */

type Child = Node | string | number | null | undefined | false
type AttrValue = string | number | boolean | null | undefined | EventListener

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, AttrValue> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value as EventListener)
    } else if (key === 'class') {
      el.className = String(value)
    } else if (key === 'value' && 'value' in el) {
      ;(el as HTMLInputElement).value = String(value)
    } else {
      el.setAttribute(key, value === true ? '' : String(value))
    }
  }
  append(el, ...children)
  return el
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)))
  }
}

/** Replace all children of `parent`. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild)
  append(parent, ...children)
}

export function $(selector: string, root: ParentNode = document): HTMLElement {
  const el = root.querySelector<HTMLElement>(selector)
  if (!el) throw new Error(`missing element ${selector}`)
  return el
}

/** Copy text to the clipboard; falls back to selecting an input when the API is refused. */
export async function copyText(text: string, fallback?: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text)
    return true
  } catch {
    if (fallback) {
      fallback.focus()
      fallback.select()
      return document.execCommand?.('copy') ?? false
    }
    return false
  }
}

/** A button that copies `text`, and says so for a moment. */
export function copyButton(text: () => string, label: string, input?: HTMLInputElement): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'btn small', 'aria-label': label }, 'Copy')
  button.addEventListener('click', async () => {
    const ok = await copyText(text(), input)
    button.textContent = ok ? 'Copied' : 'Select + Ctrl+C'
    setTimeout(() => (button.textContent = 'Copy'), 1500)
  })
  return button
}

export function formatTime(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
}

/** A function that runs `run` once in the next microtask, however often it is called
 * before then. Yjs observers can fire inside a CodeMirror update (local typing), and a
 * view must not be dispatched to from inside another update. */
export function inMicrotask(run: () => void): () => void {
  let scheduled = false
  return () => {
    if (scheduled) return
    scheduled = true
    queueMicrotask(() => {
      scheduled = false
      run()
    })
  }
}
