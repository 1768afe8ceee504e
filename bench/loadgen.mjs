// Load generator: real y-websocket clients with real Yjs documents, driven by bench/run.py.
//
// usage: node loadgen.mjs <config.json>        (one generator process; run.py may start two)
//
// Protocol with the driver, one JSON line each way:
//   -> {"event":"ready", ...}     every client connected and synced (or failed); connect stats
//   <- go <T0 in CLOCK_MONOTONIC ns>    (traffic mode) start sending at T0
//   -> {"event":"done", ...}      sending finished and every expected update arrived (or the
//                                 drain deadline passed); per-process stats; the raw send and
//                                 arrival times are in <out>.sent.bin / <out>.recv.bin
//   <- exit                        close every socket and exit
// The process exits by itself after config.max_s seconds whatever happens.
//
// Clients
//   writer: its own Y.Doc with clientID = client_base + g (g: global writer index). Types one
//     character per update at `rate` per second for `duration_s` (so its k-th update is the
//     struct with clock k), sends each as a y-websocket Update frame; with apply_remote it
//     integrates every update it receives into its doc, as an editor does.
//   reader: answers the handshake like an empty y-websocket client, then only reads the header
//     of each Update frame (client, clock) to record the arrival: readers do not integrate.
//   With awareness_s > 0 every reader sets its cursor awareness at connect and then every
//     awareness_s seconds (random phase), carrying its send time; writers parse awareness and
//     record that delay (the teacher's view of the audience).
//   With cursor (the mixed family), every writer also sends its cursor as an awareness update
//     right after each keystroke (awareness clock 1 at connect, then keystroke k's cursor has
//     clock k + 2), and every client records the arrival of writers' cursors as it records
//     updates: send times in <out>.csent.bin, arrivals in <out>.crecv.bin.
//   With renew_s > 0 (the mixed family) every reader sets its awareness at connect and renews
//     it every renew_s seconds from then on (random phase), as y-protocols' Awareness does,
//     until the traffic window ends; renewals inside the window carry their send time.
// Saturation: event-loop lag (perf_hooks.monitorEventLoopDelay) and this process's CPU
// (process.cpuUsage) over the connect phase and over the traffic window are reported.
import { readFileSync, writeFileSync } from 'node:fs'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import {
  MSG_AWARENESS, MSG_SYNC, STEP1_EMPTY, STEP2_EMPTY, SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE,
  Saturation, awarenessFrame, commands, emit, firstStruct, nowMs, openSocket, parseFrame,
  pool, readAwareness, rng, summary, syncFrame
} from './lib.mjs'

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'))
setTimeout(() => { emit({ event: 'error', error: 'max_s reached' }); process.exit(3) },
  (cfg.max_s || 300) * 1000).unref()

const REMOTE = 'remote'
const CLIENT_BASE = cfg.client_base || 1000000
const K = Math.round((cfg.rate || 0) * (cfg.duration_s || 0)) // updates per writer
const random = rng(1000 + cfg.proc)
const next = commands()

const closes = {} // close code -> count, for closes we did not ask for
const denied = { count: 0 }
let stopping = false
let t0 = 0 // ms, CLOCK_MONOTONIC
let recording = false

// Arrival records: (writer g, clock, time since T0 in ms), in typed arrays sized for what
// is expected (grown if more arrives).
let recvG = new Uint32Array(16)
let recvClock = new Uint32Array(16)
let recvT = new Float64Array(16)
let nRecv = 0
function record (g, clock, t) {
  if (nRecv === recvT.length) {
    const grow = (Arr, old) => { const a = new Arr(old.length * 2); a.set(old); return a }
    recvG = grow(Uint32Array, recvG)
    recvClock = grow(Uint32Array, recvClock)
    recvT = grow(Float64Array, recvT)
  }
  recvG[nRecv] = g
  recvClock[nRecv] = clock
  recvT[nRecv] = t
  nRecv++
}
let awFrames = 0
const awDelays = []
// Cursor arrivals (cfg.cursor): (writer g, keystroke index, time since T0 in ms).
const CURSOR = Boolean(cfg.cursor)
const WRITER_AW = 900000000 // a writer's awareness client ID is WRITER_AW + g
let curG = new Uint32Array(16)
let curK = new Uint32Array(16)
let curT = new Float64Array(16)
let nCur = 0
function recordCursor (g, k, t) {
  if (nCur === curT.length) {
    const grow = (Arr, old) => { const a = new Arr(old.length * 2); a.set(old); return a }
    curG = grow(Uint32Array, curG)
    curK = grow(Uint32Array, curK)
    curT = grow(Float64Array, curT)
  }
  curG[nCur] = g
  curK[nCur] = k
  curT[nCur] = t
  nCur++
}
/** Record every writer's cursor in an awareness payload: reads the entries' headers
 * (client, clock) and skips their JSON without decoding it; ``own``: the receiver's own ID. */
