// Workspace against single file: the same 1 MB of text as one file (`code`) or as a
// workspace of 100 files (the entry file in `code`, 99 more in the `files` Map, path ->
// Y.Text; crdt/schema.py), in rooms of one server, measured alike.
//
// usage: node workspace.mjs <config.json>       (driven by bench/workspace.py over stdin/stdout)
//
// config: { edits, files, max_s }. Both documents are built from the same `edits` inserts
// of 40-64 characters at seeded random positions (about 1 MB of text in about `edits`
// blocks, a long-edited project rather than one paste); in the workspace each insert goes
// to one of the `files` texts at random. Commands, one JSON line each, one JSON line back:
//   seed     {rooms: [{kind, key, url}]}: one client per room answers the server's Step1
//            with the whole document (as an offline y-websocket client would); closed
//            once the server has applied it (a Step1 sent after it was answered).
//   join     {rooms: [{kind, key, url}], hold}: for each room in turn, a new empty client
//            connects; timed from the connect call until its Y.Doc holds the whole
//            document (sync_ms: every file, every character), and until the last frame
//            with content arrived (received_ms); bytes: the sync frames it received.
//            hold: kept connected afterwards as that room's reader (its document is
//            dropped; it records each update's (client, clock) and arrival time).
//   writers  {rooms: [{kind, key, url}]}: one editor per room, holding its own copy of the
//            document (the seeded one: the rooms hold nothing else), synced.
//   type     {kind, rate, duration_s, drain_s}: the writers of rooms of `kind` type one character per
//            update at `rate`/s (each at its own random phase) in the middle of one
//            existing file (workspace: a file of `files`; single: `code`), the cursor
//            moving on as in an editor. Answered after every update arrived at its room's
//            reader or drain_s (default 3) after the last send: delays (ms, send to reader's arrival).
//   release  close writers and readers.
//   exit
import { readFileSync } from 'node:fs'
import * as Y from 'yjs'
import {
  MSG_SYNC, STEP1_EMPTY, STEP2_EMPTY, SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE, Saturation,
  commands, emit, firstStruct, nowMs, openSocket, parseFrame, pool, rng, syncFrame
} from './lib.mjs'

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'))
setTimeout(() => { emit({ event: 'error', error: 'max_s reached' }); process.exit(3) },
  (cfg.max_s || 300) * 1000).unref()
const next = commands()
const JOIN_TIMEOUT_S = 30
const DRAIN_S = 3
const TYPED_FILE = 50 // the workspace file the editors type in (a file of `files`)

// -- the documents ----------------------------------------------------------------------
const filePath = (i) => `src/pkg${String(Math.floor(i / 10)).padStart(2, '0')}/mod${String(i).padStart(3, '0')}.py`

function build (files) {
  const doc = new Y.Doc()
  doc.clientID = 4242
  const texts = [doc.getText('code')]
  if (files > 1) {
    const map = doc.getMap('files')
    for (let i = 1; i < files; i++) {
      const text = new Y.Text()
      map.set(filePath(i), text)
      texts.push(text)
    }
  }
  const random = rng(7)
  const alphabet = 'abcdefghijklmnopqrstuvwxyz_(){}=+ \n'
  for (let e = 0; e < cfg.edits; e++) {
    const text = texts[files > 1 ? Math.floor(random() * files) : 0]
    const len = 40 + Math.floor(random() * 25)
    let chunk = ''
    for (let j = 0; j < len; j++) chunk += alphabet[Math.floor(random() * alphabet.length)]
    text.insert(Math.floor(random() * (text.length + 1)), chunk)
  }
  const update = Y.encodeStateAsUpdate(doc)
  const length = texts.reduce((n, t) => n + t.length, 0)
  return { doc, update, stateVector: Y.encodeStateVector(doc), length, files }
}

const started = nowMs()
const sources = { single: build(1), workspace: build(cfg.files) }
emit({
  event: 'built',
  build_ms: Math.round(nowMs() - started),
  ...Object.fromEntries(Object.entries(sources).map(([kind, s]) => [kind, {
    files: s.files, text_bytes: s.length, update_bytes: s.update.length
  }]))
})

/** The target text of a kind in `doc`: where the editor types. */
function typedText (kind, doc) {
  return kind === 'single' ? doc.getText('code') : doc.getMap('files').get(filePath(TYPED_FILE))
}

