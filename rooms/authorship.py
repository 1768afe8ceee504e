"""Who wrote a chat message, a comment or a reply comes from the verified token, and
what only the server writes stays the server's: a peer's own claim is never trusted.

Chat entries, comments and replies are Yjs data a peer writes itself, ``author``
included: a reviewer could post as the owner, ask the AI in the owner's name, or
shape a chat entry like an AI suggestion for the owner to apply; an editor could
write a run the REST API would serve. Refusing such updates would need every
update decoded; instead the room watches the three roots (observers fire only when
those change, so code keystrokes cost nothing here) and, right after a peer's
update touched them and before anyone else receives it, makes one server edit
that corrects it:

- a chat entry, comment or reply the peer added is stamped with its verified
  ``author`` (token name), ``author_id`` (token ``sub``) and ``author_role``, and
  loses every field only the AI writes (``ai``, ``kind``, ``old_text``...);
- a change to those fields of an existing entry, or to another person's text, is
  undone;
- any change to ``runs`` or ``class`` is undone: those roots are the server's record
  (runs; the classroom's hands, questions and summaries, ``rooms.classroom``).

The room relays the peer's update and this correction as one, so other browsers
never show the forged fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pycrdt import Array, Doc, Map

from crdt import schema

AUTHOR_FIELDS = ("author", "author_id", "author_role")
# Written by the AI (or the server for it) only: a suggestion's shape and state, and the
# record of an AI code change (what it inserted and removed, for whom, who undid it).
AI_FIELDS = (
    "ai", "kind", "pending", "asker", "old_text", "new_text", "start_line", "status",
    "change", "change_for", "undone", "undone_by", "undone_by_id",
)  # fmt: skip
# Written by the server only: a student's question a teacher published to the class chat
# (``server.class_api``), so no peer can post one in a student's or a teacher's name.
CLASS_FIELDS = ("question", "published_by", "published_by_id")
PROTECTED = frozenset(AUTHOR_FIELDS + AI_FIELDS + CLASS_FIELDS)
# The AI's, on chat entries only: the file a suggestion or an AI change is in, and that
# applying it makes a new file. (A comment's ``path`` is not the server's: the page that
# renames a file rewrites it, with the comment's anchors, for every comment in the file.)
AI_CHAT_FIELDS = ("path", "new_file")
# Roots only the server writes: a peer's change there is undone whole.
SERVER_ROOTS = frozenset({schema.RUNS, schema.CLASS})


@dataclass(frozen=True, slots=True)
class Author:
    """A verified identity, as stamped on what it writes."""

    name: str
    user_id: str
    role: str


@dataclass(slots=True)
class _Change:
    root: str
    path: list[Any]
    target: Any  # the Map or Array that changed
    keys: dict[str, dict[str, Any]] | None  # a map's changes, with old values
    delta: list[dict[str, Any]] | None  # an array's changes


class Authorship:
    """Watches ``chat``, ``comments`` and the server's roots (``runs``, ``class``) of one
    document for what a peer's update changed there, and makes the correction."""

    def __init__(self, doc: Doc[Any]) -> None:
        self.pending: list[_Change] = []
        self._subscriptions: list[Any] = []
        self._owned: dict[str, dict[str, Any]] = {}  # server root -> its content, the record
        self.attach(doc)

    def attach(self, doc: Doc[Any]) -> None:
        """Watch ``doc`` (a room's document, or the one a rebuild replaced it with)."""
        self.pending.clear()
        self._subscriptions = [
            (root, root.observe_deep(self._observer(name)))
            for name, root in (
                (schema.CHAT, schema.chat(doc)),
                (schema.COMMENTS, schema.comments(doc)),
                (schema.RUNS, schema.runs(doc)),
                (schema.CLASS, schema.class_state(doc)),
            )
        ]
        self._owned = {name: _content(doc, name) for name in SERVER_ROOTS}

    def _observer(self, name: str) -> Callable[[list[Any]], None]:
        def record(events: list[Any]) -> None:
            # Read now: pycrdt's events are only valid inside the transaction.
            for event in events:
                keys = getattr(event, "keys", None)
                delta = getattr(event, "delta", None)
                self.pending.append(
                    _Change(
                        name,
                        list(event.path),
                        event.target,
                        dict(keys) if keys is not None else None,
                        list(delta) if delta is not None else None,
                    )
                )

        return record

    def trusted(self, doc: Doc[Any]) -> None:
        """The server (or another instance) changed the document: nothing to correct,
        and the server's roots as they are now are the record."""
        for name in {change.root for change in self.pending} & SERVER_ROOTS:
            self._owned[name] = _content(doc, name)
        self.pending.clear()

    def correction(self, author: Author) -> tuple[Callable[[Doc[Any]], None], list[str]] | None:
        """The server edit that makes the peer's last update honest, and the texts of
        the chat messages it posted (for ``@ai``); None when nothing needs it."""
        changes, self.pending = self.pending, []
        stamps: list[tuple[Map[Any], bool]] = []  # (entry, is a chat entry)
        restores: list[tuple[Map[Any], str, dict[str, Any]]] = []
        replies: list[tuple[Array[Any], int, dict[str, Any]]] = []
        owned: set[str] = set()  # server roots the peer changed
        posted: list[str] = []
        for change in changes:
            if change.root in SERVER_ROOTS:
                owned.add(change.root)
            elif not change.path and change.delta is not None:  # chat: entries added
                for item in _inserted(change.delta):
                    if isinstance(item[1], Map):
                        stamps.append((item[1], True))
                        text = item[1].get("text")
                        if isinstance(text, str):
                            posted.append(text)
            elif not change.path and change.keys is not None:  # comments: entries added
                for value in (c.get("newValue") for c in change.keys.values()):
                    if isinstance(value, Map):
                        stamps.append((value, False))
            elif len(change.path) == 1 and change.keys is not None:  # an entry's fields
                entry = change.target
                own = entry.get("author_id") == author.user_id
                chat = change.root == schema.CHAT
                for key, what in change.keys.items():
                    if (
                        key in PROTECTED
                        or (chat and key in AI_CHAT_FIELDS)
                        or (key == "text" and not own)
                    ):
                        restores.append((entry, key, what))
            elif change.path[-1:] == ["replies"] and change.delta is not None:
                for index, value in _inserted(change.delta):
                    if isinstance(value, dict):
                        replies.append((change.target, index, value))
        if not (stamps or restores or replies or owned):
            return None
        records = {name: self._owned[name] for name in owned}

        def correct(doc: Doc[Any]) -> None:
            for entry, in_chat in stamps:
                for key in AI_FIELDS + CLASS_FIELDS + (AI_CHAT_FIELDS if in_chat else ()):
                    if key in entry:
                        del entry[key]
                entry["author"] = author.name
                entry["author_id"] = author.user_id
                entry["author_role"] = author.role
            for entry, key, what in restores:
                if what.get("action") == "add":
                    if key in entry:
                        del entry[key]
                elif _scalar(what.get("oldValue")):
                    entry[key] = what["oldValue"]
            for array, index, value in replies:
                stamped = {k: v for k, v in value.items() if k not in PROTECTED} | {
                    "author": author.name,
                    "author_id": author.user_id,
                    "author_role": author.role,
                }
                if index < len(array) and array[index] == value:
                    del array[index]
                    array.insert(index, stamped)
            for name, record in records.items():
                _restore(doc.get(name, type=Map), record)

        return correct, posted


def _inserted(delta: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    """(index, value) of what an array delta inserted."""
    out: list[tuple[int, Any]] = []
    at = 0
    for op in delta:
        if "retain" in op:
            at += int(op["retain"])
        elif "insert" in op:
            for value in op["insert"]:
                out.append((at, value))
                at += 1
    return out


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _content(doc: Doc[Any], name: str) -> dict[str, Any]:
    value: dict[str, Any] = doc.get(name, type=Map).to_py() or {}
    return value


def _restore(root: Map[Any], record: dict[str, Any]) -> None:
    """Make a server root hold exactly ``record`` again: ``runs`` (a Map of Maps) or
    ``class`` (a Map of scalars)."""
    for key in [k for k in root.keys() if k not in record]:
        del root[key]
    for key, fields in record.items():
        entry = root.get(key)
        if not isinstance(fields, dict):
            if entry != fields:
                root[key] = fields
            continue
        if not isinstance(entry, Map):
            root[key] = Map(dict(fields))
            continue
        current = entry.to_py() or {}
        if current == fields:
            continue
        for field in [k for k in current if k not in fields]:
            del entry[field]
        for field, value in fields.items():
            if current.get(field) != value:
                entry[field] = value
