/**
 * The files this person has open (the tabs), the one shown in the editor, and what each
 * keeps while another is shown: its Y.UndoManager (per file, so Ctrl+Z in b.py never
 * undoes a.py) and its selection and scroll.
 *
 * Undo managers are keyed by the file's Y.Text, not its path: renaming the entry file
 * (`meta.entry`) keeps its text (`code`) and so its history. A file another person
 * deletes closes here with a notice; a rename (the old key deleted and a new one with
 * the same text added in one transaction) moves the tab along.
 */
import * as Y from 'yjs'
import { entryPath, fileText, filePaths, filesMap, languageFor } from './workspace'

export interface Place {
  anchor: Y.RelativePosition
  head: Y.RelativePosition
  scrollTop: number
}

export interface OpenFilesEvents {
  /** A file someone else deleted was open here: its tab closed. */
  onClosedByOthers?: (path: string) => void
}

type Listener = () => void

export class OpenFiles {
  private openPaths: string[] = []
  private activePath: string
  private lastEntry: string
  private readonly managers = new WeakMap<Y.Text, Y.UndoManager>()
  private readonly places = new Map<string, Place>()
  private readonly listeners: Listener[] = []
  private readonly pickListeners: ((path: string) => void)[] = []
  private readonly managerListeners: ((manager: Y.UndoManager, text: Y.Text) => void)[] = []

  constructor(
    readonly doc: Y.Doc,
    private readonly show: (path: string, text: Y.Text, manager: Y.UndoManager, place: { anchor: number; head: number; scrollTop: number } | undefined) => void,
    private readonly current: () => { anchor: number; head: number; scrollTop: number },
    private readonly events: OpenFilesEvents = {},
  ) {
    this.activePath = entryPath(doc)
    this.lastEntry = this.activePath
    this.openPaths = [this.activePath]
    filesMap(doc).observe((event) => this.filesChanged(event))
    doc.getMap('meta').observe((event) => {
      if (event.keysChanged.has('entry') || event.keysChanged.has('language')) this.entryChanged()
    })
  }

  get active(): string {
    return this.activePath
  }

  get open(): readonly string[] {
    return this.openPaths
  }

  /** The entry file's path now. */
  get entry(): string {
    return entryPath(this.doc)
  }

  paths(): string[] {
    return filePaths(this.doc)
  }

  onChange(listener: Listener): void {
    this.listeners.push(listener)
  }

  /** Hears of every undo manager made (one per file, when the file is first shown). */
  onManager(listener: (manager: Y.UndoManager, text: Y.Text) => void): void {
    this.managerListeners.push(listener)
  }

  /** This file's undo history (made on first use). */
  undoManagerFor(text: Y.Text): Y.UndoManager {
    let manager = this.managers.get(text)
    if (!manager) {
      manager = new Y.UndoManager(text)
      this.managers.set(text, manager)
      for (const listener of this.managerListeners) listener(manager, text)
    }
    return manager
  }

  /** The undo history of the file at `path` now, or null when there is no such file. */
  managerOf(path: string): Y.UndoManager | null {
    const text = fileText(this.doc, path)
    return text ? this.undoManagerFor(text) : null
  }

  /** Adopts the manager the editor was made with for the entry file. */
  adopt(text: Y.Text, manager: Y.UndoManager): void {
    this.managers.set(text, manager)
    for (const listener of this.managerListeners) listener(manager, text)
  }

  languageOf(path: string): string | undefined {
    const language = this.doc.getMap('meta').get('language')
    return languageFor(path, typeof language === 'string' ? language : undefined)
  }

  /** Hears when the person picks a file themselves (not when following someone). */
  onPick(listener: (path: string) => void): void {
    this.pickListeners.push(listener)
  }

  /** Opens `path` (adds its tab) and shows it. False when there is no such file.
   * `by: 'follow'`: following someone moved here, not the person's own pick. */
  openFile(path: string, by: 'user' | 'follow' = 'user'): boolean {
    const text = fileText(this.doc, path)
    if (!text) return false
    if (by === 'user') for (const listener of this.pickListeners) listener(path)
    if (path !== this.activePath) {
      this.remember()
      if (!this.openPaths.includes(path)) this.openPaths.push(path)
      this.activePath = path
      this.show(path, text, this.undoManagerFor(text), this.placeOf(path, text))
    }
    this.emit()
    return true
  }

