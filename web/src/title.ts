/** The room title in the top bar. The owner renames it in place: the pencil (or a click
 * on the title) turns it into a text box; Enter saves through `PATCH /api/rooms/{room}`,
 * whose server writes `meta.title` so everyone's page follows; Escape cancels. */
import { api, ApiError } from './api'
import { h, replace } from './dom'
import { icon } from './icons'
import type { Session } from './session'

const MAX_TITLE = 200

export interface RoomTitle {
  readonly element: HTMLElement
  title(): string
  set(title: string): void
  /** The owner may rename; others see the title only. */
  setEditable(editable: boolean): void
}

export function roomTitle(session: Session, initial: string): RoomTitle {
  let title = initial
  let editable = false
  const heading = h('h1', { class: 'room-title' }, title)
  const edit = h(
    'button',
    { type: 'button', class: 'btn subtle small title-edit', 'aria-label': 'Rename the room', title: 'Rename the room', hidden: true },
    icon('edit'),
  )
  const input = h('input', {
    type: 'text',
    class: 'title-input',
    maxlength: MAX_TITLE,
    'aria-label': 'Room title',
    autocomplete: 'off',
  })
  const error = h('span', { class: 'title-error error small', role: 'alert' })
  const element = h('div', { class: 'title-box' }, heading, edit)

  const view = () => {
    replace(element, heading, edit)
    edit.hidden = !editable
  }
  const start = () => {
    if (!editable) return
    input.value = title
    error.textContent = ''
    replace(element, input, error)
    input.focus()
    input.select()
  }
  let saving = false
  const save = async () => {
    const next = input.value.trim()
    if (!next) {
      error.textContent = 'A title cannot be empty.'
      return
    }
    if (next === title) {
      view()
      edit.focus()
      return
    }
    saving = true
    input.disabled = true
    try {
      const details = await api.updateRoom(session.room, session.token, { title: next })
      title = details.title || next
      heading.textContent = title
      view()
      edit.focus()
    } catch (err) {
      error.textContent =
        err instanceof ApiError
          ? err.status === 403
            ? 'Only the room owner can rename the room.'
            : `Could not rename the room: ${err.message}`
          : 'Could not rename the room: the server could not be reached.'
      input.disabled = false
      input.focus()
    } finally {
      saving = false
    }
  }
  edit.addEventListener('click', start)
  heading.addEventListener('click', start)
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault()
      if (!saving) void save()
    } else if (event.key === 'Escape') {
      event.preventDefault()
      view()
      edit.focus()
    }
  })

  return {
    element,
    title: () => title,
    set(next) {
      title = next
      heading.textContent = next
    },
    setEditable(next) {
      editable = next
      heading.classList.toggle('editable', next)
      heading.title = next ? 'Click to rename the room' : ''
      if (!next && element.contains(input)) view()
      edit.hidden = !next
    },
  }
}
