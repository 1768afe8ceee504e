/**
 * The room's workspace in the shared document, as the server reads it (crdt/schema.py,
 * crdt/paths.py): the entry file's text is `code` (so a stock client bound to `code` edits
 * it), named by `meta.entry`; every other file is a `Y.Text` in the `files` map under its
 * normal path. Rooms made before workspaces have no `meta.entry`: their entry file is
 * `main.<ext>` of the room's language.
 */
import * as Y from 'yjs'

export const FILES = 'files'
export const ENTRY = 'entry'
export const MAX_PATH_BYTES = 255
export const MAX_DEPTH = 8

/** Extension -> language id; the same table as crdt/paths.py. */
const EXTENSIONS: Record<string, string> = {
  '.py': 'python',
  '.js': 'javascript',
  '.mjs': 'javascript',
  '.ts': 'typescript',
  '.java': 'java',
  '.c': 'c',
  '.h': 'c',
  '.cpp': 'cpp',
  '.cc': 'cpp',
  '.hpp': 'cpp',
  '.go': 'go',
  '.rs': 'rust',
}

const DEFAULT_ENTRY: Record<string, string> = {
  python: 'main.py',
  javascript: 'main.js',
  typescript: 'main.ts',
  java: 'Main.java',
  c: 'main.c',
  cpp: 'main.cpp',
  go: 'main.go',
  rust: 'main.rs',
}

export class PathError extends Error {
  constructor(
    readonly path: string,
    readonly rule: string,
  ) {
    super(`${path}: ${rule}`)
  }
}

/** The normal form of `path`, or a PathError naming the rule it breaks (as the server's). */
export function normalizePath(path: string): string {
  if (!path) throw new PathError(path, 'a path must not be empty')
  const nfc = path.normalize('NFC')
  // Cc, Cf, Zl, Zp: the categories crdt/paths.py refuses.
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(nfc)) throw new PathError(path, 'a path must not contain control characters')
  if (nfc.includes('\\')) throw new PathError(path, 'use / to separate folders, not \\')
  if (nfc.startsWith('/')) throw new PathError(path, 'a path must be relative (no leading /)')
  const segments = nfc.split('/')
  if (segments.some((s) => s === '')) throw new PathError(path, 'a path must not have empty segments (// or a trailing /)')
  if (segments.some((s) => s === '.' || s === '..')) throw new PathError(path, 'a path must not contain . or .. segments')
  if (segments.some((s) => s !== s.trim())) throw new PathError(path, 'a path segment must not start or end with spaces')
  if (segments.length > MAX_DEPTH) throw new PathError(path, `a path may be at most ${MAX_DEPTH} levels deep`)
  if (new TextEncoder().encode(nfc).length > MAX_PATH_BYTES) {
    throw new PathError(path, `a path may be at most ${MAX_PATH_BYTES} bytes of UTF-8`)
  }
  return nfc
}

export function isNormalPath(path: unknown): path is string {
  if (typeof path !== 'string') return false
  try {
    return normalizePath(path) === path
  } catch {
    return false
  }
}

/** The language a file is edited and run as: by its extension, else the room's. */
export function languageFor(path: string, roomLanguage: string | undefined): string | undefined {
  const dot = path.lastIndexOf('.')
  const slash = path.lastIndexOf('/')
  const ext = dot > slash + 1 ? path.slice(dot).toLowerCase() : ''
  return EXTENSIONS[ext] ?? roomLanguage
}

export function filesMap(doc: Y.Doc): Y.Map<unknown> {
  return doc.getMap(FILES)
}

/** The entry file's path: `meta.entry`, or the default for the room's language. */
export function entryPath(doc: Y.Doc): string {
  const meta = doc.getMap('meta')
  const entry = meta.get(ENTRY)
  if (isNormalPath(entry)) return entry
  const language = meta.get('language')
  return DEFAULT_ENTRY[typeof language === 'string' ? language : 'python'] ?? 'main.py'
}

/** The text of the file at `path` (the entry file's is `code`), or null. */
export function fileText(doc: Y.Doc, path: string): Y.Text | null {
  if (path === entryPath(doc)) return doc.getText('code')
  const value = filesMap(doc).get(path)
  return value instanceof Y.Text ? value : null
}

/** Every path of the workspace, the entry file first, the rest sorted. */
export function filePaths(doc: Y.Doc): string[] {
  const entry = entryPath(doc)
  const rest: string[] = []
  filesMap(doc).forEach((value, path) => {
    if (value instanceof Y.Text && path !== entry) rest.push(path)
  })
  return [entry, ...rest.sort()]
}

/** Why `path` cannot be a new file's path (normal form, not taken), or null if it can. */
export function newPathProblem(doc: Y.Doc, path: string): string | null {
  let normal: string
  try {
    normal = normalizePath(path)
  } catch (err) {
    return err instanceof PathError ? err.rule : String(err)
  }
  if (normal !== path) return 'a path must be in normal form (NFC)'
  if (fileText(doc, normal)) return 'a file with this path already exists'
  // A file and a folder cannot share a name: a/b next to a file a.
  const paths = filePaths(doc)
  if (paths.some((p) => p.startsWith(`${normal}/`))) return 'a folder with this path already exists'
  const parts = normal.split('/')
  for (let i = 1; i < parts.length; i++) {
    if (paths.includes(parts.slice(0, i).join('/'))) return `${parts.slice(0, i).join('/')} is a file, not a folder`
  }
  return null
}

/** Adds an empty file at `path` (checked with newPathProblem first). */
export function createFile(doc: Y.Doc, path: string, content = ''): void {
  const problem = newPathProblem(doc, path)
  if (problem) throw new PathError(path, problem)
  doc.transact(() => {
    const text = new Y.Text()
    filesMap(doc).set(path, text)
    if (content) text.insert(0, content)
  })
}

/** Renames (moves) a file. The entry file keeps its text (`code`) and gets a new
 * `meta.entry`; any other file becomes a new Y.Text with its content under the new key,
 * the old key deleted, in one transaction (peers see one change). */
export function renameFile(doc: Y.Doc, from: string, to: string): void {
  const text = fileText(doc, from)
  if (!text) throw new PathError(from, 'no such file')
  const problem = newPathProblem(doc, to)
  if (problem) throw new PathError(to, problem)
  if (from === entryPath(doc)) {
    doc.getMap('meta').set(ENTRY, to)
    return
  }
  doc.transact(() => {
    const moved = new Y.Text()
    filesMap(doc).set(to, moved)
    moved.applyDelta(text.toDelta())
    filesMap(doc).delete(from)
  })
}

/** Deletes a file; the entry file cannot be deleted (the room runs it). */
export function deleteFile(doc: Y.Doc, path: string): void {
  if (path === entryPath(doc)) throw new PathError(path, 'the entry file cannot be deleted (rename it, or make another file the entry)')
  if (!filesMap(doc).has(path)) throw new PathError(path, 'no such file')
  filesMap(doc).delete(path)
}
