/** The room's history endpoints (/work's api contract, README "REST API"): the record of
 * who changed what and when, the document at a moment, authorship, restore and fork. */
import { call, type RoomCreated } from './api'

export interface Who {
  id: string
  name: string
  role: string
}

export type EventKind = 'edit' | 'run' | 'ai' | 'comment' | 'chat'

export interface HistoryEvent {
  ts: number
  ts_first: number
  seq: number
  who: Who
  kind: EventKind
  chars_added: number
  chars_removed: number
  files: string[]
  /** Characters of the row's biggest single insert when it is a large one, else 0. */
  large: number
  run: { id: string; status: string } | null
}

export interface HistoryPage {
  events: HistoryEvent[]
  more: boolean
  first_ts: number | null
  last_ts: number | null
  large_insert: number
}

export interface ChatAt {
  author: string
  author_role: string
  text: string
  /** As the chat entry holds it: milliseconds from a browser; null when missing. */
  ts: number | null
  ai: boolean
}

export interface RunAt {
  id: string
  status: string
  stdout: string
  stderr: string
  compile_output: string
  exit_code: number | null
  entry: string
}

export interface Moment {
  ts: number
  seq: number
  entry: string
  language: string
  files: Record<string, string>
  chat: ChatAt[]
  run: RunAt | null
}

export interface Authorship {
  path: string
  text: string
  spans: { from: number; to: number; who: number }[]
  people: Who[]
}

export interface PersonSummary {
  who: Who
  typed: number
  pasted: number
  ai: number
  edits: number
}

export interface Summary {
  people: PersonSummary[]
  large_inserts: { ts: number; seq: number; who: Who; chars: number; path: string }[]
}

const enc = encodeURIComponent

/** Query parameters, leaving out the ones not given. */
function query(params: Record<string, string | number | undefined>): string {
  const parts = Object.entries(params)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([key, value]) => `${key}=${enc(String(value))}`)
  return parts.length ? `?${parts.join('&')}` : ''
}

export function historyApi(room: string, token: () => string | null) {
  const base = `/api/rooms/${enc(room)}`
  return {
    page: (from?: number, to?: number, limit?: number) =>
      call<HistoryPage>('GET', `${base}/history${query({ from, to, limit })}`, token()),
    at: (ts: number, signal?: AbortSignal) => call<Moment>('GET', `${base}/history/at${query({ ts })}`, token(), undefined, signal),
    authorship: (path: string, ts?: number) =>
      call<Authorship>('GET', `${base}/history/authorship${query({ path, ts })}`, token()),
    summary: () => call<Summary>('GET', `${base}/history/summary`, token()),
    restore: (ts: number) => call<{ ts: number; restored_at: number; files: number }>('POST', `${base}/history/restore`, token(), { ts }),
    fork: (ts: number) => call<RoomCreated>('POST', `${base}/history/fork`, token(), { ts }),
  }
}

export type HistoryApi = ReturnType<typeof historyApi>

/** The whole session, following `more` page by page (the server caps a page). */
export async function wholeHistory(history: HistoryApi, maxPages = 50): Promise<HistoryPage> {
  const first = await history.page()
  const events = [...first.events]
  let page = first
  for (let n = 1; page.more && n < maxPages && events.length; n++) {
    const last = events[events.length - 1]
    page = await history.page(last.ts)
    // `from` is inclusive: events already had are dropped. A row gives one event per
    // person and kind (the same seq), and a row extended later another at a later ts.
    const id = (e: HistoryEvent) => `${e.seq}/${e.ts}/${e.who.id}/${e.kind}`
    const seen = new Set(events.filter((e) => e.ts >= last.ts).map(id))
    const fresh = page.events.filter((e) => !seen.has(id(e)))
    if (!fresh.length) break
    events.push(...fresh)
  }
  return { ...first, events, more: page.more, last_ts: page.last_ts ?? first.last_ts }
}
