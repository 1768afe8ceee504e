"""The shared document's root names and typed accessors (DESIGN.md, "The shared document").

Root names are part of the contract with every client: a typo here is a silent fork.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text

CODE = "code"
META = "meta"
CHAT = "chat"
COMMENTS = "comments"
RUNS = "runs"

ROOTS = (CODE, META, CHAT, COMMENTS, RUNS)

# The shared type behind each root. A root read with the wrong type reports no events.
ROOT_TYPES: dict[str, type[Text] | type[Map[Any]] | type[Array[Any]]] = {
    CODE: Text,
    META: Map,
    CHAT: Array,
    COMMENTS: Map,
    RUNS: Map,
}


def code(doc: Doc[Any]) -> Text:
    value: Text = doc.get(CODE, type=Text)
    return value


def meta(doc: Doc[Any]) -> Map[Any]:
    value: Map[Any] = doc.get(META, type=Map)
    return value


def chat(doc: Doc[Any]) -> Array[Any]:
    value: Array[Any] = doc.get(CHAT, type=Array)
    return value


def comments(doc: Doc[Any]) -> Map[Any]:
    value: Map[Any] = doc.get(COMMENTS, type=Map)
    return value


def runs(doc: Doc[Any]) -> Map[Any]:
    value: Map[Any] = doc.get(RUNS, type=Map)
    return value


def code_text(doc: Doc[Any]) -> str:
    """The current source text, as a Python string."""
    return str(code(doc))
