/**
 * "Saved" from the server's save receipts: every local edit up to the clock in a
 * receipt's state vector is durable. Local edits beyond it are still being saved.
 */
import * as Y from 'yjs'

export type SaveState = 'saved' | 'saving' | 'unsaved'

export class SaveTracker {
  private durableClock = 0
  private connected = false
  private listeners = new Set<(state: SaveState) => void>()

  constructor(
    private readonly doc: Y.Doc,
    private readonly remoteOrigin: unknown,
  ) {
    doc.on('update', (_update: Uint8Array, origin: unknown) => {
      if (origin !== this.remoteOrigin) this.emit()
    })
  }

  receipt(stateVector: Uint8Array): void {
    const clock = Y.decodeStateVector(stateVector).get(this.doc.clientID) ?? 0
    this.durableClock = Math.max(this.durableClock, clock)
    this.emit()
  }

  setConnected(connected: boolean): void {
    this.connected = connected
    this.emit()
  }

  get state(): SaveState {
    const local = Y.getState(this.doc.store, this.doc.clientID)
    if (local <= this.durableClock) return 'saved'
    return this.connected ? 'saving' : 'unsaved'
  }

  onChange(listener: (state: SaveState) => void): void {
    this.listeners.add(listener)
    listener(this.state)
  }

  private emit(): void {
    const state = this.state
    for (const listener of this.listeners) listener(state)
  }
}