function readCursors (payload, t, own) {
  const dec = decoding.createDecoder(payload)
  const n = decoding.readVarUint(dec)
  for (let i = 0; i < n; i++) {
    const client = decoding.readVarUint(dec)
    const clock = decoding.readVarUint(dec)
    decoding.readVarUint8Array(dec)
    const g = client - WRITER_AW
    if (client !== own && g >= 0 && g < writerCount && clock >= 2) recordCursor(g, clock - 2, t)
  }
}
let writerCount = 0 // global number of writers: client IDs client_base .. client_base + count
for (const room of cfg.rooms) for (const g of room.all_writers) writerCount = Math.max(writerCount, g + 1)

function cursorState (name, clock) {
  const pos = { type: null, tname: null, item: { client: CLIENT_BASE, clock }, assoc: 0 }
  return {
    user: { name, color: '#30bced', colorLight: '#30bced33' },
    cursor: { anchor: pos, head: pos }
  }
}

class Client {
  constructor (url, { writer = null, g = -1, position = 0, awarenessId = 0, teacher = false } = {}) {
    this.url = url
    this.g = g
    this.ownClient = g >= 0 ? CLIENT_BASE + g : -1
    this.doc = null
    this.text = null
    this.position = position // 0: types at the front of the doc; 1: appends at the end
    this.typed = 0
    this.sentAt = writer ? new Float64Array(K) : null
    this.late = writer ? new Float64Array(K) : null
    this.cursorAt = writer && CURSOR ? new Float64Array(K) : null
    this.awarenessId = awarenessId
    this.awClock = 0
    this.teacher = teacher
    this.ws = null
    this.synced = null
    this.connectMs = null
    if (writer) {
      this.doc = new Y.Doc()
      this.doc.clientID = this.ownClient
      this.text = this.doc.getText('code')
      this.doc.on('update', (update, origin) => {
        if (origin === REMOTE) return
        const t = nowMs()
        if (this.typed < K) this.sentAt[this.typed] = t - t0
        this.ws.send(syncFrame(SYNC_UPDATE, update))
      })
    }
  }

  async connect () {
    const start = nowMs()
    let onSynced
    const synced = new Promise((resolve) => { onSynced = resolve })
    this.ws = await openSocket(this.url, (ws, data) => {
      this.ws = ws
      this.onMessage(data, onSynced)
    })
    this.ws.on('close', (code) => {
      if (!stopping) closes[code] = (closes[code] || 0) + 1
      onSynced(false)
    })
    this.ws.on('error', () => {})
    this.ws.send(this.doc ? syncFrame(SYNC_STEP1, Y.encodeStateVector(this.doc)) : STEP1_EMPTY)
    if (this.awarenessId) this.sendAwareness(false)
    const ok = await Promise.race([synced, new Promise((resolve) => setTimeout(resolve, 60000, false))])
    if (ok === false) throw new Error(`not synced (closes: ${JSON.stringify(closes)})`)
    this.connectMs = nowMs() - start
  }

  sendAwareness (timed) {
    const state = cursorState(this.teacher ? 'teacher' : `student-${this.awarenessId}`, this.awClock)
    if (timed) state.t = nowMs() - t0
    this.ws.send(awarenessFrame(this.awarenessId, ++this.awClock, state))
  }

