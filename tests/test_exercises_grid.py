"""The teacher's grid and the spotlight end to end: a real server, exercises made and
joined over REST, students typing on real websockets, the teacher's page as one
websocket to the exercise room, checks through the Judge0 double."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from crdt import schema
from rooms import classroom
from rooms.class_grid import CURRENT
from tests.judge0_double import Judge0Double
from tests.serverproc import ServerProcess
from tests.support import eventually, sign
from tests.test_exercises import ENV, JUDGE0_TOKEN, SOLUTION, Client, teacher_of
from tests.yclient import YClient

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    double = Judge0Double(auth_token=JUDGE0_TOKEN).start()
    env = {**ENV, "CODEMENTOR_JUDGE0_URL": double.url}
    try:
        with ServerProcess(tmp_path_factory.mktemp("grid"), env) as proc:
            yield Client(proc)
    finally:
        double.stop()


def tiles(grid: YClient) -> dict[str, dict[str, Any]]:
    state = schema.class_state(grid.doc)
    return {
        key.split(":", 1)[1]: json.loads(value)
        for key, value in state.items()
        if key.startswith("student:") and isinstance(value, str)
    }


def tile_of(grid: YClient, name: str) -> dict[str, Any]:
    found = [t for t in tiles(grid).values() if t.get("name") == name]
    return found[0] if found else {}


async def test_the_grid_follows_each_student_over_one_connection(setup: Client) -> None:
    api = setup
    class_room = api.new_class()
    exercise = api.exercise(class_room)
    ana = api.join(class_room, exercise["id"], "Ana")
    ben = api.join(class_room, exercise["id"], "Ben")
    async with (
        YClient(api.ws(exercise["room"], exercise["token"])) as grid,
        YClient(api.ws(ana["room"], ana["token"])) as ana_room,
        YClient(api.ws(ben["room"], ben["token"])) as ben_room,
    ):
        for client in (grid, ana_room, ben_room):
            await client.wait_synced()
        await eventually(lambda: tile_of(grid, "Ana").get("online") is True, timeout=5)
        await eventually(lambda: tile_of(grid, "Ben").get("online") is True, timeout=5)
        typed = time.time()
        ana_room.text += "# Ana was here\n"
        # Within 2 s of the keystroke, on the grid's one connection.
        await eventually(
            lambda: tile_of(grid, "Ana").get("first_lines", "").endswith("# Ana was here"),
            timeout=2,
        )
        ana_tile = tile_of(grid, "Ana")
        assert ana_tile["last_edit"] >= typed - 1
        assert "last_edit" not in tile_of(grid, "Ben")
        # A check: the tile shows N/M.
        ana_room.text.clear()
        ana_room.text += SOLUTION
        # Lines count every file: main.py's two and the starter's notes.txt.
        await eventually(lambda: tile_of(grid, "Ana").get("lines") == 3, timeout=5)
        assert tile_of(grid, "Ana")["first_lines"] == SOLUTION.rstrip("\n")
        checked = api.call("POST", f"/api/exercises/{exercise['id']}/check", ana["token"])
        assert checked.status_code == 200, checked.text
        await eventually(
            lambda: (tile_of(grid, "Ana").get("tests") or {}).get("passed") == 2, timeout=5
        )
        assert tile_of(grid, "Ana")["tests"]["total"] == 2
        await ben_room.close()
        await eventually(lambda: tile_of(grid, "Ben").get("online") is False, timeout=5)


async def test_a_spotlight_shows_a_students_code_to_the_class_until_ended(
    setup: Client,
) -> None:
    api = setup
    class_room = api.new_class()
    exercise = api.exercise(class_room)
    ana = api.join(class_room, exercise["id"], "Ana")
    teacher = teacher_of(class_room)
    student = sign(class_room, "viewer", name="Sam", personal=True)
    path = f"/api/rooms/{class_room}/spotlight"
    async with (
        YClient(api.ws(class_room, student)) as sam,
        YClient(api.ws(ana["room"], ana["token"])) as ana_room,
    ):
        await sam.wait_synced()
        await ana_room.wait_synced()
        await eventually(lambda: "a, b" in str(ana_room.text))
        # Only the class's staff, only a student room of this class's exercises.
        assert api.call("POST", path, student, json={"room": ana["room"]}).status_code == 403
        assert api.call("POST", path, teacher, json={"room": class_room}).status_code == 422
        assert api.call("POST", path, teacher, json={}).status_code == 422
        other_class = api.new_class()
        other = api.join(other_class, api.exercise(other_class)["id"], "Oli")
        assert api.call("POST", path, teacher, json={"room": other["room"]}).status_code == 404
        shown = api.call("POST", path, teacher, json={"room": ana["room"]})
        assert shown.status_code == 200, shown.text
        assert shown.json()["name"] == "Ana" and "main.py" in shown.json()["files"]

        def on_stage() -> dict[str, Any]:
            return classroom.get(sam.doc, classroom.SPOTLIGHT, CURRENT) or {}

        await eventually(lambda: on_stage().get("name") == "Ana")
        ana_room.text += "print('look')\n"
        await eventually(lambda: "print('look')" in on_stage().get("files", {}).get("main.py", ""))
        assert api.call("DELETE", path, student).status_code == 403
        assert api.call("DELETE", path, teacher).status_code == 204
        await eventually(lambda: on_stage() == {})
        assert api.call("DELETE", path, teacher).status_code == 404
        # Read-only for the class: a student's write to the stage is refused.
        schema.class_state(sam.doc)[f"{classroom.SPOTLIGHT}:{CURRENT}"] = "{}"
        await eventually(lambda: sam.denials, what="permission denied")


async def test_the_grid_spotlights_with_its_own_token_and_shows_who_is_on_stage(
    setup: Client,
) -> None:
    """The grid's page holds an exercise-room token, not the class's: it has its own
    door to the spotlight, and its document says who is on stage (no code)."""
    api = setup
    class_room = api.new_class()
    exercise = api.exercise(class_room)
    ana = api.join(class_room, exercise["id"], "Ana")
    other = api.join(class_room, api.exercise(class_room)["id"], "Ana")
    path = f"/api/exercises/{exercise['id']}/spotlight"
    grid_token = exercise["token"]
    async with (
        YClient(api.ws(exercise["room"], grid_token)) as grid,
        YClient(api.ws(class_room, sign(class_room, "viewer", name="Sam"))) as sam,
    ):
        await grid.wait_synced()
        await sam.wait_synced()
        assert api.call("POST", path, ana["token"], json={"room": ana["room"]}).status_code == 403
        # A student room of another exercise of the same class: not this grid's.
        assert api.call("POST", path, grid_token, json={"room": other["room"]}).status_code == 422
        shown = api.call("POST", path, grid_token, json={"room": ana["room"]})
        assert shown.status_code == 200, shown.text

        def marked() -> dict[str, Any]:
            return classroom.get(grid.doc, classroom.SPOTLIGHT, CURRENT) or {}

        await eventually(lambda: marked().get("room") == ana["room"])
        assert marked()["name"] == "Ana" and "files" not in marked()
        await eventually(
            lambda: (
                (classroom.get(sam.doc, classroom.SPOTLIGHT, CURRENT) or {}).get("name") == "Ana"
            )
        )
        assert api.call("DELETE", path, grid_token).status_code == 204
        await eventually(lambda: marked() == {})
        await eventually(lambda: classroom.get(sam.doc, classroom.SPOTLIGHT, CURRENT) is None)


def test_staff_get_a_fresh_grid_link_and_students_do_not(setup: Client) -> None:
    api = setup
    class_room = api.new_class()
    exercise = api.exercise(class_room)
    ana = api.join(class_room, exercise["id"], "Ana")
    staff = api.call("GET", f"/api/exercises/{exercise['id']}", teacher_of(class_room)).json()
    assert staff["grid_url"].startswith(f"/x/{exercise['id']}?token=")
    token = staff["grid_url"].split("token=", 1)[1]
    students = api.call("GET", f"/api/exercises/{exercise['id']}/students", token)
    assert students.status_code == 200 and [s["name"] for s in students.json()] == ["Ana"]
    mine = api.call("GET", f"/api/exercises/{exercise['id']}", ana["token"]).json()
    assert "grid_url" not in mine
