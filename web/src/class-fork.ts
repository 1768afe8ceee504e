/** A student's fork (or exercise room) opens in a new tab; its page says where it came
 * from, with a link back to the student's own class link. The pairing is this browser's (localStorage, as
 * recent.ts keeps rooms): whoever else opens the fork's link sees no such line. */
import './class.css'
import { h } from './dom'

const KEY = 'codementor.forks'
const KEEP = 30

export interface ForkOrigin {
  /** The class room. */
  room: string
  title: string
  /** The class page's address as the student opened it (their link; same origin). */
  url: string
  /** What the room is to the class: a fork (the default) or the student's exercise room. */
  kind?: 'fork' | 'exercise'
}

function load(): Record<string, ForkOrigin> {
  try {
    const value = JSON.parse(localStorage.getItem(KEY) ?? '{}') as unknown
    return value && typeof value === 'object' ? (value as Record<string, ForkOrigin>) : {}
  } catch {
    return {}
  }
}

export function rememberFork(fork: string, origin: ForkOrigin): void {
  const all = Object.entries(load()).filter(([room]) => room !== fork)
  all.push([fork, origin])
  try {
    localStorage.setItem(KEY, JSON.stringify(Object.fromEntries(all.slice(-KEEP))))
  } catch {
    // storage refused: the fork page shows no way back
  }
}

/** Where this fork came from, if this browser made it; only same-origin /r/ links. */
export function forkOrigin(fork: string): ForkOrigin | null {
  const origin = load()[fork]
  if (!origin || typeof origin.url !== 'string' || typeof origin.room !== 'string') return null
  try {
    const url = new URL(origin.url, window.location.origin)
    if (url.origin !== window.location.origin || !url.pathname.startsWith('/r/')) return null
    const kind = origin.kind === 'exercise' ? 'exercise' : 'fork'
    return { room: origin.room, title: typeof origin.title === 'string' && origin.title ? origin.title : origin.room, url: url.href, kind }
  } catch {
    return null
  }
}

/** "Forked from <class> — Back to the class" ("An exercise of <class>" for an exercise
 * room), or null for a room this browser did not open from a class. */
export function forkBanner(room: string): HTMLElement | null {
  const origin = forkOrigin(room)
  if (!origin) return null
  return h(
    'div',
    { class: 'banner fork-banner', role: 'note' },
    origin.kind === 'exercise' ? 'An exercise of ' : 'Forked from ',
    h('strong', {}, origin.title),
    ' — ',
    h('a', { href: origin.url, class: 'back-to-class' }, 'Back to the class'),
  )
}
