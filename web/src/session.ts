/** What the page knows about this participant: role (changes live), mode, identity. */
import type { Mode, Role } from './api'

export interface SessionState {
  role: Role
  roleExpires: number | null
  mode: Mode
  /** Broadcast rooms: whether students may fork (the owner's setting; false until known). */
  forks: boolean
}

type Listener = (state: SessionState, previous: SessionState) => void

export class Session {
  private listeners = new Set<Listener>()

  constructor(
    public state: SessionState,
    readonly room: string,
    /** The personal token (after the join exchange); replaced on rename and when the
     * owner rotates the room's links (`setToken`). */
    public token: string | null,
    readonly userId: string,
    readonly tokenRole: Role,
  ) {}

  /** The owner rotated the links: later calls use the new owner token. */
  setToken(token: string): void {
    this.token = token
  }

  update(patch: Partial<SessionState>): void {
    const previous = this.state
    this.state = { ...previous, ...patch }
    for (const listener of this.listeners) listener(this.state, previous)
  }

  /** Call now and on every change. */
  watch(listener: Listener): void {
    this.listeners.add(listener)
    listener(this.state, this.state)
  }

  get role(): Role {
    return this.state.role
  }

  get canEdit(): boolean {
    return this.role === 'owner' || this.role === 'editor'
  }

  get canComment(): boolean {
    return this.canEdit || this.role === 'reviewer'
  }

  get canChat(): boolean {
    return this.role !== 'viewer'
  }

  /** A broadcast room's student: follows the teacher, raises a hand, forks. A student
   * keeps these controls while a temporary write grant lasts. */
  get isStudent(): boolean {
    return this.state.mode === 'broadcast' && this.tokenRole === 'viewer'
  }

  get isOwner(): boolean {
    return this.role === 'owner'
  }
}

export const ROLE_LABELS: Record<Role, string> = {
  owner: 'Owner',
  editor: 'Editor',
  reviewer: 'Reviewer',
  viewer: 'Viewer',
}
