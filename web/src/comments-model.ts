/**
 * Review comments in the shared `comments` map: id -> Y.Map {anchor, head, author,
 * text, resolved, replies: Y.Array<{author, text, ts}>, ts}. `anchor` and `head` are
 * Yjs relative positions into `code` (JSON, or encoded bytes from other clients), so a
 * comment stays on its code while lines are inserted or deleted around it.
 */
import * as Y from 'yjs'

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
}

export function resolvePosition(stored: unknown, doc: Y.Doc, ytext: Y.Text): number | null {
  if (stored == null) return null
  try {
    const rpos =
      stored instanceof Uint8Array
        ? Y.decodeRelativePosition(stored)
        : Y.createRelativePositionFromJSON(stored)
    const abs = Y.createAbsolutePositionFromRelativePosition(rpos, doc)
    return abs !== null && abs.type === ytext ? abs.index : null
  } catch {
    return null
  }
}

export function readComments(comments: Y.Map<unknown>, doc: Y.Doc, ytext: Y.Text): CommentView[] {
  const out: CommentView[] = []
  comments.forEach((value, id) => {
    if (!(value instanceof Y.Map)) return
    const from = resolvePosition(value.get('anchor'), doc, ytext)
    const headPos = value.has('head') ? resolvePosition(value.get('head'), doc, ytext) : from
    const to = from !== null && headPos !== null ? Math.max(from, headPos) : headPos
    const replies = value.get('replies')
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
  fields: { author: string; color: string; text: string },
): string {
  const id = newId()
  doc.transact(() => {
    const comment = new Y.Map<unknown>()
    comments.set(id, comment)
    comment.set('anchor', Y.relativePositionToJSON(at.anchor))
    comment.set('head', Y.relativePositionToJSON(at.head))
    comment.set('author', fields.author)
    comment.set('color', fields.color)
    comment.set('text', fields.text)
    comment.set('resolved', false)
    comment.set('replies', new Y.Array<Reply>())
    comment.set('ts', Date.now())
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
