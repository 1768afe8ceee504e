/**
 * This participant's awareness state and everyone else's:
 * `user: {name, color, colorLight, role, uid}`, `status: 'active' | 'idle'` (refreshed
 * every few seconds from local input), `hand: boolean` (broadcast students).
 * The `cursor` field belongs to y-codemirror.next. The AI pair-programmer is a peer too,
 * announced by the server with `role: 'ai'` (a presence role, never a room role).
 */
import type { Awareness } from 'y-protocols/awareness'
import type { Role } from './api'
import { FALLBACK_COLOR, lightColor, safeColor, safeLightColor, type Identity } from './identity'

/** A peer's role as shown in presence: a room role, or the AI pair-programmer. */
export type PresenceRole = Role | 'ai'

export interface PresenceUser {
  name: string
  color: string
  colorLight: string
  role: PresenceRole
  uid: string
}

export interface PeerState {
  clientId: number
  self: boolean
  user: PresenceUser
  status: 'active' | 'idle'
  hand: boolean
  cursor: { anchor: unknown; head: unknown } | null
}

/**
 * Peers write their own awareness, and y-codemirror.next puts `user.color` and
 * `user.colorLight` into `style` attributes of remote carets and selections. The server
 * refuses states whose colours are not hex; this keeps the browser safe from any server
 * that does not: every remote state's colours are replaced by safe ones before anything
 * renders them. Must be installed before the editor binding (listeners run in order).
 */
export function guardRemoteStates(awareness: Awareness): void {
  const clean = ({ added, updated }: { added: number[]; updated: number[] }) => {
    for (const clientId of [...added, ...updated]) {
      if (clientId === awareness.clientID) continue
      const user = (awareness.getStates().get(clientId) as { user?: unknown } | undefined)?.user
      if (!user || typeof user !== 'object') continue
      const fields = user as Record<string, unknown>
      const color = safeColor(fields.color, FALLBACK_COLOR)
      if (fields.color !== undefined && fields.color !== color) fields.color = color
      if (fields.colorLight !== undefined) {
        const light = safeLightColor(fields.colorLight, lightColor(color))
        if (fields.colorLight !== light) fields.colorLight = light
      }
      if (typeof fields.name !== 'string') delete fields.name
      if (typeof fields.role !== 'string') delete fields.role
    }
  }
  awareness.on('change', clean)
  awareness.on('update', clean)
}

const IDLE_AFTER_MS = 60_000
const REFRESH_MS = 5_000

export class Presence {
  private lastInput = Date.now()

  constructor(
    readonly awareness: Awareness,
    identity: Identity,
    role: Role,
    uid: string,
  ) {
    awareness.setLocalStateField('user', this.userOf(identity, role, uid))
    awareness.setLocalStateField('status', 'active')
    awareness.setLocalStateField('hand', false)
    const touch = () => {
      this.lastInput = Date.now()
      this.refresh()
    }
    for (const type of ['keydown', 'pointerdown', 'focusin']) window.addEventListener(type, touch, { passive: true })
    document.addEventListener('visibilitychange', () => this.refresh())
    window.setInterval(() => this.refresh(), REFRESH_MS)
  }

  private userOf(identity: Identity, role: PresenceRole, uid: string): PresenceUser {
    return { name: identity.name, color: identity.color, colorLight: lightColor(identity.color), role, uid }
  }

  private get user(): PresenceUser {
    return this.awareness.getLocalState()?.user as PresenceUser
  }

  setIdentity(identity: Identity): void {
    const { role, uid } = this.user
    this.awareness.setLocalStateField('user', this.userOf(identity, role, uid))
  }

  setRole(role: Role): void {
    this.awareness.setLocalStateField('user', { ...this.user, role })
  }

  setHand(raised: boolean): void {
    this.awareness.setLocalStateField('hand', raised)
  }

  get hand(): boolean {
    return this.awareness.getLocalState()?.hand === true
  }

  private refresh(): void {
    const idle = document.hidden || Date.now() - this.lastInput > IDLE_AFTER_MS
    const status = idle ? 'idle' : 'active'
    if (this.awareness.getLocalState()?.status !== status) this.awareness.setLocalStateField('status', status)
  }

  /** Everyone whose state carries a user, this participant included. */
  peers(): PeerState[] {
    const out: PeerState[] = []
    this.awareness.getStates().forEach((state, clientId) => {
      const user = state.user as PresenceUser | undefined
      if (!user || typeof user.name !== 'string') return
      out.push({
        clientId,
        self: clientId === this.awareness.clientID,
        user: { ...user, color: safeColor(user.color) },
        status: state.status === 'idle' ? 'idle' : 'active',
        hand: state.hand === true,
        cursor: (state.cursor as PeerState['cursor']) ?? null,
      })
    })
    return out
  }
}