  onMessage (data, onSynced) {
    const type = data[0]
    if (type === MSG_SYNC) {
      const { sub, payload } = parseFrame(data)
      if (sub === SYNC_UPDATE) {
        const id = firstStruct(payload)
        if (id !== null && id[0] === this.ownClient) return // @y/websocket-server echoes
        if (id !== null && recording) {
          const g = id[0] - CLIENT_BASE
          if (g >= 0 && g < writerCount) record(g, id[1], nowMs() - t0)
        }
        if (this.doc) Y.applyUpdate(this.doc, payload, REMOTE)
      } else if (sub === SYNC_STEP1) {
        this.ws.send(this.doc ? syncFrame(SYNC_STEP2, Y.encodeStateAsUpdate(this.doc, payload)) : STEP2_EMPTY)
      } else if (sub === SYNC_STEP2) {
        if (this.doc) Y.applyUpdate(this.doc, payload, REMOTE)
        onSynced(true)
      }
    } else if (type === MSG_AWARENESS) {
      if (data.length <= 3) return // the server's keep-alive (an empty awareness update)
      awFrames++
      if (CURSOR && recording) { // @y/websocket-server echoes our own cursor too
        readCursors(parseFrame(data).payload, nowMs() - t0, this.awarenessId)
      }
      if (this.teacher && recording) {
        const { payload } = parseFrame(data)
        const t = nowMs() - t0
        for (const [, , json] of readAwareness(payload)) {
          if (json.length > 2 && json.includes('"t":')) {
            const state = JSON.parse(json)
            if (typeof state.t === 'number') awDelays.push(t - state.t)
          }
        }
      }
    } else if (type === 2) {
      denied.count++
    }
  }

  keystroke () {
    const at = this.position === 0 ? Math.min(this.typed, this.text.length) : this.text.length
    const k = this.typed
    this.text.insert(at, k % 40 === 39 ? '\n' : String.fromCharCode(97 + (k % 26)))
    this.typed++
    if (this.cursorAt !== null) {
      // The cursor after the keystroke, as y-codemirror's awareness sends it: clock k + 2.
      const state = cursorState(this.teacher ? 'teacher' : `editor-${this.g}`, k)
      this.awClock = k + 1
      this.cursorAt[k] = nowMs() - t0
      this.ws.send(awarenessFrame(this.awarenessId, ++this.awClock, state))
    }
  }
}

// -- build and connect ------------------------------------------------------------------
const writers = []
const readers = []
let expected = 0
let readerSeq = 0
const PRESENCE = cfg.awareness_s > 0 || cfg.renew_s > 0 // readers announce themselves
for (const room of cfg.rooms) {
  const teacher = PRESENCE
  for (const w of room.writers) {
    const position = room.all_writers.indexOf(w.g) === 0 ? 0 : 1
    writers.push(new Client(w.url, {
      writer: true, g: w.g, position, teacher,
      awarenessId: teacher || CURSOR ? WRITER_AW + w.g : 0
    }))
    expected += (room.all_writers.length - 1) * K
  }
  for (const url of room.readers) {
    const awarenessId = PRESENCE ? 1000000000 + cfg.proc * 10000000 + readerSeq : 0
    readerSeq++
    readers.push(new Client(url, { awarenessId }))
    expected += room.all_writers.length * K
  }
}
if (cfg.mode === 'traffic') {
  recvG = new Uint32Array(Math.max(16, expected))
  recvClock = new Uint32Array(Math.max(16, expected))
  recvT = new Float64Array(Math.max(16, expected))
}
const cursorExpected = CURSOR ? expected : 0 // one cursor per keystroke, to the same people
if (CURSOR) {
  curG = new Uint32Array(Math.max(16, cursorExpected))
  curK = new Uint32Array(Math.max(16, cursorExpected))
  curT = new Float64Array(Math.max(16, cursorExpected))
}
let windowEnd = Infinity // ms since T0 after which readers stop renewing (renew_s)
/** Renew a reader's awareness every renew_s from its connect on (random phase). */
function renew (r) {
  const period = cfg.renew_s * 1000
  const fire = () => {
    if (stopping || r.ws.readyState !== 1 || (t0 && nowMs() - t0 >= windowEnd)) return
    r.sendAwareness(recording)
    setTimeout(fire, period)
  }
  setTimeout(fire, random() * period)
}

const connectSat = new Saturation().start()
const connectStart = nowMs()
const failures = {}
const connectOne = async (c) => {
  try {
    await c.connect()
  } catch (err) {
    const key = String(err.message || err).slice(0, 120)
    failures[key] = (failures[key] || 0) + 1
  }
}
await pool(writers, cfg.concurrency || 50, connectOne)
await pool(readers, cfg.concurrency || 50, async (c) => {
  await connectOne(c)
  if (cfg.renew_s > 0 && c.connectMs !== null) renew(c)
})
const connectWall = nowMs() - connectStart
const all = [...writers, ...readers]
const connectTimes = all.filter((c) => c.connectMs !== null).map((c) => c.connectMs)
emit({
  event: 'ready',
  proc: cfg.proc,
  clients: all.length,
  connected: connectTimes.length,
  failures,
  closes: { ...closes },
  connect_wall_ms: Math.round(connectWall),
  connect_ms: summary(connectTimes),
  generator: connectSat.stop()
})

