"""A comment whose code is deleted or changed says so, shows what it was about, and can
still be resolved; it never moves onto the next line as if it were about that."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import create_room
from tests.e2e.helpers import editor, open_room, type_at_end

CODE = (
    "def mean(values):\n"
    "    total = 0\n"
    "    for v in values:\n"
    "        total += v\n"
    "    return total / len(values)\n"
    "else_branch = True\n"
)


def comment_on(page: Any, line_text: str, text: str) -> None:
    page.locator(".cm-line", has_text=line_text).click()
    page.keyboard.press("Home")
    page.keyboard.press("Shift+End")
    page.keyboard.press("Control+Alt+m")
    composer = page.get_by_label("Comment text")
    composer.fill(text)
    composer.press("Control+Enter")


def test_comment_on_deleted_code_is_marked_outdated(
    e2e_server: Any, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "review", "python", "Review: outdated")
    owner = open_room(people.page("Olga", "#7b3fc4"), room["links"]["owner"])
    type_at_end(owner, CODE)
    reviewer = open_room(people.page("Rita", "#0f7481"), room["links"]["reviewer"])
    expect(editor(reviewer)).to_contain_text("else_branch")

    comment_on(reviewer, "return total", "Division by zero when values is empty.")
    comment_on(reviewer, "total = 0", "Start from 0.0 to get a float.")
    deleted = owner.locator(".comment", has_text="Division by zero")
    changed = owner.locator(".comment", has_text="Start from 0.0")
    expect(deleted.locator(".comment-line")).to_have_text("Line 5")
    expect(deleted.locator(".badge.outdated")).to_be_hidden()
    expect(owner.locator(".cm-comment-range")).to_have_count(2)

    # The owner deletes line 5 entirely, and edits line 2.
    owner.locator(".cm-line", has_text="return total").click()
    owner.keyboard.press("End")
    owner.keyboard.press("Shift+Home")
    owner.keyboard.press("Shift+Home")  # past the indentation, to the line start
    owner.keyboard.press("Backspace")
    owner.keyboard.press("Backspace")  # the line break: line 6 moves up to line 5
    owner.locator(".cm-line", has_text="total = 0").click()
    owner.keyboard.press("End")
    owner.keyboard.press("ArrowLeft")
    owner.keyboard.type("0.")  # inside the commented range: `total = 0.0`

    for page in (owner, reviewer):
        gone = page.locator(".comment", has_text="Division by zero")
        expect(gone.locator(".comment-line")).to_have_text("Code deleted (was line 5)")
        expect(gone.locator(".comment-line")).to_be_disabled()
        expect(gone.locator(".badge.outdated")).to_be_visible()
        expect(gone.locator(".comment-snippet")).to_have_text("    return total / len(values)")
        edited = page.locator(".comment", has_text="Start from 0.0")
        expect(edited.locator(".comment-line")).to_have_text("Line 2")
        expect(edited.locator(".badge.outdated")).to_be_visible()
        expect(edited.locator(".comment-snippet")).to_have_text("    total = 0")
    # No highlight lands on `else_branch`, the line that took line 5's place.
    expect(owner.locator(".cm-comment-range")).to_have_count(1)
    expect(owner.locator(".cm-comment-range")).to_have_text("    total = 0.0")
    expect(owner.locator(".cm-line.cm-comment-line", has_text="else_branch")).to_have_count(0)
    screenshot(owner)

    # Still resolvable, by the reviewer who wrote it.
    reviewer.locator(".comment", has_text="Division by zero").get_by_role(
        "button", name="Resolve"
    ).click()
    expect(deleted).to_be_hidden()
    expect(changed).to_be_visible()
    expect(owner.locator("#comments-heading")).to_contain_text("(1)")
