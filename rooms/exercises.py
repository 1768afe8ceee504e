"""An exercise: its definition, the views of it each reader gets, and its due-time lock.

The definition lives in the exercise room's ``class`` root as ``exercise:{id}``
(``rooms.classroom``); hidden tests' input and expected output are there and nowhere
else a student can read. The class room gets ``exercise:{id}`` {id, title, due_at}
(what students may open), each student room ``exercise:{id}`` with the student view
(hidden tests by name only). Helpers here stay out of ``rooms.classroom``, which the
lead owns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pycrdt import Doc

from rooms import classroom
from rooms.history import EDIT
from rooms.store import Store

AI_POLICIES = ("off", "hints", "full")


@dataclass(frozen=True, slots=True)
class ExerciseTest:
    name: str
    stdin: str
    expected_output: str
    hidden: bool = False

    def public(self) -> dict[str, Any]:
        """What a student sees: a visible test whole, a hidden one by name only."""
        if self.hidden:
            return {"name": self.name, "hidden": True}
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Exercise:
    id: str
    title: str
    class_room: str
    created_by: str  # the verified user id of the teacher who made it
    created_at: float
    language: str
    entry: str
    files: dict[str, str]
    tests: list[ExerciseTest] = field(default_factory=list)
    due_at: float | None = None
    lock_after_due: bool = True
    ai: str = "full"

    # -- the due-time lock --------------------------------------------------------

    def due(self, now: float | None = None) -> bool:
        return self.due_at is not None and (time.time() if now is None else now) >= self.due_at

    def locked(self, now: float | None = None) -> bool:
        """Past the due time, and the exercise turns students' rooms read-only then."""
        return self.lock_after_due and self.due(now)

    # -- views ----------------------------------------------------------------------

    def staff_view(self) -> dict[str, Any]:
        """Everything, hidden tests included (the exercise room's entry, staff's GET)."""
        out = asdict(self)
        out["rooms"] = {"exercise": classroom.exercise_room(self.id)}
        return out

    def public_view(self) -> dict[str, Any]:
        """What a student may read: starter files, visible tests, hidden ones by name."""
        out = asdict(self)
        out["tests"] = [test.public() for test in self.tests]
        return out

    def student_entry(self) -> dict[str, Any]:
        """The student room's ``exercise:{id}``: what the student's page shows."""
        return {
            "id": self.id,
            "title": self.title,
            "class_room": self.class_room,
            "due_at": self.due_at,
            "lock_after_due": self.lock_after_due,
            "ai": self.ai,
            "tests": [test.public() for test in self.tests],
        }

    def class_entry(self) -> dict[str, Any]:
        """The class room's ``exercise:{id}``: what students may open."""
        return {"id": self.id, "title": self.title, "due_at": self.due_at}

    # -- (de)serialising ------------------------------------------------------------

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Exercise:
        """Read back what ``as_json`` wrote (only the server writes the ``class`` root)."""
        tests = [ExerciseTest(**test) for test in data.get("tests", [])]
        due = data.get("due_at")
        return cls(
            id=str(data["id"]),
            title=str(data["title"]),
            class_room=str(data["class_room"]),
            created_by=str(data.get("created_by", "")),
            created_at=float(data.get("created_at", 0.0)),
            language=str(data.get("language", "python")),
            entry=str(data.get("entry", "main.py")),
            files={str(k): str(v) for k, v in dict(data.get("files", {})).items()},
            tests=tests,
            due_at=None if due is None else float(due),
            lock_after_due=bool(data.get("lock_after_due", True)),
            ai=str(data.get("ai", "full")),
        )


def read(doc: Doc[Any], exercise_id: str) -> Exercise | None:
    """The definition in an exercise room's document, None when it has none."""
    data = classroom.get(doc, classroom.EXERCISE, exercise_id)
    if data is None:
        return None
    try:
        return Exercise.from_json(data)
    except (KeyError, TypeError, ValueError):
        return None


def students(doc: Doc[Any]) -> dict[str, dict[str, Any]]:
    """key -> the student's entry (join fields, and the grid summary once there)."""
    return classroom.entries(doc, classroom.STUDENT)


def join_entry(key: str, user_id: str, name: str, room: str, now: float) -> dict[str, Any]:
    """The exercise room's ``student:{key}`` as first written, when the student joins."""
    return {"key": key, "user_id": user_id, "name": name, "room": room, "joined_at": now}


def student_key_of(exercise_id: str, room_name: str) -> str | None:
    """The person key in a student room's name, None when it is not one of this
    exercise's student rooms."""
    prefix = classroom.student_room(exercise_id, "")
    if not room_name.startswith(prefix):
        return None
    key = room_name[len(prefix) :]
    return key if key and "." not in key else None


def ai_policy(class_doc: Doc[Any]) -> str:
    """The class's ``policy:ai`` (default ``full``): an exercise's default."""
    policy = classroom.get(class_doc, classroom.POLICY, "ai") or {}
    value = policy.get("ai")
    return value if value in AI_POLICIES else "full"


CSV_FIELDS = (
    "student",
    "user_id",
    "tests_passed",
    "tests_total",
    "last_run_status",
    "last_check_at",
    "submitted_at",
    "room",
)


def csv_cell(value: object) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection): text starting
    with = + - @ (or a tab / carriage return) gets a leading '."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


HISTORY_PAGE = 5000  # history rows read per query


def submission_times(
    store: Store, students: Sequence[tuple[str, str]], due_at: float | None
) -> dict[str, float | None]:
    """For each (student room, user id): the student's last edit (from the room's
    history) before ``due_at``, or the last one at all without a due time; None when
    they never edited. Rooms the store does not know are left out. Synchronous: the
    grades export runs it as one call on the store's worker thread for the whole class,
    instead of a round trip per student."""
    out: dict[str, float | None] = {}
    for room, user_id in students:
        if store.room_info(room) is None:
            continue
        out[room] = last_edit(store, room, user_id, due_at)
    return out


def last_edit(store: Store, room: str, user_id: str, due_at: float | None) -> float | None:
    """``user_id``'s last edit of ``room`` at or before ``due_at`` (any time when None)."""
    found: float | None = None
    after = 0
    while True:
        rows = store.history(room, after=after, limit=HISTORY_PAGE)
        if not rows:
            return found
        for row in rows:
            for part in row.split():
                if part.kind != EDIT or part.who.id != user_id:
                    continue
                if due_at is not None and part.ts > due_at:
                    continue
                found = part.ts if found is None else max(found, part.ts)
        after = rows[-1].seq
