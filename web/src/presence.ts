/**
 * This participant's awareness state and everyone else's:
 * `user: {name, color, colorLight, role, uid}`, `status: 'active' | 'idle'` (refreshed
 * every few seconds from local input), `hand: boolean` (broadcast students), `file: string` (the workspace path open in the editor).
 * The `cursor` field belongs to cursor-labels.ts. The AI pair-programmer is a peer too,
 * announced by the server with `role: 'ai'` (a presence role, never a room role).
 */
import type { Awareness } from 'y-protocols/awareness'
import * as Y from 'yjs'
import type { Role } from './api'
import { COLORS, FALLBACK_COLOR, lightColor, safeColor, safeLightColor, type Identity } from './identity'
import { entryPath } from './workspace'

/** A peer's role as shown in presence: a room role, or the AI pair-programmer. */
export type PresenceRole = Role | 'ai'

export interface PresenceUser {
  name: string
  color: string
  colorLight: string
  role: PresenceRole
  uid: string
  /** When this page joined (ms): who was here first keeps a colour two people chose. */
  joined?: number
}

interface Holder {
  clientId: number
  color: string
  joined: number
  ai: boolean
}

/**
 * The colour this participant shows, given everyone else's: the one they chose, unless
 * someone who comes first (the AI, an earlier arrival, then the lower client id) shows it;
 * then the colour they already fell back to while it stays theirs; then the first colour
 * nobody shows. Every browser announces the result, so all show the same colours, and
 * the rule settles: whoever comes first never moves.
 */
export function resolveColor(preferred: string, current: string, me: { clientId: number; joined: number }, others: Holder[]): string {
  const first = (o: Holder) => o.ai || o.joined < me.joined || (o.joined === me.joined && o.clientId < me.clientId)
  const takenFirst = new Set(others.filter(first).map((o) => o.color))
  const taken = new Set(others.map((o) => o.color))
  if (!takenFirst.has(preferred)) return preferred
  if (current !== preferred && !takenFirst.has(current)) return current
  const free = COLORS.find((c) => !taken.has(c.value)) ?? COLORS.find((c) => !takenFirst.has(c.value))
  return free?.value ?? preferred
}

export interface PeerState {
  clientId: number
  self: boolean
  user: PresenceUser
  status: 'active' | 'idle'
  hand: boolean
  cursor: { anchor: unknown; head: unknown } | null
  /** The file this person has open (a peer wrote it: a string; else see caretFile), or null. */
  file: string | null
}

/**
 * The file of a peer that says none: clients from before workspaces (an older browser, a
 * stock y-websocket client) know only `code`, the entry file, and announce no `file`.
 * Their caret, when it points into `code`, puts them in the entry file; else null.
 */
export function caretFile(doc: Y.Doc, cursor: unknown): string | null {
  const head = cursor && typeof cursor === 'object' ? (cursor as { head?: unknown }).head : null
  if (!head || typeof head !== 'object') return null
  try {
    const abs = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(head), doc)
    return abs && abs.type === doc.getText('code') ? entryPath(doc) : null
  } catch {
    return null // a malformed cursor: no file
  }
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
  private preferred: string
  private readonly joined = Date.now()
  private colorListeners: ((color: string) => void)[] = []

  constructor(
    readonly awareness: Awareness,
    identity: Identity,
    role: Role,
    uid: string,
  ) {
    this.preferred = identity.color
    awareness.setLocalStateField('user', this.userOf(identity, role, uid))
    awareness.on('change', () => this.resolveColor())
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
    return { name: identity.name, color: identity.color, colorLight: lightColor(identity.color), role, uid, joined: this.joined }
  }

  /** Moves off a colour someone who comes first already shows (see resolveColor). */
  private resolveColor(): void {
    const user = this.user
    if (!user) return
    const others: Holder[] = []
    this.awareness.getStates().forEach((state, clientId) => {
      const peer = state.user as Partial<PresenceUser> | undefined
      if (clientId === this.awareness.clientID || !peer || typeof peer.color !== 'string') return
      const joined = typeof peer.joined === 'number' ? peer.joined : 0
      others.push({ clientId, color: safeColor(peer.color), joined, ai: peer.role === 'ai' })
    })
    const color = resolveColor(this.preferred, user.color, { clientId: this.awareness.clientID, joined: this.joined }, others)
    if (color === user.color) return
    this.awareness.setLocalStateField('user', { ...user, color, colorLight: lightColor(color) })
    for (const listener of this.colorListeners) listener(color)
  }

  /** Hears when the shown colour moves off (or back to) the chosen one. */
  onColorChange(listener: (color: string) => void): void {
    this.colorListeners.push(listener)
  }

  /** The colour this participant shows (the chosen one, unless someone here had it first). */
  get color(): string {
    return this.user?.color ?? this.preferred
  }

  private get user(): PresenceUser {
    return this.awareness.getLocalState()?.user as PresenceUser
  }

  setIdentity(identity: Identity): void {
    const { role, uid } = this.user
    this.preferred = identity.color
    this.awareness.setLocalStateField('user', this.userOf(identity, role, uid))
    this.resolveColor()
  }

  setRole(role: Role): void {
    this.awareness.setLocalStateField('user', { ...this.user, role })
  }

  setHand(raised: boolean): void {
    this.awareness.setLocalStateField('hand', raised)
  }

  /** Says which file this person has open. */
  setFile(path: string): void {
    if (this.awareness.getLocalState()?.file !== path) this.awareness.setLocalStateField('file', path)
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
        file: typeof state.file === 'string' ? state.file : caretFile(this.awareness.doc, state.cursor),
      })
    })
    return out
  }
}
