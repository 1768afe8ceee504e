"""Which of the workspace's files the AI is shown, in which order, within a budget of
characters: the current file first (always, cut by the prompt if it alone is over),
then the files it or the question refers to, then the rest by size, smallest first, so
as many as possible fit. A file that does not fit whole is listed but not shown.

"Refers to" is read loosely and the same way for every language: a file is referred to
when the question names its path, its file name or (as a word) its stem, or when an
import line of the current file (``import``, ``from``, ``#include``, ``require``,
``use``, ``mod``) names its module as ``a.b``, ``a/b`` or its stem as a word.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

IMPORT_LINE = re.compile(
    r"^\s*(?:import\b|from\b|#\s*include\b|use\b|mod\b|package\b)|\brequire\s*\(|\bfrom\s+['\"]",
    re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class Chosen:
    order: list[str]  # every path: current, referred-to, the rest by size
    shown: frozenset[str]  # the paths whose text fits the budget


def choose(current: str, texts: dict[str, str], question: str, budget: int) -> Chosen:
    """``texts``: path -> text of every file (``current`` among them)."""
    others = [p for p in texts if p != current]
    imports = "\n".join(
        line for line in texts.get(current, "").splitlines() if IMPORT_LINE.search(line)
    )
    referred = [p for p in others if refers(question, p) or imported(imports, p)]
    rest = [p for p in others if p not in referred]
    by_size = sorted(rest, key=lambda p: (len(texts[p]), p))
    order = [current, *sorted(referred, key=lambda p: (len(texts[p]), p)), *by_size]
    left = budget - len(texts.get(current, ""))
    shown = {current}
    for path in order[1:]:
        size = len(texts[path])
        if size <= left:
            shown.add(path)
            left -= size
    return Chosen(order, frozenset(shown))


def _stem(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path))[0]


def _word(word: str, text: str) -> bool:
    return bool(word) and re.search(rf"(?<![\w.]){re.escape(word)}(?![\w])", text) is not None


def refers(question: str, path: str) -> bool:
    """Does the question name ``path`` (its path, file name, or stem as a word)?"""
    return (
        path in question
        or posixpath.basename(path) in question
        or (len(_stem(path)) >= 3 and _word(_stem(path), question))
    )


def imported(imports: str, path: str) -> bool:
    """Do the import lines name ``path``'s module?"""
    if not imports:
        return False
    module = posixpath.splitext(path)[0]
    dotted = module.replace("/", ".")
    return (
        posixpath.basename(path) in imports
        or module in imports
        or _word(dotted, imports)
        or _word(_stem(path), imports)
    )
