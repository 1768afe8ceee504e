"""Exercises in the browser (issue 21): the teacher makes one, students open their own
rooms and type, the teacher's grid follows live, Check, spotlight, grades CSV, and the
grid with a class of 30."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import SECRET, People, create_room
from tests.e2e.helpers import editor, issue_shot, open_room, show_tab, type_at_end
from tests.serverproc import ServerProcess
from tests.support import sign, wait_until

STARTER = "n = int(input())\nprint(n * 2)\n"
STUDENTS = ["Ana", "Ben", "Chloe", "Dev", "Eli"]
COLORS = ["#1f7a3a", "#8a3ffc", "#b85300", "#0f62fe", "#a2191f"]
GRID_DELAY_MS = 2_000


def watched(people: People, page: Page, name: str) -> Page:
    """A page the app opened itself (a new tab): its errors count like the others'."""
    page.on("pageerror", lambda error: people.errors.append(f"{name}: {error}"))
    page.on("console", lambda message: people._on_console(name, message))
    return page


def new_tab(people: People, page: Page, name: str, click: Any) -> Page:
    """Click something that opens a new tab; that tab, once it left about:blank."""
    with page.context.expect_page() as info:
        click()
    tab = watched(people, info.value, name)
    tab.wait_for_url(lambda url: not url.startswith("about:"))
    return tab


