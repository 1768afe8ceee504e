/** The people panel: who is here, their role, the file they have open (with a Follow
 * toggle: your editor goes where they go), active/idle, raised hands. The AI
 * pair-programmer, when present, is listed after the owners with an "AI" badge.
 *
 * Presence is written by peers, so the owner's tools do not trust it: a raised hand is
 * shown (with the name from the person's token) only once the server says which
 * connection holds that awareness client id, and "Let edit" goes to that connection. */
import { api, ApiError, type PeerEntry, type Role } from './api'
import type { Grants } from './class-grants'
import type { Follow } from './follow'
import { formatTime, h, replace } from './dom'
import { safeColor } from './identity'
import { icon } from './icons'
import type { Notices } from './notices'
import type { PeerState, Presence, PresenceRole } from './presence'
import { ROLE_LABELS, type Session } from './session'
import { isGenericName } from './token'

const ROLE_ORDER: Record<PresenceRole, number> = { owner: 0, ai: 1, editor: 2, reviewer: 3, viewer: 4 }
const BADGE_LABELS: Record<PresenceRole, string> = { ...ROLE_LABELS, ai: 'AI' }
/** Awareness is written by peers: an unknown role sorts last. */
const order = (role: PresenceRole) => ROLE_ORDER[role] ?? 9
const GRANT_SECONDS = 600

/** A connection as the server reports it, with its role. */
type Holder = PeerEntry & { role: Role }

/** Which connection holds each awareness client id, from `GET /api/rooms/{room}`. */
async function holdersOf(session: Session): Promise<Map<number, Holder>> {
  const details = await api.room(session.room, session.token)
  const holders = new Map<number, Holder>()
  for (const [role, entries] of Object.entries(details.peers) as [Role, PeerEntry[]][]) {
    for (const entry of entries) for (const clientId of entry.clients ?? []) holders.set(clientId, { ...entry, role })
  }
  return holders
}

