/**
 * Which file a review comment is in. A comment's `anchor` and `head` are relative
 * positions into one file's Y.Text (the entry file's is `code`); the file is found from
 * the Y.Text the anchor resolves into, never from the stored `path`, so a comment stays
 * with its file when the entry file is renamed (`meta.entry` changes, `code` stays). The
 * stored `path` (absent on comments older than workspaces: the entry file) names the file
 * once it is gone.
 *
 * Renaming any other file gives it a new Y.Text (workspace.ts renameFile: a Yjs type cannot
 * move between map keys), so the positions would point into the deleted one. The page that
 * renames moves its comments along (`followRenames`): right after the rename, before the old
 * text is garbage-collected, each anchor's index is read from the old text as it was and
 * re-anchored at the same index in the new one, which holds the same characters.
 */
import * as Y from 'yjs'
import { entryPath, fileText, filesMap } from './workspace'

/** The relative position a comment stored (JSON, or encoded bytes from other clients). */
export function storedPosition(stored: unknown): Y.RelativePosition | null {
  if (stored == null) return null
  try {
    return stored instanceof Uint8Array ? Y.decodeRelativePosition(stored) : Y.createRelativePositionFromJSON(stored)
  } catch {
    return null
  }
}

/** The current path of a file's text, or null when it is not (any more) a file. */
export function pathOfText(doc: Y.Doc, text: Y.Text): string | null {
  if (text === doc.getText('code')) return entryPath(doc)
  const files = filesMap(doc) // first: getMap on a fresh document re-parents the files
  const item = text._item
  if (!item || item.deleted || item.parent !== files || typeof item.parentSub !== 'string') return null
  return fileText(doc, item.parentSub) === text ? item.parentSub : null
}

/** Where a comment's anchor is: in a file (its text and path), in a file that is gone
 * (deleted, or renamed by a page that did not move the comment), or not known yet (the
 * anchor's characters have not arrived: the update is on its way). */
export type AnchorFile =
  | { kind: 'file'; text: Y.Text; path: string }
  | { kind: 'gone' }
  | { kind: 'pending' }

export function anchorFile(doc: Y.Doc, stored: unknown): AnchorFile {
  const rpos = storedPosition(stored)
  if (!rpos) return { kind: 'gone' }
  const id = rpos.item ?? rpos.type
  if (id && Y.getState(doc.store, id.client) <= id.clock) return { kind: 'pending' }
  let abs: Y.AbsolutePosition | null = null
  try {
    abs = Y.createAbsolutePositionFromRelativePosition(rpos, doc)
  } catch {
    abs = null
  }
  // A deleted file's characters are garbage-collected: the position resolves to nothing.
  if (!abs || !(abs.type instanceof Y.Text)) return { kind: 'gone' }
  const path = pathOfText(doc, abs.type)
  return path === null ? { kind: 'gone' } : { kind: 'file', text: abs.type, path }
}

/** The path a comment names: its file's current path, else the stored one (old comments
 * without one were made in the entry file). */
export function storedPath(doc: Y.Doc, comment: Y.Map<unknown>): string {
  const path = comment.get('path')
  return typeof path === 'string' && path ? path : entryPath(doc)
}

/** The index `rpos` had in `text` just before `transaction` (which deleted `text`): the
 * characters that transaction deleted still count, ones deleted earlier do not. */
function indexBefore(rpos: Y.RelativePosition, text: Y.Text, transaction: Y.Transaction): number | null {
  const wasLive = (item: Y.Item) => item.countable && (!item.deleted || Y.isDeleted(transaction.deleteSet, item.id))
  const countLeftOf = (stop: Y.Item | null): number => {
    let index = 0
    for (let n = text._start; n !== null && n !== stop; n = n.right) {
      if (wasLive(n)) index += n.length
    }
    return index
  }
  if (rpos.item === null) {
    // At the end of a file that is not the entry file: a position by the text's own id.
    const own = text._item
    if (!own || !rpos.type || !Y.compareIDs(rpos.type, own.id)) return null
    return rpos.assoc >= 0 ? countLeftOf(null) : 0
  }
  const store = text.doc!.store
  if (Y.getState(store, rpos.item.client) <= rpos.item.clock) return null
  const struct = Y.getItem(store, rpos.item)
  if (!(struct instanceof Y.Item) || struct.parent !== text) return null
  const diff = rpos.item.clock - struct.id.clock
  return countLeftOf(struct) + (wasLive(struct) ? diff + (rpos.assoc >= 0 ? 0 : 1) : 0)
}

/** Moves the comments anchored in `from` (a text just deleted by a rename) to `to`. */
function moveComments(comments: Y.Map<unknown>, from: Y.Text, to: Y.Text, path: string, transaction: Y.Transaction): void {
  const moves: { comment: Y.Map<unknown>; fields: Record<string, Y.RelativePosition> }[] = []
  comments.forEach((comment) => {
    if (!(comment instanceof Y.Map)) return
    const fields: Record<string, Y.RelativePosition> = {}
    for (const key of ['anchor', 'head']) {
      const rpos = storedPosition(comment.get(key))
      if (!rpos) continue
      const index = indexBefore(rpos, from, transaction)
      if (index === null) continue
      fields[key] = Y.createRelativePositionFromTypeIndex(to, Math.min(index, to.length), rpos.assoc)
    }
    if (Object.keys(fields).length) moves.push({ comment, fields })
  })
  if (!moves.length) return
  // A transaction of its own, queued after the rename's (observers cannot write into it).
  to.doc!.transact(() => {
    for (const { comment, fields } of moves) {
      for (const [key, rpos] of Object.entries(fields)) comment.set(key, Y.relativePositionToJSON(rpos))
      comment.set('path', path)
    }
  })
}

/** Keeps comments with their file when this page renames one (see the module note). A
 * rename seen from another page is that page's to follow: doing it here too would write
 * the same comments twice. */
export function followRenames(doc: Y.Doc, comments: Y.Map<unknown>): void {
  filesMap(doc).observe((event) => {
    if (!event.transaction.local) return
    const added: string[] = []
    const deleted: string[] = []
    event.changes.keys.forEach((change, key) => {
      if (change.action === 'add') added.push(key)
      else if (change.action === 'delete') deleted.push(key)
    })
    if (added.length !== 1 || deleted.length !== 1) return
    const before = event.changes.keys.get(deleted[0])?.oldValue
    const after = filesMap(doc).get(added[0])
    if (before instanceof Y.Text && after instanceof Y.Text) moveComments(comments, before, after, added[0], event.transaction)
  })
}
