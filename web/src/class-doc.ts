/** Reading the server-owned `class` root (rooms/classroom.py): a Y.Map of `{kind}:{id}`
 * -> a JSON object as a string. Only the server writes it (a peer's change is undone), so
 * its entries are trusted for what they say, but still parsed defensively. */
import type * as Y from 'yjs'

/** Every entry of `kind`: id -> the parsed object (anything not a JSON object skipped). */
export function classEntries(root: Y.Map<unknown>, kind: string): Map<string, Record<string, unknown>> {
  const prefix = `${kind}:`
  const out = new Map<string, Record<string, unknown>>()
  for (const [key, raw] of root.entries()) {
    if (!key.startsWith(prefix) || typeof raw !== 'string') continue
    try {
      const value = JSON.parse(raw) as unknown
      if (value && typeof value === 'object' && !Array.isArray(value)) out.set(key.slice(prefix.length), value as Record<string, unknown>)
    } catch {
      // not JSON: skipped
    }
  }
  return out
}

export function classEntry(root: Y.Map<unknown>, kind: string, id: string): Record<string, unknown> | null {
  return classEntries(root, kind).get(id) ?? null
}

/** The server's timestamps are unix seconds; milliseconds are accepted too. */
export function toMs(ts: unknown): number {
  const n = Number(ts)
  if (!Number.isFinite(n) || n <= 0) return 0
  return n < 1e12 ? n * 1000 : n
}

/** "just now", "1 min ago", "12 min ago", "2 h ago". */
export function ago(ts: unknown, now = Date.now()): string {
  const ms = toMs(ts)
  if (!ms) return ''
  const minutes = Math.floor(Math.max(0, now - ms) / 60000)
  if (minutes < 1) return 'just now'
  if (minutes < 60) return `${minutes} min ago`
  return `${Math.floor(minutes / 60)} h ago`
}

export const str = (value: unknown): string => (typeof value === 'string' ? value : '')
