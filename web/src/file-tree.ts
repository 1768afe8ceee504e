/**
 * The workspace's files as a tree (folders are path prefixes, collapsible), in the room's
 * left column. Editors create, rename (move) and delete files; viewers and reviewers only
 * open them. The entry file (the one that runs) is marked and cannot be deleted. Coloured
 * dots say who has each file open. Keyboard: the tree is one tab stop (ARIA tree): arrows
 * move and open/close folders, Enter opens a file, F2 renames, Delete deletes.
 * On a phone the tree folds behind a "Files" button.
 */
import { h, replace } from './dom'
import type { Notices } from './notices'
import type { OpenFiles } from './open-files'
import type { PeerState, Presence } from './presence'
import type { Session } from './session'
import { createFile, deleteFile, newPathProblem, PathError, renameFile } from './workspace'

interface Folder {
  name: string
  path: string
  folders: Map<string, Folder>
  files: string[]
}

function buildTree(paths: string[]): Folder {
  const root: Folder = { name: '', path: '', folders: new Map(), files: [] }
  for (const path of paths) {
    const parts = path.split('/')
    let folder = root
    for (let i = 0; i < parts.length - 1; i++) {
      const sub = parts.slice(0, i + 1).join('/')
      let next = folder.folders.get(parts[i])
      if (!next) {
        next = { name: parts[i], path: sub, folders: new Map(), files: [] }
        folder.folders.set(parts[i], next)
      }
      folder = next
    }
    folder.files.push(path)
  }
  return root
}

const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1)

export interface FileTree {
  element: HTMLElement
  /** Starts the "new file" form (for a shortcut or a test). */
  startCreate(): void
}

