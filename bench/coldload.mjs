// Cold load: how long a new peer takes to get a large document, warm and cold.
//
// usage: node coldload.mjs <config.json>       (driven by bench/run.py over stdin/stdout)
//
// The document: `edits` inserts of 40-64 characters at seeded random positions into one
// Y.Text (about 1 MB of text in about `edits` separate blocks, a long-edited file rather
// than one paste). Commands, one per line; each answers one JSON line:
//   seed   one seeding client per room connects like a y-websocket client that has the
//          document offline: it answers the server's Step1 with a Step2 carrying the whole
//          state. It stays connected (the room stays loaded). Answered once the server has
//          processed the Step2 (a Step1 sent after it was answered).
//   warm   for each room in turn, a new empty peer connects; timed from the connect call
//          until its Y.Doc holds the whole text (sync_ms), and until the last frame with
//          content arrived (received_ms: the same less this client's own last apply).
//          Closed afterwards.
//   drop   close the seeding clients.
//   cold   (after the driver restarted the server) the same per room, the room being loaded
//          from the store by this very join; these peers stay connected.
//   exit
import { readFileSync } from 'node:fs'
import * as Y from 'yjs'
import {
  MSG_SYNC, STEP1_EMPTY, STEP2_EMPTY, SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE, Saturation,
  commands, emit, nowMs, openSocket, parseFrame, pool, rng, summary, syncFrame
} from './lib.mjs'

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'))
setTimeout(() => { emit({ event: 'error', error: 'max_s reached' }); process.exit(3) },
  (cfg.max_s || 300) * 1000).unref()
const next = commands()
const JOIN_TIMEOUT_S = 20
const GIVE_UP_AFTER = 3 // consecutive failed joins: the rest are not tried

// -- the document -----------------------------------------------------------------------
const built = nowMs()
const source = new Y.Doc()
source.clientID = 4242
const text = source.getText('code')
const random = rng(7)
const alphabet = 'abcdefghijklmnopqrstuvwxyz_(){}=+ \n'
for (let i = 0; i < cfg.edits; i++) {
  const len = 40 + Math.floor(random() * 25)
  let chunk = ''
  for (let j = 0; j < len; j++) chunk += alphabet[Math.floor(random() * alphabet.length)]
  text.insert(Math.floor(random() * (text.length + 1)), chunk)
}
const update = Y.encodeStateAsUpdate(source)
const stateVector = Y.encodeStateVector(source)
const length = text.length
emit({
  event: 'built',
  edits: cfg.edits,
  text_bytes: length,
  update_bytes: update.length,
  build_ms: Math.round(nowMs() - built)
})

// -- clients ----------------------------------------------------------------------------
async function seed (url) {
  let step2s = 0
  let done
  const seeded = new Promise((resolve) => { done = resolve })
  const ws = await openSocket(url, (ws, data) => {
    const { type, sub, payload } = parseFrame(data)
    if (type !== MSG_SYNC) return
    if (sub === SYNC_STEP1) {
      ws.send(syncFrame(SYNC_STEP2, Y.encodeStateAsUpdate(source, payload)))
      ws.send(syncFrame(SYNC_STEP1, stateVector)) // answered after the Step2 is applied
    } else if (sub === SYNC_STEP2 && ++step2s === 2) {
      done(true)
    }
  })
  ws.on('close', (code) => done(new Error(`seed closed ${code}`)))
  ws.on('error', () => {})
  ws.send(syncFrame(SYNC_STEP1, stateVector))
  const timer = setTimeout(() => done(new Error('seed not answered in 60 s')), 60000)
  const result = await seeded
  clearTimeout(timer)
  if (result !== true) throw result
  return ws
}

async function join (url) {
  const start = nowMs()
  const doc = new Y.Doc()
  const code = doc.getText('code')
  let done
  let received = 0
  const complete = new Promise((resolve) => { done = resolve })
  const ws = await openSocket(url, (ws, data) => {
    const at = nowMs()
    const { type, sub, payload } = parseFrame(data)
    if (type !== MSG_SYNC) return
    if (sub === SYNC_STEP1) ws.send(STEP2_EMPTY)
    else if (sub === SYNC_STEP2 || sub === SYNC_UPDATE) {
      Y.applyUpdate(doc, payload)
      if (payload.length > 2) received = at // the latest frame with content
    }
    if (code.length === length) done(true)
  })
  ws.on('close', (c) => done(new Error(`closed ${c}`)))
  ws.on('error', () => {})
  ws.send(STEP1_EMPTY)
  const timer = setTimeout(() => {
    done(new Error(`incomplete after ${JOIN_TIMEOUT_S} s (text lengths below ${length})`))
  }, JOIN_TIMEOUT_S * 1000)
  const result = await complete
  clearTimeout(timer)
  if (result !== true) { ws.terminate(); throw result }
  return { ws, ms: nowMs() - start, receivedMs: received - start }
}

async function timedJoins (urls, keep) {
  const sat = new Saturation().start()
  const times = []
  const receivedTimes = []
  const failures = {}
  const kept = []
  let failedInARow = 0
  for (const url of urls) {
    if (failedInARow >= GIVE_UP_AFTER) {
      const key = `not tried after ${GIVE_UP_AFTER} failures in a row`
      failures[key] = (failures[key] || 0) + 1
      continue
    }
    try {
      const { ws, ms, receivedMs } = await join(url)
      times.push(ms)
      receivedTimes.push(receivedMs)
      if (keep) kept.push(ws)
      else ws.terminate()
      failedInARow = 0
    } catch (err) {
      const key = String(err.message || err).slice(0, 120)
      failures[key] = (failures[key] || 0) + 1
      failedInARow++
    }
  }
  const generator = sat.stop()
  return {
    kept,
    result: { sync_ms: summary(times), received_ms: summary(receivedTimes), failures, generator }
  }
}

let seeders = []
let coldPeers = []
let line
while ((line = await next()) !== null && line !== 'exit') {
  const cmd = JSON.parse(line)
  if (cmd.op === 'seed') {
    const sat = new Saturation().start()
    const start = nowMs()
    const failures = {}
    const sockets = []
    await pool(cmd.urls, 4, async (url) => {
      try { sockets.push(await seed(url)) } catch (err) {
        const key = String(err.message || err).slice(0, 120)
        failures[key] = (failures[key] || 0) + 1
      }
    })
    seeders = sockets
    emit({ event: 'seeded', rooms: sockets.length, wall_ms: Math.round(nowMs() - start), failures, generator: sat.stop() })
  } else if (cmd.op === 'warm' || cmd.op === 'cold') {
    const { kept, result } = await timedJoins(cmd.urls, cmd.op === 'cold')
    coldPeers.push(...kept)
    emit({ event: cmd.op, ...result })
  } else if (cmd.op === 'drop') {
    for (const ws of seeders) ws.terminate()
    seeders = []
    emit({ event: 'dropped' })
  }
}
for (const ws of [...seeders, ...coldPeers]) ws.terminate()
coldPeers = []
emit({ event: 'exited' })
process.exit(0)
