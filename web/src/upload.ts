/**
 * Upload into the workspace: files, a folder or a `.zip`, dropped onto the editor area
 * (an overlay says what will happen) or picked with the Upload button. Plain files are
 * written into the shared document in one transaction (upload-plan.ts checks paths and
 * limits first); a `.zip` goes to the server (POST /archive), which unpacks it with the
 * same rules. Only owners and editors upload: the server would refuse anyone else.
 */
import { api, ApiError, NetworkError, type Config } from './api'
import { h } from './dom'
import type { Notices } from './notices'
import type { Session } from './session'
import {
  applyPlan,
  DEFAULT_LIMITS,
  dropTopFolder,
  planUpload,
  resultSentence,
  UploadRefused,
  type Incoming,
  type Limits,
} from './upload-plan'
import * as Y from 'yjs'
import './upload.css'

/** Left out of folder uploads: version-control and OS bookkeeping, never workspace files. */
const IGNORED = new Set(['.git', '.DS_Store', 'Thumbs.db', '__MACOSX'])

const UPLOAD_ICON =
  '<svg viewBox="0 0 24 24" width="16" height="16" fill="none" stroke="currentColor" stroke-width="2" ' +
  'stroke-linecap="round" stroke-linejoin="round"><path d="M12 16V5m-5 5 5-5 5 5M5 20h14"/></svg>'

export interface UploadOptions {
  doc: Y.Doc
  session: Session
  notices: Notices
  /** Where files may be dropped: the editor and file-tree area. */
  dropTarget: HTMLElement
  limits?: Partial<Limits>
}

export interface UploadUi {
  /** The toolbar's Upload button (hidden for those who cannot upload). */
  button: HTMLElement
}

/** A file as picked or dropped, with its path inside what was picked. */
interface Picked {
  file: File
  path: string
}

function isZip(file: File): boolean {
  return file.name.toLowerCase().endsWith('.zip')
}

function readEntries(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject))
}

function entryFile(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file(resolve, reject))
}

/** Every file under a dropped folder, with paths from the folder's own name down. */
async function walk(entry: FileSystemEntry, into: Picked[]): Promise<void> {
  if (IGNORED.has(entry.name)) return
  if (entry.isFile) {
    into.push({ file: await entryFile(entry as FileSystemFileEntry), path: entry.fullPath.replace(/^\/+/, '') })
    return
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader()
  // readEntries answers in batches (100 in Chromium) until an empty one.
  for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
    for (const child of batch) await walk(child, into)
  }
}

/** What a drop holds: entries must be taken before the handler returns (the DataTransfer
 * is emptied after), so this reads them first and the files after. */
function dropped(data: DataTransfer): { picks: Promise<Picked[]>; folder: boolean } {
  const entries: FileSystemEntry[] = []
  const loose: File[] = []
  for (const item of Array.from(data.items)) {
    if (item.kind !== 'file') continue
    const entry = item.webkitGetAsEntry?.()
    const file = item.getAsFile()
    if (entry?.isDirectory) entries.push(entry)
    else if (file) loose.push(file)
  }
  if (!data.items.length) loose.push(...Array.from(data.files))
  const folder = entries.length > 0 || loose.some((f) => f.webkitRelativePath)
  const picks = (async () => {
    const out: Picked[] = loose.map((file) => ({ file, path: file.webkitRelativePath || file.name }))
    for (const entry of entries) await walk(entry, out)
    return out
  })()
  return { picks, folder }
}

function picked(input: HTMLInputElement): Picked[] {
  return withoutIgnored(Array.from(input.files ?? [], (file) => ({ file, path: file.webkitRelativePath || file.name })))
}

function withoutIgnored(picks: Picked[]): Picked[] {
  return picks.filter((p) => !p.path.split('/').some((segment) => IGNORED.has(segment)))
}

function limitsFrom(partial: Partial<Limits> | undefined): Limits {
  return { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(partial ?? {}).filter(([, v]) => typeof v === 'number' && v > 0)) }
}

