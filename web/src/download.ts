/**
 * Download the room's code. A one-file room saves that file, named from the room title and
 * the language's extension ("Binary search" in Python -> binary-search.py; no title ->
 * main.py). A workspace of several files offers a choice: the whole workspace as
 * `<title>.zip`, the server's own archive bytes (GET /archive), or the file open now.
 */
import { h } from './dom'
import { icon } from './icons'
import type { Notices } from './notices'
import './upload.css'

const EXTENSIONS: Record<string, string> = {
  python: 'py',
  javascript: 'js',
  typescript: 'ts',
  java: 'java',
  c: 'c',
  cpp: 'cpp',
  go: 'go',
  rust: 'rs',
}

function slug(title: string): string {
  return title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
}

export function fileName(title: string, language: string | undefined): string {
  const ext = (language && EXTENSIONS[language]) || 'txt'
  return `${slug(title) || 'main'}.${ext}`
}

/** The workspace zip's name: the title's, else "workspace.zip". */
export function zipName(title: string): string {
  return `${slug(title) || 'workspace'}.zip`
}

function save(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob)
  const link = h('a', { href: url, download: name, hidden: true })
  document.body.append(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

export interface DownloadOptions {
  /** The room's title; '' when it has none (the room id is no name). */
  title: () => string
  language: () => string | undefined
  /** The file open in the editor now. */
  current: () => { path: string; text: string; entry: boolean }
  fileCount: () => number
  /** The workspace zip from the server. */
  archive: () => Promise<Blob>
  notices: Notices
}

export function downloadButton(options: DownloadOptions): HTMLElement {
  const { title, language, current, fileCount, archive, notices } = options
  const button = h(
    'button',
    { type: 'button', class: 'btn download-button', title: 'Download the code' },
    icon('download'),
    h('span', { class: 'btn-label' }, 'Download'),
  )
  const zipItem = h('button', { type: 'button', role: 'menuitem', class: 'tool-menu-item' }, 'Workspace as .zip')
  const fileItem = h('button', { type: 'button', role: 'menuitem', class: 'tool-menu-item' }, 'This file')
  const menu = h('div', { class: 'tool-menu', role: 'menu', 'aria-label': 'Download', hidden: true }, zipItem, fileItem)
  const wrapper = h('span', { class: 'upload-wrap download-wrap' }, button, menu)

  const saveFile = () => {
    const file = current()
    // The entry file of a one-file room is named for the room, as before workspaces.
    const name = file.entry && fileCount() <= 1 ? fileName(title(), language()) : file.path.slice(file.path.lastIndexOf('/') + 1)
    save(new Blob([file.text], { type: 'text/plain;charset=utf-8' }), name)
  }
  const saveZip = async () => {
    try {
      save(await archive(), zipName(title()))
    } catch (err) {
      notices.show(`Could not download the workspace: ${err instanceof Error ? err.message : String(err)}`, 'error')
    }
  }
  const close = (refocus: boolean) => {
    menu.hidden = true
    button.setAttribute('aria-expanded', 'false')
    if (refocus) button.focus()
  }
  const sync = () => {
    // A choice only when there is one: several files.
    const several = fileCount() > 1
    if (several) button.setAttribute('aria-haspopup', 'menu')
    else button.removeAttribute('aria-haspopup')
    button.setAttribute('aria-expanded', several ? String(!menu.hidden) : 'false')
    if (!several) button.removeAttribute('aria-expanded')
  }
  button.addEventListener('click', () => {
    if (fileCount() <= 1) return saveFile()
    const opening = menu.hidden
    fileItem.textContent = `This file (${current().path})`
    menu.hidden = !opening
    sync()
    if (opening) zipItem.focus()
  })
  zipItem.addEventListener('click', () => (close(false), void saveZip()))
  fileItem.addEventListener('click', () => (close(false), saveFile()))
  menu.addEventListener('keydown', (event) => {
    const items = [zipItem, fileItem]
    if (event.key === 'Escape') close(true)
    else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') items[(items.indexOf(document.activeElement as HTMLButtonElement) + 1) % 2].focus()
    else return
    event.preventDefault()
  })
  document.addEventListener('click', (event) => {
    if (!menu.hidden && !wrapper.contains(event.target as Node)) close(false)
  })
  button.addEventListener('focus', sync)
  button.addEventListener('pointerenter', sync)
  return wrapper
}
