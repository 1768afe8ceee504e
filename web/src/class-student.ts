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

function handErrorText(err: unknown, what: 'raise' | 'lower'): string {
  if (err instanceof ApiError && err.status === 403 && /name/i.test(err.message)) return 'Join the class with your name first (your name button, top right).'
  if (err instanceof ApiError && err.status === 429) return `Too many tries: wait ${err.retryAfter ?? 'a few'} seconds.`
  return `Could not ${what} your hand: ${err instanceof ApiError ? err.message : String(err)}`
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

/** "Raise hand" (one click: the hand is up), then an optional question field (a second
 * POST updates the question and keeps the hand's place); "Lower hand" while it is up.
 * A server without the class API (GET /class failed): the presence hand, as before. */
export function handControl(session: Session, notices: Notices, root: Y.Map<unknown>, state: Promise<ClassState | null>, presence: Presence): HTMLElement {
  let handKey: string | null = null
  let known = false // GET /class answered (or failed)
  let pending = false // raised here, not yet in the synced document
  let formOpen = false
  const button = h('button', { type: 'button', class: 'btn toggle-btn hand-button', 'aria-pressed': 'false' })
  const question = h('input', { type: 'text', id: 'hand-question', maxlength: MAX_QUESTION, autocomplete: 'off', placeholder: 'Add a question (optional)', 'aria-label': 'Your question (optional)' })
  const submit = h('button', { type: 'submit', class: 'btn small primary' }, 'Send question')
  const cancel = h('button', { type: 'button', class: 'btn small' }, 'Close')
  const form = h('form', { class: 'hand-form', id: 'hand-form', hidden: true, 'aria-label': 'Your question for the teacher' }, question, submit, cancel)
  const element = h('div', { class: 'hand-control' }, button, form)

  const inDoc = () => (handKey ? classEntry(root, 'hand', handKey) !== null : false)
  const raised = () => (handKey ? inDoc() || pending : presence.hand)
  const render = () => {
    if (handKey && inDoc()) pending = false
    const up = raised()
    if (!up) formOpen = false
    button.setAttribute('aria-pressed', String(up))
    replace(button, icon('hand'), up ? 'Lower hand' : 'Raise hand')
    form.hidden = !formOpen
    // The People panel shows hands from presence: it follows the server's record.
    if (handKey && presence.hand !== up) presence.setHand(up)
  }
  root.observe(render)
  void state.then((s) => {
    handKey = s?.hand_key ?? null
    known = true
    render()
  })

  const fail = (err: unknown, what: 'raise' | 'lower') => notices.show(handErrorText(err, what), 'error', 8000)
  button.addEventListener('click', () => {
    if (!known) return
    if (!handKey) {
      presence.setHand(!presence.hand)
      render()
      notices.show(presence.hand ? 'Hand raised: the teacher sees it.' : 'Hand lowered.', 'info', 3000)
      return
    }
    button.disabled = true
    const up = raised()
    const request = up ? classApi.lowerOwnHand(session.room, session.token) : classApi.raiseHand(session.room, session.token, '')
    request
      .then(() => {
        pending = !up
        formOpen = !up
        notices.show(up ? 'Hand lowered.' : 'Hand raised: the teacher sees it.', 'info', 3000)
        if (up) presence.setHand(false)
        // The document says so shortly; should it not, the button stops pretending.
        else window.setTimeout(() => ((pending = false), render()), 5000)
      })
      .catch((err) => fail(err, up ? 'lower' : 'raise'))
      .finally(() => {
        button.disabled = false
        render()
        if (formOpen) question.focus()
      })
  })
  const close = () => {
    formOpen = false
    render()
    button.focus()
  }
  cancel.addEventListener('click', close)
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') close()
  })
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const text = question.value.trim()
    if (!text) return close()
    submit.disabled = true
    classApi
      .raiseHand(session.room, session.token, text)
      .then(() => {
        question.value = ''
        notices.show('Your question is with the teacher.', 'info', 3000)
        close()
      })
      .catch((err) => fail(err, 'raise'))
      .finally(() => (submit.disabled = false))
  })
  // A write grant answers the hand (as it did before hands were the server's).
  session.watch((now, before) => {
    if (now.role === 'editor' && before.role === 'viewer' && handKey && raised()) {
      classApi.lowerOwnHand(session.room, session.token).catch(() => undefined)
    }
  })
  render()
  return element
}
