/** Modal dialogs: the participant's name and colour; the owner's invite links, fork
 * setting, whether reviewers may run the code, and link rotation. */
import { api, ApiError, type Mode, type Role, type RoomCreated } from './api'
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

/** What the Share dialog asks of the room page (which owns the token and the connection). */
export interface OwnerActions {
  /** Broadcast rooms: may students fork? */
  forks: () => boolean
  setForks: (allowed: boolean) => Promise<void>
  /** With the runner on: may reviewers run the code? */
  reviewersRun?: { reviewersRun: () => boolean; setReviewersRun: (allowed: boolean) => Promise<void> }
  /** Rotate the links; the page switches to the new owner token before this resolves. */
  rotate: () => Promise<RoomCreated>
  /** Delete the room for good; the server then closes every connection (4404). */
  deleteRoom?: () => Promise<void>
}

export function shareDialog(room: string, token: () => string | null, mode: () => Mode, owner: OwnerActions): () => void {
  const { dialog, body } = dialogShell('Invite people', 'share-heading')
  const saved = h('div', { class: 'links' })
  let rotatedLinks: Record<string, string> | null = null
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

  // -- broadcast rooms: may students fork? ---------------------------------------------
  const forks = h('input', { type: 'checkbox', id: 'share-forks' })
  const forksNote = h('p', { class: 'muted small', 'aria-live': 'polite' })
  const forksSection = h(
    'div',
    { class: 'share-section' },
    h('h3', {}, 'Forks'),
    h('label', { class: 'check', for: 'share-forks' }, forks, 'Students may fork the code into a room of their own'),
    forksNote,
  )
  forks.addEventListener('change', async () => {
    const wanted = forks.checked
    forks.disabled = true
    try {
      await owner.setForks(wanted)
      forksNote.textContent = wanted ? 'Students see a Fork button.' : 'Fork is hidden from students and refused by the server.'
    } catch (err) {
      forks.checked = !wanted
      forksNote.textContent = `Could not change it: ${err instanceof ApiError ? err.message : String(err)}`
    } finally {
      forks.disabled = false
    }
  })

  // -- may reviewers run the code? --------------------------------------------------------
  const reviewers = h('input', { type: 'checkbox', id: 'share-reviewers-run' })
  const reviewersNote = h('p', { class: 'muted small', 'aria-live': 'polite' })
  const reviewersSection = h(
    'div',
    { class: 'share-section', hidden: !owner.reviewersRun },
    h('h3', {}, 'Reviewers'),
    h('label', { class: 'check', for: 'share-reviewers-run' }, reviewers, 'Reviewers may run the code to check a fix'),
    reviewersNote,
  )
  reviewers.addEventListener('change', async () => {
    const wanted = reviewers.checked
    reviewers.disabled = true
    try {
      await owner.reviewersRun?.setReviewersRun(wanted)
      reviewersNote.textContent = wanted ? 'Reviewers see the Run button.' : 'Run is hidden from reviewers and refused by the server.'
    } catch (err) {
      reviewers.checked = !wanted
      reviewersNote.textContent = `Could not change it: ${err instanceof ApiError ? err.message : String(err)}`
    } finally {
      reviewers.disabled = false
    }
  })

  // -- rotate every link ------------------------------------------------------------------
  const rotateButton = h('button', { type: 'button', class: 'btn danger-outline' }, 'Rotate links…')
  const cancelRotate = h('button', { type: 'button', class: 'btn' }, 'Cancel')
  const confirmRotate = h('button', { type: 'button', class: 'btn danger' }, 'Rotate now')
  const confirmBox = h(
    'div',
    { class: 'confirm', role: 'group', 'aria-labelledby': 'rotate-confirm-text', hidden: true },
    h(
      'p',
      { id: 'rotate-confirm-text' },
      'Every link to this room stops working now, personal links and your own owner link included, and everyone who joined with one is disconnected. You get new links to share.',
    ),
    h('div', { class: 'row end' }, cancelRotate, confirmRotate),
  )
  const rotateResult = h('div', { 'aria-live': 'polite' })
  const rotateSection = h(
    'div',
    { class: 'share-section' },
    h('h3', {}, 'Rotate links'),
    h('p', { class: 'muted small' }, 'A link got out? Rotating replaces every link of this room at once.'),
    h('div', { class: 'row' }, rotateButton),
    confirmBox,
    rotateResult,
  )
  const showConfirm = (shown: boolean) => {
    confirmBox.hidden = !shown
    rotateButton.hidden = shown
    if (shown) cancelRotate.focus()
  }
  rotateButton.addEventListener('click', () => {
    replace(rotateResult)
    showConfirm(true)
  })
  cancelRotate.addEventListener('click', () => {
    showConfirm(false)
    rotateButton.focus()
  })
  confirmRotate.addEventListener('click', async () => {
    confirmRotate.disabled = cancelRotate.disabled = true
    try {
      const created = await owner.rotate()
      rotatedLinks = created.links
      showConfirm(false)
      renderSaved()
      replace(
        rotateResult,
        h('p', { class: 'ok small', role: 'status' }, 'Links rotated. The old links no longer open this room; share the new ones above.'),
        linkRow('Your new owner link', created.links.owner, 'keep it to yourself'),
      )
    } catch (err) {
      showConfirm(false)
      replace(rotateResult, h('p', { class: 'error' }, `Could not rotate the links: ${err instanceof ApiError ? err.message : String(err)}`))
    } finally {
      confirmRotate.disabled = cancelRotate.disabled = false
    }
  })

  // -- delete the room ----------------------------------------------------------------------
  const deleteSection = owner.deleteRoom ? deleteRoomSection(room, owner.deleteRoom) : null

  body.append(saved, form, forksSection, reviewersSection, rotateSection, ...(deleteSection ? [deleteSection] : []))
  const renderSaved = () => {
    const join = JOIN_ROLE[mode()]
    const link = rotatedLinks?.[join] ?? findRecent(room)?.links[join]
    replace(
      saved,
      link ? linkRow(`${ROLE_LABELS[join]} link`, link, 'for everyone') : null,
      h('p', { class: 'muted small' }, 'Links expire after 7 days.'),
    )
  }
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
    const join = JOIN_ROLE[mode()]
    replace(
      role,
      ...(['editor', 'reviewer', 'viewer'] as Role[]).map((r) =>
        h('option', { value: r, selected: r === join }, ROLE_LABELS[r]),
      ),
    )
    renderSaved()
    replace(result)
    forksSection.hidden = mode() !== 'broadcast'
    forks.checked = owner.forks()
    replace(forksNote)
    reviewers.checked = owner.reviewersRun?.reviewersRun() ?? false
    replace(reviewersNote)
    showConfirm(false)
    replace(rotateResult)
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

/** The owner's "Delete room" action, behind a confirmation that names the room. */
function deleteRoomSection(room: string, deleteRoom: () => Promise<void>): HTMLElement {
  const start = h('button', { type: 'button', class: 'btn danger-outline' }, 'Delete room…')
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel')
  const confirm = h('button', { type: 'button', class: 'btn danger' }, 'Delete room now')
  const box = h(
    'div',
    { class: 'confirm', role: 'group', 'aria-labelledby': 'delete-confirm-text', hidden: true },
    h(
      'p',
      { id: 'delete-confirm-text' },
      `Delete the room “${room}” for everyone? Its code, files, chat, runs and history are removed and everyone in it is disconnected. This cannot be undone.`,
    ),
    h('div', { class: 'row end' }, cancel, confirm),
  )
  const result = h('div', { 'aria-live': 'polite' })
  const show = (shown: boolean) => {
    box.hidden = !shown
    start.hidden = shown
    if (shown) cancel.focus()
  }
  start.addEventListener('click', () => {
    replace(result)
    show(true)
  })
  cancel.addEventListener('click', () => {
    show(false)
    start.focus()
  })
  confirm.addEventListener('click', async () => {
    confirm.disabled = cancel.disabled = true
    try {
      await deleteRoom()
      show(false)
      start.hidden = true
      replace(result, h('p', { class: 'ok small', role: 'status' }, 'The room was deleted.'))
    } catch (err) {
      show(false)
      replace(result, h('p', { class: 'error' }, `Could not delete the room: ${err instanceof ApiError ? err.message : String(err)}`))
    } finally {
      confirm.disabled = cancel.disabled = false
    }
  })
  return h(
    'div',
    { class: 'share-section' },
    h('h3', {}, 'Delete room'),
    h('p', { class: 'muted small' }, 'Removes this room and everything in it from the server.'),
    h('div', { class: 'row' }, start),
    box,
    result,
  )
}
