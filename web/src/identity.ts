/** The local user's display name and colour, kept in localStorage across rooms. */

/**
 * Cursor colours: each gives white label text at least 4.5:1 contrast and stands out from
 * both the light and the dark editor background. Sixteen, so a room of ten has no two
 * alike (presence.ts moves a newcomer off a colour someone present already shows); the
 * first eight are the most distinct from one another and are handed out first.
 */
export const COLORS = [
  { name: 'Blue', value: '#2f5bd3' },
  { name: 'Red', value: '#c4314b' },
  { name: 'Green', value: '#1f7a3a' },
  { name: 'Purple', value: '#7b3fc4' },
  { name: 'Orange', value: '#b85300' },
  { name: 'Teal', value: '#0f7481' },
  { name: 'Pink', value: '#b8327e' },
  { name: 'Brown', value: '#7a5a2b' },
  { name: 'Olive', value: '#5b6b00' },
  { name: 'Ocean', value: '#1c6fb0' },
  { name: 'Magenta', value: '#a63ec0' },
  { name: 'Jade', value: '#0a7d6b' },
  { name: 'Crimson', value: '#d0305f' },
  { name: 'Rust', value: '#c2410c' },
  { name: 'Indigo', value: '#4b4fd6' },
  { name: 'Amber', value: '#8a5a00' },
]

export interface Identity {
  name: string
  color: string
}

const KEY = 'codementor.identity'

export function loadIdentity(suggestedName: string | null): Identity {
  let saved: Partial<Identity> = {}
  try {
    saved = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Partial<Identity>
  } catch {
    saved = {}
  }
  const color = COLORS.some((c) => c.value === saved.color)
    ? (saved.color as string)
    : COLORS[Math.floor(Math.random() * COLORS.length)].value
  let name = (saved.name?.trim() || suggestedName || guestName()).slice(0, 40)
  if (isReservedName(name)) name = guestName()
  return { name, color }
}

export function guestName(): string {
  return `Guest ${Math.floor(100 + Math.random() * 900)}`
}

export function saveIdentity(identity: Identity): void {
  localStorage.setItem(KEY, JSON.stringify(identity))
}

/** The translucent variant used for remote selections. */
export function lightColor(color: string): string {
  return `${color}33`
}

const HEX = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i
const HEX_LIGHT = /^#(?:[0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})$/i
export const FALLBACK_COLOR = '#6b7280'

/** Colours written by peers (awareness, chat and comment entries) end up in `style`
 * attributes: only a `#rgb`/`#rrggbb` colour passes, anything else is `fallback`. */
export function safeColor(value: unknown, fallback: string = FALLBACK_COLOR): string {
  return typeof value === 'string' && HEX.test(value) ? value : fallback
}

/** The translucent variant may carry an alpha channel (`#rrggbbaa`). */
export function safeLightColor(value: unknown, fallback: string): string {
  return typeof value === 'string' && HEX_LIGHT.test(value) ? value : fallback
}

/** The AI pair-programmer's name is the server's alone (it refuses presence claiming it). */
export function isReservedName(name: string): boolean {
  const folded = name.normalize('NFKC').toLowerCase().normalize('NFKC').replace(/[\s\p{Cc}\p{Cf}]/gu, '')
  return folded === 'codementorai'
}
