/** The two-way class's REST calls (design section A): the chat and AI policy, students'
 * messages and questions, hands, mutes, an edit grant revoked early. */
import { call } from './api'

export type ChatPolicy = 'open' | 'questions' | 'closed'
export type AiPolicy = 'off' | 'hints' | 'full'

/** A raised hand as the staff room holds it (`hand:{key}`). */
export interface HandEntry {
  key: string
  user_id: string
  name: string
  question?: string | null
  raised_at: number
}

/** A student's question waiting in the staff inbox (`question:{id}`). */
export interface QuestionEntry {
  id: string
  key: string
  user_id: string
  name: string
  text: string
  ts: number
  published?: boolean
}

/** A muted student (`muted:{key}`). */
export interface MutedEntry {
  key: string
  user_id: string
  name: string
  ts: number
}

/** `GET /api/rooms/{room}/class`: staff get the staff room's token and lists; anyone
 * else their own hand and the key naming it in the class room's `class` root. */
export interface ClassState {
  chat: ChatPolicy
  ai: AiPolicy
  staff_room?: string
  staff_token?: string
  hands?: HandEntry[]
  questions?: QuestionEntry[]
  muted?: MutedEntry[]
  hand_key?: string
  hand?: { raised_at: number; question?: string | null } | null
}

const enc = encodeURIComponent
const base = (room: string) => `/api/rooms/${enc(room)}`

export const classApi = {
  state: (room: string, token: string | null) => call<ClassState>('GET', `${base(room)}/class`, token),
  setPolicy: (room: string, token: string | null, patch: { chat?: ChatPolicy; ai?: AiPolicy }) =>
    call<ClassState>('PUT', `${base(room)}/class`, token, patch),
  /** A student's message: to the chat (open), to the staff inbox (questions). */
  post: (room: string, token: string | null, text: string) =>
    call<Record<string, unknown>>('POST', `${base(room)}/messages`, token, { text }),
  publish: (room: string, token: string | null, id: string) =>
    call<Record<string, unknown>>('POST', `${base(room)}/questions/${enc(id)}/publish`, token),
  dismiss: (room: string, token: string | null, id: string) =>
    call<unknown>('DELETE', `${base(room)}/questions/${enc(id)}`, token),
  raiseHand: (room: string, token: string | null, question: string) =>
    call<unknown>('POST', `${base(room)}/hand`, token, question ? { question } : {}),
  lowerOwnHand: (room: string, token: string | null) => call<unknown>('DELETE', `${base(room)}/hand`, token),
  lowerHand: (room: string, token: string | null, key: string) =>
    call<unknown>('DELETE', `${base(room)}/hands/${enc(key)}`, token),
  lowerAll: (room: string, token: string | null) => call<unknown>('DELETE', `${base(room)}/hands`, token),
  /** Owner: the peers of this user id (or connection) go back to their token's role now. */
  revokeRole: (room: string, token: string | null, user: string) =>
    call<unknown>('DELETE', `${base(room)}/peers/${enc(user)}/role`, token),
  mute: (room: string, token: string | null, key: string) => call<unknown>('PUT', `${base(room)}/muted/${enc(key)}`, token),
  unmute: (room: string, token: string | null, key: string) => call<unknown>('DELETE', `${base(room)}/muted/${enc(key)}`, token),
}