/** `grants`: the owner's timed edit grants, for a "Revoke" on whoever holds one. */
export function peoplePanel(presence: Presence, session: Session, notices: Notices, follow?: Follow, grants?: Grants): HTMLElement {
  const list = h('ul', { class: 'people-list', 'aria-label': 'People in this room' })
  const count = h('span', { class: 'count' })
  const section = h(
    'section',
    { class: 'panel people', 'aria-labelledby': 'people-heading' },
    h('h2', { id: 'people-heading' }, 'People ', count),
    list,
  )

  // The owner's view of who holds the raised hands' client ids; asked again whenever the
  // set of hands (or a hand's name) changes.
  let holders = new Map<number, Holder>()
  let holdersFor = ''
  let asking = false
  const checkHands = (peers: PeerState[]) => {
    if (!session.isOwner || asking) return
    // Raised hands, and (for a Revoke) whoever edits in a broadcast room.
    const editing = (p: PeerState) => session.state.mode === 'broadcast' && p.user.role === 'editor'
    const wanted = JSON.stringify(peers.filter((p) => (p.hand || editing(p)) && !p.self).map((p) => [p.clientId, p.user.name, p.user.role]))
    if (wanted === holdersFor) return
    holdersFor = wanted // asked once per change, answered or not
    if (wanted === '[]') return
    asking = true
    holdersOf(session)
      .then((found) => (holders = found))
      .catch(() => undefined)
      .finally(() => {
        asking = false
        last = ''
        render()
      })
  }

  let last = ''
  const render = () => {
    // Cursor moves change awareness too: redraw only when something shown here changed,
    // so a focused button survives other people's typing.
    checkHands(presence.peers())
    const key = JSON.stringify([
      session.state,
      presence.peers().map((p) => [p.clientId, p.user, p.status, p.hand, p.file]),
      follow?.following ?? '',
      [...holders.values()].map((holder) => grants?.until(holder.id) ?? null),
    ])
    if (key === last) return
    last = key
    const raised = (p: PeerState) => Number(handOf(p) !== null)
    const peers = presence.peers().sort(
      (a, b) =>
        raised(b) - raised(a) ||
        order(a.user.role) - order(b.user.role) ||
        Number(b.self) - Number(a.self) ||
        a.user.name.localeCompare(b.user.name),
    )
    count.textContent = `(${peers.length})`
    const hands = peers.filter((p) => handOf(p) !== null).length
    if (hands) count.textContent += ` · ${hands} hand${hands > 1 ? 's' : ''} raised`
    replace(list, ...peers.map((peer) => row(peer)))
    if (session.state.mode === 'broadcast' && !session.canEdit) {
      list.append(h('li', { class: 'muted small' }, 'Other students are not shown.'))
    }
  }

  /** A raised hand, and who (verified) raised it: for the owner, only hands whose client id
   * the server says a connection holds; for others (their own hand), as presence says. */
  const handOf = (peer: PeerState): { holder: Holder | null } | null => {
    if (!peer.hand || peer.user.role === 'ai') return null
    if (!session.isOwner || peer.self) return { holder: null }
    const holder = holders.get(peer.clientId)
    return holder ? { holder } : null
  }

  const row = (peer: PeerState) => {
    const raised = handOf(peer)
    const holder = raised?.holder ?? null
    // The token's name when it names a person (personal links, the join exchange).
    const user = holder && !isGenericName(holder.name) ? { ...peer.user, name: holder.name } : peer.user
    const isAi = user.role === 'ai'
    const hand = raised !== null
    // A grant this owner gave, still running: take it back early.
    const known = holders.get(peer.clientId) ?? null
    const granted = session.isOwner && !peer.self && known && known.role === 'editor' && grants?.until(known.id) ? known : null
    const revoke = granted
      ? h(
          'button',
          {
            type: 'button',
            class: 'btn small danger-outline',
            'aria-label': `Revoke ${granted.name}'s edit access`,
            title: `Can edit until ${formatTime(grants!.until(granted.id)!)}`,
            onclick: () => void grants!.revoke(granted.id, granted.name),
          },
          'Revoke',
        )
      : null
    const grant =
      session.isOwner && !peer.self && holder?.role === 'viewer'
        ? h(
            'button',
            {
              type: 'button',
              class: 'btn small',
              'aria-label': `Let ${user.name} edit for 10 minutes`,
              onclick: () => void grantWrite(peer, user.name),
            },
            'Let edit 10 min',
          )
        : null
    return h(
      'li',
      { class: `person${hand ? ' hand-up' : ''}${isAi ? ' ai' : ''}`, 'data-client': String(peer.clientId) },
      h('span', { class: 'dot', style: `background:${safeColor(user.color)}`, 'aria-hidden': 'true' }),
      h(
        'span',
        { class: 'person-name' },
        user.name,
        peer.self ? h('span', { class: 'muted' }, ' (you)') : null,
      ),
      // A client that says no role (a stock y-websocket client) gets no empty badge.
      user.role
        ? h('span', { class: `badge role-${user.role}`, title: isAi ? 'AI pair-programmer' : null }, BADGE_LABELS[user.role] ?? user.role)
        : null,
      peer.file ? h('span', { class: 'people-file', title: `${peer.self ? 'You have' : `${user.name} has`} ${peer.file} open` }, peer.file) : null,
      hand ? h('span', { class: 'hand' }, icon('hand'), 'Hand raised') : null,
      h('span', { class: `status ${peer.status}`, title: peer.status === 'idle' ? 'Idle' : 'Active' }, peer.status),
      grant,
      revoke,
      follow && !peer.self && !isAi ? followButton(peer, user.name, follow) : null,
    )
  }

  /** Follow this person (their file and caret) until you type or pick a file yourself. */
  const followButton = (peer: PeerState, name: string, follow: Follow) => {
    const id = `person:${peer.clientId}`
    const on = follow.following === id
    return h(
      'button',
      {
        type: 'button',
        class: 'btn small toggle-btn follow-person',
        'aria-pressed': String(on),
        'aria-label': `Follow ${name}`,
        title: on ? `Following ${name}: type or pick a file to stop` : `Follow ${name}: your editor goes where they go`,
        onclick: () => (on ? follow.stop() : follow.start(() => presence.peers().find((p) => p.clientId === peer.clientId) ?? null, id)),
      },
      on ? 'Following' : 'Follow',
    )
  }

  /** The REST API names connections (`conn`), awareness names people: the server lists
   * the awareness client ids each connection holds (bound to the person's verified
   * identity), so the hand leads to its connection even when a whole class joined through
   * one link. Nothing a peer wrote into its presence (name, uid) picks the connection. */
  const grantWrite = async (peer: PeerState, name: string) => {
    try {
      const holder = (await holdersOf(session)).get(peer.clientId)
      if (!holder || holder.role !== 'viewer') {
        notices.show(`${name} is no longer connected as a viewer.`, 'warn')
        return
      }
      const result = await api.setPeerRole(session.room, session.token, holder.conn, 'editor', GRANT_SECONDS)
      grants?.record(holder.id, result.expires_at)
      notices.show(`${name} can edit for 10 minutes.`)
    } catch (err) {
      notices.show(`Could not change the role: ${err instanceof ApiError ? err.message : String(err)}`, 'error')
    }
  }

  presence.awareness.on('change', render)
  grants?.onChange(() => {
    holdersFor = '' // ask again: who holds the grant now
    render()
  })
  follow?.onChange(render)
  session.watch(render)
  return section
}
