// Delivery delay from one writer to N readers in one room, real Yjs updates.
//
// usage: node latency.mjs <wsBase> <room> <readers> <updates> <ratePerSec> [readerWsBase]
// readerWsBase (default wsBase): connect the readers to another server instance.
// The writer edits a real Y.Doc and sends each update as a y-websocket Update frame;
// readers count Update frames in arrival order (one writer, so the k-th Update a reader
// gets is the writer's k-th). Writer and readers share this process's clock.
// Prints one JSON line: {p50, p95, p99, max, delivered, expected, lost}.
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'

const [wsBase, room, readersArg, updatesArg, rateArg, readerBaseArg] = process.argv.slice(2)
const readerBase = readerBaseArg || wsBase
const READERS = Number(readersArg)
const UPDATES = Number(updatesArg)
const RATE = Number(rateArg)
const STEP1_EMPTY = Uint8Array.from([0, 0, 1, 0])

function updateFrame (update) {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 0)
  encoding.writeVarUint(enc, 2)
  encoding.writeVarUint8Array(enc, update)
  return encoding.toUint8Array(enc)
}

function open (base, onUpdate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base}/${room}`, { perMessageDeflate: false })
    ws.binaryType = 'nodebuffer'
    ws.on('open', () => { ws.send(STEP1_EMPTY); resolve(ws) })
    ws.on('error', reject)
    ws.on('message', (data) => { if (data[0] === 0 && data[1] === 2) onUpdate() })
  })
}

const sentAt = []
const delays = []
let delivered = 0
const readers = []
for (let i = 0; i < READERS; i++) {
  let seen = 0
  readers.push(await open(readerBase, () => {
    const k = seen++
    if (k < sentAt.length) { delays.push(performance.now() - sentAt[k]); delivered++ }
  }))
}
const writer = await open(wsBase, () => {})
const doc = new Y.Doc()
const text = doc.getText('code')
doc.on('update', (update) => { sentAt.push(performance.now()); writer.send(updateFrame(update)) })

await new Promise((resolve) => setTimeout(resolve, 500)) // let every handshake finish
const interval = 1000 / RATE
const start = performance.now()
for (let i = 0; i < UPDATES; i++) {
  const due = start + i * interval
  const wait = due - performance.now()
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  text.insert(text.length, i % 10 === 9 ? '\n' : 'x')
}
const deadline = performance.now() + 10000
while (delivered < UPDATES * READERS && performance.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 20))
}
delays.sort((a, b) => a - b)
const pct = (p) => delays.length ? Number(delays[Math.min(delays.length - 1, Math.floor(p * delays.length))].toFixed(2)) : null
console.log(JSON.stringify({
  readers: READERS, updates: UPDATES, rate: RATE,
  p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: pct(1),
  delivered, expected: UPDATES * READERS, lost: UPDATES * READERS - delivered
}))
for (const ws of [...readers, writer]) ws.terminate()
process.exit(0)
