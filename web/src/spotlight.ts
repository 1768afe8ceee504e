/**
 * The spotlight in a class room: while the class root has `spotlight:current` (a
 * student's code the teacher put on stage; the server refreshes it as the student
 * types), a read-only panel "Spotlight: <name>'s code" above the editor, gone when it
 * ends. The class's staff get "End spotlight" on it.
 */
import * as Y from 'yjs'
import { h, inMicrotask, replace } from './dom'
import { CLASS_ROOT, classEntry, exerciseApi, type Spotlight } from './exercise-api'
import { describe } from './exercise-staff'
import type { Notices } from './notices'
import type { Session } from './session'

export function spotlightPanel(doc: Y.Doc, session: Session, notices: Notices): HTMLElement {
  const element = h('section', { class: 'spotlight-panel', 'aria-labelledby': 'spotlight-heading', hidden: true })
  const heading = h('h2', { id: 'spotlight-heading', class: 'spotlight-heading' })
  const fileEl = h('span', { class: 'spotlight-file' })
  const code = h('pre', { class: 'spotlight-code', tabindex: 0, 'aria-label': 'Spotlighted code (read-only)' })
  const end = h('button', { type: 'button', class: 'btn small' }, 'End spotlight')
  end.addEventListener('click', async () => {
    end.disabled = true
    try {
      await exerciseApi.endSpotlight(session.room, session.token)
    } catch (err) {
      notices.show(`Could not end the spotlight: ${describe(err)}`, 'error')
    } finally {
      end.disabled = false
    }
  })
  replace(element, h('div', { class: 'spotlight-head' }, heading, fileEl, end), code)

  let lastText = ''
  const render = () => {
    const spot = classEntry<Spotlight>(doc, 'spotlight', 'current')
    element.hidden = !spot
    document.body.classList.toggle('spotlight-on', !!spot)
    if (!spot) return
    heading.textContent = `Spotlight: ${spot.name || 'a student'}’s code`
    const files = spot.files ?? {}
    const entry = spot.entry && spot.entry in files ? spot.entry : Object.keys(files)[0] ?? ''
    fileEl.textContent = entry
    const text = files[entry] ?? ''
    if (text !== lastText) {
      lastText = text
      code.textContent = text
    }
    end.hidden = !(session.role === 'owner' || session.tokenRole === 'owner' || session.tokenRole === 'editor')
  }
  doc.getMap<unknown>(CLASS_ROOT).observe(inMicrotask(render))
  render()
  return element
}
