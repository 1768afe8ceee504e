/** Broadcast students: follow the teacher (their file and caret), raise a hand, fork the code. */
import { api, ApiError } from './api'
import { h, replace } from './dom'
import type { Follow } from './follow'
import { icon } from './icons'
import type { Notices } from './notices'
import type { PeerState, Presence } from './presence'
import { rememberFork } from './class-fork'
import { rememberRoom } from './recent'
import type { Session } from './session'

const TEACHER = 'the teacher'

/** The teacher: the first owner here (their caret first, if several). */
export function teacherOf(presence: Presence): PeerState | null {
  const owners = presence.peers().filter((p) => !p.self && p.user.role === 'owner')
  return owners.find((p) => p.cursor?.head) ?? owners[0] ?? null
}

/** `hand`: the class's server-kept hand (class-student.ts); without it, the presence hand. */
export function studentControls(presence: Presence, follow: Follow, session: Session, notices: Notices, hand?: HTMLElement): HTMLElement {
  const followButton = h('button', { type: 'button', class: 'btn toggle-btn', 'aria-pressed': 'true' })
  const handButton = h('button', { type: 'button', class: 'btn toggle-btn', 'aria-pressed': 'false' })
  const forkButton = h('button', { type: 'button', class: 'btn' }, icon('fork'), 'Fork to my own room')
  const following = () => follow.following === TEACHER

  const renderButtons = () => {
    followButton.setAttribute('aria-pressed', String(following()))
    replace(followButton, icon('follow'), following() ? 'Following the teacher' : 'Follow the teacher')
    const raised = presence.hand
    handButton.setAttribute('aria-pressed', String(raised))
    replace(handButton, icon('hand'), raised ? 'Lower hand' : 'Raise hand')
  }
  const followTeacher = () => follow.start(() => teacherOf(presence), TEACHER)
  follow.onChange(renderButtons)
  followTeacher()

  followButton.addEventListener('click', () => (following() ? follow.stop() : followTeacher()))
  handButton.addEventListener('click', () => {
    presence.setHand(!presence.hand)
    renderButtons()
    notices.show(presence.hand ? 'Hand raised: the teacher sees it.' : 'Hand lowered.', 'info', 3000)
  })
  // The fork opens in a new tab (opened now, within the click, so no popup blocker
  // stops it), and the lesson stays open in this one.
  forkButton.addEventListener('click', async () => {
    forkButton.disabled = true
    const tab = window.open('', '_blank')
    try {
      const created = await api.fork(session.room, session.token)
      const title = document.title.split(' · ')[0]
      rememberRoom(created, 'pair', `${title} (fork)`)
      rememberFork(created.room, { room: session.room, title, url: window.location.href })
      if (tab) {
        tab.opener = null
        tab.location.href = created.links.owner
        notices.show('Your fork opened in a new tab. This tab stays with the class.', 'info', 6000)
      } else {
        window.location.assign(created.links.owner)
      }
    } catch (err) {
      tab?.close()
      notices.show(`Could not fork: ${err instanceof ApiError ? err.message : String(err)}`, 'error')
    } finally {
      forkButton.disabled = false
    }
  })
  session.watch((state, previous) => {
    // The owner may forbid forks (the server refuses them too).
    forkButton.hidden = !state.forks
    // A write grant arrived: the (presence) hand has been answered.
    if (!hand && state.role === 'editor' && previous.role !== 'editor' && presence.hand) {
      presence.setHand(false)
      renderButtons()
    }
  })

  renderButtons()
  return h(
    'div',
    { class: 'student-controls', role: 'group', 'aria-label': 'Student controls' },
    followButton,
    hand ?? handButton,
    forkButton,
  )
}
