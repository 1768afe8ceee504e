/** A broadcast student's side of the two-way class: the chat composer (POST /messages,
 * shaped by the class's chat policy) and the raised hand with an optional question
 * (POST/DELETE /hand). The hand's state is the server's: the class room's `class` root
 * `hand:{hand_key}`, so a hand the teacher lowers goes down here at once. */
import type * as Y from 'yjs'
import './class.css'
import { ApiError } from './api'
import { classApi, type ChatPolicy, type ClassState } from './class-api'
import { classEntries, classEntry } from './class-doc'
import { h, replace } from './dom'
import { icon } from './icons'
import type { Notices } from './notices'
import type { Presence } from './presence'
import type { Session } from './session'

const POLICIES: ChatPolicy[] = ['open', 'questions', 'closed']
const MAX_QUESTION = 500

/** The chat policy the class room's `class` root says, else the server's answer, else the
 * broadcast default. */
export function chatPolicy(root: Y.Map<unknown>, fallback: ChatPolicy | null): ChatPolicy {
  const chat = classEntries(root, 'policy').get('chat')?.chat
  return POLICIES.includes(chat as ChatPolicy) ? (chat as ChatPolicy) : (fallback ?? 'questions')
}

/** What the server said to a student's message, in words for them. */
export function postErrorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 403 && /mute/i.test(err.message)) return 'You are muted: the teacher has turned off your messages for now.'
    if (err.status === 403 && /closed/i.test(err.message)) return 'The chat is closed: your message was not sent.'
    if (err.status === 403 && /name/i.test(err.message)) return 'Join the class with your name first (your name button, top right).'
    if (err.status === 429) return `Too many messages: wait ${err.retryAfter ?? 'a few'} seconds and send it again.`
    if (err.status === 422) return 'Messages are 1 to 2000 characters.'
    return `Your message was not sent: ${err.message}`
  }
  return `Your message was not sent: ${String(err)}`
}

function handErrorText(err: unknown): string {
  if (err instanceof ApiError && err.status === 403 && /name/i.test(err.message)) return 'Join the class with your name first (your name button, top right).'
  if (err instanceof ApiError && err.status === 429) return `Too many tries: wait ${err.retryAfter ?? 'a few'} seconds.`
  return `Could not raise your hand: ${err instanceof ApiError ? err.message : String(err)}`
}

export interface StudentComposer {
  element: HTMLElement
  /** Whether this page's chat goes through the REST composer (a viewer in a class). */
  active(): boolean
}

/** `info`: GET /class, asked once the page knows it is a class's student. */
export function studentComposer(session: Session, notices: Notices, root: Y.Map<unknown>, info: () => Promise<ClassState | null>): StudentComposer {
  let fallback: ChatPolicy | null = null
  const input = h('input', { type: 'text', id: 'class-message', maxlength: 2000, autocomplete: 'off', 'aria-label': 'Chat message', 'aria-describedby': 'class-message-note' })
  const send = h('button', { type: 'submit', class: 'btn small primary' }, 'Send')
  const note = h('p', { id: 'class-message-note', class: 'muted small composer-note' })
  const error = h('p', { class: 'composer-error small', role: 'alert', hidden: true })
  const sent = h('p', { class: 'composer-sent muted small', 'aria-live': 'polite', hidden: true })
  const form = h('form', { class: 'chat-form student-composer' }, input, send)
  const element = h('div', { class: 'student-chat' }, form, note, error, sent)

  const render = () => {
    const policy = chatPolicy(root, fallback)
    element.dataset.policy = policy
    const closed = policy === 'closed'
    input.disabled = send.disabled = closed
    input.placeholder = closed ? 'The chat is closed' : policy === 'questions' ? 'Ask the teacher a question' : 'Message everyone…'
    note.textContent = closed
      ? 'The teacher has closed the chat for now.'
      : policy === 'questions'
        ? 'Only the teacher sees your question; they may share it with the class.'
        : 'Everyone in the class sees your message.'
  }
  root.observe(render)
  const active = () => session.state.mode === 'broadcast' && session.role === 'viewer'
  let asked = false
  session.watch(() => {
    if (asked || !active()) return
    asked = true
    void info().then((s) => {
      if (s) fallback = s.chat
      render()
    })
  })

  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const text = input.value.trim()
    if (!text) return
    const policy = chatPolicy(root, fallback)
    send.disabled = true
    error.hidden = true
    classApi
      .post(session.room, session.token, text)
      .then(() => {
        input.value = ''
        sent.hidden = policy !== 'questions'
        sent.textContent = policy === 'questions' ? `Sent to the teacher: “${text.length > 80 ? `${text.slice(0, 79)}…` : text}”` : ''
      })
      .catch((err) => {
        const message = postErrorText(err)
        error.textContent = message
        error.hidden = false
        notices.show(message, 'error', 8000)
      })
      .finally(() => render())
  })
  render()
  return { element, active }
}

/** "Raise hand" with an optional question; "Lower hand" while it is up. */
export function handControl(session: Session, notices: Notices, root: Y.Map<unknown>, state: Promise<ClassState | null>, presence: Presence): HTMLElement {
  let handKey: string | null = null
  const button = h('button', { type: 'button', class: 'btn toggle-btn hand-button', 'aria-pressed': 'false', 'aria-expanded': 'false', 'aria-controls': 'hand-form' })
  const question = h('input', { type: 'text', id: 'hand-question', maxlength: MAX_QUESTION, autocomplete: 'off', placeholder: 'Your question (optional)', 'aria-label': 'Your question (optional)' })
  const submit = h('button', { type: 'submit', class: 'btn small primary' }, 'Raise hand')
  const cancel = h('button', { type: 'button', class: 'btn small' }, 'Cancel')
  const form = h('form', { class: 'hand-form', id: 'hand-form', hidden: true, 'aria-label': 'Raise your hand' }, question, submit, cancel)
  const element = h('div', { class: 'hand-control' }, button, form)

  const raised = () => (handKey ? classEntry(root, 'hand', handKey) !== null : presence.hand)
  const render = () => {
    const up = raised()
    button.setAttribute('aria-pressed', String(up))
    button.setAttribute('aria-expanded', String(!form.hidden))
    replace(button, icon('hand'), up ? 'Lower hand' : 'Raise hand')
    if (up) form.hidden = true
    // The People panel shows hands from presence: it follows the server's record.
    if (handKey && presence.hand !== up) presence.setHand(up)
  }
  root.observe(render)
  void state.then((s) => {
    handKey = s?.hand_key ?? null
    render()
  })

  const close = () => {
    form.hidden = true
    render()
    button.focus()
  }
  button.addEventListener('click', () => {
    if (raised()) {
      button.disabled = true
      classApi
        .lowerOwnHand(session.room, session.token)
        .then(() => notices.show('Hand lowered.', 'info', 3000))
        .catch((err) => notices.show(`Could not lower your hand: ${err instanceof ApiError ? err.message : String(err)}`, 'error'))
        .finally(() => {
          button.disabled = false
          render()
        })
      return
    }
    form.hidden = !form.hidden
    render()
    if (!form.hidden) question.focus()
  })
  cancel.addEventListener('click', close)
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') close()
  })
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    submit.disabled = true
    classApi
      .raiseHand(session.room, session.token, question.value.trim())
      .then(() => {
        question.value = ''
        form.hidden = true
        notices.show('Hand raised: the teacher sees it.', 'info', 3000)
      })
      .catch((err) => notices.show(handErrorText(err), 'error', 8000))
      .finally(() => {
        submit.disabled = false
        render()
        button.focus()
      })
  })
  render()
  return element
}
