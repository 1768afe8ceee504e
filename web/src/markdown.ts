/** The AI's answers as Markdown, safely: `markdown-it` with `html: false` (raw HTML in
 * the answer is shown as text, never parsed), links only to http(s) and opened with
 * `rel="noopener noreferrer"`, no images (an answer must not load anything). Code blocks
 * are highlighted with the editor's own parsers (`languages.ts`, loaded on demand)
 * through `@lezer/highlight`'s `highlightCode`, writing text nodes only. Loaded lazily
 * by the chat panel: only rooms with AI answers pay for it. */
import { LanguageSupport } from '@codemirror/language'
import { classHighlighter, highlightCode } from '@lezer/highlight'
import type { Parser } from '@lezer/common'
import { diffLines } from 'diff'
import MarkdownIt from 'markdown-it'
import { h } from './dom'
import { findLanguage } from './languages'

const md = new MarkdownIt({ html: false, linkify: true, breaks: true })
md.disable(['image'])
md.validateLink = (url: string) => /^https?:\/\//i.test(url.trim())
md.renderer.rules.link_open = (tokens, idx, options, _env, self) => {
  tokens[idx].attrSet('rel', 'noopener noreferrer')
  tokens[idx].attrSet('target', '_blank')
  return self.renderToken(tokens, idx, options)
}

const parsers = new Map<string, Promise<Parser | null>>()

function parserFor(language: string): Promise<Parser | null> {
  let found = parsers.get(language)
  if (!found) {
    const lang = findLanguage(language)
    found = lang
      ? lang.load().then((ext) => (ext instanceof LanguageSupport ? ext.language.parser : null), () => null)
      : Promise.resolve(null)
    parsers.set(language, found)
  }
  return found
}

/** Replace `code`'s text by highlighted spans (class names only, `tok-*`). */
export async function highlightInto(code: HTMLElement, language: string): Promise<void> {
  const source = code.textContent ?? ''
  const parser = await parserFor(language)
  if (!parser || code.textContent !== source) return // unknown language, or re-rendered meanwhile
  const out = document.createDocumentFragment()
  highlightCode(
    source,
    parser.parse(source),
    classHighlighter,
    (text, classes) => out.append(classes ? h('span', { class: classes }, text) : document.createTextNode(text)),
    () => out.append('\n'),
  )
  code.replaceChildren(out)
}

/** Render `text` (Markdown) into `target`; fenced code without a language is taken to be
 * in `language` (the room's). */
export function renderMarkdown(target: HTMLElement, text: string, language: string): void {
  target.innerHTML = md.render(text) // html: false: every tag in here is markdown-it's own
  for (const code of target.querySelectorAll<HTMLElement>('pre > code')) {
    const tagged = /(?:^|\s)language-([\w+#-]+)/.exec(code.className)?.[1]
    void highlightInto(code, tagged ?? language)
  }
}

/** A line diff of `before` and `after`: removed lines in `<del>`, added in `<ins>` (with
 * a visible sign), the rest as context; each line's text a text node. */
export function renderDiff(target: HTMLElement, before: string, after: string): void {
  const lines: HTMLElement[] = []
  for (const part of diffLines(before, after)) {
    const kind = part.added ? 'add' : part.removed ? 'del' : 'same'
    const sign = part.added ? '+' : part.removed ? '−' : ' '
    const body = part.value.endsWith('\n') ? part.value.slice(0, -1) : part.value
    for (const line of body.split('\n')) {
      const tag = part.added ? 'ins' : part.removed ? 'del' : 'span'
      lines.push(h(tag, { class: `diff-line diff-${kind}` }, h('span', { class: 'diff-sign', 'aria-hidden': 'true' }, sign), line || ' '))
    }
  }
  target.replaceChildren(...lines)
}
