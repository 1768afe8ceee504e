/** The people panel: who is here, their role, active/idle, raised hands. The AI
 * pair-programmer, when present, is listed after the owners with an "AI" badge. */
import { api, ApiError } from './api'
import { h, replace } from './dom'
import { icon } from './icons'
import type { Notices } from './notices'
import type { PeerState, Presence, PresenceRole } from './presence'
import { ROLE_LABELS, type Session } from './session'

const ROLE_ORDER: Record<PresenceRole, number> = { owner: 0, ai: 1, editor: 2, reviewer: 3, viewer: 4 }
const BADGE_LABELS: Record<PresenceRole, string> = { ...ROLE_LABELS, ai: 'AI' }
/** Awareness is written by peers: an unknown role sorts last. */
const order = (role: PresenceRole) => ROLE_ORDER[role] ?? 9
const GRANT_SECONDS = 600

export function peoplePanel(presence: Presence, session: Session, notices: Notices): HTMLElement {
  const list = h('ul', { class: 'people-list', 'aria-label': 'People in this room' })
  const count = h('span', { class: 'count' })
  const section = h(
    'section',
    { class: 'panel people', 'aria-labelledby': 'people-heading' },
    h('h2', { id: 'people-heading' }, 'People ', count),
    list,
  )

  let last = ''
  const render = () => {
    // Cursor moves change awareness too: redraw only when something shown here changed,
    // so a focused button survives other people's typing.
    const key = JSON.stringify([
      session.state,
      presence.peers().map((p) => [p.clientId, p.user, p.status, p.hand]),
    ])
    if (key === last) return
    last = key
    const peers = presence.peers().sort(
      (a, b) =>
        Number(b.hand) - Number(a.hand) ||
        order(a.user.role) - order(b.user.role) ||
        Number(b.self) - Number(a.self) ||
        a.user.name.localeCompare(b.user.name),
    )
    count.textContent = `(${peers.length})`
    const hands = peers.filter((p) => p.hand).length
    if (hands) count.textContent += ` · ${hands} hand${hands > 1 ? 's' : ''} raised`
    replace(list, ...peers.map((peer) => row(peer)))
    if (session.state.mode === 'broadcast' && !session.canEdit) {
      list.append(h('li', { class: 'muted small' }, 'Other students are not shown.'))
    }
  }

  const row = (peer: PeerState) => {
    const { user } = peer
    const isAi = user.role === 'ai'
    const hand = peer.hand && !isAi
    const grant =
      session.isOwner && !peer.self && hand && user.role === 'viewer'
        ? h(
            'button',
            {
              type: 'button',
              class: 'btn small',
              'aria-label': `Let ${user.name} edit for 10 minutes`,
              onclick: () => void grantWrite(peer),
            },
            'Let edit 10 min',
          )
        : null
    return h(
      'li',
      { class: `person${hand ? ' hand-up' : ''}${isAi ? ' ai' : ''}`, 'data-client': String(peer.clientId) },
      h('span', { class: 'dot', style: `background:${user.color}`, 'aria-hidden': 'true' }),
      h(
        'span',
        { class: 'person-name' },
        user.name,
        peer.self ? h('span', { class: 'muted' }, ' (you)') : null,
      ),
      h(
        'span',
        { class: `badge role-${user.role}`, title: isAi ? 'AI pair-programmer' : null },
        BADGE_LABELS[user.role] ?? user.role,
      ),
      hand ? h('span', { class: 'hand' }, icon('hand'), 'Hand raised') : null,
      h('span', { class: `status ${peer.status}`, title: peer.status === 'idle' ? 'Idle' : 'Active' }, peer.status),
      grant,
    )
  }

  /** The REST API names connections (`conn`), awareness names people: the server lists
   * each connection's awareness client ids, so the student's presence leads to its
   * connection even when a whole class joined through one link. */
  const grantWrite = async (peer: PeerState) => {
    try {
      const details = await api.room(session.room, session.token)
      const viewers = details.peers.viewer ?? []
      let matches = viewers.filter((p) => (p.clients ?? []).includes(peer.clientId))
      if (matches.length !== 1) matches = viewers.filter((p) => p.id === peer.user.uid)
      if (matches.length !== 1) matches = viewers.filter((p) => p.name === peer.user.name)
      if (matches.length !== 1) {
        notices.show(
          `Can't tell ${peer.user.name}'s connection apart from other students who joined with the same link. ` +
            'Invite them with a personal link (Share) to grant write access.',
          'warn',
        )
        return
      }
      await api.setPeerRole(session.room, session.token, matches[0].conn, 'editor', GRANT_SECONDS)
      notices.show(`${peer.user.name} can edit for 10 minutes.`)
    } catch (err) {
      notices.show(`Could not change the role: ${err instanceof ApiError ? err.message : String(err)}`, 'error')
    }
  }

  presence.awareness.on('change', render)
  session.watch(render)
  return section
}