export function fileTree(nav: HTMLElement, files: OpenFiles, presence: Presence, session: Session, notices: Notices): FileTree {
  const collapsed = new Set<string>()
  let focusPath = files.active // the item that holds the tree's one tab stop
  let form: { mode: 'create' | 'rename'; from?: string } | null = null

  const toggle = h('button', { type: 'button', class: 'btn small files-toggle', 'aria-expanded': 'false', 'aria-controls': 'file-tree-body' }, 'Files')
  const newButton = h('button', { type: 'button', class: 'btn small', title: 'New file' }, '+ New file')
  const renameButton = h('button', { type: 'button', class: 'btn small', title: 'Rename or move the selected file (F2)' }, 'Rename')
  const deleteButton = h('button', { type: 'button', class: 'btn small danger-text', title: 'Delete the selected file (Delete)' }, 'Delete')
  const actions = h('div', { class: 'file-actions', role: 'toolbar', 'aria-label': 'File actions' }, newButton, renameButton, deleteButton)
  const input = h('input', { type: 'text', class: 'file-path-input', spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'file-path-rule' })
  const inputLabel = h('label', { class: 'small' }, 'Path')
  const rule = h('p', { id: 'file-path-rule', class: 'file-path-rule small', 'aria-live': 'polite' })
  const submit = h('button', { type: 'submit', class: 'btn small primary' }, 'Create')
  const cancel = h('button', { type: 'button', class: 'btn small' }, 'Cancel')
  const pathForm = h('form', { class: 'file-form', hidden: true }, h('label', {}, inputLabel, input), rule, h('div', { class: 'file-form-buttons' }, submit, cancel))
  const tree = h('ul', { class: 'file-tree', role: 'tree', 'aria-label': 'Files' })
  const body = h('div', { id: 'file-tree-body', class: 'file-tree-body' }, h('h2', { class: 'files-heading' }, 'Files'), actions, pathForm, tree)
  replace(nav, toggle, body)
  nav.hidden = false
  nav.classList.add('file-tree-nav')

  toggle.addEventListener('click', () => {
    const open = nav.classList.toggle('open')
    toggle.setAttribute('aria-expanded', String(open))
  })

  const peersIn = (path: string): PeerState[] => presence.peers().filter((p) => !p.self && p.file === path)

  const dots = (path: string) => {
    const here = peersIn(path)
    if (!here.length) return null
    const names = here.map((p) => p.user.name).join(', ')
    return h(
      'span',
      { class: 'file-dots', title: `Here: ${names}`, 'aria-label': `Open by ${names}` },
      ...here.slice(0, 4).map((p) => h('span', { class: 'dot', style: `background:${p.user.color}`, 'data-name': p.user.name })),
    )
  }

  const fileItem = (path: string, depth: number) => {
    const entry = path === files.entry
    return h(
      'li',
      {
        role: 'treeitem',
        class: `file-item${path === files.active ? ' active' : ''}`,
        'data-path': path,
        'aria-selected': String(path === files.active),
        'aria-level': depth + 1,
        tabindex: path === focusPath ? 0 : -1,
        style: `--depth:${depth}`,
        title: entry ? `${path} (entry file: this one runs)` : path,
      },
      h('span', { class: 'file-name' }, basename(path)),
      entry ? h('span', { class: 'badge entry-badge', title: 'The entry file: Run starts here' }, 'entry') : null,
      dots(path),
    )
  }

  const folderItem = (folder: Folder, depth: number): HTMLElement => {
    const open = !collapsed.has(folder.path)
    const group = h('ul', { role: 'group', hidden: !open }, ...children(folder, depth + 1))
    return h(
      'li',
      {
        role: 'treeitem',
        class: 'folder-item',
        'data-folder': folder.path,
        'aria-expanded': String(open),
        'aria-level': depth + 1,
        tabindex: folder.path === focusPath ? 0 : -1,
      },
      h('span', { class: 'folder-row', style: `--depth:${depth}` }, h('span', { class: 'chevron', 'aria-hidden': 'true' }, open ? '▾' : '▸'), h('span', { class: 'file-name' }, `${folder.name}/`)),
      group,
    )
  }

  const children = (folder: Folder, depth: number): HTMLElement[] => [
    ...[...folder.folders.values()].sort((a, b) => a.name.localeCompare(b.name)).map((f) => folderItem(f, depth)),
    ...folder.files.sort((a, b) => a.localeCompare(b)).map((p) => fileItem(p, depth)),
  ]

  let last = ''
  const render = (force = false) => {
    const paths = files.paths()
    if (!paths.includes(focusPath) && !focusPath.startsWith('folder:')) focusPath = files.active
    const key = JSON.stringify([paths, files.active, files.entry, [...collapsed], focusPath, session.canEdit, presence.peers().filter((p) => !p.self).map((p) => [p.file, p.user.name, p.user.color])])
    if (key === last && !force) return
    last = key
    const hadFocus = tree.contains(document.activeElement)
    replace(tree, ...children(buildTree(paths), 0))
    if (!tree.querySelector('[tabindex="0"]')) tree.querySelector<HTMLElement>('[role="treeitem"]')?.setAttribute('tabindex', '0')
    if (hadFocus) tree.querySelector<HTMLElement>('[tabindex="0"]')?.focus()
    actions.hidden = !session.canEdit
    if (!session.canEdit) closeForm()
    deleteButton.disabled = selectedFile() === files.entry
    deleteButton.title = deleteButton.disabled ? 'The entry file cannot be deleted' : 'Delete the selected file (Delete)'
  }

  /** The file the actions apply to: the focused one, else the one open in the editor. */
  const selectedFile = () => (files.paths().includes(focusPath) ? focusPath : files.active)

  const visibleItems = () => [...tree.querySelectorAll<HTMLElement>('[role="treeitem"]')].filter((el) => !el.closest('[hidden]'))
  const itemPath = (el: HTMLElement) => el.dataset.path ?? el.dataset.folder ?? ''
  const focusItem = (el: HTMLElement | undefined) => {
    if (!el) return
    for (const other of tree.querySelectorAll<HTMLElement>('[tabindex="0"]')) other.tabIndex = -1
    el.tabIndex = 0
    el.focus()
    focusPath = itemPath(el)
    deleteButton.disabled = selectedFile() === files.entry
  }

  const openPath = (path: string) => {
    focusPath = path
    files.openFile(path)
  }

  tree.addEventListener('click', (event) => {
    const item = (event.target as HTMLElement).closest<HTMLElement>('[role="treeitem"]')
    if (!item) return
    event.stopPropagation()
    if (item.dataset.folder !== undefined) {
      const path = item.dataset.folder
      if (collapsed.has(path)) collapsed.delete(path)
      else collapsed.add(path)
      focusPath = path
      render(true)
      tree.querySelector<HTMLElement>(`[data-folder="${CSS.escape(path)}"]`)?.focus()
      return
    }
    if (item.dataset.path) {
      openPath(item.dataset.path)
      if (nav.classList.contains('open')) {
        nav.classList.remove('open')
        toggle.setAttribute('aria-expanded', 'false')
      }
    }
  })

  tree.addEventListener('keydown', (event) => {
    const item = (event.target as HTMLElement).closest<HTMLElement>('[role="treeitem"]')
    if (!item) return
    const items = visibleItems()
    const at = items.indexOf(item)
    const folder = item.dataset.folder
    let handled = true
    switch (event.key) {
      case 'ArrowDown':
        focusItem(items[at + 1])
        break
      case 'ArrowUp':
        focusItem(items[at - 1])
        break
      case 'Home':
        focusItem(items[0])
        break
      case 'End':
        focusItem(items[items.length - 1])
        break
      case 'ArrowRight':
        if (folder !== undefined && collapsed.has(folder)) {
          collapsed.delete(folder)
          render(true)
          tree.querySelector<HTMLElement>(`[data-folder="${CSS.escape(folder)}"]`)?.focus()
        } else if (folder !== undefined) focusItem(items[at + 1])
        break
      case 'ArrowLeft':
        if (folder !== undefined && !collapsed.has(folder)) {
          collapsed.add(folder)
          render(true)
          tree.querySelector<HTMLElement>(`[data-folder="${CSS.escape(folder)}"]`)?.focus()
        } else {
          focusItem(item.parentElement?.closest<HTMLElement>('[role="treeitem"]') ?? undefined)
        }
        break
      case 'Enter':
      case ' ':
        if (folder !== undefined) item.click()
        else if (item.dataset.path) openPath(item.dataset.path)
        break
      case 'F2':
        if (item.dataset.path && session.canEdit) startRename(item.dataset.path)
        break
      case 'Delete':
        if (item.dataset.path && session.canEdit) void askDelete(item.dataset.path)
        break
      default:
        handled = false
    }
    if (handled) event.preventDefault()
  })
  tree.addEventListener('focusin', (event) => {
    const item = (event.target as HTMLElement).closest<HTMLElement>('[role="treeitem"]')
    if (item) {
      focusPath = itemPath(item)
      deleteButton.disabled = selectedFile() === files.entry
    }
  })

  // -- the path form (new file, rename) --------------------------------------------------
  const showRule = () => {
    const value = input.value
    const same = form?.mode === 'rename' && value === form.from
    const problem = value === '' ? null : same ? null : newPathProblem(files.doc, value)
    rule.textContent = problem ? `Not a valid path: ${problem}.` : 'Folders are separated by /, e.g. src/util.py.'
    rule.classList.toggle('error', problem !== null)
    input.setAttribute('aria-invalid', String(problem !== null))
    submit.disabled = value === '' || problem !== null || same
  }
  const openForm = (mode: 'create' | 'rename', from?: string) => {
    form = { mode, from }
    pathForm.hidden = false
    inputLabel.textContent = mode === 'create' ? 'New file path' : `Rename ${from} to`
    submit.textContent = mode === 'create' ? 'Create' : 'Rename'
    const folder = from ?? (focusPath.includes('/') ? `${focusPath.slice(0, focusPath.lastIndexOf('/'))}/` : '')
    input.value = mode === 'rename' ? (from ?? '') : folder
    showRule()
    input.focus()
    if (mode === 'rename' && from) input.setSelectionRange(from.lastIndexOf('/') + 1, from.lastIndexOf('.') > from.lastIndexOf('/') ? from.lastIndexOf('.') : from.length)
  }
  function closeForm() {
    form = null
    pathForm.hidden = true
  }
  const startRename = (path: string) => openForm('rename', path)
  input.addEventListener('input', showRule)
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault()
      closeForm()
      tree.querySelector<HTMLElement>('[tabindex="0"]')?.focus()
    }
  })
  cancel.addEventListener('click', () => closeForm())
  pathForm.addEventListener('submit', (event) => {
    event.preventDefault()
    if (!form) return
    const path = input.value
    try {
      if (form.mode === 'create') {
        createFile(files.doc, path)
        closeForm()
        openPath(path)
      } else if (form.from) {
        renameFile(files.doc, form.from, path)
        closeForm()
        focusPath = path
        notices.show(`Renamed to ${path}.`, 'info', 3000)
      }
      render(true)
    } catch (err) {
      rule.textContent = `Not a valid path: ${err instanceof PathError ? err.rule : String(err)}.`
      rule.classList.add('error')
    }
  })

  newButton.addEventListener('click', () => openForm('create'))
  renameButton.addEventListener('click', () => startRename(selectedFile()))
  deleteButton.addEventListener('click', () => void askDelete(selectedFile()))

  const askDelete = async (path: string) => {
    if (path === files.entry) {
      notices.show(`${path} is the entry file and cannot be deleted: rename it, or make another file the entry.`, 'warn', 6000)
      return
    }
    if (!(await confirmDialog(`Delete ${path}?`, 'Everyone in the room loses this file.', 'Delete'))) return
    try {
      deleteFile(files.doc, path)
      notices.show(`Deleted ${path}.`, 'info', 3000)
    } catch (err) {
      notices.show(err instanceof PathError ? `${path}: ${err.rule}.` : String(err), 'error')
    }
  }

  files.onChange(() => render())
  presence.awareness.on('change', () => render())
  session.watch(() => render(true))
  render(true)
  return { element: nav, startCreate: () => openForm('create') }
}

/** A modal yes/no question (a native <dialog>: focus kept inside, Escape cancels). */
export function confirmDialog(title: string, detail: string, yes: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'button', class: 'btn danger' }, yes)
    const no = h('button', { type: 'button', class: 'btn' }, 'Cancel')
    const dialog = h('dialog', { class: 'confirm-dialog', 'aria-labelledby': 'confirm-title' }, h('h2', { id: 'confirm-title' }, title), h('p', {}, detail), h('div', { class: 'dialog-buttons' }, no, ok))
    const done = (value: boolean) => {
      dialog.close()
      dialog.remove()
      resolve(value)
    }
    ok.addEventListener('click', () => done(true))
    no.addEventListener('click', () => done(false))
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault()
      done(false)
    })
    document.body.append(dialog)
    dialog.showModal()
    no.focus()
  })
}
