/** Short messages for everyone, screen readers included (a polite live region). */
import { h } from './dom'

export type NoticeKind = 'info' | 'warn' | 'error'

export class Notices {
  readonly element = h('div', { class: 'notices', role: 'status', 'aria-live': 'polite' })

  show(message: string, kind: NoticeKind = 'info', ms = 6000): void {
    const close = h('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss' }, '×')
    const notice = h('div', { class: `notice ${kind}` }, h('span', {}, message), close)
    close.addEventListener('click', () => notice.remove())
    this.element.append(notice)
    if (ms > 0) window.setTimeout(() => notice.remove(), ms)
  }
}
