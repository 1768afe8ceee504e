/** Reading (never verifying) a room token's JWT payload: the server checks it. */
import type { Role } from './api'

export interface TokenClaims {
  sub: string
  name: string
  room: string
  role: Role
  exp: number | null
  /** A personal token (`prs`): its `sub` is one person's, not everyone's who opened a link. */
  personal: boolean
}

const ROLES: Role[] = ['owner', 'editor', 'reviewer', 'viewer']

export function decodeToken(token: string): TokenClaims | null {
  const part = token.split('.')[1]
  if (!part) return null
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=')
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>
    const role = claims.role as Role
    if (!ROLES.includes(role)) return null
    return {
      sub: String(claims.sub ?? ''),
      name: typeof claims.name === 'string' ? claims.name : '',
      room: String(claims.room ?? ''),
      role,
      exp: typeof claims.exp === 'number' ? claims.exp : null,
      personal: claims.prs === true,
    }
  } catch {
    return null
  }
}

/** Token names the server puts in generic join links: not a person's name. */
export function isGenericName(name: string): boolean {
  return name === '' || name === 'anonymous' || (ROLES as string[]).includes(name)
}

/** `/r/{room}?token=...` from any link to this app (full URL, path, or bare room name). */
export function parseRoomLink(text: string): { room: string; token: string | null } | null {
  const value = text.trim()
  if (!value) return null
  if (/^[A-Za-z0-9._-]{1,128}$/.test(value)) return { room: value, token: null }
  try {
    const url = new URL(value, window.location.origin)
    const match = url.pathname.match(/\/r\/([A-Za-z0-9._-]{1,128})\/?$/)
    if (!match) return null
    return { room: match[1], token: url.searchParams.get('token') }
  } catch {
    return null
  }
}

export function roomPath(room: string, token: string | null): string {
  return `/r/${encodeURIComponent(room)}` + (token ? `?token=${encodeURIComponent(token)}` : '')
}
