"""The shared document's root names and typed accessors (DESIGN.md, "The shared document").

Root names are part of the contract with every client: a typo here is a silent fork.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text

from crdt import paths

CODE = "code"
META = "meta"
CHAT = "chat"
COMMENTS = "comments"
RUNS = "runs"
# The workspace's other files: path (crdt.paths normal form) -> Text. The entry file is not
# here: it is ``code`` (so a stock client bound to ``code`` edits it), named by
# ``meta.entry`` (absent in rooms made before workspaces: crdt.paths.default_entry).
FILES = "files"
ENTRY = "entry"  # key of ``meta``
# The classroom's state, written by the server only (``rooms.classroom``): a Map of
# scalars (JSON strings, numbers) keyed by kind and id, e.g. ``hand:<key>``.
CLASS = "class"

ROOTS = (CODE, META, CHAT, COMMENTS, RUNS, FILES, CLASS)

# The shared type behind each root. A root read with the wrong type reports no events.
ROOT_TYPES: dict[str, type[Text] | type[Map[Any]] | type[Array[Any]]] = {
    CODE: Text,
    META: Map,
    CHAT: Array,
    COMMENTS: Map,
    RUNS: Map,
    FILES: Map,
    CLASS: Map,
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


def files(doc: Doc[Any]) -> Map[Any]:
    value: Map[Any] = doc.get(FILES, type=Map)
    return value


def class_state(doc: Doc[Any]) -> Map[Any]:
    value: Map[Any] = doc.get(CLASS, type=Map)
    return value


def entry_path(doc: Doc[Any]) -> str:
    """The entry file's path: ``meta.entry``, or the default for the room's language."""
    m = meta(doc)
    entry = m.get(ENTRY)
    if isinstance(entry, str) and paths.is_normal(entry):
        return entry
    language = m.get("language")
    return paths.default_entry(language if isinstance(language, str) else None)


def file_text(doc: Doc[Any], path: str) -> Text | None:
    """The Text of the file at ``path`` (the entry file's is ``code``), or None."""
    if path == entry_path(doc):
        return code(doc)
    value = files(doc).get(path)
    return value if isinstance(value, Text) else None


def workspace(doc: Doc[Any]) -> dict[str, str]:
    """Every file of the workspace, path -> text, the entry file first."""
    out = {entry_path(doc): code_text(doc)}
    for path, value in files(doc).items():
        if isinstance(value, Text) and path not in out:
            out[path] = str(value)
    return out


def code_text(doc: Doc[Any]) -> str:
    """The current source text, as a Python string."""
    return str(code(doc))
