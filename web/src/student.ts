/** Broadcast students: follow the teacher's cursor, raise a hand, fork the code. */
import { EditorView } from '@codemirror/view'
import * as Y from 'yjs'
import { api, ApiError } from './api'
import { h, inMicrotask, replace } from './dom'
import { icon } from './icons'
import type { Notices } from './notices'
import type { Presence } from './presence'
import { rememberRoom } from './recent'
import type { Session } from './session'

export function studentControls(
  presence: Presence,
  doc: Y.Doc,
  ytext: Y.Text,
  view: EditorView,
  session: Session,
  notices: Notices,
): HTMLElement {
  let following = true
  let lastHead: number | null = null

  const followButton = h('button', { type: 'button', class: 'btn toggle-btn', 'aria-pressed': 'true' })
  const handButton = h('button', { type: 'button', class: 'btn toggle-btn', 'aria-pressed': 'false' })
  const forkButton = h('button', { type: 'button', class: 'btn' }, icon('fork'), 'Fork to my own room')

  const renderButtons = () => {
    followButton.setAttribute('aria-pressed', String(following))
    replace(followButton, icon('follow'), following ? 'Following the teacher' : 'Follow the teacher')
    const raised = presence.hand
    handButton.setAttribute('aria-pressed', String(raised))
    replace(handButton, icon('hand'), raised ? 'Lower hand' : 'Raise hand')
  }

  /** The teacher's caret (the first owner with a cursor) as an index into `code`. */
  const teacherHead = (): number | null => {
    for (const peer of presence.peers()) {
      if (peer.self || peer.user.role !== 'owner' || !peer.cursor?.head) continue
      try {
        const rel = Y.createRelativePositionFromJSON(peer.cursor.head)
        const abs = Y.createAbsolutePositionFromRelativePosition(rel, doc)
        if (abs && abs.type === ytext) return abs.index
      } catch {
        /* a malformed cursor: ignore it */
      }
    }
    return null
  }

  const follow = (force = false) => {
    if (!following) return
    const head = teacherHead()
    if (head === null || (head === lastHead && !force)) return
    lastHead = head
    const pos = Math.min(head, view.state.doc.length)
    view.dispatch({ effects: EditorView.scrollIntoView(pos, { y: 'center' }) })
  }

  const schedule = inMicrotask(() => follow())
  presence.awareness.on('change', (_changes: unknown, origin: unknown) => {
    if (origin !== 'local') schedule()
  })
  // A caret can arrive before the text it points into: try again when text arrives.
  ytext.observe(schedule)

  followButton.addEventListener('click', () => {
    following = !following
    renderButtons()
    follow(true)
  })
  handButton.addEventListener('click', () => {
    presence.setHand(!presence.hand)
    renderButtons()
    notices.show(presence.hand ? 'Hand raised: the teacher sees it.' : 'Hand lowered.', 'info', 3000)
  })
  forkButton.addEventListener('click', async () => {
    forkButton.disabled = true
    try {
      const created = await api.fork(session.room, session.token)
      rememberRoom(created, 'pair', `${document.title.split(' · ')[0]} (fork)`)
      window.location.assign(created.links.owner)
    } catch (err) {
      forkButton.disabled = false
      notices.show(`Could not fork: ${err instanceof ApiError ? err.message : String(err)}`, 'error')
    }
  })
  session.watch((state, previous) => {
    // The owner may forbid forks (the server refuses them too).
    forkButton.hidden = !state.forks
    // A write grant arrived: the hand has been answered.
    if (state.role === 'editor' && previous.role !== 'editor' && presence.hand) {
      presence.setHand(false)
      renderButtons()
    }
  })

  renderButtons()
  return h(
    'div',
    { class: 'student-controls', role: 'group', 'aria-label': 'Student controls' },
    followButton,
    handButton,
    forkButton,
  )
}
