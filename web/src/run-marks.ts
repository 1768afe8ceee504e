/**
 * Error lines of a run, marked in the editor: a line decoration and a gutter marker whose
 * hover (title) is the error message. Marks come from a run's stderr / compile output,
 * parsed per language. Each belongs to a file: a run of one file names its source as
 * Judge0 CE 1.13.1 does (db/languages/active.rb: script.py, Main.java, main.c, main.cpp,
 * main.go, main.rs, script.js, script.ts), which is the entry file; a run of several
 * names workspace paths (`util.c:2`, `File "/box/pkg/util.py"`), resolved against the
 * run's `paths`. `WorkspaceRunMarks` keeps each file's and shows the shown file's. A mark
 * goes when the code on its line changes; all go when the next run starts.
 */
import { RangeSet, RangeSetBuilder, StateEffect, StateField, type Extension, type Text } from '@codemirror/state'
import { Decoration, EditorView, gutter, GutterMarker, type DecorationSet } from '@codemirror/view'
import * as Y from 'yjs'
import { fileText } from './workspace'
import './runs.css'

export interface RunMark {
  /** 1-based line of the code that ran. */
  line: number
  message: string
  /** The workspace file the line is in (absent: the file shown, as before workspaces). */
  path?: string
}

/** What a run names files by: the path it ran and the workspace's paths (a run record's
 * `entry` and `paths`). Absent or one file: Judge0's own name for the language's source
 * (script.py, Main.java...) is the entry file. */
export interface RunFiles {
  entry: string
  paths: string[]
}

/** A line as the output names it: the file as written there, before it is resolved. */
interface Found {
  file: string
  line: number
  message: string
}

const MAX_MARKS = 20
const MAX_MESSAGE = 300

/** Judge0 CE 1.13.1's name for a one-file program's source, per language. */
const JUDGE0_NAMES: Record<string, string[]> = {
  python: ['script.py', 'main.py'],
  java: ['Main.java'],
  c: ['main.c'],
  cpp: ['main.cpp'],
  go: ['main.go'],
  rust: ['main.rs'],
  javascript: ['script.js'],
  typescript: ['script.ts'],
}

const clean = (text: string): string => {
  const one = text.trim().replace(/\s+/g, ' ')
  return one.length > MAX_MESSAGE ? `${one.slice(0, MAX_MESSAGE - 1)}…` : one
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean)
  return lines[lines.length - 1] ?? ''
}

/** The workspace path an output's file name means, or null (a library's file, the
 * runtime's). Sandbox folders before it (`/box/util.py`, `./util.go`) are ignored: the
 * longest workspace path the name ends with wins. */
