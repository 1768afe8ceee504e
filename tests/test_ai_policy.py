"""The AI's classroom policy (off, hints, full): the pure lookup on a document written
the way the server writes its ``class`` root, and end to end through a real server whose
real ``anthropic`` SDK talks to the Messages API double.

End to end, the rooms are seeded in the SQLite store before the server starts: created
with ``SQLiteStore.create_room`` and given one update with the document the server would
have made (``meta``, the code, the ``class`` entry written with ``rooms.classroom.put``),
which the server loads like any stored room. Nothing test-only runs in the server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map

from ai_assist.policy import ai_policy, strictest
from ai_assist.prompt import HINTS_RULES
from crdt import schema
from rooms import classroom
from rooms.roles import Role
from rooms.sqlite_store import SQLiteStore
from rooms.store import RoomInfo
from server.datadir import SQLITE_FILE
from tests.anthropic_double import AnthropicDouble, Reply
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

AI = "CodeMentor AI"
STUDENT_ROOM = classroom.student_room("ex1", "0123456789abcdef")
CLASS_ROOM = "classroomabc"
CODE = "def f():\n    return 1\n"
REPLACE = ("replace_range", {"start_line": 2, "end_line": 2, "new_text": "    return 42\n"})


def doc_with(*entries: tuple[str, str, dict[str, Any]]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    with doc.transaction():
        for kind, entry_id, value in entries:
            classroom.put(doc, kind, entry_id, value)
    return doc


def exercise(ai: str | None) -> tuple[str, str, dict[str, Any]]:
    value: dict[str, Any] = {"id": "ex1", "title": "Sum", "class_room": CLASS_ROOM}
    if ai is not None:
        value["ai"] = ai
    return (classroom.EXERCISE, "ex1", value)


# -- the lookup ----------------------------------------------------------------------


@pytest.mark.parametrize("ai", ["off", "hints", "full"])
def test_a_student_room_follows_its_exercise_for_every_role(ai: str) -> None:
    doc = doc_with(exercise(ai))
    for role in Role:
        assert ai_policy(doc, STUDENT_ROOM, role) == ai


def test_a_student_room_without_an_ai_field_or_entry_is_full() -> None:
    assert ai_policy(doc_with(exercise(None)), STUDENT_ROOM, Role.EDITOR) == "full"
    assert ai_policy(Doc(), STUDENT_ROOM, Role.EDITOR) == "full"


def test_an_unknown_value_refuses_rather_than_guesses() -> None:
    assert ai_policy(doc_with(exercise("maybe")), STUDENT_ROOM, Role.EDITOR) == "off"
    class_doc = doc_with((classroom.POLICY, "ai", {"ai": 3}))
    assert ai_policy(class_doc, CLASS_ROOM, Role.VIEWER) == "off"


@pytest.mark.parametrize("ai", ["off", "hints", "full"])
def test_a_class_room_policy_applies_to_its_students_only(ai: str) -> None:
    doc = doc_with((classroom.POLICY, "ai", {"ai": ai}), exercise(None))
    assert ai_policy(doc, CLASS_ROOM, Role.VIEWER) == ai
    for staff in (Role.OWNER, Role.EDITOR, Role.REVIEWER):
        assert ai_policy(doc, CLASS_ROOM, staff) == "full"


def test_a_class_room_without_a_policy_and_other_rooms_are_full() -> None:
    assert ai_policy(Doc(), CLASS_ROOM, Role.VIEWER) == "full"
    # A student room's policy lives in its exercise entry, not in a policy:ai entry.
    doc = doc_with((classroom.POLICY, "ai", {"ai": "off"}))
    assert ai_policy(doc, STUDENT_ROOM, Role.EDITOR) == "full"


def test_the_strictest_policy_wins() -> None:
    assert strictest(["full", "hints"]) == "hints"
    assert strictest(["hints", "off", "full"]) == "off"
    assert strictest([]) == "full"


# -- end to end ----------------------------------------------------------------------


def seed(data_dir: Path, name: str, mode: str, ai: str | None, ai_edits: bool = True) -> None:
    """The room as the server would have made it, in the store the server will open."""
    store = SQLiteStore(data_dir / SQLITE_FILE)
    try:
        now = time.time()
        assert store.create_room(RoomInfo(name=name, mode=mode, created_at=now, updated_at=now))
        doc: Doc[Any] = Doc()
        with doc.transaction():
            meta = schema.meta(doc)
            meta["mode"] = mode
            meta["language"] = "python"
            meta["title"] = ""
            meta["ai_edits"] = ai_edits
            schema.code(doc).insert(0, CODE)
            if classroom.is_server_room(name):
                classroom.put(doc, *exercise(ai))
            elif ai is not None:
                classroom.put(doc, classroom.POLICY, "ai", {"ai": ai})
        store.append(name, [doc.get_update()])
    finally:
        store.close()


@pytest.fixture
def start(
    server_factory: Callable[..., ServerProcess], double: AnthropicDouble, tmp_path: Path
) -> Callable[..., ServerProcess]:
    def run(rooms: list[tuple[str, str, str | None]]) -> ServerProcess:
        data_dir = tmp_path / "data"
        for name, mode, ai in rooms:
            seed(data_dir, name, mode, ai)
        return server_factory(
            data_dir,
            CODEMENTOR_SECRET=SECRET,
            CODEMENTOR_API_RATE_PER_MINUTE="100000",
            ANTHROPIC_API_KEY="test-key",
            CODEMENTOR_AI_BASE_URL=double.url,
            CODEMENTOR_AI_MAX_RETRIES="0",
        )

    return run


def ask(server: ServerProcess, room: str, prompt: str, role: str = "editor") -> httpx.Response:
    return httpx.post(
        f"{server.http_url}/api/rooms/{room}/ai",
        json={"prompt": prompt},
        headers={"authorization": f"Bearer {sign(room, role, name='Stu')}"},
        timeout=10,
    )


@asynccontextmanager
async def peer(server: ServerProcess, room: str, role: str = "editor") -> AsyncIterator[YClient]:
    client = YClient(server.ws_url(room))
    await client.connect(f"token={sign(room, role, name='Stu')}")
    await client.wait_synced()
    try:
        yield client
    finally:
        await client.close()


def ai_entries(client: YClient) -> list[Map[Any]]:
    return [m for m in schema.chat(client.doc) if isinstance(m, Map) and m.get("author") == AI]


async def answered(client: YClient) -> Map[Any]:
    def done() -> bool:
        entries = ai_entries(client)
        return bool(entries) and entries[-1].get("pending") is not True

    await eventually(done, 15)
    return ai_entries(client)[-1]


def server_code(server: ServerProcess, room: str) -> str:
    r = httpx.get(
        f"{server.http_url}/api/rooms/{room}/snapshot",
        headers={"authorization": f"Bearer {sign(room, 'owner')}"},
        timeout=5,
    )
    assert r.status_code == 200, r.text
    return r.text


@pytest.mark.anyio
async def test_off_refuses_rest_and_answers_chat_with_a_notice(
    start: Callable[..., ServerProcess], double: AnthropicDouble
) -> None:
    server = start([(STUDENT_ROOM, "pair", "off")])
    r = ask(server, STUDENT_ROOM, "what is wrong?")
    assert r.status_code == 403
    assert r.json()["error"] == "the AI is off for this exercise"
    async with peer(server, STUDENT_ROOM) as student:
        with student.doc.transaction():
            schema.chat(student.doc).append(
                Map({"id": "m1", "author": "Stu", "text": "@ai solve it please", "ts": 1.0})
            )
        notice = await answered(student)
        assert notice.get("text") == "Sorry Stu, the AI is off for this exercise."
    assert double.requests == []  # Claude was never called


@pytest.mark.anyio
async def test_hints_sends_no_tools_and_never_applies_a_tool_call(
    start: Callable[..., ServerProcess], double: AnthropicDouble
) -> None:
    server = start([(STUDENT_ROOM, "pair", "hints")])
    double.script(Reply([("text", "Look at line 2: what should f return? "), ("tool", *REPLACE)]))
    async with peer(server, STUDENT_ROOM) as student:
        assert ask(server, STUDENT_ROOM, "fix it for me").status_code == 202
        entry = await answered(student)
        assert "what should f return?" in str(entry.get("text"))
        assert "hints only" in str(entry.get("text"))
        assert entry.get("change") is None
        assert [e for e in ai_entries(student) if e.get("kind") == "suggestion"] == []
    body = double.requests[-1]["body"]
    assert "tools" not in body
    system = body["system"] if isinstance(body["system"], str) else str(body["system"])
    assert HINTS_RULES.strip() in system
    assert server_code(server, STUDENT_ROOM) == CODE  # the tool call changed nothing


@pytest.mark.anyio
async def test_full_keeps_the_tools_and_applies_the_same_tool_call(
    start: Callable[..., ServerProcess], double: AnthropicDouble
) -> None:
    """The control of the hints test: the same reply does change the code."""
    server = start([(STUDENT_ROOM, "pair", "full")])
    double.script(Reply([("text", "Done."), ("tool", *REPLACE)]))
    async with peer(server, STUDENT_ROOM) as student:
        assert ask(server, STUDENT_ROOM, "fix it for me").status_code == 202
        await answered(student)
    body = double.requests[-1]["body"]
    assert {t["name"] for t in body["tools"]} == {"replace_range", "insert_text", "create_file"}
    assert "HINTS ONLY" not in str(body["system"])
    await eventually(lambda: server_code(server, STUDENT_ROOM) == "def f():\n    return 42\n")


@pytest.mark.anyio
async def test_a_class_rooms_policy_does_not_bind_its_owner(
    start: Callable[..., ServerProcess], double: AnthropicDouble
) -> None:
    """policy:ai off in a broadcast class: the teacher still asks; students (viewers)
    may not ask in a broadcast room at all (``may_ask``)."""
    server = start([(CLASS_ROOM, "broadcast", "off")])
    async with peer(server, CLASS_ROOM, "owner") as teacher:
        assert ask(server, CLASS_ROOM, "explain f", role="owner").status_code == 202
        await answered(teacher)
    assert len(double.requests) == 1
    assert ask(server, CLASS_ROOM, "explain f", role="viewer").status_code == 403


def test_under_hints_no_suggestion_is_applied_but_one_may_be_dismissed(
    start: Callable[..., ServerProcess],
) -> None:
    """A suggestion made before the policy became hints cannot be applied now."""
    server = start([(STUDENT_ROOM, "pair", "hints")])
    url = f"{server.http_url}/api/rooms/{STUDENT_ROOM}/ai/suggestions/ai123"
    auth = {"authorization": f"Bearer {sign(STUDENT_ROOM, 'owner', name='Tea')}"}
    applied = httpx.post(url, json={"action": "apply"}, headers=auth, timeout=10)
    assert applied.status_code == 403
    assert applied.json()["error"] == "the AI may not change the code here (AI policy: hints)"
    dismissed = httpx.post(url, json={"action": "dismiss"}, headers=auth, timeout=10)
    assert dismissed.status_code == 404  # unknown suggestion: the policy did not stop it