/** Characters in every file of `doc` (-1 while the workspace's files are not all there). */
function docLength (kind, doc) {
  let n = doc.getText('code').length
  if (kind === 'workspace') {
    const map = doc.getMap('files')
    if (map.size !== cfg.files - 1) return -1
    for (const text of map.values()) n += text.length
  }
  return n
}

const typed = new Map() // room key -> characters typed there (joins after a restart expect them)
const arrivals = new Map() // `${client}:${clock}` -> arrival time at the room's reader
const readers = []
let writers = []

// -- clients ----------------------------------------------------------------------------
async function seed ({ kind, url }) {
  const source = sources[kind]
  let step2s = 0
  let done
  const seeded = new Promise((resolve) => { done = resolve })
  const ws = await openSocket(url, (ws, data) => {
    const { type, sub, payload } = parseFrame(data)
    if (type !== MSG_SYNC) return
    if (sub === SYNC_STEP1) {
      ws.send(syncFrame(SYNC_STEP2, Y.encodeStateAsUpdate(source.doc, payload)))
      ws.send(syncFrame(SYNC_STEP1, source.stateVector)) // answered after the Step2 is applied
    } else if (sub === SYNC_STEP2 && ++step2s === 2) {
      done(true)
    }
  })
  ws.on('close', (code) => done(new Error(`seed closed ${code}`)))
  ws.on('error', () => {})
  ws.send(syncFrame(SYNC_STEP1, source.stateVector))
  const timer = setTimeout(() => done(new Error('seed not answered in 60 s')), 60000)
  const result = await seeded
  clearTimeout(timer)
  ws.terminate()
  if (result !== true) throw result
}

async function join ({ kind, key, url }, hold) {
  const expected = sources[kind].length + (typed.get(key) || 0)
  const start = nowMs()
  let doc = new Y.Doc()
  let done
  let received = 0
  let bytes = 0
  const complete = new Promise((resolve) => { done = resolve })
  const ws = await openSocket(url, (ws, data) => {
    const at = nowMs()
    const { type, sub, payload } = parseFrame(data)
    if (type !== MSG_SYNC) return
    if (doc === null) { // a reader now: note the arrival, nothing else
      if (sub === SYNC_UPDATE) {
        const id = firstStruct(payload)
        if (id !== null) arrivals.set(`${id[0]}:${id[1]}`, at)
      }
      return
    }
    bytes += data.length
    if (sub === SYNC_STEP1) ws.send(STEP2_EMPTY)
    else if (sub === SYNC_STEP2 || sub === SYNC_UPDATE) {
      Y.applyUpdate(doc, payload)
      if (payload.length > 2) received = at // the latest frame with content
    }
    if (docLength(kind, doc) === expected) { doc = null; done(true) }
  })
  ws.on('close', (c) => done(new Error(`closed ${c}`)))
  ws.on('error', () => {})
  ws.send(STEP1_EMPTY)
  const timer = setTimeout(() => {
    done(new Error(`incomplete after ${JOIN_TIMEOUT_S} s (expected ${expected} characters)`))
  }, JOIN_TIMEOUT_S * 1000)
  const result = await complete
  clearTimeout(timer)
  if (result !== true) { ws.terminate(); throw result }
  const ms = nowMs() - start
  if (hold) readers.push(ws)
  else ws.terminate()
  return { kind, key, sync_ms: round(ms), received_ms: round(received - start), bytes }
}

