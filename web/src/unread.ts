/** Unread counts for hidden tabs, from the shared document itself (so chat.ts, comments.ts
 * and runner.ts need no hooks): new chat entries, new comments and replies, and runs that
 * started or finished. Only other people's changes after the first sync count: the
 * history a page loads, and this page's own writes, are not news. */
import * as Y from 'yjs'
import type { Tabs } from './tabs'

const FINAL = (status: unknown) => typeof status === 'string' && status !== 'queued' && status !== 'running'

export function countUnread(
  tabs: Tabs,
  roots: { chat: Y.Array<unknown>; comments: Y.Map<unknown>; runs: Y.Map<unknown> },
  synced: () => boolean,
): void {
  const news = (tr: Y.Transaction) => synced() && !tr.local

  roots.chat.observe((event, tr) => {
    if (!news(tr)) return
    let added = 0
    for (const delta of event.changes.delta) if (Array.isArray(delta.insert)) added += delta.insert.length
    tabs.addUnread('chat', added)
  })

  roots.comments.observeDeep((events, tr) => {
    if (!news(tr)) return
    let added = 0
    for (const event of events) {
      if (event.target === roots.comments) {
        // A new comment: a key added to the map.
        for (const change of event.changes.keys.values()) if (change.action === 'add') added += 1
      } else if (event.target instanceof Y.Array) {
        // A reply: an entry inserted into a comment's `replies` array.
        for (const delta of event.changes.delta) if (Array.isArray(delta.insert)) added += delta.insert.length
      }
    }
    tabs.addUnread('comments', added)
  })

  // A run counts once while Output is hidden: when it starts, or when it ends if it
  // started while Output was shown.
  const counted = new Set<string>()
  tabs.onShow((id) => {
    if (id === 'output') counted.clear()
  })
  roots.runs.observeDeep((events, tr) => {
    if (!news(tr) || tabs.isShown('output')) return
    for (const event of events) {
      const id =
        event.target === roots.runs
          ? [...event.changes.keys.entries()].filter(([, c]) => c.action === 'add').map(([key]) => key)
          : event.changes.keys.has('status') && FINAL((event.target as Y.Map<unknown>).get('status'))
            ? [runId(roots.runs, event.target as Y.Map<unknown>)]
            : []
      for (const key of id) {
        if (key === null || counted.has(key)) continue
        counted.add(key)
        tabs.addUnread('output')
      }
    }
  })
}

function runId(runs: Y.Map<unknown>, run: Y.Map<unknown>): string | null {
  for (const [key, value] of runs.entries()) if (value === run) return key
  return null
}
