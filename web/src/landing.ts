/** The start page `/`: create a room, or open one from a link. */
import { api, ApiError, getConfig, type Mode, type Role, type RoomCreated } from './api'
import { ROLE_LABELS } from './session'
import { linkRow } from './dialogs'
import { h, replace } from './dom'
import { LANGUAGES } from './languages'
import { forgetRoom, recentRooms, rememberRoom } from './recent'
import { parseRoomLink, roomPath } from './token'

const MODES: { id: Mode; title: string; detail: string }[] = [
  { id: 'pair', title: 'Pair', detail: 'Everyone with the link edits.' },
  { id: 'review', title: 'Review', detail: 'You edit; mentors comment.' },
  { id: 'broadcast', title: 'Broadcast', detail: 'You teach; students follow and fork.' },
]

const JOIN_HINT: Record<string, string> = {
  owner: 'keep it private: it manages the room',
  editor: 'share it with your pair',
  reviewer: 'share it with your mentors',
  viewer: 'share it with your students',
}

export async function landingPage(app: HTMLElement): Promise<void> {
  document.title = 'CodeMentor Collab'
  const result = h('div', { class: 'result', 'aria-live': 'polite' })
  const error = h('p', { class: 'error', role: 'alert', hidden: true })
  const title = h('input', { type: 'text', id: 'room-title', maxlength: 200, placeholder: 'e.g. Binary search kata' })
  const language = h('select', { id: 'room-language' }, ...LANGUAGES.map((l) => h('option', { value: l.id }, l.label)))
  const modes = h(
    'fieldset',
    { class: 'modes' },
    h('legend', {}, 'Mode'),
    ...MODES.map((m, i) =>
      h(
        'label',
        { class: 'mode-card' },
        h('input', { type: 'radio', name: 'mode', value: m.id, checked: i === 0 }),
        h('span', { class: 'mode-title' }, m.title),
        h('span', { class: 'mode-detail' }, m.detail),
      ),
    ),
  )
  const submit = h('button', { type: 'submit', class: 'btn primary' }, 'Create room')
  const createForm = h(
    'form',
    { class: 'create-form', 'aria-labelledby': 'create-heading' },
    modes,
    h(
      'div',
      { class: 'row wrap' },
      h('label', { class: 'stack grow', for: 'room-title' }, 'Title', title),
      h('label', { class: 'stack', for: 'room-language' }, 'Language', language),
    ),
    h('div', { class: 'row' }, submit),
    error,
  )

  createForm.addEventListener('submit', async (event) => {
    event.preventDefault()
    error.hidden = true
    submit.disabled = true
    const mode = (createForm.querySelector<HTMLInputElement>('input[name=mode]:checked')?.value ?? 'pair') as Mode
    try {
      const created = await api.createRoom({ mode, language: language.value, title: title.value.trim() })
      rememberRoom(created, mode, title.value.trim())
      showCreated(result, created)
      renderRecent()
    } catch (err) {
      error.textContent = `Could not create the room: ${err instanceof ApiError ? err.message : String(err)}`
      error.hidden = false
    } finally {
      submit.disabled = false
    }
  })

  const linkInput = h('input', { type: 'text', id: 'open-link', placeholder: 'Paste a room link', autocomplete: 'off' })
  const openError = h('p', { class: 'error', role: 'alert', hidden: true })
  const openForm = h(
    'form',
    { class: 'open-form' },
    h('label', { for: 'open-link' }, 'Room link'),
    h('div', { class: 'row' }, linkInput, h('button', { type: 'submit', class: 'btn' }, 'Open')),
    openError,
  )
  const devNote = h('p', { class: 'muted small', hidden: true }, 'Dev mode: a bare room name (or a link without a token) opens the room as an editor.')
  openForm.addEventListener('submit', (event) => {
    event.preventDefault()
    const parsed = parseRoomLink(linkInput.value)
    if (!parsed) {
      openError.textContent = 'That is not a room link (it looks like …/r/ROOM?token=…).'
      openError.hidden = false
      return
    }
    window.location.assign(roomPath(parsed.room, parsed.token))
  })

  const recentList = h('ul', { class: 'recent-list' })
  const recentSection = h('section', { class: 'card', 'aria-labelledby': 'recent-heading' }, h('h2', { id: 'recent-heading' }, 'Rooms you created here'), recentList)
  const renderRecent = () => {
    const rooms = recentRooms()
    recentSection.hidden = rooms.length === 0
    replace(
      recentList,
      ...rooms.map((r) =>
        h(
          'li',
          {},
          h('a', { href: r.links.owner ?? roomPath(r.room, null) }, r.title || r.room),
          h('span', { class: 'badge mode' }, r.mode),
          h('span', { class: 'muted small' }, new Date(r.created).toLocaleDateString()),
          h(
            'button',
            { type: 'button', class: 'btn small subtle', 'aria-label': `Forget ${r.title || r.room}`, onclick: () => (forgetRoom(r.room), renderRecent()) },
            'Forget',
          ),
        ),
      ),
    )
  }

  replace(
    app,
    h(
      'header',
      { class: 'topbar' },
      h('a', { class: 'brand', href: '/' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '</>'), h('span', { class: 'brand-text' }, 'CodeMentor Collab')),
    ),
    h(
      'main',
      { id: 'main', class: 'landing', tabindex: -1 },
      h('section', { class: 'hero' }, h('h1', {}, 'Code together, live.'), h('p', {}, 'Pair program, review a mentee’s code with comments anchored to lines, or teach a class that follows your cursor.')),
      h('section', { class: 'card', 'aria-labelledby': 'create-heading' }, h('h2', { id: 'create-heading' }, 'Create a room'), createForm, result),
      h('section', { class: 'card', 'aria-labelledby': 'open-heading' }, h('h2', { id: 'open-heading' }, 'Open a room from a link'), openForm, devNote),
      recentSection,
    ),
  )
  renderRecent()
  devNote.hidden = !(await getConfig()).anonymous
}

function showCreated(result: HTMLElement, created: RoomCreated): void {
  const rows = Object.entries(created.links)
    .sort(([a], [b]) => Number(a !== 'owner') - Number(b !== 'owner'))
    .map(([role, url]) => linkRow(`${ROLE_LABELS[role as Role] ?? role} link`, url, JOIN_HINT[role]))
  replace(
    result,
    h(
      'div',
      { class: 'created' },
      h('h3', {}, `Room ${created.room} is ready`),
      ...rows,
      h('div', { class: 'row' }, h('a', { class: 'btn primary', href: created.links.owner, id: 'open-as-owner' }, 'Open the room as owner →')),
    ),
  )
  result.querySelector<HTMLElement>('h3')?.setAttribute('tabindex', '-1')
  result.querySelector<HTMLElement>('h3')?.focus()
}