// -- traffic ----------------------------------------------------------------------------
async function runTraffic () {
  const line = await next()
  if (line === null || !line.startsWith('go ')) return null
  t0 = Number(BigInt(line.slice(3))) / 1e6
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, t0 - nowMs())))
  recording = true
  const sat = new Saturation().start()
  const windowMs = cfg.duration_s * 1000
  windowEnd = windowMs
  if (cfg.awareness_s > 0) {
    const period = cfg.awareness_s * 1000
    for (const r of readers) {
      if (!r.ws || r.connectMs === null) continue
      const fire = () => {
        if (r.ws.readyState === 1 && nowMs() - t0 < windowMs) {
          r.sendAwareness(true)
          setTimeout(fire, period)
        }
      }
      setTimeout(fire, random() * period)
    }
  }
  const interval = 1000 / cfg.rate
  const live = writers.filter((w) => w.ws && w.connectMs !== null)
  const phases = live.map(() => random() * interval)
  const order = live.map((_, i) => i).sort((a, b) => phases[a] - phases[b])
  let round = 0
  let idx = 0
  await new Promise((resolve) => {
    if (live.length === 0 || K === 0) { setTimeout(resolve, windowMs); return }
    const tick = () => {
      let now = nowMs() - t0
      while (round < K) {
        const i = order[idx]
        const due = round * interval + phases[i]
        if (due > now) break
        live[i].late[round] = now - due
        live[i].keystroke()
        if (++idx === live.length) { idx = 0; round++ }
        now = nowMs() - t0
      }
      if (round >= K) { resolve(); return }
      setTimeout(tick, Math.max(0, round * interval + phases[order[idx]] - now))
    }
    tick()
  })
  const sendEnd = nowMs() - t0
  const deadline = nowMs() + cfg.drain_s * 1000
  while ((nRecv < expected || nCur < cursorExpected) && nowMs() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  recording = false
  const generator = sat.stop()
  let lastArrival = 0
  for (let i = 0; i < nRecv; i++) if (recvT[i] > lastArrival) lastArrival = recvT[i]
  const late = []
  for (const w of live) for (let k = 0; k < w.typed; k++) late.push(w.late[k])
  // Raw times for the driver: sent = for each local writer (in `sent_writers` order) K
  // float64 send times; recv = nRecv uint32 g, nRecv uint32 clock, nRecv float64 times.
  const sent = new Float64Array(writers.length * K)
  writers.forEach((w, i) => sent.set(w.sentAt, i * K))
  writeFileSync(`${cfg.out}.sent.bin`, Buffer.from(sent.buffer))
  writeFileSync(`${cfg.out}.recv.bin`, Buffer.concat([
    Buffer.from(recvG.buffer, 0, nRecv * 4),
    Buffer.from(recvClock.buffer, 0, nRecv * 4),
    Buffer.from(recvT.buffer, 0, nRecv * 8)
  ]))
  if (CURSOR) { // the same layout for cursors: keystroke index in place of the clock
    const csent = new Float64Array(writers.length * K)
    writers.forEach((w, i) => csent.set(w.cursorAt, i * K))
    writeFileSync(`${cfg.out}.csent.bin`, Buffer.from(csent.buffer))
    writeFileSync(`${cfg.out}.crecv.bin`, Buffer.concat([
      Buffer.from(curG.buffer, 0, nCur * 4),
      Buffer.from(curK.buffer, 0, nCur * 4),
      Buffer.from(curT.buffer, 0, nCur * 8)
    ]))
  }
  return {
    event: 'done',
    proc: cfg.proc,
    k: K,
    sent_writers: writers.map((w) => w.g),
    expected,
    received: nRecv,
    cursor_expected: cursorExpected,
    cursor_received: nCur,
    send_end_ms: Number(sendEnd.toFixed(2)),
    last_arrival_ms: Number(lastArrival.toFixed(2)),
    send_late_ms: summary(late),
    awareness_frames: awFrames,
    awareness_delay_ms: summary(awDelays),
    closes: { ...closes },
    denied: denied.count,
    generator
  }
}

if (cfg.mode === 'traffic') {
  const done = await runTraffic()
  if (done !== null) emit(done)
}
// idle (capacity) mode and after traffic: hold every socket open until told to exit.
let line
while ((line = await next()) !== null && line !== 'exit') { /* ignore */ }
stopping = true
for (const c of all) if (c.ws) c.ws.terminate()
emit({ event: 'exited', proc: cfg.proc, closes })
process.exit(0)
