"""The AI as a member of one room: a replica ``Doc`` with its own client id, its
presence, and every write it makes (chat entries, code edits).

Each write is made in the replica in one transaction with no ``await`` between reading
positions and applying; the resulting update goes to the room with
``Room.edit(origin="ai")``: stored, relayed and published like a peer's update,
attributed to the AI's client id. Its awareness entry (``{user: {name, color}, cursor}``)
is announced through ``Room.set_server_presence``; the cursor is built from the AI's own
item ids, which stay valid however the text around them moves.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

from pycrdt import Array, Decoder, Doc, Map, Text

from ai_assist import changes
from ai_assist.anchors import Anchors
from ai_assist.changes import Edit, RevertRefused
from crdt import failures, offsets, schema, structs
from crdt.awareness import NULL_STATE, Entry, encode_update
from rooms.authorship import Author
from rooms.room import Room

AI_NAME = "CodeMentor AI"
AI_COLOR = "#8b5cf6"
AI_COLOR_LIGHT = "#8b5cf633"
PRESENCE_OWNER = "ai"


class ReplicaFailed(RuntimeError):
    """yrs failed in the AI's replica; the next write starts from a fresh one."""


class FileMissing(RuntimeError):
    """The file an edit is for is not in the workspace (any more)."""


class Replica:
    """The AI's copy of one room document, with its own client id, and its presence."""

    def __init__(self, room: Room) -> None:
        self.room = room
        # The room document it follows: a rebuilt one (``Room.rebuild_document``) needs
        # a new replica.
        self.source = room.doc
        self.doc: Doc[Any] = Doc(client_id=random.randint(1, 2**53 - 1))
        self.clock = 0
        self.cursor: dict[str, Any] | None = None
        self.broken = False
        self.sync()

    @property
    def client_id(self) -> int:
        return int(self.doc.client_id)

    def sync(self) -> None:
        self.doc.apply_update(self.room.doc.get_update(self.doc.get_state()))

    def write(self, change: Callable[[Doc[Any]], None]) -> None:
        """Catch up with the room, change the replica in one transaction, apply the
        difference to the room as one ``"ai"`` transaction. Synchronous throughout."""
        try:
            self.sync()
            before = self.doc.get_state()
            with self.doc.transaction(origin="ai"):
                change(self.doc)
            update = self.doc.get_update(before)
        except BaseException as exc:
            if not failures.is_yrs_failure(exc):
                raise
            # The replica may hold half of the change: never use it again.
            self.broken = True
            raise ReplicaFailed(failures.describe(exc)) from exc
        self.room.edit(lambda doc: doc.apply_update(update), origin="ai")

    def announce(self, cursor: dict[str, Any] | None, file: str | None = None) -> None:
        """Presence: ``file`` is the path the cursor is in (clients show a cursor only
        to people in the same file)."""
        self.cursor = cursor
        self.clock += 1
        state: dict[str, Any] = {
            # role "ai": clients badge it, and tell its edits apart by this client id.
            "user": {
                "name": AI_NAME,
                "color": AI_COLOR,
                "colorLight": AI_COLOR_LIGHT,
                "role": "ai",
                "uid": "codementor-ai",
            },
            "cursor": cursor,
        }
        if file is not None:
            state["file"] = file
        entry = Entry(self.client_id, self.clock, json.dumps(state))
        self.room.set_server_presence(PRESENCE_OWNER, encode_update([entry]))

    def leave(self) -> None:
        self.clock += 1
        entry = Entry(self.client_id, self.clock, NULL_STATE)
        self.room.set_server_presence(PRESENCE_OWNER, encode_update([entry]))


