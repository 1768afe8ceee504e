/** Keep a scrolling log at its newest entry, unless the reader scrolled up to read older
 * ones: then new content leaves the view alone and a "New messages" button jumps down. */
import { h } from './dom'

const SLACK_PX = 24

export interface StickToBottom {
  readonly button: HTMLButtonElement
  /** Scroll to the newest entry and stick there again. */
  jump(): void
}

export function stickToBottom(scroller: HTMLElement, label = 'New messages'): StickToBottom {
  const button = h('button', { type: 'button', class: 'btn small jump-latest', hidden: true }, `${label} ↓`)
  // Wrapped so the button floats over the log's lower edge, whatever its parent is.
  const wrap = h('div', { class: 'stick-wrap' })
  scroller.replaceWith(wrap)
  // A scrolling region is reachable by keyboard (arrow keys scroll it once focused).
  if (!scroller.hasAttribute('tabindex')) scroller.tabIndex = 0
  wrap.append(scroller, button)

  let pinned = true
  let lastHeight = scroller.scrollHeight
  const atBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= SLACK_PX
  const jump = () => {
    pinned = true
    scroller.scrollTop = scroller.scrollHeight
    button.hidden = true
  }
  scroller.addEventListener('scroll', () => {
    // A hidden log (display: none) reports no size; its scroll events say nothing.
    if (scroller.clientHeight === 0) return
    pinned = atBottom()
    if (pinned) button.hidden = true
  })
  const follow = () => {
    const grew = scroller.scrollHeight > lastHeight
    lastHeight = scroller.scrollHeight
    if (pinned) scroller.scrollTop = scroller.scrollHeight
    else if (grew && scroller.clientHeight > 0) button.hidden = false
  }
  new MutationObserver(follow).observe(scroller, { childList: true, subtree: true, characterData: true })
  // Shown again after a tab switch, or resized: the newest entry stays in view.
  new ResizeObserver(() => {
    if (pinned) scroller.scrollTop = scroller.scrollHeight
  }).observe(scroller)
  button.addEventListener('click', () => {
    jump()
    scroller.focus({ preventScroll: true })
  })
  return { button, jump }
}
