/** The room page `/r/{room}?token=...`: editor, people, comments, chat. */
import { aiEditField, highlightAiEdits } from './ai-edits'
import { AiUndo } from './ai-undo'
import { api, ApiError, getConfig, type Mode, type Role, type RoomCreated } from './api'
import { chatPanel } from './chat'
import { classApi, type ClassState } from './class-api'
import { forkBanner } from './class-fork'
import { Grants } from './class-grants'
import { classStaffPanel, type ClassStaffUi } from './class-staff'
import { handControl, studentComposer } from './class-student'
import { commentField, commentTheme } from './comments-decorations'
import { commentsPanel } from './comments'
import { connect, reconnect, type RoleNotice } from './connection'
import { identityDialog, shareDialog } from './dialogs'
import { formatTime, h, replace } from './dom'
import { createEditor } from './editor'
import { icon } from './icons'
import { isReservedName, loadIdentity, saveIdentity, type Identity } from './identity'
import { connectionIndicator, saveIndicator } from './indicators'
import { LANGUAGES, languageLabel } from './languages'
import { Notices } from './notices'
import { peoplePanel } from './people'
import { exchange, forgetToken, storedToken, storeToken } from './personal'
import { Presence } from './presence'
import { readOnlyNoteText } from './readonly-note'
import { forgetRoom, replaceRecentLinks } from './recent'
import { runMarks } from './run-marks'
import { runnerPanel, type RunnerUi } from './runner'
import { SaveTracker } from './saved'
import { ROLE_LABELS, Session } from './session'
import { settingsMenu } from './settings'
import { shortcutsButton } from './shortcuts'
import { studentControls } from './student'
import { classroomUi } from './exercise-room'
import { decodeToken, isGenericName, roomPath } from './token'
import { downloadButton } from './download'
import { mountUpload, uploadLimits } from './upload'
import { mountSearch } from './workspace-search'
import { filePaths, fileText, languageFor } from './workspace'
import { roomLayout } from './layout'
import { fileTabs } from './file-tabs'
import { fileTree } from './file-tree'
import { OpenFiles } from './open-files'
import { Follow } from './follow'
import { showLoadingFrame, syncPlaceholder } from './loading'
import { stickToBottom } from './stick-to-bottom'
import { createTabs, type TabSpec } from './tabs'
import { historyPanel } from './history-panel'
import { historyApi } from './history-api'
import { authorshipField, authorshipToggle } from './authorship'
import { roomTitle } from './title'
import { countUnread } from './unread'
import * as Y from 'yjs'

const MODES: Mode[] = ['pair', 'review', 'broadcast']
const EXPIRY_WARNING_MS = 10 * 60 * 1000
const MAX_TIMEOUT_MS = 2 ** 31 - 1
const MODE_LABELS: Record<Mode, string> = { pair: 'Pair', review: 'Review', broadcast: 'Broadcast' }