class Participant:
    """The AI in one room. It joins (a replica, presence) with its first write, rejoins
    with a fresh replica when the old one broke or the room's document was rebuilt,
    and leaves when idle."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.replica: Replica | None = None
        self.last_active = time.monotonic()

    @property
    def me(self) -> Replica:
        current = self.replica
        if (
            current is None
            or current.room is not self.room
            or current.source is not self.room.doc
            or current.broken
        ):
            if current is not None and current.room is self.room:
                current.leave()  # its presence goes; the new replica has a new client id
            current = self.replica = Replica(self.room)
            current.announce(None)
        return current

    def post(self, text: str, **extra: Any) -> str:
        """A new chat entry by the AI; returns its id."""
        entry_id = _new_id()

        def change(doc: Doc[Any]) -> None:
            fields: dict[str, Any] = {
                "id": entry_id, "author": AI_NAME, "color": AI_COLOR, "text": text,
                "ts": float(int(time.time() * 1000)), "ai": True, **extra,
            }  # fmt: skip
            schema.chat(doc).append(Map(fields))

        self.me.write(change)
        self.last_active = time.monotonic()
        return entry_id

    def post_for(self, author: Author, text: str) -> str:
        """A chat entry in ``author``'s name (a verified identity): the question someone
        asked through the REST API, shown before its answer."""
        entry_id = _new_id()

        def change(doc: Doc[Any]) -> None:
            fields: dict[str, Any] = {
                "id": entry_id, "author": author.name, "author_id": author.user_id,
                "author_role": author.role, "text": text, "ts": float(int(time.time() * 1000)),
            }  # fmt: skip
            schema.chat(doc).append(Map(fields))

        self.me.write(change)
        self.last_active = time.monotonic()
        return entry_id

    def update_entry(self, entry_id: str, **values: Any) -> None:
        def change(doc: Doc[Any]) -> None:
            entry = find_entry(schema.chat(doc), entry_id)
            if entry is not None:
                for key, value in values.items():
                    entry[key] = value

        self.me.write(change)
        self.last_active = time.monotonic()

    def edit(
        self,
        anchors: Anchors,
        start: int,
        end: int,
        new: str,
        record: tuple[str, str] | None = None,
        path: str | None = None,
        **entry_values: Any,
    ) -> None:
        """Resolve the snapshot range ``start``-``end`` (code points) in the current text
        of the file ``path`` (default: the entry file) and replace it, in one
        transaction; then set the AI's cursor after the new text. ``record``: (chat
        entry id, user id it was done for): the change is added to that entry's
        ``change`` record (``changes``), with ``entry_values``, in the same transaction,
        so it can be reverted later as one unit. Raises ``FileMissing``."""
        me = self.me
        me.sync()
        where = path or schema.entry_path(me.doc)
        if schema.file_text(me.doc, where) is None:
            raise FileMissing(f"there is no file {where!r} any more")
        cursor: dict[str, Any] = {}

        def change(doc: Doc[Any]) -> None:
            text = schema.file_text(doc, where)
            assert text is not None  # checked above, no await since
            a = anchors.resolve(text, start)
            b = max(a, anchors.resolve(text, end, before=True)) if end != start else a
            current = str(text)
            ua, ub = offsets.codepoint_to_utf8(current, a), offsets.codepoint_to_utf8(current, b)
            tombs: list[changes.Range] = []
            if ub > ua:
                # A pure deletion is found again later by the ids of what it deleted.
                before = structs.parse(doc.get_update()).deletes if not new else []
                del text[ua:ub]
                if not new:
                    after = structs.parse(doc.get_update()).deletes
                    tombs = changes.new_deletions(before, after)[:16]
            clock = _state_vector(doc).get(me.client_id, 0)
            if new:
                text.insert(ua, new)
                last = clock + offsets.utf16_len(new) - 1
                pos = {"type": None, "tname": None, "item": {"client": me.client_id,
                       "clock": last}, "assoc": -1}  # fmt: skip
                cursor.update(anchor=pos, head=pos)
            if record is not None:
                edit = Edit(me.client_id, clock, offsets.utf16_len(new), new, current[a:b],
                            tuple(tombs), where)  # fmt: skip
                _record(doc, record, edit, entry_values)

        me.write(change)
        self.last_active = time.monotonic()
        me.announce(cursor or None, where)

    def create_file(
        self, path: str, content: str, record: tuple[str, str] | None = None, **entry_values: Any
    ) -> None:
        """Add the file ``path`` (a normal path no file has) with ``content`` to the
        workspace, recorded on ``record``'s entry like ``edit``. The caller checked the
        path and the limits."""
        me = self.me

        def change(doc: Doc[Any]) -> None:
            clock = _state_vector(doc).get(me.client_id, 0)
            schema.files(doc)[path] = Text(content)
            if record is not None:
                edit = Edit(me.client_id, clock, offsets.utf16_len(content), content, "", (),
                            path, created=True)  # fmt: skip
                _record(doc, record, edit, entry_values)

        me.write(change)
        self.last_active = time.monotonic()

    def revert(self, entry_id: str, by: Author) -> None:
        """Undo the code change recorded on ``entry_id`` in one transaction, and mark the
        entry undone by ``by``. Raises ``RevertRefused`` (nothing changed)."""
        me = self.me
        me.sync()
        entry = find_entry(schema.chat(me.doc), entry_id)
        if entry is None:
            raise RevertRefused("unknown AI change")
        plans: list[tuple[str, list[changes.Step]]] = []
        removals: list[str] = []
        for path, edits in changes.by_file(me.doc, changes.load(entry.get("change"))).items():
            text = schema.file_text(me.doc, path)
            if text is None:
                raise RevertRefused(f"the file {path} is gone")
            if any(e.created for e in edits):
                # The AI made this file: undoing it removes it, if nobody changed it.
                made = "".join(e.inserted for e in edits if e.created)
                if str(text) != made or not all(e.created for e in edits):
                    raise RevertRefused(f"the file {path} was edited since")
                removals.append(path)
                continue
            plans.append((path, changes.plan(me.doc, edits, text)))

        def change(doc: Doc[Any]) -> None:
            for path, steps in plans:
                text = schema.file_text(doc, path)
                if text is not None:
                    changes.apply(text, steps)
            for path in removals:
                del schema.files(doc)[path]
            record = find_entry(schema.chat(doc), entry_id)
            if record is not None:
                record["undone"] = True
                record["undone_by"] = by.name
                record["undone_by_id"] = by.user_id

        me.write(change)  # synchronous since ``plan``: the positions still hold
        self.last_active = time.monotonic()
        me.announce(None)

    def leave_if_idle(self, now: float, idle_leave: float) -> None:
        if self.replica is not None and now - self.last_active >= idle_leave:
            self.replica.leave()
            self.replica = None


def _new_id() -> str:
    return f"ai{int(time.time() * 1000):x}{random.randrange(16**4):04x}"


def find_entry(chat: Array[Any], entry_id: str) -> Map[Any] | None:
    for i in range(len(chat) - 1, -1, -1):
        item = chat[i]
        if isinstance(item, Map) and item.get("id") == entry_id:
            return item
    return None


def _record(
    doc: Doc[Any], record: tuple[str, str], edit: Edit, entry_values: dict[str, Any]
) -> None:
    """Add ``edit`` to the change kept on the chat entry ``record[0]`` (made for the
    person ``record[1]``), so that it can be undone as one unit; the entry names the file
    of its first edit."""
    entry = find_entry(schema.chat(doc), record[0])
    if entry is None:
        return
    try:
        done = changes.load(entry.get("change"))
    except RevertRefused:
        done = []
    done.append(edit)
    entry["change"] = changes.dump(done)
    entry["change_for"] = record[1]
    if entry.get("path") is None:
        entry["path"] = edit.path
    for key, value in entry_values.items():
        entry[key] = value


def _state_vector(doc: Doc[Any]) -> dict[int, int]:
    dec = Decoder(doc.get_state())
    out: dict[int, int] = {}
    for _ in range(dec.read_var_uint()):
        client = dec.read_var_uint()
        out[client] = dec.read_var_uint()
    return out
