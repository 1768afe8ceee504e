/**
 * What an upload of plain files will do to the workspace, decided before anything is
 * written: paths in their normal form (workspace.ts), binary files left out, the room's
 * limits checked (the server refuses a peer update that breaks one, whole, so the page
 * says which file and rule first), then every write in one transaction.
 */
import * as Y from 'yjs'
import { entryPath, filePaths, fileText, filesMap, normalizePath, PathError } from './workspace'

export interface Limits {
  /** Files per room, the entry file included. */
  files: number
  /** Bytes of UTF-8 per file. */
  fileBytes: number
  /** Bytes of UTF-8 per room, every file together. */
  roomBytes: number
}

/** The server's defaults (issue 19), used when /api/config does not say. */
export const DEFAULT_LIMITS: Limits = { files: 200, fileBytes: 1024 * 1024, roomBytes: 8 * 1024 * 1024 }

/** One picked or dropped file: its path relative to what was picked, and its bytes. */
export interface Incoming {
  path: string
  bytes: Uint8Array
}

export interface Plan {
  /** Normal path -> text, in upload order. */
  writes: Map<string, string>
  /** Paths left out because they are not UTF-8 text. */
  binary: string[]
}

export interface Applied {
  added: string[]
  replaced: string[]
  unchanged: string[]
}

/** A refusal: nothing is written; `message` is a sentence naming the file and the rule. */
export class UploadRefused extends Error {}

/** Sizes people read: 512 bytes, 1.5 KiB, 8 MiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} byte${n === 1 ? '' : 's'}`
  const [value, unit] = n < 1024 * 1024 ? [n / 1024, 'KiB'] : [n / (1024 * 1024), 'MiB']
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`
}

/** Paths of a folder upload keep their folders; one folder dropped or picked on its own
 * is the workspace itself, so its name is not kept. */
export function dropTopFolder(paths: string[]): string[] {
  const tops = new Set(paths.map((p) => (p.includes('/') ? p.slice(0, p.indexOf('/')) : null)))
  if (paths.length === 0 || tops.size !== 1 || tops.has(null)) return paths
  return paths.map((p) => p.slice(p.indexOf('/') + 1))
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()

/** The file's text, or null when it is binary (a NUL byte, or not valid UTF-8). */
export function decodeText(bytes: Uint8Array): string | null {
  if (bytes.includes(0)) return null
  try {
    return utf8.decode(bytes)
  } catch {
    return null
  }
}

export function utf8Length(text: string): number {
  return encoder.encode(text).length
}

/** The plan for `incoming`, or UploadRefused naming the first file that breaks a rule. */
export function planUpload(doc: Y.Doc, incoming: Incoming[], limits: Limits = DEFAULT_LIMITS): Plan {
  const writes = new Map<string, string>()
  const binary: string[] = []
  for (const file of incoming) {
    let path: string
    try {
      path = normalizePath(file.path)
    } catch (err) {
      if (err instanceof PathError) throw new UploadRefused(`Nothing was uploaded: “${file.path}” cannot be a file's path: ${err.rule}.`)
      throw err
    }
    if (file.bytes.length > limits.fileBytes) {
      throw new UploadRefused(
        `Nothing was uploaded: “${path}” is ${file.bytes.length.toLocaleString('en')} bytes; a file may be at most ${formatBytes(limits.fileBytes)}.`,
      )
    }
    const text = decodeText(file.bytes)
    if (text === null) binary.push(path)
    else writes.set(path, text)
  }

  const existing = new Set(filePaths(doc))
  let count = existing.size
  let total = 0
  for (const path of existing) total += utf8Length(fileText(doc, path)?.toString() ?? '')
  for (const [path, text] of writes) {
    if (existing.has(path)) {
      total -= utf8Length(fileText(doc, path)?.toString() ?? '')
    } else if (++count > limits.files) {
      throw new UploadRefused(`Nothing was uploaded: “${path}” would be file ${count}; a room may hold at most ${limits.files} files.`)
    }
    total += utf8Length(text)
    if (total > limits.roomBytes) {
      throw new UploadRefused(
        `Nothing was uploaded: with “${path}” the room would hold ${formatBytes(total)}; a room may hold at most ${formatBytes(limits.roomBytes)}.`,
      )
    }
  }
  return { writes, binary }
}

/** Writes the plan in one transaction: a file that exists keeps its `Y.Text` (open editors
 * stay bound to it) and gets the new text; a new path gets a new `Y.Text`. */
export function applyPlan(doc: Y.Doc, plan: Plan): Applied {
  const result: Applied = { added: [], replaced: [], unchanged: [] }
  const entry = entryPath(doc)
  const files = filesMap(doc)
  doc.transact(() => {
    for (const [path, text] of plan.writes) {
      const current = path === entry ? doc.getText('code') : fileText(doc, path)
      if (current === null) {
        files.set(path, new Y.Text(text))
        result.added.push(path)
      } else if (current.toString() === text) {
        result.unchanged.push(path)
      } else {
        current.delete(0, current.length)
        current.insert(0, text)
        result.replaced.push(path)
      }
    }
  })
  return result
}

function files(n: number): string {
  return `${n} file${n === 1 ? '' : 's'}`
}

/** "Added 3 files, replaced 1." */
export function resultSentence(added: number, replaced: number, unchanged = 0): string {
  const parts: string[] = []
  if (added) parts.push(`added ${files(added)}`)
  if (replaced) parts.push(`replaced ${added ? replaced : files(replaced)}`)
  if (unchanged && !added && !replaced) return `Nothing changed: ${unchanged === 1 ? 'the file was' : 'the files were'} already the same.`
  if (!parts.length) return 'Nothing was uploaded.'
  const text = parts.join(', ')
  return `${text[0].toUpperCase()}${text.slice(1)}${unchanged ? ` (${unchanged} unchanged)` : ''}.`
}
