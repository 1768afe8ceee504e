/** The teacher's "Class" tab (broadcast rooms, owners and editors): the chat and AI
 * policy, raised hands (oldest first, with their questions), the questions inbox, and who
 * is muted. Hands, questions and mutes live in the server-owned staff room
 * `{class}.staff`, which this page joins as a viewer with the token GET /class hands out:
 * a second Y.Doc whose `class` root only the server writes. */
import * as Y from 'yjs'
import './class.css'
import type { WebsocketProvider } from 'y-websocket'
import { ApiError } from './api'
import { classApi, type AiPolicy, type ChatPolicy, type ClassState } from './class-api'
import { ago, classEntries, str, toMs } from './class-doc'
import type { Grants } from './class-grants'
import { connect } from './connection'
import { formatTime, h, replace } from './dom'
import { icon } from './icons'
import type { Notices } from './notices'
import type { Session } from './session'

export const CHAT_LABELS: Record<ChatPolicy, string> = { open: 'Open', questions: 'Questions only', closed: 'Closed' }
export const AI_LABELS: Record<AiPolicy, string> = { off: 'Off', hints: 'Hints', full: 'Full' }
const CHAT_HELP: Record<ChatPolicy, string> = {
  open: 'Students post to everyone.',
  questions: 'Students’ messages come to you; publish one to share it.',
  closed: 'Students cannot post.',
}
const RETRY_MS = 3000

export interface ClassStaffUi {
  element: HTMLElement
  /** Hands plus unanswered questions: what waits for the teacher. */
  waiting(): number
  onWaitingChange(listener: (added: number) => void): void
  destroy(): void
}

interface Options {
  session: Session
  notices: Notices
  grants: Grants
  /** The class room's own `class` root: the policy, live. */
  classRoot: Y.Map<unknown>
}

const errorText = (err: unknown) => (err instanceof ApiError ? err.message : String(err))