/** A refused zip in words: the server's reason (it names the path and the rule). */
function zipRefusal(name: string, err: unknown): string {
  if (err instanceof NetworkError) return `“${name}” was not uploaded: ${err.offline ? 'you are offline' : 'the network failed'}.`
  if (!(err instanceof ApiError)) return `“${name}” was not uploaded: ${String(err)}.`
  const reason =
    err.status === 400
      ? 'it is not a zip file'
      : err.status === 401 || err.status === 403
        ? 'only owners and editors can upload files'
        : err.message
  return `“${name}” was not uploaded: ${reason.replace(/\.$/, '')}.`
}

export function mountUpload(options: UploadOptions): UploadUi {
  const { doc, session, notices, dropTarget } = options
  const limits = limitsFrom(options.limits)

  const uploadPlain = async (picks: Picked[], folder: boolean) => {
    if (!picks.length) return
    const paths = folder ? dropTopFolder(picks.map((p) => p.path)) : picks.map((p) => p.path)
    const incoming: Incoming[] = []
    // Sizes first: a huge file is refused before it is read into memory.
    for (const [i, p] of picks.entries()) {
      if (p.file.size > limits.fileBytes) incoming.push({ path: paths[i], bytes: new Uint8Array(p.file.size) })
      else incoming.push({ path: paths[i], bytes: new Uint8Array(await p.file.arrayBuffer()) })
    }
    try {
      const plan = planUpload(doc, incoming, limits)
      const applied = applyPlan(doc, plan)
      if (plan.writes.size) notices.show(resultSentence(applied.added.length, applied.replaced.length, applied.unchanged.length), 'info')
      if (plan.binary.length) {
        const names = plan.binary.map((p) => `“${p}”`).join(', ')
        notices.show(`Skipped ${plan.binary.length === 1 ? 'a binary file' : `${plan.binary.length} binary files`} (only text files can be edited): ${names}.`, 'warn', 10_000)
      }
    } catch (err) {
      if (err instanceof UploadRefused) notices.show(err.message, 'error', 12_000)
      else throw err
    }
  }

  const uploadZip = async (file: File) => {
    notices.show(`Uploading “${file.name}”…`, 'info', 3000)
    try {
      const result = await api.uploadArchive(session.room, session.token, file)
      notices.show(`${file.name}: ${resultSentence(result.added.length, result.replaced.length)}`, 'info')
    } catch (err) {
      notices.show(zipRefusal(file.name, err), 'error', 12_000)
    }
  }

  /** One upload: the zips (only as picked or dropped, not inside a folder) go to the
   * server, the rest into the document. */
  const upload = async (picks: Picked[], folder: boolean) => {
    if (!session.canEdit) {
      notices.show('Only owners and editors can upload files.', 'error')
      return
    }
    const zips = picks.filter((p) => !p.path.includes('/') && isZip(p.file))
    await uploadPlain(
      picks.filter((p) => !zips.includes(p)),
      folder,
    )
    for (const zip of zips) await uploadZip(zip.file)
  }

  // -- the button and its two pickers ----------------------------------------------------
  const filesInput = h('input', { type: 'file', multiple: true, hidden: true, 'aria-hidden': 'true', tabindex: -1 })
  const folderInput = h('input', { type: 'file', multiple: true, hidden: true, 'aria-hidden': 'true', tabindex: -1 })
  folderInput.webkitdirectory = true
  filesInput.addEventListener('change', () => {
    void upload(picked(filesInput), false).finally(() => (filesInput.value = ''))
  })
  folderInput.addEventListener('change', () => {
    void upload(picked(folderInput), true).finally(() => (folderInput.value = ''))
  })
  const toggle = h(
    'button',
    { type: 'button', class: 'btn upload-button', 'aria-haspopup': 'menu', 'aria-expanded': 'false', title: 'Upload files, a folder or a .zip' },
    h('span', { class: 'icon' }),
    h('span', { class: 'btn-label' }, 'Upload'),
  )
  ;(toggle.firstChild as HTMLElement).innerHTML = UPLOAD_ICON
  ;(toggle.firstChild as HTMLElement).setAttribute('aria-hidden', 'true')
  const menu = h(
    'div',
    { class: 'tool-menu', role: 'menu', 'aria-label': 'Upload', hidden: true },
    h('button', { type: 'button', role: 'menuitem', class: 'tool-menu-item' }, 'Files or a .zip…'),
    h('button', { type: 'button', role: 'menuitem', class: 'tool-menu-item' }, 'A folder…'),
  )
  const [filesItem, folderItem] = Array.from(menu.querySelectorAll<HTMLButtonElement>('button'))
  const close = (refocus: boolean) => {
    menu.hidden = true
    toggle.setAttribute('aria-expanded', 'false')
    if (refocus) toggle.focus()
  }
  toggle.addEventListener('click', () => {
    const opening = menu.hidden
    menu.hidden = !opening
    toggle.setAttribute('aria-expanded', String(opening))
    if (opening) filesItem.focus()
  })
  filesItem.addEventListener('click', () => (close(false), filesInput.click()))
  folderItem.addEventListener('click', () => (close(false), folderInput.click()))
  menu.addEventListener('keydown', (event) => {
    const items = [filesItem, folderItem]
    const at = items.indexOf(document.activeElement as HTMLButtonElement)
    if (event.key === 'Escape') close(true)
    else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') items[(at + 1) % items.length].focus() // two items: down and up both move to the other
    else return
    event.preventDefault()
  })
  document.addEventListener('click', (event) => {
    if (!menu.hidden && !wrapper.contains(event.target as Node)) close(false)
  })
  const wrapper = h('span', { class: 'upload-wrap' }, toggle, menu, filesInput, folderInput)
  session.watch(() => (wrapper.hidden = !session.canEdit))

  // -- drag and drop -------------------------------------------------------------------
  const overlay = h(
    'div',
    { class: 'drop-overlay', hidden: true, 'aria-hidden': 'true' },
    h('div', { class: 'drop-card' }, h('strong', { class: 'drop-title' }), h('p', { class: 'drop-detail' })),
  )
  dropTarget.classList.add('drop-target')
  dropTarget.append(overlay)
  const showOverlay = () => {
    const allowed = session.canEdit
    overlay.classList.toggle('refused', !allowed)
    overlay.querySelector('.drop-title')!.textContent = allowed ? 'Drop to upload into the workspace' : 'You cannot upload here'
    overlay.querySelector('.drop-detail')!.textContent = allowed
      ? `Files and folders are added, or replace the file with the same path; a .zip is unpacked. Up to ${limits.files} files, ${limits.fileBytes / (1024 * 1024)} MiB each.`
      : 'Only owners and editors can upload files.'
    overlay.hidden = false
  }
  const hasFiles = (event: DragEvent) => !!event.dataTransfer && Array.from(event.dataTransfer.types).includes('Files')
  let depth = 0
  dropTarget.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return
    event.preventDefault()
    if (depth++ === 0) showOverlay()
  })
  dropTarget.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return
    event.preventDefault()
    event.dataTransfer!.dropEffect = session.canEdit ? 'copy' : 'none'
  })
  dropTarget.addEventListener('dragleave', () => {
    if (depth > 0 && --depth === 0) {
      overlay.hidden = true
    }
  })
  dropTarget.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return
    event.preventDefault()
    event.stopPropagation()
    depth = 0
    overlay.hidden = true
    const { picks, folder } = dropped(event.dataTransfer!)
    void picks.then((all) => upload(withoutIgnored(all), folder))
  })
  // A file dropped anywhere else must not replace the page with the file.
  for (const type of ['dragover', 'drop'] as const) {
    window.addEventListener(type, (event) => {
      if (hasFiles(event) && !dropTarget.contains(event.target as Node)) event.preventDefault()
    })
  }

  return { button: wrapper }
}

/** The limits /api/config names, if it does (missing ones keep their defaults). */
export function uploadLimits(config: Config): Partial<Limits> {
  const limits = config.limits ?? {}
  return { files: limits.max_files, fileBytes: limits.max_file_bytes, roomBytes: limits.max_workspace_bytes }
}
