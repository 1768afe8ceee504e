"""The teacher's grid: one summary per student room, kept in the exercise's room; and
the spotlight, a student's code shown on the class's stage.

A student's room changes with every keystroke, and a teacher with 200 students must not
hold 200 sockets. So the server keeps a summary of each student room (online or not,
when they last edited, lines, the first lines of code, the last run, the tests passed, a
raised hand) in the exercise room (``student:{key}`` in its ``class`` root,
``rooms.classroom``), which the teacher's page reads over one connection.

Throttled: a change only marks the student room dirty; every ``INTERVAL`` seconds the
dirty rooms are summarised, and the summaries that changed go into their exercise room
as one server edit. A student typing five keys a second costs the grid one update a
second, and a student who is only reading costs nothing.

Several instances: each summarises the student rooms it has loaded, from the same
document and the same edit times (when the accepting instance took the edit), so they
write the same tile. Whether the student is online is known where their socket is: the
instance that holds it writes ``online: true`` and its own id in ``seen_by``, and only
that instance later writes ``online: false``. A tile is one value, so two instances
writing it at once keep one of the two: each instance checks once a second that the
tile still says what it last wrote, and writes it again if not. An instance that dies
with a student online leaves the tile online until the student reconnects: a known
limit.

Spotlight: the class room's ``spotlight:current`` holds the student's files, refreshed
with the same throttle while the student types, until the teacher ends it. The instance
that started it keeps the student room loaded and refreshes it; another instance
learns of it when it loads the class room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from pycrdt import Doc

from crdt import schema
from rooms import classroom
from rooms.history import EDIT, SERVER, Who
from rooms.room import Room

log = structlog.get_logger("codementor.class_grid")

INTERVAL = 1.0  # seconds between pushes: at most one update per student per second
FIRST_LINES = 8  # of the entry file, for the tile
FIRST_CHARS = 400
SPOTLIGHT_BYTES = 256 * 1024  # files past this are cut from the stage (say so)
CURRENT = "current"  # the id of the one spotlight entry in a class room

# ``registry.loaded`` as the grid needs it (a ``rooms.registry.RoomRegistry`` method).
LoadRoom = Callable[[str], Any]


def student_room_parts(name: str) -> tuple[str, str] | None:
    """(exercise id, person key) of a student room's name, or None for any other room."""
    exercise_id, infix, key = name.partition(classroom.STUDENT_INFIX)
    if not infix or not exercise_id or not key or "." in exercise_id or "." in key:
        return None
    return exercise_id, key


@dataclass(slots=True)
class _Student:
    room: Room
    exercise_id: str
    key: str
    last_edit: float | None = None  # the student's own last edit (when it was accepted)
    submitted_at: float | None = None  # their last edit before the due time
    is_student: dict[str, bool] = field(default_factory=dict)  # user id -> is this student
    written: dict[str, Any] = field(default_factory=dict)  # what this instance last wrote


