/**
 * The y-websocket connection, plus this server's extra messages:
 *  - 100 save receipt `varBuf(stateVector)` (asked for with `receipts=1`),
 *  - 101 role change `varString(JSON {role, expires})`,
 *  - 2/0 permission denied `varString(reason)` (stock y-websocket only logs it).
 * Close codes 4400-4499 are final (y-websocket stops reconnecting): 4401 bad token (also
 * "token expired" at the token's expiry and "links were rotated" by the owner), 4403 wrong
 * room, 4404 unknown room (also "room deleted" when the owner deleted it while open).
 */
import * as decoding from 'lib0/decoding'
import { WebsocketProvider } from 'y-websocket'
import type * as Y from 'yjs'
import type { Role } from './api'
import { guardRemoteStates } from './presence'

export type ConnState = 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'closed'

export interface RoleNotice {
  role: Role
  expires: number | null
}

export interface ConnectionHandlers {
  /** `code`: the close code when `state` is 'closed'. */
  onState: (state: ConnState, detail?: string, code?: number) => void
  onReceipt: (stateVector: Uint8Array) => void
  onRoleChange: (notice: RoleNotice) => void
  onDenied: (reason: string) => void
}

const MESSAGE_AUTH = 2
const MESSAGE_SAVE_RECEIPT = 100
const MESSAGE_ROLE_CHANGE = 101

const CLOSE_REASONS: Record<number, string> = {
  4401: 'Your link is invalid or has expired. Ask the room owner for a new one.',
  4403: 'This link is for another room.',
  4404: 'This room does not exist.',
}

/** What to tell the person when the server closed for good. */
export function closeMessage(code: number, reason: string): string {
  if (code === 4401 && reason.includes('rotated')) {
    return 'The room owner replaced the links of this room, so this one no longer works. Ask the owner for the new link.'
  }
  if (code === 4404 && reason.includes('deleted')) {
    return 'This room was deleted by its owner: its code, chat and history are gone.'
  }
  if (code === 4401 && reason.includes('expired')) {
    return 'Your link has expired. Ask the room owner for a new one.'
  }
  return CLOSE_REASONS[code] ?? `The server closed the connection (${code} ${reason}).`
}

export function connect(room: string, token: string | null, doc: Y.Doc, handlers: ConnectionHandlers): WebsocketProvider {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:'
  const params: Record<string, string> = { receipts: '1' }
  if (token) params.token = token
  const provider = new WebsocketProvider(`${scheme}//${window.location.host}/ws`, room, doc, {
    params,
    disableBc: true, // same-origin tabs must not bypass the server's role checks
    maxBackoffTime: 2500,
  })
  guardRemoteStates(provider.awareness)

  provider.messageHandlers[MESSAGE_SAVE_RECEIPT] = (_encoder, decoder) => {
    handlers.onReceipt(decoding.readVarUint8Array(decoder))
  }
  provider.messageHandlers[MESSAGE_ROLE_CHANGE] = (_encoder, decoder) => {
    try {
      handlers.onRoleChange(JSON.parse(decoding.readVarString(decoder)) as RoleNotice)
    } catch (err) {
      console.warn('bad role-change message', err)
    }
  }
  provider.messageHandlers[MESSAGE_AUTH] = (_encoder, decoder) => {
    if (decoding.readVarUint(decoder) === 0) handlers.onDenied(decoding.readVarString(decoder))
  }

  let everConnected = false
  let closed = false
  const update = () => {
    if (closed) return
    if (provider.wsconnected && provider.synced) {
      everConnected = true
      handlers.onState('connected')
    } else if (!navigator.onLine) {
      handlers.onState('offline')
    } else {
      handlers.onState(everConnected ? 'reconnecting' : 'connecting')
    }
  }
  provider.on('status', ({ status }) => {
    // A deliberate `provider.connect()` after a final close (new token: links rotated).
    if (status === 'connecting') closed = false
    update()
  })
  provider.on('sync', update)
  window.addEventListener('online', update)
  window.addEventListener('offline', update)
  provider.on('closed', ({ code, reason }) => {
    closed = true
    handlers.onState('closed', closeMessage(code, reason), code)
  })
  update()
  return provider
}

/** Connect again at once with another token (after a rename: the server reads who this is
 * only from the token). Disconnecting first announces this client's presence as gone at
 * its current clock, so the next local presence change, sent by the new connection, is
 * newer everywhere. */
export function reconnect(provider: WebsocketProvider, token: string): void {
  provider.params.token = token
  provider.disconnect()
  provider.connect()
}
