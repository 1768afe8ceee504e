// A client from before workspaces, as other browsers see it: the stock y-websocket
// WebsocketProvider bound to the Y.Text "code", announcing a `user` and a y-codemirror
// style `cursor` (relative positions into "code") in its awareness, and no `file`.
// Driven by JSON commands on stdin, one per line; JSON events on stdout, one per line.
//
//   node caret_client.mjs WS_BASE ROOM TOKEN NAME COLOR
//
// Commands:
//   {"op":"insert","index":N|"end","text":"..."}   insert into "code" (Yjs indices)
//   {"op":"caret","after":"piece"}                  caret (anchor = head) right after the
//                                                   first "piece" of "code"
//   {"op":"state"}                                  report the text
//   {"op":"close"}                                  provider.destroy(), then exit
// Events: {"event":"synced"}, {"event":"state","text":"..."},
//         {"event":"connection-close","code":N,"reason":"..."},
//         {"event":"error","message":"..."}, {"event":"closed"} (last)
import { createInterface } from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [wsBase, room, token, name, color] = process.argv.slice(2)
const doc = new Y.Doc()
const text = doc.getText('code')
const provider = new WebsocketProvider(wsBase, room, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true,
  params: { token }
})
provider.awareness.setLocalStateField('user', { name, color, colorLight: color + '33' })

const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n')
provider.on('sync', (synced) => {
  if (synced) emit({ event: 'synced' })
})
provider.on('connection-close', (event) => {
  if (event) emit({ event: 'connection-close', code: event.code, reason: event.reason })
})

let closing = false
const close = () => {
  if (closing) return
  closing = true
  const ws = provider.ws
  provider.destroy()
  const exit = () => {
    emit({ event: 'closed' })
    process.exit(0)
  }
  if (ws === null || ws.readyState === WebSocket.CLOSED) return exit()
  ws.once('close', exit)
  setTimeout(exit, 2000)
}

const handle = (cmd) => {
  switch (cmd.op) {
    case 'insert':
      text.insert(cmd.index === 'end' ? text.length : cmd.index, cmd.text)
      break
    case 'caret': {
      const at = text.toString().indexOf(cmd.after)
      if (at < 0) throw new Error(`${JSON.stringify(cmd.after)} not in the text`)
      const pos = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, at + cmd.after.length))
      provider.awareness.setLocalStateField('cursor', { anchor: pos, head: pos })
      break
    }
    case 'state':
      emit({ event: 'state', text: text.toString() })
      break
    case 'close':
      close()
      break
    default:
      throw new Error(`unknown op ${cmd.op}`)
  }
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    try {
      handle(JSON.parse(line))
    } catch (err) {
      emit({ event: 'error', message: String(err) })
    }
  })
  .on('close', close)
