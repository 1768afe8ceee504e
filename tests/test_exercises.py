"""Exercises in personal rooms (server/exercises_api.py), end to end: a real server
process, the Judge0 double (a real HTTP server that honours ``expected_output``), real
websockets and SQLite.

Covers: making an exercise, joining (once: reopening returns the same room, seeded),
students never opening each other's rooms (REST 403, websocket 4403) nor reading hidden
tests (GET, check results, their room's document), checks through Judge0 (accepted,
wrong answer, 409 while one runs), the due-time lock (4401 at the due time, a viewer
token after, checks refused), the grades CSV, bad inputs, the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import calendar
import csv
import io
import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import websockets

from crdt import schema
from rooms import classroom
from rooms.access import CLOSE_TOKEN_REFUSED
from tests.judge0_double import Judge0Double
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

JUDGE0_TOKEN = "judge0-secret-token"
ENV = {
    "CODEMENTOR_SECRET": SECRET,
    "CODEMENTOR_API_RATE_PER_MINUTE": "100000",
    "CODEMENTOR_JUDGE0_TOKEN": JUDGE0_TOKEN,
    "CODEMENTOR_RUNNER_CPU_TIME_SECONDS": "2",
    "CODEMENTOR_RUNNER_WALL_TIME_SECONDS": "5",
    "CODEMENTOR_RUNNER_MEMORY_MB": "128",
    "CODEMENTOR_RUNNER_RUNS_PER_MINUTE": "100000",
    "CODEMENTOR_RUNNER_DEADLINE_SECONDS": "30",
}
HIDDEN_IN = "77 88"
HIDDEN_OUT = "165"
STARTER = "a, b = map(int, input().split())\nprint(0)\n"
SOLUTION = "a, b = map(int, input().split())\nprint(a + b)\n"


class Client:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server

    def call(self, method: str, path: str, token: str | None, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, self.server.http_url + path, headers=headers, timeout=60, **kw)

    def ws(self, room: str, token: str) -> str:
        return self.server.ws_url(room, "token=" + quote(token, safe=""))

    def new_class(self) -> str:
        made = self.call("POST", "/api/rooms", None, json={"mode": "broadcast", "title": "CS1"})
        assert made.status_code == 201, made.text
        room: str = made.json()["room"]
        return room

    def exercise(self, class_room: str, **body: Any) -> dict[str, Any]:
        teacher = sign(class_room, "owner", name="Teacher", personal=True)
        body = {
            "title": "Add two numbers",
            "files": {"main.py": STARTER, "notes.txt": "read two ints"},
            "entry": "main.py",
            "tests": [
                {"name": "small", "stdin": "1 2\n", "expected_output": "3\n"},
                {"name": "secret", "stdin": HIDDEN_IN, "expected_output": HIDDEN_OUT,
                 "hidden": True},
            ],
            **body,
        }  # fmt: skip
        made = self.call("POST", f"/api/rooms/{class_room}/exercises", teacher, json=body)
        assert made.status_code == 201, made.text
        out: dict[str, Any] = made.json()
        return out

    def join(self, class_room: str, exercise_id: str, name: str) -> dict[str, Any]:
        token = sign(class_room, "viewer", name=name, personal=True)
        joined = self.call("POST", f"/api/exercises/{exercise_id}/join", token)
        assert joined.status_code == 200, joined.text
        out: dict[str, Any] = joined.json()
        return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Judge0Double]]:
    double = Judge0Double(auth_token=JUDGE0_TOKEN).start()
    env = {**ENV, "CODEMENTOR_JUDGE0_URL": double.url}
    try:
        with ServerProcess(tmp_path_factory.mktemp("exercises"), env) as proc:
            yield Client(proc), double
    finally:
        double.stop()


@pytest.fixture
def api(setup: tuple[Client, Judge0Double]) -> Iterator[Client]:
    client, double = setup
    yield client
    double.hold = False


def teacher_of(class_room: str) -> str:
    return sign(class_room, "owner", name="Teacher", personal=True)


async def test_join_seeds_a_room_once_and_reopening_returns_it(api: Client) -> None:
    class_room = api.new_class()
    made = api.exercise(class_room)
    exercise_id = made["id"]
    assert made["room"] == classroom.exercise_room(exercise_id)
    assert made["grid_url"] == f"/x/{exercise_id}?token={made['token']}"
    first = api.join(class_room, exercise_id, "Bob")
    assert first["role"] == "editor"
    assert first["room"].startswith(f"{exercise_id}.s.")
    again = api.join(class_room, exercise_id, "Bob")
    assert again["room"] == first["room"]
    other = api.join(class_room, exercise_id, "Cy")
    assert other["room"] != first["room"]
    async with YClient(api.ws(first["room"], first["token"])) as bob:
        await bob.wait_synced()
        assert schema.workspace(bob.doc) == {"main.py": STARTER, "notes.txt": "read two ints"}
        seen = classroom.get(bob.doc, classroom.EXERCISE, exercise_id)
        assert seen is not None and seen["title"] == "Add two numbers"
        bob.text += "# mine\n"
    # Reopening after an edit: the same room, not seeded a second time.
    api.join(class_room, exercise_id, "Bob")
    snap = api.call("GET", f"/api/rooms/{first['room']}/snapshot", first["token"])
    assert snap.text == STARTER + "# mine\n"
    # The class lists the exercise; the exercise room the students who joined.
    async with YClient(api.ws(made["room"], made["token"])) as grid:
        await grid.wait_synced()
        joined = classroom.entries(grid.doc, classroom.STUDENT)
        assert sorted(e["name"] for e in joined.values()) == ["Bob", "Cy"]
    students = api.call("GET", f"/api/exercises/{exercise_id}/students", teacher_of(class_room))
    assert students.status_code == 200, students.text
    rows = {row["name"]: row for row in students.json()}
    assert rows["Bob"]["room"] == first["room"] and rows["Bob"]["user_id"] == "u-bob"
    # The teacher's link opens Bob's room as its owner.
    open_token = rows["Bob"]["open_url"].split("token=", 1)[1]
    details = api.call("GET", f"/api/rooms/{first['room']}", open_token)
    assert details.status_code == 200


async def test_a_student_cannot_open_another_students_room(api: Client) -> None:
    class_room = api.new_class()
    exercise_id = api.exercise(class_room)["id"]
    bob = api.join(class_room, exercise_id, "Bob")
    cy = api.join(class_room, exercise_id, "Cy")
    refused = api.call("GET", f"/api/rooms/{cy['room']}/snapshot", bob["token"])
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "token is for another room"
    async with websockets.connect(api.ws(cy["room"], bob["token"])) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(10):
                async for _ in ws:
                    pass
        assert ws.close_code == 4403
    # Nor list the students, nor export the grades, nor check Cy's room.
    student = sign(class_room, "viewer", name="Bob", personal=True)
    for method, path in (("GET", "students"), ("GET", "grades.csv")):
        answer = api.call(method, f"/api/exercises/{exercise_id}/{path}", student)
        assert answer.status_code == 403, answer.text
    check = api.call(
        "POST", f"/api/exercises/{exercise_id}/check", bob["token"], json={"student": "x"}
    )
    assert check.status_code == 200, check.text  # a student's token checks their own room
    assert check.json()["by_id"] == "u-bob"
    assert check.json()["id"] not in api.call("GET", f"/api/rooms/{cy['room']}", cy["token"]).text
    # A shared join-link token (not personal) cannot join.
    shared = sign(class_room, "viewer", name="viewer")
    refused = api.call("POST", f"/api/exercises/{exercise_id}/join", shared)
    assert refused.status_code == 403
    assert refused.json()["error"] == "join the class with your name first"


async def test_hidden_tests_stay_hidden_from_students(api: Client) -> None:
    class_room = api.new_class()
    exercise_id = api.exercise(class_room)["id"]
    bob = api.join(class_room, exercise_id, "Bob")
    student_class_token = sign(class_room, "viewer", name="Bob", personal=True)
    for token in (student_class_token, bob["token"]):
        view = api.call("GET", f"/api/exercises/{exercise_id}", token)
        assert view.status_code == 200, view.text
        assert view.json()["staff"] is False
        assert HIDDEN_IN not in view.text and HIDDEN_OUT not in view.text
        assert {"name": "secret", "hidden": True} in view.json()["tests"]
        assert view.json()["tests"][0]["stdin"] == "1 2\n"
    staff = api.call("GET", f"/api/exercises/{exercise_id}", teacher_of(class_room))
    assert staff.json()["staff"] is True and HIDDEN_IN in staff.text
    # The check's answer and the room's document: the hidden test by name and outcome.
    checked = api.call("POST", f"/api/exercises/{exercise_id}/check", bob["token"], json={})
    assert checked.status_code == 200, checked.text
    assert HIDDEN_IN not in checked.text and HIDDEN_OUT not in checked.text
    hidden = [r for r in checked.json()["results"] if r["hidden"]]
    assert [{k: v for k, v in r.items() if v is not None} for r in hidden] == [
        {"name": "secret", "hidden": True, "passed": False}
    ]
    async with YClient(api.ws(bob["room"], bob["token"])) as client:
        await client.wait_synced()
        everything = json.dumps(schema.class_state(client.doc).to_py())
        everything += json.dumps(schema.runs(client.doc).to_py())
        assert HIDDEN_IN not in everything and HIDDEN_OUT not in everything
        assert "secret" in everything  # the hidden test is named


async def test_check_runs_every_test_through_judge0(api: Client) -> None:
    class_room = api.new_class()
    exercise_id = api.exercise(class_room)["id"]
    bob = api.join(class_room, exercise_id, "Bob")
    wrong = api.call("POST", f"/api/exercises/{exercise_id}/check", bob["token"], json={})
    assert wrong.status_code == 200, wrong.text
    record = wrong.json()
    assert (record["kind"], record["status"], record["passed"], record["total"]) == (
        "check", "wrong_answer", 0, 2,
    )  # fmt: skip
    small = record["results"][0]
    assert small["status"] == "wrong_answer" and small["stdout"] == "0\n"
    assert small["expected"] == "3\n" and small["passed"] is False
    async with YClient(api.ws(bob["room"], bob["token"])) as client:
        await client.wait_synced()
        await eventually(lambda: record["id"] in schema.runs(client.doc))
        code = client.text
        del code[0 : len(str(code))]
        code += SOLUTION
        await eventually(
            lambda: (
                api.call("GET", f"/api/rooms/{bob['room']}/snapshot", bob["token"]).text == SOLUTION
            )
        )
        right = api.call("POST", f"/api/exercises/{exercise_id}/check", bob["token"], json={})
        assert right.status_code == 200, right.text
        assert (right.json()["status"], right.json()["passed"]) == ("accepted", 2)
        await eventually(
            lambda: (
                (schema.runs(client.doc).get(right.json()["id"]) or {}).get("status") == "accepted"
            )
        )
        stored = schema.runs(client.doc)[right.json()["id"]]
        assert stored["kind"] == "check" and stored["by_id"] == "u-bob"
        assert json.loads(stored["results"])[1] == {
            "name": "secret", "hidden": True, "passed": True,
        }  # fmt: skip
    # Staff check a student's room by key.
    key = bob["room"].rsplit(".", 1)[1]
    staff = api.call(
        "POST", f"/api/exercises/{exercise_id}/check", teacher_of(class_room),
        json={"student": key},
    )  # fmt: skip
    assert staff.status_code == 200 and staff.json()["by"] == "Teacher"


async def test_a_second_check_while_one_runs_is_409(
    api: Client, setup: tuple[Client, Judge0Double]
) -> None:
    _, double = setup
    class_room = api.new_class()
    exercise_id = api.exercise(class_room)["id"]
    bob = api.join(class_room, exercise_id, "Bob")
    double.hold = True
    answers: list[httpx.Response] = []
    first = threading.Thread(
        target=lambda: answers.append(
            api.call("POST", f"/api/exercises/{exercise_id}/check", bob["token"], json={})
        )
    )
    first.start()
    try:
        async with YClient(api.ws(bob["room"], bob["token"])) as client:
            await client.wait_synced()
            await eventually(lambda: len(schema.runs(client.doc)) == 1)
            second = api.call("POST", f"/api/exercises/{exercise_id}/check", bob["token"])
            assert second.status_code == 409, second.text
    finally:
        double.hold = False
        await asyncio.to_thread(first.join, 60)
    assert answers and answers[0].status_code == 200, answers


async def test_due_time_locks_the_students_room(api: Client) -> None:
    class_room = api.new_class()
    due = time.time() + 4
    exercise_id = api.exercise(class_room, due_at=due)["id"]
    bob = api.join(class_room, exercise_id, "Bob")
    assert bob["role"] == "editor" and bob["expires_at"] == math.ceil(due)
    async with YClient(api.ws(bob["room"], bob["token"])) as client:
        await client.wait_synced()
        client.text += "# before the due time\n"
        assert await client.wait_closed(timeout=10) == CLOSE_TOKEN_REFUSED
    assert time.time() >= due
    after = api.join(class_room, exercise_id, "Bob")
    assert after["room"] == bob["room"] and after["role"] == "viewer"
    late = api.call("POST", f"/api/exercises/{exercise_id}/check", after["token"], json={})
    assert late.status_code == 409, late.text
    assert "due" in late.json()["error"]
    grades = api.call("GET", f"/api/exercises/{exercise_id}/grades.csv", teacher_of(class_room))
    rows = list(csv.DictReader(io.StringIO(grades.text)))
    assert len(rows) == 1 and rows[0]["submitted_at"]
    submitted = calendar.timegm(time.strptime(rows[0]["submitted_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert submitted <= due


async def test_grades_csv(api: Client) -> None:
    class_room = api.new_class()
    exercise_id = api.exercise(class_room)["id"]
    bob = api.join(class_room, exercise_id, "=HYPERLINK(1)")
    api.join(class_room, exercise_id, "Cy")
    async with YClient(api.ws(bob["room"], bob["token"])) as client:
        await client.wait_synced()
        client.text += "# edit\n"
        await eventually(lambda: "# edit" in api.call(
            "GET", f"/api/rooms/{bob['room']}/snapshot", bob["token"]).text)  # fmt: skip
    checked = api.call("POST", f"/api/exercises/{exercise_id}/check", bob["token"], json={})
    assert checked.status_code == 200
    grades = api.call("GET", f"/api/exercises/{exercise_id}/grades.csv", teacher_of(class_room))
    assert grades.status_code == 200, grades.text
    assert grades.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(grades.text)))
    assert list(rows[0]) == [
        "student", "user_id", "tests_passed", "tests_total", "last_run_status",
        "last_check_at", "submitted_at", "room",
    ]  # fmt: skip
    by_name = {row["student"]: row for row in rows}
    assert set(by_name) == {"'=HYPERLINK(1)", "Cy"}
    bobs = by_name["'=HYPERLINK(1)"]
    assert (bobs["tests_passed"], bobs["tests_total"], bobs["last_run_status"]) == (
        "0", "2", "wrong_answer",
    )  # fmt: skip
    assert bobs["last_check_at"] and bobs["submitted_at"] and bobs["room"] == bob["room"]
    cys = by_name["Cy"]
    assert (cys["tests_passed"], cys["last_run_status"], cys["submitted_at"]) == ("", "", "")


async def test_grades_csv_for_a_class(api: Client) -> None:
    """Forty students, half of whom just edited over REST: one row each, in name order,
    submission times for exactly those who edited (read for the whole class in one
    store call, after one flush of the loaded rooms)."""
    class_room = api.new_class()
    exercise_id = api.exercise(class_room)["id"]
    joined = {f"Student {i:02d}": api.join(class_room, exercise_id, f"Student {i:02d}")
              for i in range(40)}  # fmt: skip
    editors = set(list(joined)[::2])
    for name in editors:
        student = joined[name]
        put = api.call("PUT", f"/api/rooms/{student['room']}/files/main.py", student["token"],
                       content=f"print('{name}')\n")  # fmt: skip
        assert put.status_code in (200, 201, 204), put.text
    grades = api.call("GET", f"/api/exercises/{exercise_id}/grades.csv", teacher_of(class_room))
    assert grades.status_code == 200, grades.text
    rows = list(csv.DictReader(io.StringIO(grades.text)))
    assert [row["student"] for row in rows] == sorted(joined)
    for row in rows:
        assert row["room"] == joined[row["student"]]["room"]
        assert (row["tests_passed"], row["tests_total"], row["last_run_status"]) == ("", "2", "")
        assert bool(row["submitted_at"]) is (row["student"] in editors), row


async def test_bad_inputs_get_clear_errors(api: Client) -> None:
    class_room = api.new_class()
    teacher = teacher_of(class_room)
    path = f"/api/rooms/{class_room}/exercises"

    def field_of(response: httpx.Response) -> str:
        assert response.status_code == 422, response.text
        return str(response.json()["fields"][0]["field"])

    assert field_of(api.call("POST", path, teacher, json={"title": "  "})) == "title"
    assert field_of(api.call("POST", path, teacher, json={})) == "title"
    past = {"title": "x", "due_at": time.time() - 10}
    assert field_of(api.call("POST", path, teacher, json=past)) == "due_at"
    many = {"title": "x", "tests": [{"expected_output": "1"}] * 51}
    assert field_of(api.call("POST", path, teacher, json=many)) == "tests"
    entry = {"title": "x", "files": {"a.py": "print(1)"}, "entry": "b.py"}
    assert field_of(api.call("POST", path, teacher, json=entry)) == "entry"
    ai = {"title": "x", "ai": "sometimes"}
    assert field_of(api.call("POST", path, teacher, json=ai)) == "ai"
    extra = {"title": "x", "owner": "me"}
    assert field_of(api.call("POST", path, teacher, json=extra)) == "owner"
    student = sign(class_room, "viewer", name="Bob", personal=True)
    assert api.call("POST", path, student, json={"title": "x"}).status_code == 403
    assert api.call("POST", path, "not-a-token", json={"title": "x"}).status_code == 401
    # The class's workspace is the default starter.
    made = api.call("POST", path, teacher, json={"title": "from the class"})
    assert made.status_code == 201, made.text
    exercise_id = made.json()["id"]
    assert api.call("GET", "/api/exercises/nope", teacher).status_code == 404
    assert api.call("GET", f"/api/exercises/{exercise_id}", None).status_code == 401
    other_class = sign(api.new_class(), "owner", personal=True)
    assert api.call("GET", f"/api/exercises/{exercise_id}", other_class).status_code == 403
    check = f"/api/exercises/{exercise_id}/check"
    assert field_of(api.call("POST", check, teacher, json={})) == "student"
    unknown = api.call("POST", check, teacher, json={"student": "0123456789abcdef"})
    assert unknown.status_code == 404
    assert api.call("POST", check, student, json={}).status_code == 403
    bob = api.join(class_room, exercise_id, "Bob")
    no_tests = api.call("POST", check, bob["token"], json={})
    assert no_tests.status_code == 409 and "no tests" in no_tests.json()["error"]


def test_the_openapi_document_has_the_endpoints(api: Client) -> None:
    document = api.call("GET", "/api/openapi.json", None).json()
    for path in (
        "/api/rooms/{room}/exercises", "/api/exercises/{id}", "/api/exercises/{id}/join",
        "/api/exercises/{id}/students", "/api/exercises/{id}/check",
        "/api/exercises/{id}/grades.csv",
    ):  # fmt: skip
        assert path in document["paths"], path
    assert "CreateExercise" in document["components"]["schemas"]