export function resolveRunFile(name: string, language: string, files: RunFiles | undefined): string | null {
  const file = name.replace(/^\.\//, '')
  const base = file.slice(file.lastIndexOf('/') + 1)
  if (!files || files.paths.length <= 1) {
    const entry = files?.entry ?? ''
    const entryBase = entry.slice(entry.lastIndexOf('/') + 1)
    return (JUDGE0_NAMES[language] ?? []).includes(base) || (entry !== '' && base === entryBase) ? entry : null
  }
  let best: string | null = null
  for (const path of files.paths) {
    if ((file === path || file.endsWith(`/${path}`)) && (!best || path.length > best.length)) best = path
  }
  return best
}

/** Python: the last frame in a file of the workspace (the deepest one in the user's
 * code), with the exception line (the traceback's last line). */
function python(stderr: string, inWorkspace: (file: string) => boolean): Found[] {
  const frames = [...stderr.matchAll(/File "([^"]+)", line (\d+)/g)].filter((m) => inWorkspace(m[1]))
  const last = frames[frames.length - 1]
  return last ? [{ file: last[1], line: Number(last[2]), message: lastLine(stderr) }] : []
}

/** Java: `Util.java:N: error: …` (javac); at run time the first frame in a file of the
 * workspace (`(Main.java:N)`), with the exception line. */
function java(compile: string, stderr: string, inWorkspace: (file: string) => boolean): Found[] {
  const errors = [...compile.matchAll(/^(\S*?\.java):(\d+): error: (.*)$/gm)]
  if (errors.length) return errors.map((m) => ({ file: m[1], line: Number(m[2]), message: m[3] }))
  const frame = [...stderr.matchAll(/\(([^():\s]+\.java):(\d+)\)/g)].find((m) => inWorkspace(m[1]))
  if (!frame) return []
  const exception = stderr.split('\n').find((l) => /Exception|Error/.test(l)) ?? lastLine(stderr)
  return [{ file: frame[1], line: Number(frame[2]), message: exception.replace(/^Exception in thread "[^"]*" /, '') }]
}

/** gcc / g++: `util.c:N:M: error: …` (fatal errors too; warnings are not marked). */
function cFamily(compile: string): Found[] {
  const pattern = /^(\S+?\.(?:c|h|cpp|cc|cxx|hpp|hh)):(\d+):(?:\d+:)? (?:fatal )?error: (.*)$/gm
  return [...compile.matchAll(pattern)].map((m) => ({ file: m[1], line: Number(m[2]), message: m[3] }))
}

/** Go: `./main.go:N:M: …` (go build); a panic's first frame in the workspace at run time. */
function go(compile: string, stderr: string, inWorkspace: (file: string) => boolean): Found[] {
  const errors = [...compile.matchAll(/(?:^|\s)(\S+?\.go):(\d+):(?:\d+:)? (.*)$/gm)]
  if (errors.length) return errors.map((m) => ({ file: m[1], line: Number(m[2]), message: m[3] }))
  const frame = [...stderr.matchAll(/(\S+?\.go):(\d+)/g)].find((m) => inWorkspace(m[1]))
  const panic = stderr.split('\n').find((l) => l.startsWith('panic:')) ?? lastLine(stderr)
  return frame ? [{ file: frame[1], line: Number(frame[2]), message: panic }] : []
}

/** rustc: `error[E…]: …` followed by ` --> main.rs:N:M`; a panic's `main.rs:N:M`. */
function rust(compile: string, stderr: string): Found[] {
  const marks: Found[] = []
  for (const m of compile.matchAll(/^(error(?:\[E\d+\])?: .*)\n\s*--> (\S+?\.rs):(\d+):\d+/gm)) {
    marks.push({ file: m[2], line: Number(m[3]), message: m[1] })
  }
  if (marks.length) return marks
  const panic = /panicked at (.*?),? (\S+?\.rs):(\d+):\d+/.exec(stderr)
  if (panic) return [{ file: panic[2], line: Number(panic[3]), message: `panicked at ${panic[1]}` }]
  const after = /panicked at (\S+?\.rs):(\d+):\d+:?\n(.*)/.exec(stderr)
  return after ? [{ file: after[1], line: Number(after[2]), message: `panicked: ${after[3]}` }] : []
}

/** Node: the first `file.js:N` in the workspace (the header line or a stack frame),
 * with the error line. */
function javascript(stderr: string, inWorkspace: (file: string) => boolean): Found[] {
  const frame = [...stderr.matchAll(/(?:^|[\s(])((?:file:\/\/)?[^\s()]+?\.[cm]?js):(\d+)/gm)].find((m) =>
    inWorkspace(m[1].replace(/^file:\/\//, '')),
  )
  if (!frame) return []
  const error = stderr.split('\n').find((l) => /^\w*(Error|Exception)\b.*:/.test(l.trim())) ?? lastLine(stderr)
  return [{ file: frame[1].replace(/^file:\/\//, ''), line: Number(frame[2]), message: error }]
}

/** tsc: `util.ts(N,M): error TS…: …`. Run-time frames point into the compiled
 * JavaScript, whose lines need not be the source's: not marked. */
function typescript(compile: string, stdout: string): Found[] {
  const text = `${compile}\n${stdout}`
  const pattern = /^(\S+?\.tsx?)(?:\((\d+),\d+\): error|:(\d+):\d+ - error) (TS\d+: .*)$/gm
  return [...text.matchAll(pattern)].map((m) => ({ file: m[1], line: Number(m[2] ?? m[3]), message: m[4] }))
}

/** The lines a run's output blames, each with its workspace file, for the language of
 * the file that ran. `files` (the run's `entry` and `paths`) resolves the names the
 * output uses; without it, Judge0's one-file names are the entry (`path` ''). */
export function parseRunErrors(
  language: string,
  out: { stderr?: string; compile_output?: string; stdout?: string },
  files?: RunFiles,
): RunMark[] {
  const stderr = out.stderr ?? ''
  const compile = out.compile_output ?? ''
  const inWorkspace = (file: string) => resolveRunFile(file, language, files) !== null
  let found: Found[]
  switch (language) {
    case 'python':
      found = python(stderr, inWorkspace)
      break
    case 'java':
      found = java(compile, stderr, inWorkspace)
      break
    case 'c':
    case 'cpp':
      found = cFamily(compile)
      break
    case 'go':
      found = go(compile, stderr, inWorkspace)
      break
    case 'rust':
      found = rust(compile, stderr)
      break
    case 'javascript':
      found = javascript(stderr, inWorkspace)
      break
    case 'typescript':
      found = typescript(compile, out.stdout ?? '')
      break
    default:
      found = []
  }
  const seen = new Map<string, RunMark>()
  for (const mark of found) {
    if (!Number.isInteger(mark.line) || mark.line < 1) continue
    const path = resolveRunFile(mark.file, language, files)
    if (path === null) continue
    const key = `${path}\n${mark.line}`
    const known = seen.get(key)
    if (known) known.message = clean(`${known.message}; ${mark.message}`)
    else if (seen.size < MAX_MARKS) seen.set(key, { line: mark.line, message: clean(mark.message), path })
  }
  return [...seen.values()]
}

// -- the editor side -----------------------------------------------------------------

class ErrorMarker extends GutterMarker {
  constructor(readonly message: string) {
    super()
  }
  eq(other: ErrorMarker): boolean {
    return other.message === this.message
  }
  toDOM(): Node {
    const el = document.createElement('span')
    el.className = 'cm-run-error-marker'
    el.title = this.message
    el.textContent = '●'
    return el
  }
}

interface Marks {
  lines: DecorationSet
  gutter: RangeSet<GutterMarker>
}

const setMarks = StateEffect.define<RunMark[]>()
const EMPTY: Marks = { lines: Decoration.none, gutter: RangeSet.empty }

function build(doc: Text, marks: RunMark[]): Marks {
  const sorted = marks.filter((m) => m.line <= doc.lines).sort((a, b) => a.line - b.line)
  const lines = new RangeSetBuilder<Decoration>()
  const markers = new RangeSetBuilder<GutterMarker>()
  for (const mark of sorted) {
    const at = doc.line(mark.line).from
    lines.add(at, at, Decoration.line({ class: 'cm-run-error-line', attributes: { title: mark.message, 'data-run-error': mark.message } }))
    markers.add(at, at, new ErrorMarker(mark.message))
  }
  return { lines: lines.finish(), gutter: markers.finish() }
}

const runMarksField = StateField.define<Marks>({
  create: () => EMPTY,
  update(value, tr) {
    for (const effect of tr.effects) if (effect.is(setMarks)) value = build(tr.state.doc, effect.value)
    if (!tr.docChanged || value === EMPTY) return value
    // A line whose code changed loses its mark.
    const touched: Array<[number, number]> = []
    tr.changes.iterChangedRanges((_fromA, _toA, fromB, toB) => touched.push([fromB, toB]))
    const doc = tr.state.doc
    const keep = (from: number): boolean => {
      const line = doc.lineAt(from)
      return !touched.some(([a, b]) => a <= line.to && b >= line.from)
    }
    return {
      lines: value.lines.map(tr.changes).update({ filter: (from) => keep(from) }),
      gutter: value.gutter.map(tr.changes).update({ filter: (from) => keep(from) }),
    }
  },
  provide: (field) => EditorView.decorations.from(field, (marks) => marks.lines),
})

/** Add to the editor (createEditor's `extensions`). */
export const runMarks: Extension = [
  runMarksField,
  gutter({ class: 'cm-run-gutter', markers: (view) => view.state.field(runMarksField).gutter }),
]

export function showRunMarks(view: EditorView, marks: RunMark[]): void {
  view.dispatch({ effects: setMarks.of(marks) })
}

export function clearRunMarks(view: EditorView): void {
  if (view.state.field(runMarksField, false)?.lines.size) view.dispatch({ effects: setMarks.of([]) })
}

/** A mark kept while its file is not shown: where its line starts (a Yjs relative
 * position, so edits above it move it along) and what the line said when marked. */
interface Kept {
  at: Y.RelativePosition
  snippet: string
  message: string
}

/** A run's marks across the workspace. The editor shows one file at a time (a tab switch
 * gives it a new state), so each file's marks are kept here, by its Y.Text (a renamed
 * entry file keeps them), and shown again when its tab is: a mark for `util.py:3` shows
 * in util.py only. A line whose code changed since it was marked (here or while another
 * file was shown) is not marked again. */
export class WorkspaceRunMarks {
  private kept = new Map<Y.Text, Kept[]>()

  constructor(
    private readonly doc: Y.Doc,
    private readonly view: () => EditorView | null,
    /** The path of the file the editor shows now. */
    private readonly shown: () => string,
  ) {}

  /** Replaces every mark with a run's (`path` '' or absent: the file shown). */
  set(marks: RunMark[]): void {
    this.kept = new Map()
    for (const mark of marks) {
      const text = fileText(this.doc, mark.path || this.shown())
      if (!text) continue
      const lines = text.toString().split('\n')
      if (mark.line > lines.length) continue
      let offset = 0
      for (let i = 0; i < mark.line - 1; i++) offset += lines[i].length + 1
      const list = this.kept.get(text) ?? []
      list.push({ at: Y.createRelativePositionFromTypeIndex(text, offset), snippet: lines[mark.line - 1], message: mark.message })
      this.kept.set(text, list)
    }
    this.refresh()
  }

  clear(): void {
    this.kept = new Map()
    const view = this.view()
    if (view) clearRunMarks(view)
  }

  /** Shows the marks of the file the editor shows now (after a tab switch). */
  refresh(): void {
    const view = this.view()
    if (!view) return
    const text = fileText(this.doc, this.shown())
    const kept = text ? (this.kept.get(text) ?? []) : []
    const doc = view.state.doc
    const showing: RunMark[] = []
    const still = kept.filter((mark) => {
      const at = Y.createAbsolutePositionFromRelativePosition(mark.at, this.doc)
      if (!at || at.type !== text || at.index > doc.length) return false
      const line = doc.lineAt(at.index)
      if (line.from !== at.index || line.text !== mark.snippet) return false
      showing.push({ line: line.number, message: mark.message })
      return true
    })
    if (text) this.kept.set(text, still)
    if (showing.length || view.state.field(runMarksField, false)?.lines.size) view.dispatch({ effects: setMarks.of(showing) })
  }
}
