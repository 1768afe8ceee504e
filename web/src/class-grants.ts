/** The timed edit grants this owner gave (user id -> expiry), so the People panel and the
 * Class tab can offer "Revoke" until the grant ends. The server does not list grants, so
 * they are the page's own record, kept per room in sessionStorage across a reload. */
import { api, ApiError } from './api'
import { classApi } from './class-api'
import type { Notices } from './notices'
import type { Session } from './session'

type Listener = () => void

export const GRANT_SECONDS = 600

export class Grants {
  private grants = new Map<string, number>()
  private listeners = new Set<Listener>()
  private timer: number | undefined

  constructor(
    private readonly session: Session,
    private readonly notices: Notices,
  ) {
    try {
      const stored = JSON.parse(sessionStorage.getItem(this.key) ?? '{}') as Record<string, number>
      for (const [user, until] of Object.entries(stored)) if (typeof until === 'number') this.grants.set(user, until)
    } catch {
      // nothing kept
    }
    this.prune()
  }

  private get key(): string {
    return `codementor.grants.${this.session.room}`
  }

  /** Expiry (ms) of this user's grant, or null. */
  until(userId: string): number | null {
    const until = this.grants.get(userId)
    return until && until > Date.now() ? until : null
  }

  onChange(listener: Listener): void {
    this.listeners.add(listener)
  }

  /** Let every connection of `userId` edit for 10 minutes. */
  async grant(userId: string, name: string): Promise<boolean> {
    try {
      const result = await api.setPeerRole(this.session.room, this.session.token, userId, 'editor', GRANT_SECONDS)
      this.set(userId, result.expires_at ? result.expires_at * 1000 : Date.now() + GRANT_SECONDS * 1000)
      this.notices.show(`${name} can edit for 10 minutes.`)
      return true
    } catch (err) {
      this.notices.show(
        err instanceof ApiError && err.status === 404
          ? `${name} is not connected to the class right now.`
          : `Could not let ${name} edit: ${err instanceof ApiError ? err.message : String(err)}`,
        'error',
      )
      return false
    }
  }

  /** End a grant early: the server puts the person's connections back to their token's role. */
  async revoke(userId: string, name: string): Promise<void> {
    try {
      await classApi.revokeRole(this.session.room, this.session.token, userId)
      this.notices.show(`${name} is read-only again.`)
      this.set(userId, null)
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        this.set(userId, null)
        this.notices.show(`${name} is no longer connected.`, 'warn')
        return
      }
      this.notices.show(`Could not revoke: ${err instanceof ApiError ? err.message : String(err)}`, 'error')
    }
  }

  /** Granted elsewhere (the People panel's own button). */
  record(userId: string, expiresAt: number | null): void {
    this.set(userId, expiresAt ? expiresAt * 1000 : Date.now() + GRANT_SECONDS * 1000)
  }

  private set(userId: string, until: number | null): void {
    if (until === null) this.grants.delete(userId)
    else this.grants.set(userId, until)
    this.prune()
    try {
      sessionStorage.setItem(this.key, JSON.stringify(Object.fromEntries(this.grants)))
    } catch {
      // storage refused: this page's memory only
    }
    for (const listener of this.listeners) listener()
  }

  /** Drop ended grants, and wake up when the next one ends (its Revoke goes away). */
  private prune(): void {
    const now = Date.now()
    for (const [user, until] of this.grants) if (until <= now) this.grants.delete(user)
    window.clearTimeout(this.timer)
    const next = Math.min(...this.grants.values())
    if (Number.isFinite(next)) this.timer = window.setTimeout(() => this.set('', null), Math.min(next - now + 50, 2 ** 31 - 1))
  }
}
