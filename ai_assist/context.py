"""A question and what the AI is shown with it, taken from the room at the moment it
is asked: the code (with anchors for every line start, so an edit lands right however
the text moved since), the asker's selection, language, last run and recent chat.
Synchronous: the snapshot is the document as it is now."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Map

from ai_assist import anchors as anchors_mod
from ai_assist.anchors import Anchors
from ai_assist.policy import AIRefused
from crdt import offsets, schema
from rooms.roles import Mode
from rooms.room import Room

RUN_FIELDS = ("status", "language", "stdout", "stderr", "compile_output", "message", "exit_code")


@dataclass(slots=True)
class Ask:
    id: str
    room: str
    prompt: str
    asker: str
    # The asker's user id when it was in the room (on this process) as it asked: its
    # request is cancelled once its last connection leaves. None: asked from outside.
    asker_id: str | None
    mode: Mode
    ai_edits: bool
    language: str
    anchors: Anchors
    selection: tuple[int, int] | None  # code points in the snapshot
    last_run: dict[str, Any] | None
    chat: list[tuple[str, str]]
    # The asker's verified user id, present or not: whom the AI's edits are done for.
    asker_uid: str | None = None
    asked_at: float = field(default_factory=time.monotonic)


def capture(
    room: Room,
    request_id: str,
    prompt: str,
    asker: str,
    selection: tuple[int, int] | None,
    asker_id: str | None,
    chat_context: int,
) -> Ask:
    """The question as asked now. ``selection`` is (anchor, head) in UTF-16 units
    (browser indices); one outside the text raises ``AIRefused`` (422)."""
    doc = room.doc
    anchors = anchors_mod.capture(schema.code(doc))
    sel: tuple[int, int] | None = None
    if selection is not None:
        try:
            a, b = (offsets.utf16_to_codepoint(anchors.snapshot, i) for i in selection)
        except offsets.OffsetError as exc:
            raise AIRefused(f"selection: {exc}", 422) from exc
        sel = (min(a, b), max(a, b))
    meta = schema.meta(doc)
    return Ask(
        id=request_id,
        room=room.name,
        prompt=prompt,
        asker=asker,
        asker_id=asker_id if asker_id and present(room, asker_id) else None,
        mode=room.mode,
        ai_edits=meta.get("ai_edits") is True,
        language=str(meta.get("language") or "plain text"),
        anchors=anchors,
        selection=sel,
        last_run=_last_run(schema.runs(doc)),
        chat=_recent_chat(schema.chat(doc), chat_context),
        asker_uid=asker_id or None,
    )


def present(room: Room, user_id: str) -> bool:
    """Is ``user_id`` connected to ``room`` on this process (any of its tabs)?"""
    return any(p.user_id == user_id for p in room.peers.values())


def _last_run(runs: Map[Any]) -> dict[str, Any] | None:
    best: dict[str, Any] | None = None
    for _, entry in runs.items():
        if isinstance(entry, Map):
            record = {k: v for k, v in entry.items() if isinstance(v, str | float | int | bool)}
            if best is None or float(record.get("ts", 0)) > float(best.get("ts", 0)):
                best = record
    if best is None:
        return None
    return {k: best[k] for k in RUN_FIELDS if k in best}


def _recent_chat(chat: Array[Any], count: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i in range(max(0, len(chat) - count), len(chat)):
        item = chat[i]
        if isinstance(item, Map):
            out.append((str(item.get("author") or "someone"), str(item.get("text") or "")))
    return out
