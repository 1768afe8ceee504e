/**
 * Review comments in the shared `comments` map: id -> Y.Map {anchor, head, path, author,
 * text, resolved, replies: Y.Array<{author, text, ts}>, ts, snippet, line}. `anchor` and
 * `head` are Yjs relative positions into one file's Y.Text (JSON, or encoded bytes from
 * other clients), so a comment stays on its code while lines are inserted or deleted
 * around it. `path` is the file it was made in (comments-files.ts says how the file is
 * found; old comments have no `path` and are in the entry file, `code`).
 *
 * `snippet` (the code as commented) and `line` (where it was) let a comment say when its
 * code changed or was deleted: a relative position whose characters are gone resolves to
 * where they were, which reads as the next line, so without them a comment on deleted
 * code would silently claim a line it never meant.
 */
import * as Y from 'yjs'
import { anchorFile, storedPath, storedPosition } from './comments-files'

export interface Reply {
  author: string
  text: string
  ts?: number
}

export interface CommentView {
  id: string
  from: number | null
  to: number | null
  author: string
  color: string | null
  text: string
  resolved: boolean
  replies: Reply[]
  ts: number
  /** The code as it was when commented on (comments made before it was kept: null). */
  snippet: string | null
  /** The first line number when commented on, or null. */
  line: number | null
  /** `current`: the code is as commented; `changed`: edited since; `deleted`: gone. */
  state: CommentState
  /** The file it is in, by its current path; once the file is gone, the path it had. */
  path: string
  /** Its file was deleted. */
  fileGone: boolean
  /** Line numbers of `from` and `to` in its file now, or null. */
  fromLine: number | null
  toLine: number | null
}

export type CommentState = 'current' | 'changed' | 'deleted'

export const SNIPPET_MAX = 2000

export function resolvePosition(stored: unknown, doc: Y.Doc, ytext: Y.Text): number | null {
  const rpos = storedPosition(stored)
  if (!rpos) return null
  try {
    const abs = Y.createAbsolutePositionFromRelativePosition(rpos, doc)
    return abs !== null && abs.type === ytext ? abs.index : null
  } catch {
    return null
  }
}

/** Whether the character a stored relative position points at has been deleted. */
function pointsAtDeleted(stored: unknown, doc: Y.Doc): boolean {
  const rpos = storedPosition(stored)
  if (!rpos) return false
  try {
    if (rpos.item === null) return false
    const clock = Y.getState(doc.store, rpos.item.client)
    if (rpos.item.clock >= clock) return false // not arrived yet
    return Y.getItem(doc.store, rpos.item).deleted
  } catch {
    return false
  }
}

function commentState(
  stored: Y.Map<unknown>,
  doc: Y.Doc,
  text: string,
  from: number | null,
  to: number | null,
  snippet: string | null,
): CommentState {
  if (from === null || to === null) return 'deleted'
  const anchorGone = pointsAtDeleted(stored.get('anchor'), doc)
  const headGone = pointsAtDeleted(stored.get('head'), doc)
  if (from === to && (anchorGone || headGone || !!snippet)) return 'deleted'
  if (snippet !== null) {
    // A long snippet was kept cut short: compare what was kept.
    const now = text.slice(from, to)
    return (snippet.length >= SNIPPET_MAX ? now.slice(0, SNIPPET_MAX) : now) === snippet ? 'current' : 'changed'
  }
  return anchorGone || headGone ? 'changed' : 'current'
}

/** The 1-based line of `pos` in `text`. */
function lineAt(text: string, pos: number | null): number | null {
  if (pos === null) return null
  let line = 1
  for (let i = text.indexOf('\n'); i !== -1 && i < Math.min(pos, text.length); i = text.indexOf('\n', i + 1)) line++
  return line
}

export function readComments(comments: Y.Map<unknown>, doc: Y.Doc): CommentView[] {
  const out: CommentView[] = []
  const strings = new Map<Y.Text, string>()
  comments.forEach((value, id) => {
    if (!(value instanceof Y.Map)) return
    const where = anchorFile(doc, value.get('anchor'))
    let from: number | null = null
    let to: number | null = null
    let text = ''
    if (where.kind === 'file') {
      const ytext = where.text
      from = resolvePosition(value.get('anchor'), doc, ytext)
      const headPos = value.has('head') ? resolvePosition(value.get('head'), doc, ytext) : from
      to = from !== null && headPos !== null ? Math.max(from, headPos) : headPos
      text = strings.get(ytext) ?? ytext.toString()
      strings.set(ytext, text)
    }
    const replies = value.get('replies')
    const snippet = typeof value.get('snippet') === 'string' ? (value.get('snippet') as string) : null
    const line = Number(value.get('line'))
    out.push({
      id,
      from,
      to,
      author: String(value.get('author') ?? 'someone'),
      color: typeof value.get('color') === 'string' ? (value.get('color') as string) : null,
      text: String(value.get('text') ?? ''),
      resolved: value.get('resolved') === true,
      replies: replies instanceof Y.Array ? (replies.toArray() as Reply[]) : [],
      ts: Number(value.get('ts') ?? 0),
      snippet,
      line: Number.isInteger(line) && line > 0 ? line : null,
      state: commentState(value, doc, text, from, to, snippet),
      path: where.kind === 'file' ? where.path : storedPath(doc, value),
      fileGone: where.kind === 'gone',
      fromLine: lineAt(text, from),
      toLine: lineAt(text, to),
    })
  })
  return out
}

function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6))
  return 'c' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

export interface PendingAnchor {
  anchor: Y.RelativePosition
  head: Y.RelativePosition
}

/** Anchor a future comment now, so edits made while it is being written do not move it. */
export function anchorRange(ytext: Y.Text, from: number, to: number): PendingAnchor {
  return {
    anchor: Y.createRelativePositionFromTypeIndex(ytext, from, 0),
    head: Y.createRelativePositionFromTypeIndex(ytext, to, -1),
  }
}

export function addComment(
  doc: Y.Doc,
  comments: Y.Map<unknown>,
  at: PendingAnchor,
  fields: { path: string; author: string; color: string; text: string; snippet: string; line: number },
): string {
  const id = newId()
  doc.transact(() => {
    const comment = new Y.Map<unknown>()
    comments.set(id, comment)
    comment.set('anchor', Y.relativePositionToJSON(at.anchor))
    comment.set('head', Y.relativePositionToJSON(at.head))
    comment.set('path', fields.path)
    comment.set('author', fields.author)
    comment.set('color', fields.color)
    comment.set('text', fields.text)
    comment.set('resolved', false)
    comment.set('replies', new Y.Array<Reply>())
    comment.set('ts', Date.now())
    comment.set('snippet', fields.snippet.slice(0, SNIPPET_MAX))
    comment.set('line', fields.line)
  })
  return id
}

export function addReply(comments: Y.Map<unknown>, id: string, reply: Reply): void {
  const comment = comments.get(id)
  if (!(comment instanceof Y.Map)) return
  let replies = comment.get('replies')
  if (!(replies instanceof Y.Array)) {
    replies = new Y.Array<Reply>()
    comment.set('replies', replies)
  }
  ;(replies as Y.Array<Reply>).push([reply])
}

export function setResolved(comments: Y.Map<unknown>, id: string, resolved: boolean): void {
  const comment = comments.get(id)
  if (comment instanceof Y.Map) comment.set('resolved', resolved)
}
