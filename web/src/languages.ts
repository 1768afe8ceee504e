/** Syntax highlighting per `meta.language`; each language's parser is loaded on demand. */
import type { Extension } from '@codemirror/state'

export interface Language {
  id: string
  label: string
  /** One level of indentation (CodeMirror's `indentUnit`): the language's own convention. */
  indent: string
  load: () => Promise<Extension>
}

const SPACES_2 = '  '
const SPACES_4 = '    '
/** Plain text (no language set) indents by four spaces. */
export const DEFAULT_INDENT = SPACES_4

export const LANGUAGES: Language[] = [
  // PEP 8: four spaces.
  { id: 'python', label: 'Python', indent: SPACES_4, load: async () => (await import('@codemirror/lang-python')).python() },
  {
    id: 'javascript',
    label: 'JavaScript',
    indent: SPACES_2,
    load: async () => (await import('@codemirror/lang-javascript')).javascript({ jsx: true }),
  },
  {
    id: 'typescript',
    label: 'TypeScript',
    indent: SPACES_2,
    load: async () => (await import('@codemirror/lang-javascript')).javascript({ typescript: true }),
  },
  { id: 'java', label: 'Java', indent: SPACES_4, load: async () => (await import('@codemirror/lang-java')).java() },
  { id: 'c', label: 'C', indent: SPACES_4, load: async () => (await import('@codemirror/lang-cpp')).cpp() },
  { id: 'cpp', label: 'C++', indent: SPACES_4, load: async () => (await import('@codemirror/lang-cpp')).cpp() },
  // gofmt: tabs.
  { id: 'go', label: 'Go', indent: '\t', load: async () => (await import('@codemirror/lang-go')).go() },
  { id: 'rust', label: 'Rust', indent: SPACES_4, load: async () => (await import('@codemirror/lang-rust')).rust() },
]

const ALIASES: Record<string, string> = { js: 'javascript', ts: 'typescript', 'c++': 'cpp', py: 'python', rs: 'rust' }

export function findLanguage(id: string | undefined): Language | null {
  if (!id) return null
  const key = ALIASES[id] ?? id
  return LANGUAGES.find((l) => l.id === key) ?? null
}

export function languageLabel(id: string | undefined): string {
  return findLanguage(id)?.label ?? (id || 'Plain text')
}
