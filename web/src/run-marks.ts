/**
 * Error lines of a run, marked in the editor: a line decoration and a gutter marker whose
 * hover (title) is the error message. Marks come from a run's stderr / compile output,
 * parsed per language against the file names Judge0 CE 1.13.1 gives each language's
 * source (db/languages/active.rb: script.py, Main.java, main.c, main.cpp, main.go,
 * main.rs, script.js, script.ts). A mark goes when the code on its line changes; all go
 * when the next run starts (`clearRunMarks`).
 */
import { RangeSet, RangeSetBuilder, StateEffect, StateField, type Extension, type Text } from '@codemirror/state'
import { Decoration, EditorView, gutter, GutterMarker, type DecorationSet } from '@codemirror/view'
import './runs.css'

export interface RunMark {
  /** 1-based line of the code that ran. */
  line: number
  message: string
}

const MAX_MARKS = 20
const MAX_MESSAGE = 300

const clean = (text: string): string => {
  const one = text.trim().replace(/\s+/g, ' ')
  return one.length > MAX_MESSAGE ? `${one.slice(0, MAX_MESSAGE - 1)}…` : one
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean)
  return lines[lines.length - 1] ?? ''
}

/** Python: the last `File "…script.py", line N` frame (the deepest one in the user's
 * file), with the exception line (the traceback's last line). */
function python(stderr: string): RunMark[] {
  const frames = [...stderr.matchAll(/File "(?:[^"]*\/)?(?:script|main)\.py", line (\d+)/g)]
  const last = frames[frames.length - 1]
  return last ? [{ line: Number(last[1]), message: lastLine(stderr) }] : []
}

/** Java: `Main.java:N: error: …` (javac); at run time the first `(Main.java:N)` frame,
 * with the exception line. */
function java(compile: string, stderr: string): RunMark[] {
  const errors = [...compile.matchAll(/(?:^|\/)Main\.java:(\d+): error: (.*)$/gm)]
  if (errors.length) return errors.map((m) => ({ line: Number(m[1]), message: m[2] }))
  const frame = /\(Main\.java:(\d+)\)/.exec(stderr)
  if (!frame) return []
  const exception = stderr.split('\n').find((l) => /Exception|Error/.test(l)) ?? lastLine(stderr)
  return [{ line: Number(frame[1]), message: exception.replace(/^Exception in thread "[^"]*" /, '') }]
}

/** gcc / g++: `main.c:N:M: error: …` (fatal errors too; warnings are not marked). */
function cFamily(compile: string, file: string): RunMark[] {
  const pattern = new RegExp(`(?:^|/)${file.replace('.', '\\.')}:(\\d+):(?:\\d+:)? (?:fatal )?error: (.*)$`, 'gm')
  return [...compile.matchAll(pattern)].map((m) => ({ line: Number(m[1]), message: m[2] }))
}

/** Go: `./main.go:N:M: …` (go build); a panic's `main.go:N` frame at run time. */
function go(compile: string, stderr: string): RunMark[] {
  const errors = [...compile.matchAll(/(?:^|\s|\/)main\.go:(\d+):(?:\d+:)? (.*)$/gm)]
  if (errors.length) return errors.map((m) => ({ line: Number(m[1]), message: m[2] }))
  const frame = /main\.go:(\d+)/.exec(stderr)
  const panic = stderr.split('\n').find((l) => l.startsWith('panic:')) ?? lastLine(stderr)
  return frame ? [{ line: Number(frame[1]), message: panic }] : []
}

/** rustc: `error[E…]: …` followed by ` --> main.rs:N:M`; a panic's `main.rs:N:M`. */
function rust(compile: string, stderr: string): RunMark[] {
  const marks: RunMark[] = []
  for (const m of compile.matchAll(/^(error(?:\[E\d+\])?: .*)\n\s*--> (?:.*\/)?main\.rs:(\d+):\d+/gm)) {
    marks.push({ line: Number(m[2]), message: m[1] })
  }
  if (marks.length) return marks
  const panic = /panicked at (.*?),? (?:.*\/)?main\.rs:(\d+):\d+/.exec(stderr)
  if (panic) return [{ line: Number(panic[2]), message: `panicked at ${panic[1]}` }]
  const after = /panicked at (?:.*\/)?main\.rs:(\d+):\d+:?\n(.*)/.exec(stderr)
  return after ? [{ line: Number(after[1]), message: `panicked: ${after[2]}` }] : []
}

/** Node: the first `script.js:N` (the header line or a stack frame), with the error line. */
function javascript(stderr: string): RunMark[] {
  const frame = /(?:^|\/|\()script\.js:(\d+)/m.exec(stderr)
  if (!frame) return []
  const error = stderr.split('\n').find((l) => /^\w*(Error|Exception)\b.*:/.test(l.trim())) ?? lastLine(stderr)
  return [{ line: Number(frame[1]), message: error }]
}

/** tsc: `script.ts(N,M): error TS…: …`. Run-time frames point into the compiled
 * script.js, whose lines need not be the source's: not marked. */
function typescript(compile: string, stdout: string): RunMark[] {
  const text = `${compile}\n${stdout}`
  const pattern = /(?:^|\/)script\.ts(?:\((\d+),\d+\): error|:(\d+):\d+ - error) (TS\d+: .*)$/gm
  return [...text.matchAll(pattern)].map((m) => ({ line: Number(m[1] ?? m[2]), message: m[3] }))
}

/** The lines a run's output blames, for the room's language. */
export function parseRunErrors(language: string, out: { stderr?: string; compile_output?: string; stdout?: string }): RunMark[] {
  const stderr = out.stderr ?? ''
  const compile = out.compile_output ?? ''
  let marks: RunMark[]
  switch (language) {
    case 'python':
      marks = python(stderr)
      break
    case 'java':
      marks = java(compile, stderr)
      break
    case 'c':
      marks = cFamily(compile, 'main.c')
      break
    case 'cpp':
      marks = cFamily(compile, 'main.cpp')
      break
    case 'go':
      marks = go(compile, stderr)
      break
    case 'rust':
      marks = rust(compile, stderr)
      break
    case 'javascript':
      marks = javascript(stderr)
      break
    case 'typescript':
      marks = typescript(compile, out.stdout ?? '')
      break
    default:
      marks = []
  }
  const seen = new Map<number, RunMark>()
  for (const mark of marks) {
    if (!Number.isInteger(mark.line) || mark.line < 1) continue
    const known = seen.get(mark.line)
    if (known) known.message = clean(`${known.message}; ${mark.message}`)
    else if (seen.size < MAX_MARKS) seen.set(mark.line, { line: mark.line, message: clean(mark.message) })
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