def tile(grid: Page, name: str) -> Any:
    return grid.locator(".tile", has=grid.locator(".tile-name", has_text=name))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def put_starter(server: ServerProcess, room: dict[str, Any]) -> None:
    response = httpx.put(
        f"{server.http_url}/api/rooms/{room['room']}/files/main.py",
        content=STARTER.encode(),
        headers=bearer(room["owner_token"]),
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text


def test_exercise_grid_check_spotlight_and_grades(
    runner_server: ServerProcess, people: People, screenshot: Any
) -> None:
    server = runner_server
    room = create_room(server, "broadcast", "python", "Doubling")
    put_starter(server, room)
    teacher = open_room(people.page("Ms Tan", "#b85300"), room["links"]["owner"])

    # The teacher turns the workspace into an exercise: one visible test, one hidden.
    show_tab(teacher, "Class")
    panel = teacher.locator(".exercises-panel")
    expect(panel.locator(".exercise-starter")).to_contain_text("1 file")
    panel.get_by_label("Title").fill("Double it")
    panel.get_by_role("button", name="+ Add test").click()
    panel.get_by_label("Test 1 input").fill("2")
    panel.get_by_label("Test 1 expected output").fill("4")
    panel.get_by_role("button", name="+ Add test").click()
    panel.get_by_label("Test 2 input").fill("3")
    panel.get_by_label("Test 2 expected output").fill("6")
    panel.get_by_label("Test 2 hidden").check()
    screenshot(teacher, "new-exercise")
    panel.get_by_role("button", name="Create exercise").click()
    item = panel.locator(".exercise-item", has_text="Double it")
    expect(item).to_be_visible()
    grid = new_tab(
        people, teacher, "grid", lambda: item.get_by_role("button", name="Open the grid").click()
    )
    assert "/x/" in grid.url
    expect(grid.locator(".grid-title")).to_have_text("Double it")
    expect(grid.locator(".grid-tests-count")).to_have_text("2 tests (1 hidden)")
    expect(grid.locator(".conn")).to_have_attribute("data-state", "connected")

    # Five students, each in their own browser, open the exercise and type.
    class_pages: dict[str, Page] = {}
    own: dict[str, Page] = {}
    for name, color in zip(STUDENTS, COLORS, strict=True):
        link = personal_viewer_link(server, room, name)
        page = open_room(people.page(name, color), link)
        class_pages[name] = page
        bar = page.locator(".exercise-bar", has_text="Double it")
        expect(bar).to_be_visible()
        mine = new_tab(
            people, page, f"{name} (own room)",
            lambda bar=bar: bar.get_by_role("button", name="Open the exercise").click(),
        )  # fmt: skip
        expect(mine.locator(".conn")).to_have_attribute("data-state", "connected")
        expect(editor(mine)).to_have_attribute("aria-readonly", "false")
        banner = mine.locator(".exercise-banner")
        expect(banner.locator(".exercise-banner-title")).to_have_text("Double it")
        expect(banner).to_contain_text("2 tests (1 hidden)")
        own[name] = mine
        type_at_end(mine, f"# {name} was here\n")
        # The teacher's grid shows the edit within 2 s, through its one connection.
        expect(tile(grid, name).locator(".tile-code")).to_contain_text(
            f"# {name} was here", timeout=GRID_DELAY_MS
        )
    expect(grid.locator(".tile")).to_have_count(len(STUDENTS))
    expect(grid.locator(".grid-count")).to_have_text("5 students")
    expect(tile(grid, "Ana").locator(".tile-dot")).to_have_class("tile-dot on")
    issue_shot(own["Ana"], "student-banner", issue=21)

    # Ben breaks the hidden test; he presses Check and sees 1/2; the grid shows it.
    type_at_end(own["Ben"], "if n == 3:\n    print('oops')\n")
    ben = own["Ben"]
    ben.get_by_role("button", name="Check").click()
    result = ben.locator(".exercise-result")
    expect(result.locator(".exercise-score")).to_have_text("Passed 1/2", timeout=20_000)
    expect(result.locator(".exercise-result-item.hidden-test")).to_contain_text("fail")
    # The hidden test's input and expected output never reach the student.
    assert "oops" not in result.inner_text()
    expect(tile(grid, "Ben").locator(".tile-tests")).to_have_text("tests 1/2")
    expect(tile(grid, "Ben").locator(".tile-tests")).to_have_class("tile-tests fail")
    issue_shot(ben, "student-check", issue=21)

    # Ben raises a hand in his own room, with a question: his tile shows it.
    ben.get_by_role("button", name="Raise hand").click()
    ben.get_by_label("Your question (optional)").fill("Why does 3 fail?")
    ben.get_by_role("button", name="Send question").click()
    expect(ben.get_by_role("button", name="Lower hand")).to_be_visible()
    expect(tile(grid, "Ben").locator(".tile-hand")).to_have_attribute(
        "title", "Hand raised: Why does 3 fail?", timeout=GRID_DELAY_MS
    )
    grid.get_by_role("radio", name="Hands").click()
    expect(grid.locator(".tile:visible .tile-name")).to_have_text(["Ben"])
    grid.get_by_role("radio", name="All").click()

    # Ana's code passes both.
    own["Ana"].get_by_role("button", name="Check").click()
    expect(own["Ana"].locator(".exercise-score")).to_have_text("Passed 2/2", timeout=20_000)
    expect(tile(grid, "Ana").locator(".tile-tests")).to_have_text("tests 2/2")
    expect(tile(grid, "Ana").locator(".tile-tests")).to_have_class("tile-tests pass")

    # Filter: "Stuck" keeps the failing one only.
    grid.get_by_role("radio", name="Stuck").click()
    expect(grid.locator(".tile:visible")).to_have_count(1)
    expect(grid.locator(".tile:visible .tile-name")).to_have_text("Ben")
    grid.get_by_role("radio", name="All").click()
    expect(grid.locator(".tile:visible")).to_have_count(len(STUDENTS))
    issue_shot(grid, "grid-5", issue=21)

    # Spotlight Ben's code: another student sees it read-only in the class, until it ends.
    tile(grid, "Ben").get_by_role("button", name="Spotlight Ben's code").click()
    chloe = class_pages["Chloe"]
    stage = chloe.locator(".spotlight-panel")
    expect(stage.locator(".spotlight-heading")).to_have_text("Spotlight: Ben’s code")
    expect(stage.locator(".spotlight-code")).to_contain_text("print('oops')")
    expect(stage.get_by_role("button", name="End spotlight")).to_be_hidden()
    # Ben keeps typing: the class sees it.
    type_at_end(ben, "# still working\n")
    expect(stage.locator(".spotlight-code")).to_contain_text("# still working")
    issue_shot(chloe, "spotlight-student", issue=21)
    expect(teacher.locator(".spotlight-panel")).to_be_visible()
    grid.get_by_role("button", name="End spotlight").click()
    expect(stage).to_be_hidden()

    # The grades, as a CSV file with one row per student.
    with grid.expect_download() as download:
        grid.get_by_role("button", name="Download grades (CSV)").click()
    path = Path(download.value.path())
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert sorted(r["student"] for r in rows) == sorted(STUDENTS)
    by_name = {r["student"]: r for r in rows}
    assert (by_name["Ben"]["tests_passed"], by_name["Ben"]["tests_total"]) == ("1", "2")
    assert (by_name["Ana"]["tests_passed"], by_name["Ana"]["tests_total"]) == ("2", "2")

    # Clicking a tile opens that student's room, as its owner, in a new tab.
    opened = new_tab(
        people, grid, "Ben's room", lambda: tile(grid, "Ben").locator(".tile-code").click()
    )
    expect(opened.locator(".conn")).to_have_attribute("data-state", "connected")
    expect(opened.locator(".me")).to_contain_text("Owner")
    expect(opened.locator(".cm-content")).to_contain_text("# still working")


def personal_viewer_link(server: ServerProcess, room: dict[str, Any], name: str) -> str:
    """A student's named viewer link to the class (the teacher's Share dialog makes these)."""
    response = httpx.post(
        f"{server.http_url}/api/rooms/{room['room']}/tokens",
        json={"role": "viewer", "name": name},
        headers=bearer(room["owner_token"]),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return f"{server.http_url}/r/{room['room']}?token={response.json()['token']}"


def test_grid_with_thirty_students(runner_server: ServerProcess, people: People) -> None:
    server = runner_server
    room = create_room(server, "broadcast", "python", "Doubling")
    put_starter(server, room)
    response = httpx.post(
        f"{server.http_url}/api/rooms/{room['room']}/exercises",
        json={
            "title": "Double it",
            "tests": [
                {"name": "two", "stdin": "2", "expected_output": "4"},
                {"name": "three", "stdin": "3", "expected_output": "6", "hidden": True},
            ],
        },
        headers=bearer(room["owner_token"]),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    grid = watched(people, people.page("Ms Tan").context.new_page(), "grid")
    grid.set_viewport_size({"width": 1440, "height": 900})
    grid.goto(server.http_url + created["grid_url"])
    expect(grid.locator(".conn")).to_have_attribute("data-state", "connected")

    # 30 students join over REST and write their code (REST file PUTs as themselves).
    names = [f"Student {i:02d}" for i in range(1, 31)]
    rooms: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=server.http_url, timeout=10) as client:
        for i, name in enumerate(names):
            token = sign(room["room"], "viewer", name=name, personal=True, secret=SECRET)
            joined = client.post(f"/api/exercises/{created['id']}/join", headers=bearer(token))
            assert joined.status_code in (200, 201), joined.text
            rooms[name] = joined.json()
            code = STARTER + f"# {name}\n" + ("total = 0\n" * (i % 4))
            if i % 3 == 1:
                code += "if n == 3:\n    print('oops')\n"
            put = client.put(
                f"/api/rooms/{rooms[name]['room']}/files/main.py",
                content=code.encode(),
                headers=bearer(rooms[name]["token"]),
            )
            assert put.status_code in (200, 201), put.text
        expect(grid.locator(".tile")).to_have_count(30, timeout=15_000)
        for name in names[:6]:
            check = client.post(
                f"/api/exercises/{created['id']}/check", headers=bearer(rooms[name]["token"])
            )
            assert check.status_code in (200, 201), check.text
    expect(grid.locator(".grid-count")).to_have_text("30 students")
    expect(grid.locator(".tile-tests.pass")).to_have_count(4, timeout=15_000)
    expect(grid.locator(".tile-tests.fail")).to_have_count(2)
    wait_until(
        lambda: grid.locator(".tile-code", has_text="# Student 30").count() == 1,
        what="the last student's code on the grid",
    )
    # One student types: only that tile is redrawn, the 29 others keep their nodes.
    grid.evaluate("() => { window.__codes = [...document.querySelectorAll('.tile-code')] }")
    with httpx.Client(base_url=server.http_url, timeout=10) as client:
        put = client.put(
            f"/api/rooms/{rooms['Student 07']['room']}/files/main.py",
            content=(STARTER + "# Student 07 again\n").encode(),
            headers=bearer(rooms["Student 07"]["token"]),
        )
        assert put.status_code == 200, put.text
    expect(tile(grid, "Student 07").locator(".tile-code")).to_contain_text("again")
    kept = grid.evaluate("() => window.__codes.filter((el) => el.isConnected).length")
    assert kept == 29
    # Sorting by tests puts the failing ones first; by name, Student 01 first.
    grid.get_by_label("Sort").select_option("tests")
    expect(grid.locator(".tile").first.locator(".tile-tests")).to_have_class("tile-tests fail")
    grid.get_by_label("Sort").select_option("name")
    expect(grid.locator(".tile").first.locator(".tile-name")).to_have_text("Student 01")
    shot = issue_shot(grid, "grid-30", issue=21)
    grid.screenshot(path=str(shot.with_name("grid-30-full.png")), full_page=True)


def test_due_time_locks_the_students_room(e2e_server: ServerProcess, people: People) -> None:
    server = e2e_server
    room = create_room(server, "broadcast", "python", "Doubling")
    put_starter(server, room)
    due = time.time() + 8
    response = httpx.post(
        f"{server.http_url}/api/rooms/{room['room']}/exercises",
        json={
            "title": "Quick one",
            "due_at": due,
            "tests": [{"stdin": "1", "expected_output": "2"}],
        },
        headers=bearer(room["owner_token"]),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    student = open_room(people.page("Ana"), personal_viewer_link(server, room, "Ana"))
    bar = student.locator(".exercise-bar", has_text="Quick one")
    expect(bar.locator(".exercise-bar-due")).to_contain_text("s left")
    mine = new_tab(
        people, student, "Ana (own room)",
        lambda: bar.get_by_role("button", name="Open the exercise").click(),
    )  # fmt: skip
    banner = mine.locator(".exercise-banner")
    expect(banner.locator(".exercise-banner-due")).to_contain_text("s left")
    expect(banner.get_by_role("button", name="Check")).to_be_enabled()
    # At the due time the room locks: the banner says so, Check is gone, the editor is
    # read-only (the server closed the student's connection: the token ended then).
    expect(banner.locator(".exercise-banner-due")).to_have_text("Locked: submitted", timeout=15_000)
    expect(banner.get_by_role("button", name="Check")).to_be_disabled()
    expect(editor(mine)).to_have_attribute("aria-readonly", "true")
    # Opened again from the class: the same room, read-only, still saying it is locked.
    again = new_tab(
        people, student, "Ana (again)",
        lambda: bar.get_by_role("button", name="Open the exercise").click(),
    )  # fmt: skip
    assert again.url.split("?")[0] == mine.url.split("?")[0]
    expect(again.locator(".conn")).to_have_attribute("data-state", "connected")
    expect(editor(again)).to_have_attribute("aria-readonly", "true")
    expect(again.locator(".exercise-banner-due")).to_have_text("Locked: submitted")
    issue_shot(again, "student-locked", issue=21)
