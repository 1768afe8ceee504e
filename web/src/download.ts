/** Download the room's code as a file named from the room title and the language's
 * extension ("Binary search" in Python -> binary-search.py; no title -> main.py). */
import { h } from './dom'
import { icon } from './icons'

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

export function fileName(title: string, language: string | undefined): string {
  const ext = (language && EXTENSIONS[language]) || 'txt'
  const base = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
  return `${base || 'main'}.${ext}`
}

export function downloadButton(text: () => string, title: () => string, language: () => string | undefined): HTMLButtonElement {
  const button = h(
    'button',
    { type: 'button', class: 'btn download-button', title: 'Download the code as a file' },
    icon('download'),
    h('span', { class: 'btn-label' }, 'Download'),
  )
  button.addEventListener('click', () => {
    const url = URL.createObjectURL(new Blob([text()], { type: 'text/plain;charset=utf-8' }))
    const link = h('a', { href: url, download: fileName(title(), language()), hidden: true })
    document.body.append(link)
    link.click()
    link.remove()
    setTimeout(() => URL.revokeObjectURL(url), 10_000)
  })
  return button
}
