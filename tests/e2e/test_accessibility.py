"""axe-core (npm ``axe-core``, from tests/js) finds no serious or critical accessibility
violation on the start page and on the room page as each kind of person sees it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, WIDE, create_room, personal_link
from tests.e2e.helpers import create_file, editor, file_item, open_room, type_at_end
from tests.serverproc import ROOT

AXE = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def audited(browser: Any) -> Iterator[Any]:
    """Pages that may load axe: the room's CSP allows only its own scripts, so these
    contexts bypass it (the CSP itself is tests/e2e/test_csp.py's)."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make install` (npm ci in tests/js)")
    contexts: list[Any] = []

    def page(name: str, viewport: dict[str, int] = WIDE, theme: str = "light") -> Any:
        context = browser.new_context(viewport=viewport, bypass_csp=True)
        identity = json.dumps({"name": name, "color": "#2f5bd3"})
        chosen = json.dumps({"theme": theme})  # what the editor settings menu keeps
        context.add_init_script(
            f"localStorage.setItem('codementor.identity', {json.dumps(identity)});"
            f"localStorage.setItem('codementor.editor-settings', {json.dumps(chosen)})"
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield page
    for context in contexts:
        context.close()


def serious_violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    found = []
    for violation in result["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = [
                (node["target"], node["html"][:80], node["failureSummary"][-90:])
                for node in violation["nodes"]
            ][:5]
            found.append(f"{violation['id']} ({violation['impact']}): {targets}")
    return found


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["desktop", "phone"])
def test_the_start_page(e2e_server: Any, audited: Any, viewport: dict[str, int]) -> None:
    page = audited("Ada", viewport)
    page.goto(e2e_server.http_url + "/")
    page.get_by_role("button", name="Create room").click()
    expect(page.get_by_text("owner", exact=False).first).to_be_visible()
    assert serious_violations(page) == []


@pytest.mark.parametrize(
    ("viewport", "theme"),
    [(WIDE, "light"), (PHONE, "light"), (WIDE, "dark")],
    ids=["desktop", "phone", "desktop-dark"],
)
def test_the_room_page_for_each_role(
    e2e_server: Any, audited: Any, viewport: dict[str, int], theme: str
) -> None:
    review = create_room(e2e_server, "review", "python", "Review: mean")
    owner = open_room(audited("Olga", viewport, theme), review["links"]["owner"])
    type_at_end(owner, "def mean(xs):\n    return sum(xs) / len(xs)\n")
    reviewer = open_room(audited("Rita", viewport, theme), review["links"]["reviewer"])
    expect(editor(reviewer)).to_contain_text("return sum")
    reviewer.locator(".cm-line", has_text="return sum").click()
    reviewer.keyboard.press("Control+Alt+m")
    reviewer.get_by_label("Comment text").fill("Empty list?")
    reviewer.get_by_label("Comment text").press("Control+Enter")
    expect(owner.locator(".comment", has_text="Empty list?")).to_have_count(1)

    broadcast = create_room(e2e_server, "broadcast", "python", "Lesson")
    teacher = open_room(audited("Ms Tan", viewport, theme), broadcast["links"]["owner"])
    type_at_end(teacher, "print('hello class')\n")
    student = open_room(
        audited("Sam", viewport, theme), personal_link(e2e_server, broadcast, "viewer", "Sam")
    )
    expect(editor(student)).to_contain_text("hello class")

    for who, page in (("owner", owner), ("reviewer", reviewer), ("teacher", teacher),
                      ("student", student)):  # fmt: skip
        assert serious_violations(page) == [], who


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["desktop", "phone"])
def test_a_workspace_with_files_and_tabs(
    e2e_server: Any, audited: Any, viewport: dict[str, int]
) -> None:
    """The file tree, two open tabs with their close buttons, a person's dot on a file."""
    room = create_room(e2e_server, "pair", "python", "Workspace")
    ada = open_room(audited("Ada"), room["links"]["owner"])
    create_file(ada, "util/helpers.py")
    type_at_end(ada, "X = 1")
    bob = open_room(audited("Bob", viewport), room["links"]["editor"])
    if viewport == PHONE:  # the tree folds behind "Files" on a phone
        bob.get_by_role("button", name="Files").click()
        assert serious_violations(bob) == [], "bob, the tree open"
    file_item(bob, "util/helpers.py").click()
    expect(bob.locator(".file-tabs [role='tab']")).to_have_count(2)
    for who, page in (("ada", ada), ("bob", bob)):
        assert serious_violations(page) == [], who
