// Shared pieces of the load generators: y-websocket frames, the clock, saturation meters.
//
// Clock: process.hrtime is CLOCK_MONOTONIC, the same clock as Python's time.monotonic_ns()
// and every other process on this machine, so send and arrival times taken in different
// generator processes (and the driver's start signal) are directly comparable.
import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6

export const STEP1_EMPTY = Uint8Array.from([0, 0, 1, 0])
export const STEP2_EMPTY = Uint8Array.from([0, 1, 2, 0, 0])
export const MSG_SYNC = 0
export const MSG_AWARENESS = 1
export const SYNC_STEP1 = 0
export const SYNC_STEP2 = 1
export const SYNC_UPDATE = 2

export function syncFrame (subtype, payload) {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MSG_SYNC)
  encoding.writeVarUint(enc, subtype)
  encoding.writeVarUint8Array(enc, payload)
  return encoding.toUint8Array(enc)
}

/** One awareness entry, as y-protocols' Awareness sends it for its local state. */
export function awarenessFrame (clientID, clock, state) {
  const inner = encoding.createEncoder()
  encoding.writeVarUint(inner, 1)
  encoding.writeVarUint(inner, clientID)
  encoding.writeVarUint(inner, clock)
  encoding.writeVarString(inner, state === null ? 'null' : JSON.stringify(state))
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MSG_AWARENESS)
  encoding.writeVarUint8Array(enc, encoding.toUint8Array(inner))
  return encoding.toUint8Array(enc)
}

/** Decode an awareness payload into [clientID, clock, stateJSON] entries. */
export function readAwareness (payload) {
  const dec = decoding.createDecoder(payload)
  const n = decoding.readVarUint(dec)
  const out = []
  for (let i = 0; i < n; i++) {
    out.push([decoding.readVarUint(dec), decoding.readVarUint(dec), decoding.readVarString(dec)])
  }
  return out
}

/**
 * Split a frame: {type, sub, payload}. For sync frames payload is the varBuf content
 * (a view, not a copy); for awareness it is the awareness update.
 */
export function parseFrame (data) {
  const dec = decoding.createDecoder(data)
  const type = decoding.readVarUint(dec)
  if (type === MSG_SYNC) {
    const sub = decoding.readVarUint(dec)
    return { type, sub, payload: decoding.readVarUint8Array(dec) }
  }
  if (type === MSG_AWARENESS) return { type, sub: -1, payload: decoding.readVarUint8Array(dec) }
  return { type, sub: -1, payload: null }
}

/**
 * The first struct's (client, clock) of a v1 update, without integrating it: the update
 * of one keystroke holds one struct of one client, so this names it exactly.
 * Returns null for an update with no structs (a delete-only or empty update).
 */
export function firstStruct (update) {
  const dec = decoding.createDecoder(update)
  const clients = decoding.readVarUint(dec)
  if (clients === 0) return null
  decoding.readVarUint(dec) // number of structs
  const client = decoding.readVarUint(dec)
  const clock = decoding.readVarUint(dec)
  return [client, clock]
}

const RESOLUTION_MS = 5

/**
 * Event-loop lag and CPU of this process over an interval: how saturated the generator is.
 * monitorEventLoopDelay records the whole interval between its timer's runs, so the
 * lag is that minus the timer's resolution.
 */
export class Saturation {
  start () {
    this.hist = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    this.hist.enable()
    this.cpu0 = process.cpuUsage()
    this.t0 = nowMs()
    return this
  }

  stop () {
    this.hist.disable()
    const cpu = process.cpuUsage(this.cpu0)
    const wall = nowMs() - this.t0
    const h = this.hist
    const ms = (ns) => Number(Math.max(0, ns / 1e6 - RESOLUTION_MS).toFixed(2))
    return {
      wall_ms: Math.round(wall),
      lag_p50_ms: h.count ? ms(h.percentile(50)) : 0,
      lag_p99_ms: h.count ? ms(h.percentile(99)) : 0,
      lag_max_ms: h.count ? ms(h.max) : 0,
      cpu_percent: Number((100 * (cpu.user + cpu.system) / 1000 / wall).toFixed(1))
    }
  }
}

/** Percentiles of an array of numbers (sorted in place). */
export function summary (values) {
  values.sort((a, b) => a - b)
  const n = values.length
  const at = (p) => n ? Number(values[Math.min(n - 1, Math.floor(p * n))].toFixed(2)) : null
  return { n, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: at(1) }
}

/** Run `task(item)` for every item with at most `limit` in flight. */
export async function pool (items, limit, task) {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      await task(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/**
 * Open a websocket; resolves on open, rejects on error or after `timeoutMs`. `onMessage`
 * is attached before the handshake ends: a server's first frame can arrive in the same
 * packet as the upgrade response, and ws emits it right after 'open', before an awaiting
 * caller could attach a listener.
 */
export function openSocket (url, onMessage, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs })
    ws.binaryType = 'nodebuffer'
    ws.on('message', (data) => onMessage(ws, data))
    const fail = (err) => { ws.removeAllListeners('open'); reject(err) }
    ws.once('open', () => { ws.removeListener('error', fail); resolve(ws) })
    ws.once('error', fail)
    ws.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)))
  })
}

/** Lines from the driver on stdin, one at a time. */
export function commands () {
  const rl = createInterface({ input: process.stdin })
  const queue = []
  const waiters = []
  let closed = false
  rl.on('line', (line) => { waiters.length ? waiters.shift()(line) : queue.push(line) })
  rl.on('close', () => { closed = true; while (waiters.length) waiters.shift()(null) })
  return () => new Promise((resolve) => {
    if (queue.length) resolve(queue.shift())
    else if (closed) resolve(null)
    else waiters.push(resolve)
  })
}

export function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

/** Seeded PRNG (mulberry32): the same documents and phases on every run. */
export function rng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
