"""The teacher's grid and the spotlight (``rooms/class_grid.py``), driven in this process
with the real registry, rooms and SQLite store (``tests.harness``). The REST side, with
exercises made over the API, is in ``tests/test_exercises_grid.py``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Map, Text

from crdt import schema
from rooms import classroom
from rooms.class_grid import CURRENT, ClassGrid, spotlight_entry, student_room_parts, summarize
from rooms.history import Who
from rooms.registry import RoomRegistry
from rooms.roles import Role
from tests.harness import FakeClient, redis_broker, started
from tests.redisproc import RedisProcess
from tests.support import eventually

pytestmark = pytest.mark.anyio

SECRET = "grid-test-secret"
EXERCISE = "ex1"
CLASS = "cls"
SAM = "user-sam"
KEY = classroom.person_key(SECRET, SAM)
ROOM = classroom.student_room(EXERCISE, KEY)


def test_student_room_names_are_told_apart_from_other_rooms() -> None:
    assert student_room_parts(ROOM) == (EXERCISE, KEY)
    for other in ("plain", "cls.staff", "ex1.exercise", ".s.k", "ex1.s.", "a.b.s.k", "e.s.k.x"):
        assert student_room_parts(other) is None, other


def test_a_summary_reads_the_code_the_newest_run_the_newest_check_and_a_hand() -> None:
    doc: Doc[Any] = Doc()
    schema.code(doc).insert(0, "".join(f"line {i}\n" for i in range(12)))
    schema.files(doc)["util.py"] = Text("a = 1\nb = 2\n")
    runs = schema.runs(doc)
    runs["r1"] = Map({"status": "accepted", "ts": 10.0, "kind": "check", "passed": 1.0,
                      "total": 3.0})  # fmt: skip
    runs["r2"] = Map({"status": "accepted", "ts": 20.0})
    runs["r0"] = Map({"status": "failed", "ts": 5.0, "kind": "check", "passed": 0.0,
                      "total": 3.0})  # fmt: skip
    classroom.put(doc, classroom.HAND, KEY, {"raised_at": 7.0, "question": "why?"})
    summary = summarize(doc)
    assert summary["lines"] == 14 and summary["files"] == 2
    assert summary["first_lines"] == "\n".join(f"line {i}" for i in range(8))
    assert summary["last_run"] == {"status": "accepted", "ts": 20.0, "kind": "run"}
    assert summary["tests"] == {"passed": 1, "total": 3, "status": "accepted", "ts": 10.0}
    assert summary["hand"] == {"raised_at": 7.0, "question": "why?"}


def test_the_stage_holds_the_files_up_to_a_limit_and_says_when_it_cut() -> None:
    doc: Doc[Any] = Doc()
    schema.code(doc).insert(0, "print('hi')\n")
    schema.files(doc)["big.txt"] = Text("x" * (300 * 1024))
    entry = spotlight_entry(doc, ROOM, "Sam")
    assert entry["files"] == {"main.py": "print('hi')\n"} and entry["cut"] is True


async def seeded(registry: RoomRegistry, due_at: float | None = None) -> None:
    """An exercise of class ``CLASS`` with Sam joined, as the exercises API leaves it."""
    exercise = await registry.loaded(classroom.exercise_room(EXERCISE))
    definition = {"id": EXERCISE, "title": "Sum", "class_room": CLASS, "due_at": due_at}
    joined = {"key": KEY, "user_id": SAM, "name": "Sam", "room": ROOM, "joined_at": 1.0}

    def define(doc: Doc[Any]) -> None:
        classroom.put(doc, classroom.EXERCISE, EXERCISE, definition)
        classroom.put(doc, classroom.STUDENT, KEY, joined)

    exercise.edit(define)
    student = await registry.loaded(ROOM)
    student.edit(lambda doc: classroom.put(doc, classroom.EXERCISE, EXERCISE, definition))


def tile(registry: RoomRegistry) -> dict[str, Any]:
    doc = registry.rooms[classroom.exercise_room(EXERCISE)].doc
    value = classroom.get(doc, classroom.STUDENT, KEY)
    assert value is not None
    return value


def wired(registry: RoomRegistry, secret: str = SECRET) -> ClassGrid:
    grid = ClassGrid(registry.loaded, registry.rooms, secret)
    registry.load_hooks.append(grid.on_room_loaded)
    return grid


async def test_the_tile_follows_the_students_edits_and_presence(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        grid = wired(registry)
        await seeded(registry)
        await grid.flush()
        assert tile(registry)["online"] is False and tile(registry)["name"] == "Sam"
        assert "last_edit" not in tile(registry)
        sam = await FakeClient(name="Sam", user_id=SAM).join(registry, ROOM)
        before = time.time()
        sam.type("total = 0\nfor n in nums:\n    total += n\n")
        await grid.flush()
        shown = tile(registry)
        assert shown["online"] is True and shown["lines"] == 3
        assert shown["first_lines"].startswith("total = 0\nfor n in nums:")
        assert shown["last_edit"] >= before and shown["submitted_at"] == shown["last_edit"]
        # The teacher typing in Sam's room is not Sam's edit.
        teacher = await FakeClient(Role.OWNER, name="Tess", user_id="user-tess").join(
            registry, ROOM
        )
        teacher.pump()
        teacher.type("# look at line 2\n", at=0)
        await grid.flush()
        assert tile(registry)["lines"] == 4 and tile(registry)["last_edit"] == shown["last_edit"]
        sam.leave(registry)
        await grid.flush()
        assert tile(registry)["online"] is False


async def test_a_burst_of_keystrokes_is_one_grid_update_per_flush(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        grid = wired(registry)
        await seeded(registry)
        await grid.flush()
        sam = await FakeClient(name="Sam", user_id=SAM).join(registry, ROOM)
        await grid.flush()
        grid_doc = registry.rooms[classroom.exercise_room(EXERCISE)].doc
        changes: list[bytes] = []
        subscription = grid_doc.observe(lambda event: changes.append(event.update))
        for ch in "print(sum(nums))\n":
            sam.type(ch)
        await grid.flush()
        assert len(changes) == 1
        await grid.flush()  # nothing new: nothing written
        assert len(changes) == 1
        grid_doc.unobserve(subscription)


async def test_edits_after_the_due_time_do_not_move_the_submission(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        grid = wired(registry)
        await seeded(registry, due_at=time.time() + 0.3)
        sam = await FakeClient(name="Sam", user_id=SAM).join(registry, ROOM)
        sam.type("answer = 42\n")
        await grid.flush()
        submitted = tile(registry)["submitted_at"]
        while time.time() < submitted + 0.4:
            await grid.flush()
        sam.type("# late\n")
        await grid.flush()
        assert tile(registry)["submitted_at"] == submitted
        assert tile(registry)["last_edit"] > submitted


async def test_another_instances_online_student_is_not_marked_offline(tmp_path: Path) -> None:
    """The instance holding the student's socket owns ``online``: one that does not
    hold it (the teacher opened the room there) leaves it be."""
    async with started(tmp_path) as registry:
        grid = wired(registry)
        await seeded(registry)
        exercise = registry.rooms[classroom.exercise_room(EXERCISE)]
        elsewhere = {"key": KEY, "user_id": SAM, "name": "Sam", "online": True, "seen_by": "b"}
        exercise.edit(lambda doc: classroom.put(doc, classroom.STUDENT, KEY, elsewhere))
        teacher = await FakeClient(Role.OWNER, name="Tess", user_id="user-tess").join(
            registry, ROOM
        )
        teacher.pump()
        teacher.type("# hint\n")
        await grid.flush()
        assert tile(registry)["online"] is True and tile(registry)["seen_by"] == "b"
        assert tile(registry)["lines"] == 1


async def test_a_spotlight_shows_the_students_code_and_follows_it_until_ended(
    tmp_path: Path,
) -> None:
    async with started(tmp_path) as registry:
        grid = wired(registry)
        await seeded(registry)
        sam = await FakeClient(name="Sam", user_id=SAM).join(registry, ROOM)
        sam.type("print(1)\n")
        tess = Who("user-tess", "Tess", "owner")
        await grid.show(CLASS, ROOM, "Sam", tess)
        class_doc = registry.rooms[CLASS].doc
        shown = classroom.get(class_doc, classroom.SPOTLIGHT, CURRENT)
        assert shown is not None and shown["files"] == {"main.py": "print(1)\n"}
        assert shown["name"] == "Sam" and shown["room"] == ROOM
        sam.type("print(2)\n")
        await grid.flush()
        shown = classroom.get(class_doc, classroom.SPOTLIGHT, CURRENT)
        assert shown is not None and shown["files"] == {"main.py": "print(1)\nprint(2)\n"}
        assert await grid.end(CLASS, tess) is True
        assert classroom.get(class_doc, classroom.SPOTLIGHT, CURRENT) is None
        sam.type("print(3)\n")
        await grid.flush()
        assert classroom.get(class_doc, classroom.SPOTLIGHT, CURRENT) is None
        assert await grid.end(CLASS, tess) is False


async def test_a_student_on_one_instance_shows_on_a_grid_read_on_another(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    """Two instances over one store and one Redis: Sam types on the first, the grid's
    exercise room is read on the second, where the teacher opened Sam's room too; the
    second does not take "online" from the first."""
    one = redis_broker(redis_server.url, "one")
    two = redis_broker(redis_server.url, "two")
    async with started(tmp_path, one) as first, started(tmp_path, two) as second:
        grid_one, grid_two = wired(first), wired(second)
        await seeded(first)
        sam = await FakeClient(name="Sam", user_id=SAM).join(first, ROOM)
        sam.type("x = 1\n")
        tess = await FakeClient(Role.OWNER, name="Tess", user_id="user-tess").join(second, ROOM)
        await second.loaded(classroom.exercise_room(EXERCISE))

        def second_shows(lines: int) -> bool:
            doc = second.rooms[classroom.exercise_room(EXERCISE)].doc
            value = classroom.get(doc, classroom.STUDENT, KEY) or {}
            return value.get("lines") == lines and value.get("online") is True

        async def flushed_until(lines: int) -> bool:
            await grid_one.flush()
            await grid_two.flush()
            return second_shows(lines)

        await eventually(lambda: flushed_until(1))
        tess.pump()
        sam.type("y = 2\n")
        await eventually(lambda: flushed_until(2))
