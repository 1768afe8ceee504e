/**
 * Personal tokens. A join link's token is shared by everyone who opens the link, so the
 * server cannot tell two students of one link apart. On load the page exchanges it
 * (`POST /api/rooms/{room}/join`) for a personal token carrying the display name, and keeps
 * that token per room in localStorage: a reload or a reconnect is the same person. A rename
 * exchanges again (the server keeps the person's id).
 */
import { api, ApiError } from './api'
import { guestName } from './identity'
import { decodeToken } from './token'

const KEY = 'codementor.personal'

interface Stored {
  /** The link token it was exchanged from ('' for a tokenless dev-mode join). */
  source: string
  token: string
}

function load(): Record<string, Stored> {
  try {
    const value = JSON.parse(localStorage.getItem(KEY) ?? '{}') as unknown
    return value && typeof value === 'object' ? (value as Record<string, Stored>) : {}
  } catch {
    return {}
  }
}

function expired(token: string): boolean {
  const exp = decodeToken(token)?.exp
  return exp !== null && exp !== undefined && exp * 1000 < Date.now()
}

/** The personal token kept for `room`, if it came from this link and is still valid. */
export function storedToken(room: string, link: string | null): string | null {
  const stored = load()[room]
  if (!stored || stored.source !== (link ?? '') || typeof stored.token !== 'string') return null
  return expired(stored.token) ? null : stored.token
}

export function storeToken(room: string, link: string | null, token: string): void {
  const all = load()
  for (const [name, stored] of Object.entries(all)) {
    if (typeof stored?.token !== 'string' || expired(stored.token)) delete all[name]
  }
  all[room] = { source: link ?? '', token }
  localStorage.setItem(KEY, JSON.stringify(all))
}

export function forgetToken(room: string): void {
  const all = load()
  delete all[room]
  localStorage.setItem(KEY, JSON.stringify(all))
}

/** A personal token from `bearer` (a link's token, a personal one to rename, or none in
 * dev mode), named `name` (a guest name if the server refuses that one). Null when the
 * exchange failed: the page then connects with the link itself, whose refusal (if any)
 * the connection reports. */
export async function exchange(room: string, bearer: string | null, name: string): Promise<{ token: string; name: string } | null> {
  for (const candidate of [name, guestName()]) {
    try {
      const joined = await api.join(room, bearer, candidate)
      return { token: joined.token, name: joined.name }
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 422)) return null
    }
  }
  return null
}