class ClassGrid:
    """Summarises student rooms into their exercise rooms; keeps spotlights fresh."""

    def __init__(
        self,
        loaded: Callable[[str], Any],
        rooms: dict[str, Room],
        secret: str | bytes,
        interval: float = INTERVAL,
    ) -> None:
        self._loaded = loaded  # RoomRegistry.loaded
        self._rooms = rooms  # RoomRegistry.rooms: what is loaded here now
        self._secret = secret
        self.interval = interval
        self.instance = secrets.token_hex(4)  # this process, in ``seen_by``
        self._students: dict[str, _Student] = {}
        self._dirty: set[str] = set()
        self._spotlights: dict[str, str] = {}  # student room -> class room showing it
        self._shown: dict[str, str] = {}  # class room -> JSON of the files last shown
        self._task: asyncio.Task[None] | None = None

    # -- wiring ----------------------------------------------------------------

    def on_room_loaded(self, room: Room) -> None:
        """A registry load hook: watch student rooms; pick up a class's spotlight."""
        parts = student_room_parts(room.name)
        if parts is not None:
            self._students[room.name] = _Student(room, *parts)
            room.change_hooks.append(self._changed)
            room.membership_hooks.append(self._joined_or_left)
            self._dirty.add(room.name)
            return
        shown = classroom.get(room.doc, classroom.SPOTLIGHT, CURRENT)
        if shown is not None and isinstance(shown.get("room"), str):
            self._spotlights[shown["room"]] = room.name

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="class-grid")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _changed(self, room: Room, who: Who | None, kind: str, ts: float) -> None:
        self._dirty.add(room.name)
        student = self._students.get(room.name)
        if student is None or who is None or kind != EDIT:
            return
        if self._is_student(student, who.id) and ts > (student.last_edit or 0.0):
            student.last_edit = ts

    def _joined_or_left(self, room: Room) -> None:
        self._dirty.add(room.name)

    def _is_student(self, student: _Student, user_id: str) -> bool:
        known = student.is_student.get(user_id)
        if known is None:
            known = classroom.person_key(self._secret, user_id) == student.key
            if len(student.is_student) < 64:  # the student, the teacher, a few helpers
                student.is_student[user_id] = known
        return known

    # -- the loop --------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:
                log.exception("class_grid_flush_failed")

    async def flush(self) -> None:
        """Push the summaries of the student rooms that changed, and refresh spotlights."""
        self._recheck()
        dirty, self._dirty = self._dirty, set()
        now = time.time()
        by_exercise: dict[str, dict[str, dict[str, Any]]] = {}
        for name in dirty:
            student = self._students.get(name)
            if student is None:
                continue
            if self._rooms.get(name) is not student.room:  # unloaded (or reloaded)
                del self._students[name]
                continue
            summary = self._summary(student)
            by_exercise.setdefault(student.exercise_id, {})[student.key] = summary
        for exercise_id, summaries in by_exercise.items():
            try:
                await self._push(exercise_id, summaries, now)
            except Exception:
                log.warning("class_grid_push_failed", exercise=exercise_id, exc_info=True)
                self._dirty.update(classroom.student_room(exercise_id, k) for k in summaries)
        for student_room, class_room in list(self._spotlights.items()):
            try:
                await self._refresh_spotlight(student_room, class_room, student_room in dirty)
            except Exception:
                log.warning("spotlight_refresh_failed", room=class_room, exc_info=True)

    def _recheck(self) -> None:
        """Mark dirty the students whose tile no longer says what this instance wrote
        (another instance wrote the tile at the same moment, and its value was kept)."""
        for name, student in self._students.items():
            if not student.written or name in self._dirty:
                continue
            grid = self._rooms.get(classroom.exercise_room(student.exercise_id))
            if grid is None:
                continue
            tile = classroom.get(grid.doc, classroom.STUDENT, student.key) or {}
            if any(tile.get(k) != v for k, v in student.written.items()):
                self._dirty.add(name)

    def _summary(self, student: _Student) -> dict[str, Any]:
        doc = student.room.doc
        exercise = classroom.get(doc, classroom.EXERCISE, student.exercise_id) or {}
        due_at = exercise.get("due_at")
        if student.last_edit is not None and (
            not isinstance(due_at, int | float) or student.last_edit <= due_at
        ):
            student.submitted_at = student.last_edit
        here = [
            peer
            for peer in student.room.peers.values()
            if not peer.closed and self._is_student(student, peer.user_id)
        ]
        summary = summarize(doc)
        if here:
            summary["online"] = True
            summary["seen_by"] = self.instance
        if student.last_edit is not None:
            summary["last_edit"] = student.last_edit
        if student.submitted_at is not None:
            summary["submitted_at"] = student.submitted_at
        return summary

    async def _push(
        self, exercise_id: str, summaries: dict[str, dict[str, Any]], now: float
    ) -> None:
        room: Room = await self._loaded(classroom.exercise_room(exercise_id))
        if classroom.get(room.doc, classroom.EXERCISE, exercise_id) is None:
            return  # not an exercise this server made: nothing to keep a grid in
        changes: dict[str, dict[str, Any]] = {}
        for key, summary in summaries.items():
            base = classroom.get(room.doc, classroom.STUDENT, key)
            if base is None:  # joining: the exercises API writes who it is first
                self._dirty.add(classroom.student_room(exercise_id, key))
                continue
            if "online" not in summary and base.get("seen_by") == self.instance:
                summary["online"] = False  # they left this instance, which said online
            student = self._students.get(classroom.student_room(exercise_id, key))
            if student is not None:
                student.written = summary
            merged = base | summary
            merged.setdefault("key", key)
            merged.setdefault("room", classroom.student_room(exercise_id, key))
            if merged != base:
                merged["updated_at"] = now
                changes[key] = merged
        if not changes:
            return

        def write(doc: Doc[Any]) -> None:
            for key, value in changes.items():
                classroom.put(doc, classroom.STUDENT, key, value)

        room.edit(write, who=SERVER)

    # -- spotlight ---------------------------------------------------------------

    async def show(self, class_room: str, student_room: str, name: str, by: Who) -> dict[str, Any]:
        """Put ``student_room``'s code on ``class_room``'s stage until ``end``. The
        exercise room says which student is on stage too (for the grid), without code."""
        source: Room = await self._loaded(student_room)
        entry = spotlight_entry(source.doc, student_room, name)
        target: Room = await self._loaded(class_room)
        await self._mark_grid(target, None, by)  # the one shown before, if any
        for shown, where in list(self._spotlights.items()):
            if where == class_room:
                del self._spotlights[shown]
        self._spotlights[student_room] = class_room
        self._shown[class_room] = json.dumps(entry["files"], sort_keys=True)
        target.edit(lambda doc: classroom.put(doc, classroom.SPOTLIGHT, CURRENT, entry), who=by)
        await self._mark_grid(target, entry, by)
        return entry

    async def end(self, class_room: str, by: Who) -> bool:
        """End the class's spotlight; False when there was none."""
        for shown, where in list(self._spotlights.items()):
            if where == class_room:
                del self._spotlights[shown]
        self._shown.pop(class_room, None)
        target: Room = await self._loaded(class_room)
        if classroom.get(target.doc, classroom.SPOTLIGHT, CURRENT) is None:
            return False
        await self._mark_grid(target, None, by)
        target.edit(lambda doc: classroom.put(doc, classroom.SPOTLIGHT, CURRENT, None), who=by)
        return True

    async def _mark_grid(self, class_room: Room, shown: dict[str, Any] | None, by: Who) -> None:
        """Say in an exercise room's ``spotlight:current`` which of its students is on
        stage (``shown``), or, with None, clear it in the exercise of whoever is on the
        class's stage now."""
        current = shown or classroom.get(class_room.doc, classroom.SPOTLIGHT, CURRENT)
        parts = student_room_parts(str((current or {}).get("room", "")))
        if parts is None:
            return
        grid: Room = await self._loaded(classroom.exercise_room(parts[0]))
        mark = None
        if shown is not None:
            mark = {k: shown[k] for k in ("room", "name", "started_at")}
        grid.edit(lambda doc: classroom.put(doc, classroom.SPOTLIGHT, CURRENT, mark), who=by)

    async def _refresh_spotlight(self, student_room: str, class_room: str, changed: bool) -> None:
        source: Room = await self._loaded(student_room)  # and keeps it loaded here
        if not changed:
            return
        target: Room = await self._loaded(class_room)
        shown = classroom.get(target.doc, classroom.SPOTLIGHT, CURRENT)
        if shown is None or shown.get("room") != student_room:  # ended elsewhere
            self._spotlights.pop(student_room, None)
            return
        entry = spotlight_entry(source.doc, student_room, str(shown.get("name", "")))
        files = json.dumps(entry["files"], sort_keys=True)
        if self._shown.get(class_room) == files:
            return
        self._shown[class_room] = files
        entry["started_at"] = shown.get("started_at", entry["ts"])
        target.edit(lambda doc: classroom.put(doc, classroom.SPOTLIGHT, CURRENT, entry))


