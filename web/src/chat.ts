/** The chat panel on the shared `chat` array of Y.Map {id, author, text, ts}. */
import * as Y from 'yjs'
import { formatTime, h } from './dom'
import type { Session } from './session'

interface Me {
  name: string
  color: string
}

export function chatPanel(chat: Y.Array<unknown>, session: Session, me: () => Me): HTMLElement {
  const log = h('ol', { class: 'chat-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Chat messages' })
  const empty = h('p', { class: 'muted small empty' }, 'No messages yet.')
  const input = h('input', {
    type: 'text',
    id: 'chat-input',
    maxlength: 2000,
    autocomplete: 'off',
    placeholder: 'Message everyone…',
    'aria-label': 'Chat message',
  })
  const form = h('form', { class: 'chat-form' }, input, h('button', { type: 'submit', class: 'btn small primary' }, 'Send'))
  const readOnlyNote = h('p', { class: 'muted small' }, 'Viewers can read the chat but not post.')
  const element = h(
    'section',
    { class: 'panel chat', 'aria-labelledby': 'chat-heading' },
    h('h2', { id: 'chat-heading' }, 'Chat'),
    empty,
    log,
    form,
    readOnlyNote,
  )

  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const text = input.value.trim()
    if (!text) return
    const { name, color } = me()
    const message = new Y.Map<unknown>()
    message.set('id', `m${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`)
    message.set('author', name)
    message.set('color', color)
    message.set('text', text)
    message.set('ts', Date.now())
    chat.push([message])
    input.value = ''
  })

  // Messages are appended; an existing one may still change (a streamed reply), so
  // each rendered message is updated in place and the log is never rebuilt.
  const rendered: { li: HTMLElement; update: (item: unknown) => void }[] = []
  const read = (item: unknown, key: string): unknown =>
    item instanceof Y.Map ? item.get(key) : (item as Record<string, unknown> | null)?.[key]
  const create = () => {
    const author = h('span', { class: 'author' })
    const time = h('time', { class: 'muted small' })
    const text = h('p', {})
    const li = h('li', { class: 'chat-message' }, author, time, text)
    const update = (item: unknown) => {
      author.textContent = String(read(item, 'author') ?? 'someone')
      const color = read(item, 'color')
      author.style.color = typeof color === 'string' ? color : ''
      const ts = Number(read(item, 'ts') ?? 0)
      time.textContent = ts ? formatTime(ts) : ''
      text.textContent = String(read(item, 'text') ?? '')
    }
    return { li, update }
  }
  const render = () => {
    const items = chat.toArray()
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40
    while (rendered.length > items.length) rendered.pop()!.li.remove()
    items.forEach((item, i) => {
      if (!rendered[i]) {
        rendered[i] = create()
        log.append(rendered[i].li)
      }
      rendered[i].update(item)
    })
    empty.hidden = items.length > 0
    if (nearBottom) log.scrollTop = log.scrollHeight
  }
  chat.observeDeep(render)
  session.watch(() => {
    form.hidden = !session.canChat
    readOnlyNote.hidden = session.canChat
  })
  render()
  return element
}
