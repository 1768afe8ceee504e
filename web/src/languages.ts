/** Syntax highlighting per `meta.language`; each language's parser is loaded on demand. */
import type { Extension } from '@codemirror/state'

export interface Language {
  id: string
  label: string
  load: () => Promise<Extension>
}

export const LANGUAGES: Language[] = [
  { id: 'python', label: 'Python', load: async () => (await import('@codemirror/lang-python')).python() },
  {
    id: 'javascript',
    label: 'JavaScript',
    load: async () => (await import('@codemirror/lang-javascript')).javascript({ jsx: true }),
  },
  {
    id: 'typescript',
    label: 'TypeScript',
    load: async () => (await import('@codemirror/lang-javascript')).javascript({ typescript: true }),
  },
  { id: 'java', label: 'Java', load: async () => (await import('@codemirror/lang-java')).java() },
  { id: 'c', label: 'C', load: async () => (await import('@codemirror/lang-cpp')).cpp() },
  { id: 'cpp', label: 'C++', load: async () => (await import('@codemirror/lang-cpp')).cpp() },
  { id: 'go', label: 'Go', load: async () => (await import('@codemirror/lang-go')).go() },
  { id: 'rust', label: 'Rust', load: async () => (await import('@codemirror/lang-rust')).rust() },
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