export async function roomPage(app: HTMLElement, room: string): Promise<void> {
  document.body.classList.add('room-page')
  showLoadingFrame(app, room)
  const link = new URLSearchParams(window.location.search).get('token')
  const config = await getConfig()
  const linkClaims = link ? decodeToken(link) : null
  if (!link && !config.anonymous) {
    return errorPage(app, 'This link has no access token.', 'Ask the room owner for a join link.')
  }
  if (link && !linkClaims) return errorPage(app, 'This link is damaged.', 'Its token could not be read. Copy the whole link again.')
  if (linkClaims && linkClaims.room !== room && linkClaims.room !== '*') {
    return errorPage(app, 'This link is for another room.', `Its token opens room ${linkClaims.room}.`)
  }
  if (linkClaims?.exp && linkClaims.exp * 1000 < Date.now()) {
    return errorPage(app, 'This link has expired.', 'Ask the room owner for a new one.')
  }

  let identity: Identity = loadIdentity(linkClaims && !isGenericName(linkClaims.name) ? linkClaims.name : null)
  // Who this is, for the server: a personal token. A join link (or, in dev mode, no token)
  // is everyone's who opens it, so it is exchanged for one of this person's own, kept per
  // room: a reload is the same person. A personal link already is one.
  let token = storedToken(room, link)
  const tokenName = decodeToken(token ?? '')?.name
  if ((linkClaims?.personal !== true || isGenericName(linkClaims.name)) && (tokenName ?? '') !== identity.name) {
    const joined = await exchange(room, token ?? link, identity.name)
    if (joined) {
      token = joined.token
      storeToken(room, link, joined.token)
      if (joined.name !== identity.name) identity = { ...identity, name: joined.name }
    }
  }
  token ??= link
  const claims = token ? decodeToken(token) : null
  const tokenRole: Role = claims?.role ?? 'editor'
  const session = new Session(
    { role: tokenRole, roleExpires: null, mode: 'pair', forks: false },
    room,
    token,
    claims?.sub ?? 'anonymous',
    tokenRole,
  )
  const notices = new Notices()

  const doc = new Y.Doc()
  const ytext = doc.getText('code')
  const meta = doc.getMap<unknown>('meta')
  const chat = doc.getArray<unknown>('chat')
  const comments = doc.getMap<unknown>('comments')
  const runs = doc.getMap<unknown>('runs')
  // The server's own record (rooms/classroom.py): the class's policy, hands.
  const classRoot = doc.getMap<unknown>('class')
  const grants = new Grants(session, notices)
  let classState: Promise<ClassState | null> | null = null
  const exerciseRoom = room.includes('.s.') // a student's room for an exercise (rooms/classroom.py)
  const classInfo = () => (classState ??= classApi.state(room, session.token).catch(() => null))

  // -- top bar -------------------------------------------------------------------
  const conn = connectionIndicator()
  const saved = saveIndicator()
  const titleUi = roomTitle(session, room)
  const modeBadge = h('span', { class: 'badge mode' })
  const languageSlot = h('span', { class: 'language-slot' })
  const meButton = h('button', { type: 'button', class: 'me' })
  const shareButton = h('button', { type: 'button', class: 'btn small', hidden: true }, icon('share'), 'Share')
  const topbar = h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'brand', href: '/', 'aria-label': 'CodeMentor Collab home' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '</>'), h('span', { class: 'brand-text' }, 'CodeMentor')),
    h('div', { class: 'room-heading' }, titleUi.element, modeBadge),
    h('div', { class: 'topbar-right' }, languageSlot, conn.element, saved.element, shareButton, meButton),
  )

  // -- provider, presence, save receipts -------------------------------------------
  let tracker: SaveTracker | null = null
  let closedBanner: HTMLElement | null = null
  // While the owner rotates the links, the server closes this page's own connection
  // (its token is one of the old ones): held back, then reconnected with the new token.
  let rotating = false
  let closedWhileRotating: string | null = null
  const showClosed = (detail: string | undefined) => {
    // Refused for good (bad link, unknown room): nothing here can be changed any more.
    conn.set('closed', detail)
    document.body.dataset.closed = 'true'
    languageSelect.disabled = true
    editor.setReadOnly(true)
    closedBanner ??= h('div', { class: 'banner error', role: 'alert' }, detail ?? 'Disconnected.', ' ', h('a', { href: '/' }, 'Go to the start page'))
    main.before(closedBanner)
  }
  const provider = connect(room, token, doc, {
    onState: (state, detail, code) => {
      if (state === 'closed' && rotating) {
        closedWhileRotating = detail ?? 'Disconnected.'
        return
      }
      const linkExpired = !!linkClaims?.exp && linkClaims.exp * 1000 <= Date.now()
      if (state === 'closed' && code === 4401 && session.token !== link && !linkExpired) {
        // The personal token was refused (the owner renewed the links): forget it and
        // start over from the link, whose own refusal, if any, is final. One that ended
        // with its link (same expiry) is said as such, below.
        forgetToken(room)
        window.location.reload()
        return
      }
      if (state === 'closed' && code === 4404) {
        // Deleted (or never was): this browser's token and "recent rooms" entry go too.
        forgetToken(room)
        forgetRoom(room)
      }
      conn.set(state, detail)
      tracker?.setConnected(state === 'connected')
      if (state === 'closed') showClosed(detail)
    },
    onReceipt: (sv) => tracker?.receipt(sv),
    onRoleChange: (notice) => applyRole(notice),
    onDenied: () =>
      notices.show('The server refused a change you made (permission denied). Reload the page to see the shared version.', 'error', 0),
  })
  tracker = new SaveTracker(doc, provider)
  tracker.onChange((s) => saved.set(s))
  tracker.setConnected(provider.wsconnected && provider.synced)
  const presence = new Presence(provider.awareness, identity, tokenRole, session.userId)

  // -- editor and panels -----------------------------------------------------------
  const editorHost = h('div', { class: 'editor-host', id: 'editor-host' })
  const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Room actions' })
  const roleNote = h('span', { class: 'role-note' })
  const editorHelp = h(
    'p',
    { id: 'editor-help', class: 'sr-only' },
    'Tab indents. To leave the editor, press Escape and then Tab. Control+Alt+M comments on the selected code. Control+Enter runs the code.',
  )
  const editorPane = h('section', { class: 'editor-pane', 'aria-label': 'Code' }, toolbar, editorHelp, editorHost)
  const side = h('aside', { class: 'side', 'aria-label': 'Room panels' })
  const layout = roomLayout(editorPane, side)
  const main = layout.element
  replace(app, topbar, main, notices.element)
  const forkedFrom = forkBanner(room)
  if (forkedFrom) main.before(forkedFrom)

  let commentsUi: ReturnType<typeof commentsPanel> | null = null
  let runCode: (() => boolean) | null = null
  let aiUndo: AiUndo | null = null
  let firstSyncDone = false
  const editor = createEditor(editorHost, ytext, provider.awareness, {
    readOnly: !session.canEdit,
    label: 'Code editor',
    describedBy: 'editor-help',
    extraKeys: [
      { key: 'Mod-Alt-m', run: () => (startComment(), true) },
      { key: 'Mod-Enter', run: () => runCode?.() ?? false },
      // Before y-codemirror's undo: an AI change done for this person may be the newest step.
      { key: 'Mod-z', run: () => aiUndo?.undo() ?? false, preventDefault: true },
    ],
    extensions: [commentField, commentTheme, aiEditField, runMarks, authorshipField],
    runnable: config.runner,
    readOnlyNote: () => readOnlyNoteText(session.role),
  })
  // -- the workspace: open files (tabs), the file tree, per-file undo -------------------
  const files = new OpenFiles(
    doc,
    (path, text, manager, place) => {
      editor.bind(text, manager, place)
      void editor.setLanguage(files.languageOf(path))
    },
    () => {
      const sel = editor.view.state.selection.main
      return { anchor: sel.anchor, head: sel.head, scrollTop: editor.view.scrollDOM.scrollTop }
    },
    { onClosedByOthers: (path) => notices.show(`${path} was deleted by someone else: its tab is closed.`, 'warn', 8000) },
  )
  if (config.ai) {
    aiUndo = new AiUndo(
      chat,
      { active: () => files.active, entry: () => files.entry, managerOf: (path) => files.managerOf(path) },
      session,
      notices,
      () => firstSyncDone,
    )
  }
  files.onManager((manager) => aiUndo?.attach(manager))
  files.adopt(ytext, editor.undoManager)
  presence.setFile(files.active)
  files.onChange(() => presence.setFile(files.active))
  const fileTabsEl = fileTabs(files)
  editorHost.before(fileTabsEl)
  fileTree(layout.files, files, presence, session, notices)
  const follow = new Follow(presence, files, editor)
  const editorTools = h('div', { class: 'editor-tools' }, settingsMenu(), shortcutsButton())
  // The AI's edits flash briefly; not the ones the first sync loads (they are old news).
  firstSyncDone = provider.synced
  provider.on('sync', (synced: boolean) => {
    if (synced) firstSyncDone = true
  })
  highlightAiEdits(editor.view, ytext, provider.awareness, () => firstSyncDone)
  syncPlaceholder(editorHost, (done) => (provider.synced ? done() : provider.once('sync', done)))
  const me = () => identity
  commentsUi = commentsPanel(doc, comments, files, () => editor.view, session, me)
  const composer = studentComposer(session, notices, classRoot, classInfo)
  const chatEl = chatPanel(chat, session, me, { ai: config.ai, notices, selection: () => editor.view.state.selection.main, path: () => files.active, meta }, composer)
  const chatLog = chatEl.querySelector<HTMLElement>('.chat-log')
  if (chatLog) stickToBottom(chatLog)

  // -- side tabs: Output (with the runner), People, Comments, Chat ----------------------
  const classSlot = h('div', { class: 'class-slot' })
  let classStaff: ClassStaffUi | null = null
  let runButton: HTMLElement | null = null
  let runner: RunnerUi | null = null
  const tabSpecs: TabSpec[] = []
  if (config.runner) {
    const ui = runnerPanel(runs, session, { view: () => editor.view, meta, files })
    runner = ui
    runButton = ui.controls
    // Whoever runs wants to see the result.
    runCode = () => ui.run() && (tabs.show('output'), true)
    ui.button.addEventListener('click', () => tabs.show('output'))
    tabSpecs.push({ id: 'output', label: 'Output', panel: ui.panel })
  }
  tabSpecs.push(
    { id: 'people', label: 'People', panel: peoplePanel(presence, session, notices, follow, grants) },
    // Broadcast rooms' staff: hands, questions, the chat and AI policy (shown once known).
    { id: 'class', label: 'Class', panel: classSlot },
    { id: 'comments', label: 'Comments', panel: commentsUi.element },
    { id: 'chat', label: 'Chat', panel: chatEl },
  )
  // -- history: the panel (its playback stands in for the live editor), authorship --------
  const authorship = authorshipToggle({
    history: historyApi(room, () => session.token),
    view: () => editor.view,
    path: () => files.active,
    colorOf: (id) => presence.peers().find((p) => p.user.uid === id)?.user.color ?? null,
    onError: (text) => notices.show(text, 'error'),
  })
  editorHost.before(authorship.legend)
  doc.on('update', () => authorship.refresh())
  files.onChange(() => authorship.refresh())
  // -- classroom: exercises (staff tab, students' bars, own-room banner), spotlight --------
  const classroom = classroomUi(doc, room, session, notices)
  toolbar.before(classroom.top)
  const historyUi = historyPanel({ session, notices, pane: editorPane, live: () => [fileTabsEl, editorHost], visible: () => tabs.isShown('history') })
  tabSpecs.push({ id: 'history', label: 'History', panel: historyUi.element })
  const tabs = createTabs(tabSpecs, defaultTab(config.runner, session), `codementor.tab.${room}`)
  side.append(tabs.element)
  tabs.setHidden('class', true)
  tabs.onShow((id) => id === 'history' && historyUi.load())
  doc.on('update', () => historyUi.changed())
  if (tabs.isShown('history')) historyUi.load()
  countUnread(tabs, { chat, comments, runs }, () => firstSyncDone)
  const startComment = () => {
    tabs.show('comments')
    commentsUi?.startComment()
  }

  // -- identity ------------------------------------------------------------------
  const renderMe = () => {
    // The name starts with the visible text (WCAG 2.5.3, "label in name").
    const label = `${identity.name} ${ROLE_LABELS[session.role]}: you. Change name and colour`
    meButton.setAttribute('aria-label', label)
    meButton.title = 'Change your name and colour'
    replace(
      meButton,
      h('span', { class: 'dot', style: `background:${presence.color}`, 'aria-hidden': 'true' }),
      h('span', { class: 'me-name' }, identity.name),
      ' ',
      h('span', { class: `badge role-${session.role}` }, ROLE_LABELS[session.role]),
    )
  }
  /** A new name is the server's to know: a new personal token (the same person), and a
   * new connection with it. */
  const rename = async (next: Identity): Promise<string | null> => {
    if (next.name !== identity.name) {
      if (isReservedName(next.name)) return 'That name belongs to the AI pair-programmer.'
      try {
        const joined = await api.join(room, session.token, next.name)
        storeToken(room, link, joined.token)
        session.token = joined.token
        next = { ...next, name: joined.name }
        reconnect(provider, joined.token)
        // A new connection starts with the token's role: a timed grant stayed with the old one.
        if (session.role !== session.tokenRole) applyRole({ role: session.tokenRole, expires: null })
      } catch (err) {
        if (err instanceof ApiError && err.status === 422) return 'That name cannot be used: 1-40 characters, no control characters.'
        return `Could not change your name: ${err instanceof ApiError ? err.message : String(err)}`
      }
    }
    identity = next
    saveIdentity(next)
    presence.setIdentity(next)
    renderMe()
    return null
  }
  presence.onColorChange(renderMe)
  const openIdentity = identityDialog(() => identity, rename)
  meButton.addEventListener('click', openIdentity)

  // -- meta: title, mode, language ---------------------------------------------------
  const languageSelect = h('select', { id: 'language', 'aria-label': 'Language' })
  replace(languageSelect, ...LANGUAGES.map((l) => h('option', { value: l.id }, l.label)))
  languageSelect.addEventListener('change', () => {
    const language = languageSelect.value
    meta.set('language', language)
    api.updateRoom(room, session.token, { language }).catch((err) => notices.show(`Could not save the language: ${String(err)}`, 'error'))
  })
  const languageLabelEl = h('span', { class: 'language-label' })

  let currentLanguage: string | undefined
  const applyMeta = () => {
    const title = typeof meta.get('title') === 'string' && meta.get('title') ? String(meta.get('title')) : room
    titleUi.set(title)
    document.title = `${title} · CodeMentor Collab`
    const mode = meta.get('mode') as Mode
    if (MODES.includes(mode) && mode !== session.state.mode) session.update({ mode })
    const language = typeof meta.get('language') === 'string' ? String(meta.get('language')) : undefined
    if (language !== currentLanguage) {
      currentLanguage = language
      void editor.setLanguage(files.languageOf(files.active))
      if (language) languageSelect.value = language
      languageLabelEl.textContent = languageLabel(language)
    }
  }
  meta.observe(applyMeta)
  applyMeta()
  // The owner's fork setting, live (the server writes it to meta; REST decides).
  meta.observe((event) => {
    const forks = meta.get('forks')
    if (event.keysChanged.has('forks') && typeof forks === 'boolean') session.update({ forks })
  })
  // The REST API knows the room before the first sync (and for rooms without meta).
  api
    .room(room, session.token)
    .then((details) => {
      session.update({ forks: details.forks })
      if (!meta.has('mode') && details.mode !== session.state.mode) session.update({ mode: details.mode })
      if (!meta.has('title') && details.title) titleUi.set(details.title)
      if (!meta.has('language') && details.language && !currentLanguage) {
        currentLanguage = details.language
        // Before the first sync the entry file's path is a guess (no meta yet): the room's
        // language is the entry file's.
        void editor.setLanguage(files.active === files.entry ? details.language : languageFor(files.active, details.language))
        languageSelect.value = details.language
        languageLabelEl.textContent = languageLabel(details.language)
      }
    })
    .catch(() => undefined)

  const rotateLinks = async (): Promise<RoomCreated> => {
    rotating = true
    try {
      const created = await api.rotateLinks(room, session.token)
      // The new owner link, exchanged like any link for this person's own token.
      let next = created.owner_token
      const joined = await exchange(room, next, identity.name)
      if (joined) {
        next = joined.token
        storeToken(room, created.owner_token, joined.token)
      }
      session.setToken(next)
      window.history.replaceState(window.history.state, '', roomPath(room, created.owner_token))
      replaceRecentLinks(room, created.links)
      warnBeforeExpiry(next)
      provider.params.token = next
      provider.disconnect()
      provider.connect()
      return created
    } catch (err) {
      if (closedWhileRotating !== null) showClosed(closedWhileRotating)
      throw err
    } finally {
      rotating = false
      closedWhileRotating = null
    }
  }
  const openShare = shareDialog(room, () => session.token, () => session.state.mode, {
    forks: () => session.state.forks,
    setForks: async (forks) => {
      const details = await api.updateRoom(room, session.token, { forks })
      session.update({ forks: details.forks })
    },
    reviewersRun: runner ?? undefined,
    rotate: rotateLinks,
    deleteRoom: async () => {
      await api.deleteRoom(room, session.token)
    },
  })
  shareButton.addEventListener('click', openShare)

  // -- the token's expiry: said before it happens, and why the connection ends --------------
  let expiryTimer: number | undefined
  const warnBeforeExpiry = (current: string | null) => {
    window.clearTimeout(expiryTimer)
    const exp = current ? decodeToken(current)?.exp : null
    if (!exp) return
    const warnAt = exp * 1000 - EXPIRY_WARNING_MS
    const delay = Math.max(0, warnAt - Date.now())
    if (delay > MAX_TIMEOUT_MS) return
    expiryTimer = window.setTimeout(() => {
      const at = formatTime(exp * 1000)
      notices.show(
        session.isOwner
          ? `Your owner link expires at ${at}. Share → Rotate links gives you a new one (and new links for everyone).`
          : `Your link expires at ${at}. Ask the room owner for a new one.`,
        'warn',
        0,
      )
    }, delay)
  }
  warnBeforeExpiry(token)

  // -- role-aware UI ------------------------------------------------------------------
  let student: HTMLElement | null = null
  const commentButton = h(
    'button',
    { type: 'button', class: 'btn', 'aria-keyshortcuts': 'Control+Alt+M', title: 'Comment on the selected code (Ctrl+Alt+M)' },
    icon('comment'),
    'Comment',
  )
  commentButton.addEventListener('click', startComment)
  // -- workspace tools --
  // Search across files, upload (button and drop), download (the file, or the workspace).
  const openAt = (path: string, line: number) => {
    if (!files.openFile(path)) return notices.show(`${path} is no longer in the workspace.`, 'info')
    const view = editor.view
    const at = view.state.doc.line(Math.min(Math.max(line, 1), view.state.doc.lines)).from
    view.dispatch({ selection: { anchor: at }, scrollIntoView: true })
    view.focus()
  }
  const workspaceTools = h(
    'span',
    { class: 'workspace-tools' },
    mountSearch({ doc, open: openAt }).button,
    mountUpload({ doc, session, notices, dropTarget: main, limits: uploadLimits(config) }).button,
    downloadButton({
      title: () => (titleUi.title() === room ? '' : titleUi.title()), // the room id is no name
      language: () => currentLanguage,
      current: () => ({
        path: files.active,
        text: fileText(doc, files.active)?.toString() ?? '',
        entry: files.active === files.entry,
      }),
      fileCount: () => filePaths(doc).length,
      archive: () => api.downloadArchive(room, session.token),
      notices,
    }),
  )
  // -- end workspace tools --

  session.watch((state) => {
    modeBadge.textContent = MODE_LABELS[state.mode]
    modeBadge.dataset.mode = state.mode
    document.body.dataset.role = state.role
    document.body.dataset.mode = state.mode
    editor.setReadOnly(!session.canEdit || provider.shouldConnect === false)
    replace(languageSlot, session.isOwner ? languageSelect : languageLabelEl)
    shareButton.hidden = !session.isOwner || !session.token
    commentButton.hidden = !session.canComment
    if (session.isStudent && !student) {
      student = studentControls(presence, follow, session, notices, handControl(session, notices, classRoot, classInfo(), presence))
    } else if (exerciseRoom && session.tokenRole !== 'owner' && !student) {
      // The student in their own exercise room: a hand (and question) the grid shows.
      student = handControl(session, notices, classRoot, classInfo(), presence)
    }
    const staff = state.mode === 'broadcast' && !session.isStudent && (session.tokenRole === 'owner' || session.tokenRole === 'editor')
    if (staff && !classStaff) {
      classStaff = classStaffPanel({ session, notices, grants, classRoot })
      classStaff.onWaitingChange((added) => tabs.addUnread('class', added))
      classSlot.append(classStaff.element)
      // The Class tab holds it all: hands, questions, policies, then the exercises.
      if (classroom.exercises) classStaff.element.append(classroom.exercises)
    }
    tabs.setHidden('class', !staff)
    roleNote.textContent = roleNoteText(state.role, state.roleExpires)
    titleUi.setEditable(session.isOwner && !!session.token)
    if (!tabs.chosen()) tabs.show(defaultTab(config.runner, session), false, false)
    replace(toolbar, runButton, commentButton, student, workspaceTools, authorship.button, roleNote, editorTools)
    renderMe()
  })

  const applyRole = (notice: RoleNotice) => {
    const before = session.role
    session.update({ role: notice.role, roleExpires: notice.expires })
    presence.setRole(notice.role)
    if (notice.role === before) return
    const until = notice.expires ? ` until ${formatTime(notice.expires * 1000)}` : ''
    const text =
      notice.role === 'owner' || notice.role === 'editor'
        ? `You can now edit the code${until}.`
        : notice.role === 'reviewer'
          ? `You are now a reviewer${until}: you can comment and chat, not edit.`
          : `You are now a viewer${until}: the editor is read-only.`
    notices.show(text, 'info', 8000)
  }

  // The room keeps going with no server: y-websocket retries and merges on reconnect.
  window.addEventListener('beforeunload', () => {
    provider.destroy()
    classStaff?.destroy()
  })
}

/** The tab a first visit opens on: the output where code runs, else what the mode is for. */
function defaultTab(runner: boolean, session: Session): string {
  if (runner) return 'output'
  if (session.state.mode === 'review') return 'comments'
  if (session.state.mode === 'broadcast' && session.isOwner) return 'people'
  return 'chat'
}

function roleNoteText(role: Role, expires: number | null): string {
  const until = expires ? ` until ${formatTime(expires * 1000)}` : ''
  switch (role) {
    case 'viewer':
      return 'Read-only: you are viewing.'
    case 'reviewer':
      return 'Read-only code: select lines and comment.'
    case 'editor':
      return expires ? `You can edit${until}.` : ''
    default:
      return ''
  }
}

function errorPage(app: HTMLElement, title: string, detail: string): void {
  replace(
    app,
    h(
      'main',
      { id: 'main', class: 'landing' },
      h('section', { class: 'card' }, h('h1', {}, title), h('p', {}, detail), h('p', {}, h('a', { class: 'btn', href: '/' }, 'Go to the start page'))),
    ),
  )
}
