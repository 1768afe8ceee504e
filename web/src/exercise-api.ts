/**
 * Exercises, the teacher's grid and the spotlight (issue 21, design sections B and C):
 * the REST calls and the shapes of the server's `class` root entries.
 *
 * The server keeps its classroom state in each room's `class` root: a Map of
 * `{kind}:{id}` -> a JSON object as a string (rooms/classroom.py). Only the server
 * writes it; clients read it with `classEntries(doc, kind)`.
 */
import * as Y from 'yjs'
import { ApiError, call } from './api'

export const CLASS_ROOT = 'class'

export interface ExerciseTest {
  name?: string
  stdin?: string
  expected_output?: string
  hidden?: boolean
}

/** `exercise:{id}` in the class room: what students may open. */
export interface ClassExercise {
  id: string
  title: string
  due_at: number | null
}

/** `exercise:{id}` in a student's own room: the visible part of the definition. */
export interface StudentExercise extends ClassExercise {
  class_room?: string
  lock_after_due?: boolean
  ai?: string
  tests?: ExerciseTest[]
}

/** GET /api/exercises/{id}: the definition (hidden tests in full for staff only). */
export interface ExerciseView extends StudentExercise {
  created_by?: string
  created_at?: number
  language?: string
  entry?: string
  files?: Record<string, string>
}

export interface ExerciseCreated {
  id: string
  title: string
  room: string
  token: string
  grid_url: string
  due_at: number | null
}

export interface ExerciseJoined {
  room: string
  token: string
  url: string
}

/** `student:{key}` in the exercise room: one tile of the grid. */
export interface StudentSummary {
  key: string
  user_id?: string
  name?: string
  room?: string
  joined_at?: number
  online?: boolean
  peers?: number
  last_edit?: number | null
  lines?: number
  first_lines?: string
  last_run?: { status?: string; ts?: number; kind?: string } | null
  tests?: { passed?: number; total?: number; status?: string; ts?: number } | null
  hand?: { raised_at?: number; question?: string | null } | null
  submitted_at?: number | null
}

export interface StudentListing extends StudentSummary {
  open_url?: string
}

export interface CheckResult {
  name?: string
  hidden?: boolean
  passed?: boolean
  status?: string
  stdout?: string | null
  expected?: string | null
  stderr?: string | null
}

/** POST /api/exercises/{id}/check: the record it also wrote into the room's `runs`. */
export interface CheckRecord {
  id?: string
  status?: string
  kind?: string
  passed?: number
  total?: number
  results?: CheckResult[]
  by?: string
  ts?: number
}

/** `spotlight:current` in the class room. */
export interface Spotlight {
  room: string
  name?: string
  entry?: string
  files?: Record<string, string>
  ts?: number
}

export interface NewExercise {
  title: string
  tests?: ExerciseTest[]
  due_at?: number
  lock_after_due?: boolean
}

const enc = encodeURIComponent

export const exerciseApi = {
  create: (room: string, token: string | null, body: NewExercise) =>
    call<ExerciseCreated>('POST', `/api/rooms/${enc(room)}/exercises`, token, body),
  get: (id: string, token: string | null) => call<ExerciseView>('GET', `/api/exercises/${enc(id)}`, token),
  join: (id: string, token: string | null) => call<ExerciseJoined>('POST', `/api/exercises/${enc(id)}/join`, token),
  students: (id: string, token: string | null) =>
    call<StudentListing[]>('GET', `/api/exercises/${enc(id)}/students`, token),
  check: (id: string, token: string | null, student?: string) =>
    call<CheckRecord>('POST', `/api/exercises/${enc(id)}/check`, token, student ? { student } : {}),
  spotlight: (classRoom: string, token: string | null, room: string) =>
    call<Spotlight>('POST', `/api/rooms/${enc(classRoom)}/spotlight`, token, { room }),
  endSpotlight: (classRoom: string, token: string | null) =>
    call<unknown>('DELETE', `/api/rooms/${enc(classRoom)}/spotlight`, token),
  /** The same from the grid, with its exercise-room token. */
  spotlightFromGrid: (id: string, token: string | null, room: string) =>
    call<Spotlight>('POST', `/api/exercises/${enc(id)}/spotlight`, token, { room }),
  endSpotlightFromGrid: (id: string, token: string | null) =>
    call<unknown>('DELETE', `/api/exercises/${enc(id)}/spotlight`, token),
  /** The grades as CSV text (bearer auth, so fetched, then saved as a file). */
  grades: async (id: string, token: string | null): Promise<Blob> => {
    const response = await fetch(`/api/exercises/${enc(id)}/grades.csv`, {
      headers: { Accept: 'text/csv', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    })
    if (!response.ok) {
      let message = response.statusText
      try {
        const body = (await response.json()) as { error?: string }
        if (body.error) message = body.error
      } catch {
        // not JSON: the status text says it
      }
      throw new ApiError(response.status, message)
    }
    return response.blob()
  },
}

/** Save `blob` as a download named `name`. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob)
  const link = document.createElement('a')
  link.href = url
  link.download = name
  link.hidden = true
  document.body.append(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}


/** Every entry of `kind` in the doc's `class` root: id -> value (bad JSON skipped). */
export function classEntries<T>(doc: Y.Doc, kind: string): Map<string, T> {
  const out = new Map<string, T>()
  const prefix = `${kind}:`
  doc.getMap<unknown>(CLASS_ROOT).forEach((raw, key) => {
    if (!key.startsWith(prefix) || typeof raw !== 'string') return
    const value = parseEntry<T>(raw)
    if (value !== null) out.set(key.slice(prefix.length), value)
  })
  return out
}

export function classEntry<T>(doc: Y.Doc, kind: string, id: string): T | null {
  const raw = doc.getMap<unknown>(CLASS_ROOT).get(`${kind}:${id}`)
  return typeof raw === 'string' ? parseEntry<T>(raw) : null
}

function parseEntry<T>(raw: string): T | null {
  try {
    const value: unknown = JSON.parse(raw)
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as T) : null
  } catch {
    return null
  }
}

/** "in 4 min 05 s", "2 h 10 min", or "due" when past. */
export function countdown(dueAt: number, now = Date.now() / 1000): string {
  let left = Math.round(dueAt - now)
  if (left <= 0) return 'past due'
  const h = Math.floor(left / 3600)
  left -= h * 3600
  const m = Math.floor(left / 60)
  const s = left - m * 60
  if (h > 0) return `${h} h ${m} min left`
  if (m > 0) return `${m} min ${String(s).padStart(2, '0')} s left`
  return `${s} s left`
}

/** "5 s ago", "3 min ago", "2 h ago". */
export function ago(ts: number, now = Date.now() / 1000): string {
  const s = Math.max(0, Math.round(now - ts))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  return `${Math.floor(s / 3600)} h ago`
}
