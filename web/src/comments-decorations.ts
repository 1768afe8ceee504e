/** Highlighted comment ranges in the editor, mapped through edits between refreshes. */
import { StateEffect, StateField, type Extension } from '@codemirror/state'
import { Decoration, EditorView, type DecorationSet } from '@codemirror/view'
import type { CommentView } from './comments-model'

export const setCommentRanges = StateEffect.define<{ comments: CommentView[]; active: string | null }>()

export const commentField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(decos, tr) {
    decos = decos.map(tr.changes)
    for (const effect of tr.effects) {
      if (effect.is(setCommentRanges)) decos = build(tr.state.doc.length, tr.state.doc, effect.value)
    }
    return decos
  },
  provide: (field) => EditorView.decorations.from(field),
})

function build(
  length: number,
  doc: { lineAt(pos: number): { from: number } },
  { comments, active }: { comments: CommentView[]; active: string | null },
): DecorationSet {
  const ranges: { from: number; to: number; deco: Decoration }[] = []
  const lines = new Set<number>()
  for (const c of comments) {
    // Deleted code has no line left: highlighting where it was would mark the next line.
    if (c.resolved || c.state === 'deleted' || c.from === null || c.to === null) continue
    const from = Math.min(c.from, length)
    const to = Math.min(c.to, length)
    const cls = `cm-comment-range${c.id === active ? ' cm-comment-active' : ''}${c.state === 'changed' ? ' cm-comment-changed' : ''}`
    const lineStart = doc.lineAt(from).from
    if (!lines.has(lineStart)) {
      lines.add(lineStart)
      ranges.push({ from: lineStart, to: lineStart, deco: Decoration.line({ class: 'cm-comment-line' }) })
    }
    if (to > from) {
      ranges.push({
        from,
        to,
        deco: Decoration.mark({ class: cls, attributes: { 'data-comment': c.id, title: `${c.author}: ${c.text}` } }),
      })
    }
  }
  return Decoration.set(
    ranges.map((r) => r.deco.range(r.from, r.to)),
    true,
  )
}

export const commentTheme: Extension = EditorView.baseTheme({
  '.cm-comment-range': {
    backgroundColor: 'rgba(255, 196, 0, 0.28)',
    borderBottom: '2px solid #e0a800',
  },
  '.cm-comment-active': { backgroundColor: 'rgba(255, 170, 0, 0.5)' },
  '.cm-comment-line': { boxShadow: 'inset 3px 0 0 #e0a800' },
  '.cm-comment-changed': { borderBottomStyle: 'dashed' },
  // On a dark background any yellow fill drops the syntax colours below AA contrast: the
  // underline and the line's bar mark the range; the active one gets an outline.
  '&dark .cm-comment-range': { backgroundColor: 'transparent' },
  '&dark .cm-comment-active': { backgroundColor: 'transparent', outline: '1px solid rgba(255, 170, 0, 0.6)' },
})