def summarize(doc: Doc[Any]) -> dict[str, Any]:
    """What a tile shows of a student room's document (who and when come from the grid)."""
    files = schema.workspace(doc)
    entry = schema.entry_path(doc)
    text = files.get(entry, "")
    first = text.splitlines()[:FIRST_LINES]
    summary: dict[str, Any] = {
        "lines": sum(len(t.splitlines()) for t in files.values()),
        "files": len(files),
        "entry": entry,
        "first_lines": "\n".join(first)[:FIRST_CHARS],
        "last_run": None,
        "tests": None,
        "hand": None,
    }
    runs = [r for r in (schema.runs(doc).to_py() or {}).values() if isinstance(r, dict)]
    runs.sort(key=lambda r: _number(r.get("ts")))
    if runs:
        last = runs[-1]
        summary["last_run"] = {
            "status": str(last.get("status", "")),
            "ts": _number(last.get("ts")),
            "kind": str(last.get("kind", "run")),
        }
    checks = [r for r in runs if r.get("kind") == "check" and "total" in r]
    if checks:
        last_check = checks[-1]
        summary["tests"] = {
            "passed": int(_number(last_check.get("passed"))),
            "total": int(_number(last_check.get("total"))),
            "status": str(last_check.get("status", "")),
            "ts": _number(last_check.get("ts")),
        }
    hands = sorted(
        classroom.entries(doc, classroom.HAND).values(), key=lambda h: _number(h.get("raised_at"))
    )
    if hands:
        question = hands[0].get("question")
        summary["hand"] = {
            "raised_at": _number(hands[0].get("raised_at")),
            "question": question if isinstance(question, str) else "",
        }
    return summary


def spotlight_entry(doc: Doc[Any], room: str, name: str) -> dict[str, Any]:
    """The class's ``spotlight:current``: the student room's files, cut at
    ``SPOTLIGHT_BYTES`` in all (``cut`` says so)."""
    files: dict[str, str] = {}
    used = 0
    cut = False
    for path, text in schema.workspace(doc).items():
        size = len(text.encode())
        if used + size > SPOTLIGHT_BYTES:
            cut = True
            continue
        files[path] = text
        used += size
    now = time.time()
    return {
        "room": room,
        "name": name,
        "entry": schema.entry_path(doc),
        "files": files,
        "cut": cut,
        "ts": now,
        "started_at": now,
    }


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
