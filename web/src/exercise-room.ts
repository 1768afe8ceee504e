/**
 * The classroom's exercise pieces on the room page, mounted by room.ts in one place:
 * - a class room's staff: the Exercises tab (shown while the room is a broadcast one);
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
import type { TabSpec, Tabs } from './tabs'
import './exercise.css'

export const EXERCISES_TAB = 'exercises'

export interface ClassroomUi {
  /** The Exercises tab, for a room whose token is a staff one (shown in broadcast only). */
  tab: TabSpec | null
  /** Above the toolbar: bars, banner, spotlight. */
  top: HTMLElement
  /** Once the tabs exist: keep the Exercises tab to broadcast rooms. */
  attach(tabs: Tabs): void
}

export function classroomUi(doc: Y.Doc, room: string, session: Session, notices: Notices): ClassroomUi {
  const serverRoom = room.includes('.')
  const staff = session.tokenRole === 'owner' || session.tokenRole === 'editor'
  const top = h('div', { class: 'classroom-top' })
  let tab: TabSpec | null = null
  if (serverRoom) {
    if (room.includes('.s.')) top.append(exerciseBanner(doc, room, session, notices))
  } else {
    top.append(spotlightPanel(doc, session, notices))
    const bar = classExerciseBar(doc, session, notices)
    top.append(bar)
    session.watch(() => (bar.dataset.student = String(session.isStudent)))
    if (staff) tab = { id: EXERCISES_TAB, label: 'Exercises', panel: exercisesPanel(doc, session, notices) }
  }
  return {
    tab,
    top,
    attach(tabs) {
      if (!tab) return
      session.watch((state) => tabs.setHidden(EXERCISES_TAB, state.mode !== 'broadcast'))
    },
  }
}
