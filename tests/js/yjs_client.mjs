// A scripted yjs client for tests/test_interop_yjs.py: the stock y-websocket
// WebsocketProvider, driven by JSON commands on stdin (one per line) and
// reporting JSON events on stdout (one per line).
//
//   node yjs_client.mjs WS_BASE ROOM
//
// Commands (the document is the Y.Text "code"):
//   {"op":"insert","index":N,"text":"..."}      N is a Yjs index (UTF-16 code units);
//                                               "end" means text.length
//   {"op":"insert","after":"piece","text":"..."} insert right after the first "piece"
//   {"op":"awareness","field":"user","value":{...}}  awareness.setLocalStateField
//   {"op":"awareness","state":{...}|null}        awareness.setLocalState
//   {"op":"state"}                               report text and awareness
//   {"op":"close"}                               provider.destroy(), then exit
//
// Events:
//   {"event":"synced"}                 every time the provider becomes synced
//   {"event":"connection-close","code":N,"reason":"..."}   the server closed us
//   {"event":"state","text":"...","awareness":{clientId: state},"clientId":N}
//   {"event":"error","message":"..."}  a command failed
//   {"event":"closed"}                 sent last, just before exiting
import { createInterface } from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [wsBase, room] = process.argv.slice(2)
const doc = new Y.Doc()
const text = doc.getText('code')
const provider = new WebsocketProvider(wsBase, room, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true
})

const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n')

provider.on('sync', (synced) => {
  if (synced) emit({ event: 'synced' })
})
provider.on('connection-close', (event) => {
  // event is null when we closed the connection ourselves
  if (event) emit({ event: 'connection-close', code: event.code, reason: event.reason })
})

let closing = false
const close = () => {
  if (closing) return
  closing = true
  const ws = provider.ws
  provider.destroy() // sends a null awareness state, then closes the socket
  const exit = () => {
    emit({ event: 'closed' })
    process.exit(0)
  }
  if (ws === null || ws.readyState === WebSocket.CLOSED) return exit()
  ws.once('close', exit) // let the close handshake finish first
  setTimeout(exit, 2000)
}

const handle = (cmd) => {
  switch (cmd.op) {
    case 'insert': {
      let index = cmd.index === 'end' ? text.length : cmd.index
      if (cmd.after !== undefined) {
        const at = text.toString().indexOf(cmd.after)
        if (at < 0) throw new Error(`${JSON.stringify(cmd.after)} not in the text`)
        index = at + cmd.after.length // JS string indices are UTF-16, like Yjs
      }
      text.insert(index, cmd.text)
      break
    }
    case 'awareness':
      if ('field' in cmd) provider.awareness.setLocalStateField(cmd.field, cmd.value)
      else provider.awareness.setLocalState(cmd.state)
      break
    case 'state':
      emit({
        event: 'state',
        text: text.toString(),
        awareness: Object.fromEntries(provider.awareness.getStates()),
        clientId: doc.clientID
      })
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
  .on('close', close) // stdin closed: the test is done with us
