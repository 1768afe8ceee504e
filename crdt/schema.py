"""The shared document's root names and typed accessors (DESIGN.md, "The shared document").

Root names are part of the contract with every client: a typo here is a silent fork.
"""

from __future__ import annotations

from pycrdt import Array, Doc, Map, Text

CODE = "code"
META = "meta"
CHAT = "chat"
COMMENTS = "comments"
RUNS = "runs"

ROOTS = (CODE, META, CHAT, COMMENTS, RUNS)


def code(doc: Doc) -> Text:
    return doc.get(CODE, type=Text)


def meta(doc: Doc) -> Map:
    return doc.get(META, type=Map)


def chat(doc: Doc) -> Array:
    return doc.get(CHAT, type=Array)


def comments(doc: Doc) -> Map:
    return doc.get(COMMENTS, type=Map)


def runs(doc: Doc) -> Map:
    return doc.get(RUNS, type=Map)


def code_text(doc: Doc) -> str:
    """The current source text, as a Python string."""
    return str(code(doc))
