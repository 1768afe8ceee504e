/** The local user's display name and colour, kept in localStorage across rooms. */

export const COLORS = [
  { name: 'Blue', value: '#2f5bd3' },
  { name: 'Red', value: '#c4314b' },
  { name: 'Green', value: '#1f7a3a' },
  { name: 'Purple', value: '#7b3fc4' },
  { name: 'Orange', value: '#b85300' },
  { name: 'Teal', value: '#0f7481' },
  { name: 'Pink', value: '#b8327e' },
  { name: 'Brown', value: '#7a5a2b' },
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
  const name = saved.name?.trim() || suggestedName || `Guest ${Math.floor(100 + Math.random() * 900)}`
  return { name: name.slice(0, 40), color }
}

export function saveIdentity(identity: Identity): void {
  localStorage.setItem(KEY, JSON.stringify(identity))
}

/** The translucent variant used for remote selections. */
export function lightColor(color: string): string {
  return `${color}33`
}