  /** Closes a tab; the last one stays (the editor always shows a file). */
  closeFile(path: string): void {
    const at = this.openPaths.indexOf(path)
    if (at < 0) return
    if (this.openPaths.length === 1) {
      if (path !== this.entry) {
        this.openPaths = []
        this.activePath = ''
        this.openFile(this.entry)
      }
      return
    }
    this.openPaths.splice(at, 1)
    if (path === this.activePath) {
      const next = this.openPaths[Math.min(at, this.openPaths.length - 1)]
      this.activePath = ''
      this.openFile(next)
    } else {
      this.emit()
    }
  }

  /** Renames the path of an open file here (a rename this page made or saw). */
  private moved(from: string, to: string): void {
    this.openPaths = this.openPaths.map((p) => (p === from ? to : p))
    const place = this.places.get(from)
    if (place) this.places.set(to, place)
    this.places.delete(from)
    if (this.activePath === from) this.activePath = to
  }

  private remember(): void {
    const text = fileText(this.doc, this.activePath)
    if (!text) return
    const { anchor, head, scrollTop } = this.current()
    this.places.set(this.activePath, {
      anchor: Y.createRelativePositionFromTypeIndex(text, Math.min(anchor, text.length)),
      head: Y.createRelativePositionFromTypeIndex(text, Math.min(head, text.length)),
      scrollTop,
    })
  }

  private placeOf(path: string, text: Y.Text): { anchor: number; head: number; scrollTop: number } | undefined {
    const place = this.places.get(path)
    if (!place) return undefined
    const at = (rel: Y.RelativePosition) => {
      const abs = Y.createAbsolutePositionFromRelativePosition(rel, this.doc)
      return abs && abs.type === text ? abs.index : 0
    }
    return { anchor: at(place.anchor), head: at(place.head), scrollTop: place.scrollTop }
  }

  private filesChanged(event: Y.YMapEvent<unknown>): void {
    const added: string[] = []
    const deleted: string[] = []
    event.changes.keys.forEach((change, key) => {
      if (change.action === 'add') added.push(key)
      else if (change.action === 'delete') deleted.push(key)
    })
    // One deleted and one added with the same text in one transaction: a rename.
    if (deleted.length === 1 && added.length === 1) {
      const before = event.changes.keys.get(deleted[0])?.oldValue
      const after = filesMap(this.doc).get(added[0])
      if (before instanceof Y.Text && after instanceof Y.Text && this.openPaths.includes(deleted[0])) {
        const wasActive = this.activePath === deleted[0]
        this.moved(deleted[0], added[0])
        if (wasActive) this.reshow()
        this.emit()
        return
      }
    }
    const gone = this.openPaths.filter((p) => !fileText(this.doc, p))
    for (const path of gone) {
      if (!event.transaction.local) this.events.onClosedByOthers?.(path)
      this.closeGone(path)
    }
    this.emit()
  }

  private entryChanged(): void {
    // meta.entry set, or (no meta.entry) the room's language changed its default.
    const before = this.lastEntry
    const now = this.entry
    this.lastEntry = now
    if (before === now) return
    if (this.openPaths.includes(before) && !filesMap(this.doc).has(before)) {
      this.moved(before, now)
      this.openPaths = this.openPaths.filter((p, i) => this.openPaths.indexOf(p) === i)
    }
    const gone = this.openPaths.filter((p) => !fileText(this.doc, p))
    for (const path of gone) this.closeGone(path)
    this.emit()
  }

  /** Closes a tab whose file no longer exists (queued: not inside a Yjs observer). */
  private closeGone(path: string): void {
    this.places.delete(path)
    if (path !== this.activePath) {
      this.openPaths = this.openPaths.filter((p) => p !== path)
      return
    }
    const rest = this.openPaths.filter((p) => p !== path && fileText(this.doc, p))
    this.openPaths = rest
    const next = rest[0] ?? this.entry
    if (!this.openPaths.includes(next)) this.openPaths.push(next)
    this.activePath = ''
    queueMicrotask(() => {
      const text = fileText(this.doc, next)
      if (!text) return
      this.activePath = next
      this.show(next, text, this.undoManagerFor(text), undefined)
      this.emit()
    })
  }

  /** Shows the active file again (its Y.Text changed under the same tab). */
  private reshow(): void {
    const path = this.activePath
    queueMicrotask(() => {
      const text = fileText(this.doc, path)
      if (text && this.activePath === path) this.show(path, text, this.undoManagerFor(text), undefined)
    })
  }

  private emit(): void {
    for (const listener of this.listeners) listener()
  }
}