export function classStaffPanel({ session, notices, grants, classRoot }: Options): ClassStaffUi {
  const chatSelect = h('select', { id: 'class-chat-policy' })
  replace(chatSelect, ...(Object.keys(CHAT_LABELS) as ChatPolicy[]).map((p) => h('option', { value: p }, CHAT_LABELS[p])))
  const aiSelect = h('select', { id: 'class-ai-policy' })
  replace(aiSelect, ...(Object.keys(AI_LABELS) as AiPolicy[]).map((p) => h('option', { value: p }, AI_LABELS[p])))
  const chatHelp = h('p', { class: 'muted small class-help' })
  const ownerNote = h('p', { class: 'muted small', hidden: true }, 'Only the owner changes these.')
  const policy = h(
    'div',
    { class: 'class-policy' },
    h('label', { for: 'class-chat-policy' }, 'Chat'),
    chatSelect,
    h('label', { for: 'class-ai-policy' }, 'AI for students'),
    aiSelect,
  )

  const handsCount = h('span', { class: 'count' })
  const lowerAll = h('button', { type: 'button', class: 'btn small', hidden: true }, 'Lower all')
  const handsList = h('ol', { class: 'class-list class-hands', 'aria-label': 'Raised hands, oldest first' })
  const handsEmpty = h('p', { class: 'muted small' }, 'No hands raised.')
  const questionsCount = h('span', { class: 'count' })
  const questionsList = h('ol', { class: 'class-list class-questions', 'aria-label': 'Questions from students' })
  const questionsEmpty = h('p', { class: 'muted small' }, 'No questions waiting.')
  const mutedList = h('ul', { class: 'class-list class-muted', 'aria-label': 'Muted students' })
  const mutedSection = h('div', { class: 'class-section', hidden: true }, h('h3', {}, 'Muted'), mutedList)
  const status = h('p', { class: 'muted small class-status', role: 'status' }, 'Connecting to the class…')

  const element = h(
    'section',
    { class: 'panel class-panel', 'aria-labelledby': 'class-heading' },
    h('h2', { id: 'class-heading' }, 'Class'),
    policy,
    chatHelp,
    ownerNote,
    status,
    h('div', { class: 'class-section' }, h('div', { class: 'class-section-head' }, h('h3', {}, 'Hands ', handsCount), lowerAll), handsEmpty, handsList),
    h('div', { class: 'class-section' }, h('h3', {}, 'Questions ', questionsCount), questionsEmpty, questionsList),
    mutedSection,
  )

  // -- policy: the class room's `class` root says what it is; PUT /class changes it ---------
  let fallback: { chat: ChatPolicy; ai: AiPolicy } = { chat: 'questions', ai: 'full' }
  const currentPolicy = () => {
    const chat = classEntries(classRoot, 'policy').get('chat')?.chat
    const ai = classEntries(classRoot, 'policy').get('ai')?.ai
    return {
      chat: (typeof chat === 'string' && chat in CHAT_LABELS ? chat : fallback.chat) as ChatPolicy,
      ai: (typeof ai === 'string' && ai in AI_LABELS ? ai : fallback.ai) as AiPolicy,
    }
  }
  const showPolicy = () => {
    const { chat, ai } = currentPolicy()
    if (document.activeElement !== chatSelect) chatSelect.value = chat
    if (document.activeElement !== aiSelect) aiSelect.value = ai
    chatHelp.textContent = CHAT_HELP[chat]
    chatSelect.disabled = aiSelect.disabled = !session.isOwner
    ownerNote.hidden = session.isOwner
  }
  classRoot.observe(showPolicy)
  session.watch(showPolicy)
  const changePolicy = (patch: { chat?: ChatPolicy; ai?: AiPolicy }, select: HTMLSelectElement) => {
    select.disabled = true
    classApi
      .setPolicy(session.room, session.token, patch)
      .then((state) => {
        fallback = { chat: state.chat, ai: state.ai }
        notices.show(patch.chat ? `Chat: ${CHAT_LABELS[state.chat]}.` : `AI for students: ${AI_LABELS[state.ai]}.`, 'info', 3000)
      })
      .catch((err) => notices.show(`Could not change the class settings: ${errorText(err)}`, 'error'))
      .finally(() => {
        select.disabled = !session.isOwner
        select.blur()
        showPolicy()
      })
  }
  chatSelect.addEventListener('change', () => changePolicy({ chat: chatSelect.value as ChatPolicy }, chatSelect))
  aiSelect.addEventListener('change', () => changePolicy({ ai: aiSelect.value as AiPolicy }, aiSelect))

  // -- the staff room -------------------------------------------------------------------
  const staffDoc = new Y.Doc()
  const staffRoot = staffDoc.getMap<unknown>('class')
  let provider: WebsocketProvider | null = null
  let destroyed = false
  let retryTimer: number | undefined

  const join = async () => {
    let state: ClassState
    try {
      state = await classApi.state(session.room, session.token)
    } catch (err) {
      status.textContent = `The class tools are unavailable: ${errorText(err)}`
      status.hidden = false
      if (!(err instanceof ApiError && (err.status === 403 || err.status === 404))) retryTimer = window.setTimeout(() => void join(), RETRY_MS * 3)
      return
    }
    fallback = { chat: state.chat, ai: state.ai }
    showPolicy()
    if (!state.staff_room || !state.staff_token || destroyed) {
      status.textContent = 'Only the class’s staff see hands and questions.'
      return
    }
    if (provider) {
      // The staff token ended (4401): the same document, a fresh token.
      provider.params.token = state.staff_token
      provider.connect()
      return
    }
    provider = connect(state.staff_room, state.staff_token, staffDoc, {
      onState: (s, detail, code) => {
        status.hidden = s === 'connected'
        if (s === 'connecting' || s === 'reconnecting') status.textContent = 'Connecting to the class…'
        else if (s === 'offline') status.textContent = 'Offline: hands and questions will update when you are back.'
        else if (s === 'closed') {
          status.textContent = `Hands and questions are not updating: ${detail ?? 'disconnected'}`
          if (code === 4401 && !destroyed) retryTimer = window.setTimeout(() => void join(), RETRY_MS)
        }
      },
      onReceipt: () => undefined,
      onRoleChange: () => undefined,
      onDenied: () => undefined,
    })
  }
  void join()

  // -- rendering ----------------------------------------------------------------------
  const agoSpan = (ts: unknown, prefix: string) =>
    h('time', { class: 'ago muted small', 'data-ts': String(toMs(ts)), 'data-prefix': prefix, title: toMs(ts) ? formatTime(toMs(ts)) : null }, `${prefix}${ago(ts)}`)
  const tickAgo = () => {
    for (const el of element.querySelectorAll<HTMLElement>('time.ago')) el.textContent = `${el.dataset.prefix ?? ''}${ago(Number(el.dataset.ts))}`
  }
  const tick = window.setInterval(tickAgo, 30_000)

  const act = (button: HTMLButtonElement, run: () => Promise<unknown>, failure: string) => {
    button.disabled = true
    run()
      .catch((err) => notices.show(`${failure}: ${errorText(err)}`, 'error'))
      .finally(() => (button.disabled = false))
  }
  const btn = (label: string, aria: string, onclick: (button: HTMLButtonElement) => void, cls = 'btn small') => {
    const button = h('button', { type: 'button', class: cls, 'aria-label': aria }, label)
    button.addEventListener('click', () => onclick(button))
    return button
  }

  const hands = () =>
    [...classEntries(staffRoot, 'hand').entries()]
      .map(([key, v]) => ({ key: str(v.key) || key, userId: str(v.user_id), name: str(v.name) || 'A student', question: str(v.question), raisedAt: toMs(v.raised_at) }))
      .sort((a, b) => a.raisedAt - b.raisedAt || a.name.localeCompare(b.name))
  const questions = () =>
    [...classEntries(staffRoot, 'question').entries()]
      .filter(([, v]) => v.published !== true)
      .map(([id, v]) => ({ id: str(v.id) || id, key: str(v.key), userId: str(v.user_id), name: str(v.name) || 'A student', text: str(v.text), ts: toMs(v.ts) }))
      .sort((a, b) => a.ts - b.ts)
  const muted = () =>
    [...classEntries(staffRoot, 'muted').entries()]
      .map(([key, v]) => ({ key: str(v.key) || key, name: str(v.name) || 'A student', ts: toMs(v.ts) }))
      .sort((a, b) => a.name.localeCompare(b.name))

  const handRow = (hand: ReturnType<typeof hands>[number], position: number) => {
    const until = hand.userId ? grants.until(hand.userId) : null
    const grant = !session.isOwner || !hand.userId
      ? null
      : until
        ? btn('Revoke', `Revoke ${hand.name}'s edit access`, (b) => act(b, () => grants.revoke(hand.userId, hand.name), 'Could not revoke'), 'btn small danger')
        : btn('Let edit 10 min', `Let edit 10 min: ${hand.name}`, (b) => act(b, () => grants.grant(hand.userId, hand.name), 'Could not let edit'))
    return h(
      'li',
      { class: 'class-item hand-item', 'data-key': hand.key },
      h(
        'div',
        { class: 'class-item-head' },
        h('span', { class: 'class-pos', 'aria-hidden': 'true' }, String(position)),
        icon('hand'),
        h('span', { class: 'class-name' }, hand.name),
        agoSpan(hand.raisedAt, 'raised '),
      ),
      hand.question ? h('p', { class: 'class-text' }, hand.question) : null,
      until ? h('p', { class: 'muted small' }, `Can edit until ${formatTime(until)}`) : null,
      h(
        'div',
        { class: 'class-actions' },
        grant,
        btn('Lower', `Lower ${hand.name}'s hand`, (b) => act(b, () => classApi.lowerHand(session.room, session.token, hand.key), 'Could not lower the hand')),
      ),
    )
  }

  const questionRow = (q: ReturnType<typeof questions>[number], mutedKeys: Set<string>) =>
    h(
      'li',
      { class: 'class-item question-item', 'data-id': q.id },
      h('div', { class: 'class-item-head' }, h('span', { class: 'class-name' }, q.name), agoSpan(q.ts, '')),
      h('p', { class: 'class-text' }, q.text),
      h(
        'div',
        { class: 'class-actions' },
        btn('Publish', `Publish ${q.name}'s question to the class`, (b) => act(b, () => classApi.publish(session.room, session.token, q.id), 'Could not publish'), 'btn small primary'),
        btn('Dismiss', `Dismiss ${q.name}'s question`, (b) => act(b, () => classApi.dismiss(session.room, session.token, q.id), 'Could not dismiss')),
        q.key && !mutedKeys.has(q.key)
          ? btn('Mute', `Mute ${q.name} in chat`, (b) => act(b, () => classApi.mute(session.room, session.token, q.key), 'Could not mute'))
          : q.key
            ? h('span', { class: 'badge muted-badge' }, 'Muted')
            : null,
      ),
    )

  let last = ''
  let waitingBefore = 0
  const waitingListeners: ((added: number) => void)[] = []
  const render = () => {
    const hs = hands()
    const qs = questions()
    const ms = muted()
    const mutedKeys = new Set(ms.map((m) => m.key))
    const key = JSON.stringify([hs, qs, ms, hs.map((hand) => grants.until(hand.userId)), session.state.role])
    if (key !== last) {
      last = key
      handsCount.textContent = hs.length ? `(${hs.length})` : ''
      handsEmpty.hidden = hs.length > 0
      lowerAll.hidden = hs.length === 0
      replace(handsList, ...hs.map((hand, i) => handRow(hand, i + 1)))
      questionsCount.textContent = qs.length ? `(${qs.length})` : ''
      questionsEmpty.hidden = qs.length > 0
      replace(questionsList, ...qs.map((q) => questionRow(q, mutedKeys)))
      mutedSection.hidden = ms.length === 0
      replace(
        mutedList,
        ...ms.map((m) =>
          h(
            'li',
            { class: 'class-item muted-item' },
            h('span', { class: 'class-name' }, m.name),
            btn('Unmute', `Unmute ${m.name}`, (b) => act(b, () => classApi.unmute(session.room, session.token, m.key), 'Could not unmute')),
          ),
        ),
      )
    }
    const waiting = hs.length + qs.length
    if (waiting > waitingBefore) for (const listener of waitingListeners) listener(waiting - waitingBefore)
    waitingBefore = waiting
  }
  lowerAll.addEventListener('click', () => act(lowerAll, () => classApi.lowerAll(session.room, session.token), 'Could not lower the hands'))
  staffRoot.observe(render)
  grants.onChange(render)
  session.watch(render)

  return {
    element,
    waiting: () => waitingBefore,
    onWaitingChange: (listener) => waitingListeners.push(listener),
    destroy: () => {
      destroyed = true
      window.clearInterval(tick)
      window.clearTimeout(retryTimer)
      provider?.destroy()
    },
  }
}