async function writer ({ kind, key, url }, index) {
  const doc = new Y.Doc()
  doc.clientID = 100000 + index
  Y.applyUpdate(doc, sources[kind].update, 'remote')
  const text = typedText(kind, doc)
  let synced
  const ready = new Promise((resolve) => { synced = resolve })
  const ws = await openSocket(url, (ws, data) => {
    const { type, sub, payload } = parseFrame(data)
    if (type !== MSG_SYNC) return
    if (sub === SYNC_STEP1) ws.send(syncFrame(SYNC_STEP2, Y.encodeStateAsUpdate(doc, payload)))
    else if (sub === SYNC_STEP2 || sub === SYNC_UPDATE) {
      Y.applyUpdate(doc, payload, 'remote')
      if (sub === SYNC_STEP2) synced(true)
    }
  })
  ws.on('close', (c) => synced(new Error(`writer closed ${c}`)))
  ws.on('error', () => {})
  const w = { kind, key, ws, doc, text, pos: Math.floor(text.length / 2), sent: [] }
  doc.on('update', (update, origin) => {
    if (origin === 'remote') return
    const id = firstStruct(update)
    w.sent.push([`${id[0]}:${id[1]}`, nowMs()])
    ws.send(syncFrame(SYNC_UPDATE, update))
  })
  ws.send(syncFrame(SYNC_STEP1, Y.encodeStateVector(doc)))
  const timer = setTimeout(() => synced(new Error('writer not synced in 30 s')), 30000)
  const result = await ready
  clearTimeout(timer)
  if (result !== true) { ws.terminate(); throw result }
  return w
}

async function type (kind, rate, durationS, drainMs) {
  const mine = writers.filter((w) => w.kind === kind)
  const random = rng(11)
  const interval = 1000 / rate
  const count = Math.round(durationS * rate)
  const late = []
  const sat = new Saturation().start()
  const t0 = nowMs() + 50
  arrivals.clear()
  for (const w of mine) w.sent = []
  await Promise.all(mine.map((w) => new Promise((resolve) => {
    const phase = random() * interval
    let k = 0
    const tick = () => {
      const due = t0 + phase + k * interval
      late.push(nowMs() - due)
      w.text.insert(w.pos++, 'x')
      typed.set(w.key, (typed.get(w.key) || 0) + 1)
      if (++k === count) { resolve(); return }
      setTimeout(tick, Math.max(0, t0 + phase + k * interval - nowMs()))
    }
    setTimeout(tick, Math.max(0, t0 + phase - nowMs()))
  })))
  const sent = mine.flatMap((w) => w.sent)
  const lastSend = nowMs()
  while (nowMs() - lastSend < drainMs && sent.some(([id]) => !arrivals.has(id))) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const generator = sat.stop()
  const delays = []
  for (const [id, at] of sent) {
    const arrived = arrivals.get(id)
    if (arrived !== undefined) delays.push(round(arrived - at, 3))
  }
  late.sort((a, b) => a - b)
  return {
    kind,
    sent: sent.length,
    delivered: delays.length,
    delays,
    window_ms: round(lastSend - t0),
    late_p99_ms: round(late[Math.min(late.length - 1, Math.floor(0.99 * late.length))] || 0),
    generator
  }
}

function round (x, digits = 2) { return Number(x.toFixed(digits)) }

function failed (failures, err) {
  const key = String(err.message || err).slice(0, 120)
  failures[key] = (failures[key] || 0) + 1
}

let line
while ((line = await next()) !== null && line !== 'exit') {
  const cmd = JSON.parse(line)
  if (cmd.op === 'seed') {
    const start = nowMs()
    const failures = {}
    await pool(cmd.rooms, 2, async (room) => {
      try { await seed(room) } catch (err) { failed(failures, err) }
    })
    emit({ event: 'seeded', wall_ms: Math.round(nowMs() - start), failures })
  } else if (cmd.op === 'join') {
    const sat = new Saturation().start()
    const results = []
    const failures = {}
    for (const room of cmd.rooms) {
      try { results.push(await join(room, cmd.hold)) } catch (err) { failed(failures, err) }
    }
    emit({ event: 'joined', results, failures, generator: sat.stop() })
  } else if (cmd.op === 'writers') {
    const failures = {}
    const made = []
    await pool(cmd.rooms, 4, async (room, i) => {
      try { made.push(await writer(room, i)) } catch (err) { failed(failures, err) }
    })
    writers = made
    emit({ event: 'writers', connected: made.length, failures })
  } else if (cmd.op === 'type') {
    emit({ event: 'typed', ...await type(cmd.kind, cmd.rate, cmd.duration_s, 1000 * (cmd.drain_s || DRAIN_S)) })
  } else if (cmd.op === 'release') {
    for (const ws of [...readers, ...writers.map((w) => w.ws)]) ws.terminate()
    readers.length = 0
    writers = []
    emit({ event: 'released' })
  }
}
for (const ws of [...readers, ...writers.map((w) => w.ws)]) ws.terminate()
emit({ event: 'exited' })
process.exit(0)
