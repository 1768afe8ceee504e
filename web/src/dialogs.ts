/** Modal dialogs: the participant's name and colour; the owner's invite links. */
import { api, ApiError, type Mode, type Role } from './api'
import { copyButton, h, replace } from './dom'
import { COLORS, type Identity } from './identity'
import { findRecent } from './recent'
import { ROLE_LABELS } from './session'
import { roomPath } from './token'

function dialogShell(title: string, id: string): { dialog: HTMLDialogElement; body: HTMLElement } {
  const body = h('div', { class: 'dialog-body' })
  const close = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close' }, '×')
  const dialog = h(
    'dialog',
    { class: 'dialog', 'aria-labelledby': id },
    h('div', { class: 'dialog-head' }, h('h2', { id }, title), close),
    body,
  )
  close.addEventListener('click', () => dialog.close())
  document.body.append(dialog)
  return { dialog, body }
}

/** `save` answers an error to show (the dialog stays open), or null. */
export function identityDialog(current: () => Identity, save: (identity: Identity) => Promise<string | null>): () => void {
  const { dialog, body } = dialogShell('Your name and colour', 'identity-heading')
  const name = h('input', { type: 'text', id: 'identity-name', maxlength: 40, required: true, autocomplete: 'nickname' })
  const swatches = h('div', { class: 'swatches', role: 'radiogroup', 'aria-label': 'Cursor colour' })
  const error = h('p', { class: 'error', role: 'alert', hidden: true })
  const form = h(
    'form',
    { method: 'dialog' },
    h('label', { for: 'identity-name' }, 'Display name'),
    name,
    h('p', { class: 'muted small' }, 'Shown beside your cursor and in the people list. Saved in this browser.'),
    h('span', { class: 'label' }, 'Colour'),
    swatches,
    error,
    h(
      'div',
      { class: 'row end' },
      h('button', { type: 'button', class: 'btn', onclick: () => dialog.close() }, 'Cancel'),
      h('button', { type: 'submit', class: 'btn primary' }, 'Save'),
    ),
  )
  body.append(form)
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const picked = swatches.querySelector<HTMLInputElement>('input:checked')?.value ?? current().color
    const value = name.value.trim()
    if (!value) return
    const problem = await save({ name: value.slice(0, 40), color: picked })
    error.hidden = problem === null
    error.textContent = problem ?? ''
    if (problem === null) dialog.close()
    else name.focus()
  })
  return () => {
    const { name: currentName, color } = current()
    name.value = currentName
    error.hidden = true
    replace(
      swatches,
      ...COLORS.map((c) =>
        h(
          'label',
          { class: 'swatch', style: `--swatch:${c.value}`, title: c.name },
          h('input', { type: 'radio', name: 'identity-color', value: c.value, checked: c.value === color, 'aria-label': c.name }),
          h('span', { 'aria-hidden': 'true' }),
        ),
      ),
    )
    dialog.showModal()
    name.focus()
    name.select()
  }
}

const JOIN_ROLE: Record<Mode, Role> = { pair: 'editor', review: 'reviewer', broadcast: 'viewer' }

export function shareDialog(room: string, token: () => string | null, mode: () => Mode): () => void {
  const { dialog, body } = dialogShell('Invite people', 'share-heading')
  const saved = h('div', { class: 'links' })
  const role = h('select', { id: 'invite-role' })
  const name = h('input', { type: 'text', id: 'invite-name', maxlength: 100, placeholder: 'e.g. Sam' })
  const result = h('div', { class: 'links' })
  const form = h(
    'form',
    { class: 'invite-form' },
    h('h3', {}, 'Personal link'),
    h(
      'p',
      { class: 'muted small' },
      'A link for one person: their name shows in the room, and in broadcast rooms you can give them write access when they raise a hand.',
    ),
    h(
      'div',
      { class: 'row wrap' },
      h('label', { class: 'stack' }, 'Role', role),
      h('label', { class: 'stack grow' }, 'Name', name),
      h('button', { type: 'submit', class: 'btn primary' }, 'Create link'),
    ),
    result,
  )
  body.append(saved, form)
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const who = name.value.trim() || role.value
    try {
      const { token: issued } = await api.createToken(room, token(), {
        role: role.value as Role,
        name: who,
        ttl: 7 * 24 * 3600,
      })
      replace(result, linkRow(`${ROLE_LABELS[role.value as Role]} link`, absolute(roomPath(room, issued)), `for ${who} only`))
    } catch (err) {
      replace(result, h('p', { class: 'error' }, `Could not create a link: ${err instanceof ApiError ? err.message : String(err)}`))
    }
  })
  return () => {
    const recent = findRecent(room)
    const join = JOIN_ROLE[mode()]
    replace(
      role,
      ...(['editor', 'reviewer', 'viewer'] as Role[]).map((r) =>
        h('option', { value: r, selected: r === join }, ROLE_LABELS[r]),
      ),
    )
    replace(
      saved,
      recent?.links[join] ? linkRow(`${ROLE_LABELS[join]} link`, recent.links[join], 'for everyone') : null,
      h('p', { class: 'muted small' }, 'Links expire after 7 days.'),
    )
    replace(result)
    dialog.showModal()
  }
}

function absolute(path: string): string {
  return new URL(path, window.location.origin).toString()
}

let linkCounter = 0
/** A read-only link field with a label, an optional hint and a Copy button. */
export function linkRow(label: string, url: string, hint?: string): HTMLElement {
  const id = `link-${++linkCounter}`
  const input = h('input', { type: 'text', id, readonly: true, value: url, class: 'link-input' })
  input.addEventListener('focus', () => input.select())
  if (hint) input.setAttribute('aria-describedby', `${id}-hint`)
  return h(
    'div',
    { class: 'link-row' },
    h('label', { for: id }, label, hint ? h('span', { class: 'muted hint', id: `${id}-hint` }, ` — ${hint}`) : null),
    h('div', { class: 'row' }, input, copyButton(() => url, `Copy the ${label.toLowerCase()}`, input)),
  )
}
