/** The AI pair-programmer's edits, highlighted briefly in the editor.
 *
 * The AI is a participant with its own Yjs client id, announced in awareness as
 * `user.role === 'ai'`; every edit it makes is one transaction whose new items carry that
 * client id. When the shared text changes, the items this transaction added (`event.adds`)
 * whose `id.client` is an AI's are found by walking the text's item list, counting the
 * visible UTF-16 length before them: that is their position in the text after the
 * transaction, which is also the CodeMirror position, because y-codemirror.next's
 * observer (registered when the editor was created, so called first) has already
 * dispatched the same change into the editor. Walking the items, rather than reading the
 * event's delta, keeps the attribution exact when one update carries insertions from
 * several clients (a catch-up after a reconnect): the delta merges adjacent insertions.
 *
 * The ranges become `cm-ai-edit` mark decorations in a state field: they are mapped
 * through every later change (people keep typing) and removed after `AI_EDIT_MS`; the
 * fade is a CSS animation (style.css). Deletions carry no client id in Yjs (a delete set
 * does not say who deleted), so the AI's deletions are not marked.
 */
import { StateEffect, StateField } from '@codemirror/state'
import { Decoration, EditorView, type DecorationSet } from '@codemirror/view'
import type { Awareness } from 'y-protocols/awareness'
import type * as Y from 'yjs'

export const AI_EDIT_MS = 2500
const AI_NAME = 'CodeMentor AI'
const AI_COLOR = '#8b5cf6'

export interface TextRange {
  from: number
  to: number
}

export interface AiEditBatch {
  id: number
  ranges: TextRange[]
  name: string
  /** A CSS colour for the soft background (the AI's `colorLight`). */
  color: string
}

export const addAiEdits = StateEffect.define<AiEditBatch>({
  map: (batch, mapping) => ({
    ...batch,
    ranges: batch.ranges
      .map((r) => ({ from: mapping.mapPos(r.from, 1), to: mapping.mapPos(r.to, -1) }))
      .filter((r) => r.to > r.from),
  }),
})
export const clearAiEdits = StateEffect.define<number>()

export const aiEditField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(decos, tr) {
    decos = decos.map(tr.changes)
    for (const effect of tr.effects) {
      if (effect.is(addAiEdits)) {
        const { id, name, color } = effect.value
        const mark = Decoration.mark({
          class: 'cm-ai-edit',
          attributes: { title: `Edited by ${name}`, style: `--cm-ai-edit-color: ${color}` },
          batch: id,
        })
        const length = tr.state.doc.length
        const add = effect.value.ranges
          .map((r) => ({ from: Math.max(0, Math.min(r.from, length)), to: Math.min(r.to, length) }))
          .filter((r) => r.to > r.from)
          .map((r) => mark.range(r.from, r.to))
        decos = decos.update({ add, sort: true })
      } else if (effect.is(clearAiEdits)) {
        const id = effect.value
        decos = decos.update({ filter: (_from, _to, deco) => deco.spec.batch !== id })
      }
    }
    return decos
  },
  provide: (field) => EditorView.decorations.from(field),
})

/** The ranges (in the text after the transaction) of the visible items that `event`'s
 * transaction added and whose creator passes `byClient`; adjacent ones are merged. */
export function addedRanges(event: Y.YEvent<Y.Text>, byClient: (client: number) => boolean): TextRange[] {
  const ranges: TextRange[] = []
  let index = 0
  for (let item = event.target._start; item !== null; item = item.right) {
    if (item.deleted || !item.countable) continue
    if (byClient(item.id.client) && event.adds(item)) {
      const last = ranges[ranges.length - 1]
      if (last && last.to === index) last.to += item.length
      else ranges.push({ from: index, to: index + item.length })
    }
    index += item.length
  }
  return ranges
}

interface AiPeer {
  name: string
  color: string
}

const HEX_COLOR = /^#[0-9a-f]{3,8}$/i

/** Awareness is written by peers: only a plain hex colour reaches the style attribute. */
function aiPeer(user: Record<string, unknown>): AiPeer {
  const light = typeof user.colorLight === 'string' && HEX_COLOR.test(user.colorLight) ? user.colorLight : null
  const solid = typeof user.color === 'string' && /^#[0-9a-f]{6}$/i.test(user.color) ? user.color : AI_COLOR
  const name = typeof user.name === 'string' && user.name.trim() ? user.name.trim().slice(0, 60) : AI_NAME
  return { name, color: light ?? `${solid}33` }
}

/**
 * Watch `ytext` for remote transactions that contain the AI's insertions and highlight
 * them in `view`. `live()` is false while the first sync loads the document, whose
 * earlier AI text is not news. Returns a function that stops watching.
 */
export function highlightAiEdits(
  view: EditorView,
  ytext: Y.Text,
  awareness: Awareness,
  live: () => boolean,
): () => void {
  // Every AI client id seen, kept after it leaves: its last edit may arrive after its
  // presence is gone, and a re-joining AI gets a new id.
  const ai = new Map<number, AiPeer>()
  const learn = () => {
    awareness.getStates().forEach((state, clientId) => {
      const user = state.user as Record<string, unknown> | undefined
      if (user && user.role === 'ai') ai.set(clientId, aiPeer(user))
    })
  }
  awareness.on('change', learn)
  learn()

  const timers = new Set<number>()
  let batches = 0
  const observer = (event: Y.YTextEvent, tr: Y.Transaction) => {
    if (tr.local || ai.size === 0 || !live()) return
    // Cheap test first: did this transaction add anything from an AI client at all?
    const authors = [...ai.keys()].filter((c) => (tr.afterState.get(c) ?? 0) > (tr.beforeState.get(c) ?? 0))
    if (authors.length === 0) return
    // The binding applies the change first; if it somehow has not, positions would lie.
    if (view.state.doc.length !== ytext.length) return
    const ranges = addedRanges(event, (client) => authors.includes(client))
    if (ranges.length === 0) return // the AI only deleted
    const id = ++batches
    const peer = ai.get(authors[0]) ?? { name: AI_NAME, color: `${AI_COLOR}33` }
    view.dispatch({ effects: addAiEdits.of({ id, ranges, ...peer }) })
    const timer = window.setTimeout(() => {
      timers.delete(timer)
      view.dispatch({ effects: clearAiEdits.of(id) })
    }, AI_EDIT_MS)
    timers.add(timer)
  }
  ytext.observe(observer)
  return () => {
    ytext.unobserve(observer)
    awareness.off('change', learn)
    for (const timer of timers) window.clearTimeout(timer)
  }
}
