// A scripted yjs client for tests/test_interop_yjs.py and
// tests/test_review_comments.py: the stock y-websocket WebsocketProvider, driven
// by JSON commands on stdin (one per line) and reporting JSON events on stdout
// (one per line).
//
//   node yjs_client.mjs WS_BASE ROOM [TOKEN]
//
// TOKEN, when given and not empty, is sent as the `token` query parameter
// (WebsocketProvider `params`).
//
// Commands (the document is the Y.Text "code"; review comments live in the
// Y.Map "comments": id -> Y.Map {anchor, head, author, text, resolved, replies}):
//   {"op":"insert","index":N,"text":"..."}      N is a Yjs index (UTF-16 code units);
//                                               "end" means text.length
//   {"op":"insert","after":"piece","text":"..."} insert right after the first "piece"
//   {"op":"awareness","field":"user","value":{...}}  awareness.setLocalStateField
//   {"op":"awareness","state":{...}|null}        awareness.setLocalState
//   {"op":"delete","index":N,"length":N}         delete from "code" (Yjs indices)
//   {"op":"delete","piece":"..."}                delete the first occurrence of "piece"
//   {"op":"comment","id":"c1","from":N,"to":N,"text":"...",
//    "author":"...","encoding":"json"|"bytes"}   comments[id] = Y.Map whose anchor and
//                                               head are relative positions at from
//                                               (assoc 0) and to (assoc -1), stored as
//                                               Y.relativePositionToJSON (default) or
//                                               Y.encodeRelativePosition bytes;
//                                               "covering":"piece" instead of from/to
//                                               anchors the first occurrence of piece
//   {"op":"reply","id":"c1","text":"...","author":"..."}  push {author, text} to replies
//   {"op":"resolve","id":"c1","resolved":true}   set resolved (default true)
//   {"op":"state"}                               report text, awareness and comments
//   {"op":"close"}                               provider.destroy(), then exit
//
// Events:
//   {"event":"synced"}                 every time the provider becomes synced
//   {"event":"connection-close","code":N,"reason":"..."}   the server closed us
//   {"event":"state","text":"...","awareness":{clientId: state},"clientId":N,
//    "comments":{id: {"from":N|null,"to":N|null,"covered":"..."|null,"encoding":...,
//                     "author":...,"text":...,"resolved":bool,"replies":[...]}}}
//                                      from/to: the anchor and head resolved with
//                                      Y.createAbsolutePositionFromRelativePosition
//                                      (null when unresolvable); covered is
//                                      text.slice(from, to)
//   {"event":"error","message":"..."}  a command failed
//   {"event":"closed"}                 sent last, just before exiting
import { createInterface } from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [wsBase, room, token] = process.argv.slice(2)
const doc = new Y.Doc()
const text = doc.getText('code')
const comments = doc.getMap('comments')
const provider = new WebsocketProvider(wsBase, room, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true,
  ...(token ? { params: { token } } : {})
})

const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n')

provider.on('sync', (synced) => {
  if (synced) emit({ event: 'synced' })
})
provider.on('connection-close', (event) => {
  // event is null when we closed the connection ourselves
  if (event) emit({ event: 'connection-close', code: event.code, reason: event.reason })
})

// A stored anchor (JSON object or encoded bytes) -> absolute index in "code", or null.
const resolveAnchor = (stored) => {
  if (stored == null) return null
  const rpos = stored instanceof Uint8Array
    ? Y.decodeRelativePosition(stored)
    : Y.createRelativePositionFromJSON(stored)
  const abs = Y.createAbsolutePositionFromRelativePosition(rpos, doc)
  return abs !== null && abs.type === text ? abs.index : null
}

const storeAnchor = (index, assoc, encoding) => {
  const rpos = Y.createRelativePositionFromTypeIndex(text, index, assoc)
  return encoding === 'bytes' ? Y.encodeRelativePosition(rpos) : Y.relativePositionToJSON(rpos)
}

const commentOf = (id) => {
  const comment = comments.get(id)
  if (!(comment instanceof Y.Map)) throw new Error(`no comment ${JSON.stringify(id)}`)
  return comment
}

const commentsState = () => {
  const out = {}
  comments.forEach((comment, id) => {
    if (!(comment instanceof Y.Map)) {
      out[id] = { invalid: true }
      return
    }
    const anchor = comment.get('anchor')
    const from = resolveAnchor(anchor)
    const to = comment.has('head') ? resolveAnchor(comment.get('head')) : from
    const replies = comment.get('replies')
    out[id] = {
      from,
      to,
      covered: from !== null && to !== null ? text.toString().slice(from, to) : null,
      encoding: anchor instanceof Uint8Array ? 'bytes' : 'json',
      author: comment.get('author'),
      text: comment.get('text'),
      resolved: comment.get('resolved'),
      replies: replies instanceof Y.Array ? replies.toJSON() : null
    }
  })
  return out
}

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
    case 'delete': {
      let { index, length } = cmd
      if (cmd.piece !== undefined) {
        index = text.toString().indexOf(cmd.piece)
        if (index < 0) throw new Error(`${JSON.stringify(cmd.piece)} not in the text`)
        length = cmd.piece.length
      }
      text.delete(index, length)
      break
    }
    case 'comment': {
      let { from, to } = cmd
      if (cmd.covering !== undefined) {
        from = text.toString().indexOf(cmd.covering)
        if (from < 0) throw new Error(`${JSON.stringify(cmd.covering)} not in the text`)
        to = from + cmd.covering.length
      }
      doc.transact(() => {
        const comment = new Y.Map()
        comments.set(cmd.id, comment)
        comment.set('anchor', storeAnchor(from, 0, cmd.encoding))
        comment.set('head', storeAnchor(to, -1, cmd.encoding))
        comment.set('author', cmd.author ?? 'reviewer')
        comment.set('text', cmd.text)
        comment.set('resolved', false)
        comment.set('replies', new Y.Array())
      })
      break
    }
    case 'reply':
      commentOf(cmd.id).get('replies').push([{ author: cmd.author ?? 'reviewer', text: cmd.text }])
      break
    case 'resolve':
      commentOf(cmd.id).set('resolved', cmd.resolved ?? true)
      break
    case 'state':
      emit({
        event: 'state',
        text: text.toString(),
        awareness: Object.fromEntries(provider.awareness.getStates()),
        clientId: doc.clientID,
        comments: commentsState()
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
