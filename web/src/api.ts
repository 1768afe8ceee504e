/** The server's REST API (README "REST API"); every call takes the room token as bearer. */

export type Mode = 'pair' | 'review' | 'broadcast'
export type Role = 'owner' | 'editor' | 'reviewer' | 'viewer'

export interface Config {
  ai: boolean
  runner: boolean
  multi_instance: boolean
  anonymous: boolean
  /** The workspace's limits (servers before workspaces: none, upload-plan.ts's defaults). */
  limits?: { max_files?: number; max_file_bytes?: number; max_workspace_bytes?: number }
}

/** `POST /api/rooms/{room}/archive`: the paths a zip added and replaced. */
export interface ArchiveResult {
  added: string[]
  replaced: string[]
}

/** `GET /api/rooms/{room}/files`: one entry per file of the workspace. */
export interface FileEntry {
  path: string
  bytes: number
  language: string
}

export interface RoomCreated {
  room: string
  owner_token: string
  links: Record<string, string>
}

export interface PeerEntry {
  id: string
  conn: string
  name: string
  /** Awareness client ids this connection announced. */
  clients: number[]
}

/** `POST /api/rooms/{room}/join`: a personal token for the bearer's room and role. */
export interface Joined {
  token: string
  user_id: string
  name: string
  role: Role
}

export interface RoomDetails {
  room: string
  mode: Mode
  language: string
  title: string
  peers: Record<Role, PeerEntry[]>
  created_at: number
  updated_at: number
  /** Whether POST /fork is open to this room's participants (broadcast rooms). */
  forks: boolean
  /** Whether reviewers may run the code (on by default in review rooms). */
  reviewers_run: boolean
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Seconds, from a `Retry-After` header (429, 503). */
    readonly retryAfter: number | null = null,
    /** A 422's `fields`: what was refused, by name (e.g. the path and its rule). */
    readonly fields: unknown = undefined,
  ) {
    super(message)
  }
}

/** The request never got an answer: offline, or the network failed (fetch's TypeError). */
export class NetworkError extends Error {
  constructor(readonly offline: boolean) {
    super(offline ? 'offline' : 'network error')
  }
}

/** The fetch itself: network failures as NetworkError, answers as they come. */
async function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: BodyInit,
  signal?: AbortSignal,
): Promise<Response> {
  try {
    return await fetch(path, { method, headers, body, signal })
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err
    throw new NetworkError(!navigator.onLine)
  }
}

/** An error answer as ApiError: its JSON `error` (and `fields`), else the status text. */
async function failure(response: Response): Promise<ApiError> {
  const text = await response.text()
  let data: unknown = null
  try {
    data = text ? JSON.parse(text) : null
  } catch {
    data = text
  }
  const body = data && typeof data === 'object' ? (data as { error?: unknown; fields?: unknown }) : {}
  const message = 'error' in body ? String(body.error) : response.statusText
  const retry = Number(response.headers.get('Retry-After'))
  return new ApiError(response.status, message, Number.isFinite(retry) && retry > 0 ? retry : null, body.fields)
}

function auth(token: string | null, accept: string): Record<string, string> {
  const headers: Record<string, string> = { Accept: accept }
  if (token) headers.Authorization = `Bearer ${token}`
  return headers
}

/** A JSON request to the REST API; errors as ApiError or NetworkError (an abort as is). */
export async function call<T>(
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
  signal?: AbortSignal,
): Promise<T> {
  const headers = auth(token, 'application/json')
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const response = await send(method, path, headers, body === undefined ? undefined : JSON.stringify(body), signal)
  if (!response.ok) throw await failure(response)
  const text = await response.text()
  let data: unknown = null
  try {
    data = text ? JSON.parse(text) : null
  } catch {
    data = text
  }
  return data as T
}

/** The workspace as a zip (GET /archive): its bytes as the server made them. */
async function downloadArchive(room: string, token: string | null): Promise<Blob> {
  const response = await send('GET', `/api/rooms/${enc(room)}/archive`, auth(token, 'application/zip'))
  if (!response.ok) throw await failure(response)
  return response.blob()
}

/** A zip into the workspace (POST /archive): its files added or replaced, limits kept. */
async function uploadArchive(room: string, token: string | null, zip: Blob): Promise<ArchiveResult> {
  const headers = { ...auth(token, 'application/json'), 'Content-Type': 'application/zip' }
  const response = await send('POST', `/api/rooms/${enc(room)}/archive`, headers, zip)
  if (!response.ok) throw await failure(response)
  return (await response.json()) as ArchiveResult
}

