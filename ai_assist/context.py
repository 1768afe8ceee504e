"""A question and what the AI is shown with it, taken from the room at the moment it
is asked: the workspace's file list, the text of the files that fit the budget (with
anchors for every line start of each, so an edit lands right however the text moved
since), the asker's current file and selection, language, last run and recent chat.
Synchronous: the snapshot is the document as it is now."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from pycrdt import Array, Map, Text

from ai_assist import anchors as anchors_mod
from ai_assist import workspace_view
from ai_assist.anchors import Anchors
from ai_assist.policy import AIRefused, Policy
from crdt import offsets, paths, schema
from crdt.awareness import NULL_STATE, decode_update
from rooms.roles import Mode, Role
from rooms.room import Room

RUN_FIELDS = ("status", "language", "stdout", "stderr", "compile_output", "message", "exit_code")


@dataclass(slots=True)
class FileView:
    """One file of the workspace as the AI was shown it: ``anchors`` is None when its
    text did not fit the budget (the prompt lists it as not shown)."""

    path: str
    language: str
    bytes: int
    anchors: Anchors | None


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
    anchors: Anchors  # the current file's
    selection: tuple[int, int] | None  # code points in the current file's snapshot
    last_run: dict[str, Any] | None
    chat: list[tuple[str, str]]
    # The asker's verified user id, present or not: whom the AI's edits are done for.
    asker_uid: str | None = None
    asked_at: float = field(default_factory=time.monotonic)
    # The file the question is about (its edits default to it), and every file, in the
    # order the prompt shows them: the current file first.
    path: str = ""
    files: list[FileView] = field(default_factory=list)
    # What the AI may do for this asker here (``policy.ai_policy``): "hints" or "full".
    policy: Policy = "full"
    role: Role = Role.OWNER  # the asker's verified role (the policy depends on it)
    # The trace it was asked in (a REST request's; empty from a chat ``@ai``): its
    # answer runs in another task, which serves the room's queue, not this request.
    trace_context: Context | None = None

    def view(self, path: str) -> FileView | None:
        return next((f for f in self.files if f.path == path), None)


def capture(
    room: Room,
    request_id: str,
    prompt: str,
    asker: str,
    selection: tuple[int, int] | None,
    asker_id: str | None,
    chat_context: int,
    path: str | None = None,
    budget_chars: int = 100_000,
) -> Ask:
    """The question as asked now. ``path``: the asker's current file (else its
    awareness ``file``, else the entry file); a bad one raises ``AIRefused`` (422 with
    the rule, 404 for no such file). ``selection`` is (anchor, head) in UTF-16 units
    (browser indices) in that file; one outside the text raises ``AIRefused`` (422)."""
    doc = room.doc
    meta = schema.meta(doc)
    language = str(meta.get("language") or "plain text")
    current = _current_path(room, path, asker_id)
    texts = schema.workspace(doc)
    chosen = workspace_view.choose(current, texts, prompt, budget_chars)
    files: list[FileView] = []
    for file_path in chosen.order:
        shown = file_path in chosen.shown
        text = schema.file_text(doc, file_path)
        files.append(
            FileView(
                path=file_path,
                language=paths.language_for(file_path, language),
                bytes=len(texts[file_path].encode("utf-8")),
                anchors=anchors_mod.capture(text) if shown and isinstance(text, Text) else None,
            )
        )
    head = files[0].anchors
    assert head is not None  # the current file is always shown
    sel: tuple[int, int] | None = None
    if selection is not None:
        try:
            a, b = (offsets.utf16_to_codepoint(head.snapshot, i) for i in selection)
        except offsets.OffsetError as exc:
            raise AIRefused(f"selection: {exc}", 422) from exc
        sel = (min(a, b), max(a, b))
    return Ask(
        id=request_id,
        room=room.name,
        prompt=prompt,
        asker=asker,
        asker_id=asker_id if asker_id and present(room, asker_id) else None,
        mode=room.mode,
        ai_edits=meta.get("ai_edits") is True,
        language=language,
        anchors=head,
        selection=sel,
        last_run=_last_run(schema.runs(doc)),
        chat=_recent_chat(schema.chat(doc), chat_context),
        asker_uid=asker_id or None,
        path=current,
        files=files,
    )


def _current_path(room: Room, path: str | None, asker_id: str | None) -> str:
    """The file the question is about: the one named, the one the asker has open, or
    the entry file."""
    doc = room.doc
    if path is not None:
        try:
            normal = paths.normalize(path)
        except paths.PathError as exc:
            raise AIRefused(f"path {path!r}: {exc.rule}", 422) from exc
        if schema.file_text(doc, normal) is None:
            raise AIRefused(f"there is no file {normal!r} in this room", 404)
        return normal
    if asker_id:
        open_file = awareness_file(room, asker_id)
        if open_file is not None and schema.file_text(doc, open_file) is not None:
            return open_file
    return schema.entry_path(doc)


def awareness_file(room: Room, user_id: str) -> str | None:
    """The ``file`` the user's awareness state names (the file it has open), if any."""
    for peer in list(room.peers.values()):
        if peer.user_id != user_id:
            continue
        payload = room.awareness.snapshot(include=_held_by(peer.id))
        for entry in decode_update(payload) if payload else []:
            if entry.state == NULL_STATE:
                continue
            try:
                state = json.loads(entry.state)
            except ValueError:
                continue
            value = state.get("file") if isinstance(state, dict) else None
            if isinstance(value, str) and paths.is_normal(value):
                return value
    return None


def _held_by(owner: Hashable) -> Callable[[Hashable, int], bool]:
    return lambda holder, _client_id: bool(holder == owner)


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
