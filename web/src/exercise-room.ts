/**
 * The classroom's exercise pieces on the room page, mounted by room.ts in one place:
 * - a class room's staff: the exercises section of the Class tab (room.ts shows that
 *   tab to a broadcast class's staff only);
 * - a class room's students: the exercises' "Open" bars;
 * - everyone in a class room: the spotlight panel (while there is one);
 * - a student's own exercise room `{id}.s.{key}`: the exercise banner with Check.
 */
import type * as Y from 'yjs'
import { h } from './dom'
import { exerciseBanner, classExerciseBar } from './exercise-student'
import { exercisesPanel } from './exercise-staff'
import type { Notices } from './notices'
import type { Session } from './session'
import { spotlightPanel } from './spotlight'
import './exercise.css'

export interface ClassroomUi {
  /** The exercises section for the Class tab, for a room whose token is a staff one. */
  exercises: HTMLElement | null
  /** Above the toolbar: bars, banner, spotlight. */
  top: HTMLElement
}

export function classroomUi(doc: Y.Doc, room: string, session: Session, notices: Notices): ClassroomUi {
  const serverRoom = room.includes('.')
  const staff = session.tokenRole === 'owner' || session.tokenRole === 'editor'
  const top = h('div', { class: 'classroom-top' })
  let exercises: HTMLElement | null = null
  if (serverRoom) {
    if (room.includes('.s.')) top.append(exerciseBanner(doc, room, session, notices))
  } else {
    top.append(spotlightPanel(doc, session, notices))
    const bar = classExerciseBar(doc, session, notices)
    top.append(bar)
    session.watch(() => (bar.dataset.student = String(session.isStudent)))
    if (staff) exercises = exercisesPanel(doc, session, notices)
  }
  return { exercises, top }
}