const enc = encodeURIComponent

export const api = {
  config: () => call<Config>('GET', '/api/config', null),
  createRoom: (body: { mode: Mode; language: string; title: string }) =>
    call<RoomCreated>('POST', '/api/rooms', null, body),
  room: (room: string, token: string | null) => call<RoomDetails>('GET', `/api/rooms/${enc(room)}`, token),
  updateRoom: (
    room: string,
    token: string | null,
    patch: { language?: string; title?: string; ai_edits?: boolean; forks?: boolean; reviewers_run?: boolean },
  ) =>
    call<RoomDetails>('PATCH', `/api/rooms/${enc(room)}`, token, patch),
  /** Exchange a join-link token (or, in dev mode, none) for a personal one named `name`;
   * with a personal token, a rename that keeps the person. */
  join: (room: string, token: string | null, name: string) =>
    call<Joined>('POST', `/api/rooms/${enc(room)}/join`, token, { name }),
  createToken: (room: string, token: string | null, body: { role: Role; name: string; ttl?: number }) =>
    call<{ token: string }>('POST', `/api/rooms/${enc(room)}/tokens`, token, body),
  setPeerRole: (room: string, token: string | null, conn: string, role: Role, ttl?: number) =>
    call<{ changed: number; role: Role; expires_at: number | null }>(
      'PUT',
      `/api/rooms/${enc(room)}/peers/${enc(conn)}/role`,
      token,
      ttl === undefined ? { role } : { role, ttl },
    ),
  fork: (room: string, token: string | null) => call<RoomCreated>('POST', `/api/rooms/${enc(room)}/fork`, token),
  /** Owner: delete the room for good (204); everyone in it is disconnected with 4404. */
  deleteRoom: (room: string, token: string | null) => call<null>('DELETE', `/api/rooms/${enc(room)}`, token),
  /** Owner: every earlier link stops working; answers new links and a new owner token. */
  rotateLinks: (room: string, token: string | null) =>
    call<RoomCreated>('POST', `/api/rooms/${enc(room)}/rotate`, token),
  /** Run the room's code on Judge0; the result arrives in the document's `runs` map.
   * `entry`: the workspace file to run (absent: the entry file, `meta.entry`). */
  run: (room: string, token: string | null, stdin: string, entry?: string) =>
    call<{ run_id: string }>('POST', `/api/rooms/${enc(room)}/runs`, token, entry === undefined ? { stdin } : { stdin, entry }),
  /** Stop a run still queued or running (its starter, owners, editors): it ends `cancelled`. */
  cancelRun: (room: string, token: string | null, runId: string) =>
    call<Record<string, unknown>>('POST', `/api/rooms/${enc(room)}/runs/${enc(runId)}/cancel`, token),
  /** Ask the AI pair-programmer; the answer streams into the chat. Selection in UTF-16
   * indices, in `path` (the asker's current file; absent: the server's guess). */
  askAi: (room: string, token: string | null, prompt: string, selection?: { anchor: number; head: number }, path?: string) =>
    call<{ request_id: string; ahead: number }>('POST', `/api/rooms/${enc(room)}/ai`, token, {
      prompt,
      ...(selection ? { selection } : {}),
      ...(path ? { path } : {}),
    }),
  stopAi: (room: string, token: string | null) =>
    call<{ cancelled: boolean }>('DELETE', `/api/rooms/${enc(room)}/ai`, token),
  resolveSuggestion: (room: string, token: string | null, id: string, action: 'apply' | 'dismiss') =>
    call<{ status: 'applied' | 'dismissed' }>(
      'POST',
      `/api/rooms/${enc(room)}/ai/suggestions/${enc(id)}`,
      token,
      { action },
    ),
  /** Revert an AI code change (an AI edit, an applied suggestion) recorded on chat entry `id`. */
  undoAiChange: (room: string, token: string | null, id: string) =>
    call<{ undone: boolean }>('POST', `/api/rooms/${enc(room)}/ai/changes/${enc(id)}/undo`, token),
  downloadArchive,
  uploadArchive,
  files: (room: string, token: string | null) => call<FileEntry[]>('GET', `/api/rooms/${enc(room)}/files`, token),
}

/** Config is asked once per page. */
let configPromise: Promise<Config> | null = null
export function getConfig(): Promise<Config> {
  configPromise ??= api.config().catch(() => ({ ai: false, runner: false, multi_instance: false, anonymous: false }))
  return configPromise
}
