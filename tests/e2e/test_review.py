"""Review rooms: a reviewer's comment stays on its code while the owner edits."""

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
    "\n"
    "print(mean([1, 2, 3]))"
)
TARGET = "    return total / len(values)"  # line 5


def test_reviewer_comment_stays_on_its_line(e2e_server: Any, people: Any, screenshot: Any) -> None:
    room = create_room(e2e_server, "review", "python", "Review: mean()")
    owner = open_room(people.page("Olga", "#7b3fc4"), room["links"]["owner"])
    type_at_end(owner, CODE)
    reviewer = open_room(people.page("Rita", "#0f7481"), room["links"]["reviewer"])
    expect(editor(reviewer)).to_contain_text("print(mean([1, 2, 3]))")
    expect(editor(reviewer)).to_have_attribute("aria-readonly", "true")

    # The reviewer selects line 5 with the keyboard and comments with Ctrl+Alt+M.
    reviewer.locator(".cm-line", has_text="return total").click()
    reviewer.keyboard.press("Home")
    reviewer.keyboard.press("Shift+End")
    reviewer.keyboard.press("Control+Alt+m")
    composer = reviewer.get_by_label("Comment text")
    expect(composer).to_be_focused()
    expect(reviewer.locator(".composer .where")).to_contain_text("Line 5")
    composer.fill("Division by zero when values is empty.")
    composer.press("Control+Enter")

    # The owner sees it on line 5, with the range highlighted in the editor.
    comment = owner.locator(".comment", has_text="Division by zero")
    expect(comment.locator(".comment-line")).to_have_text("Line 5")
    expect(comment.locator(".author")).to_have_text("Rita")
    highlight = owner.locator(".cm-comment-range")
    expect(highlight).to_have_text(TARGET.strip() if False else TARGET)

    # The owner inserts three lines above it: the comment moves with its code.
    editor(owner).click()
    owner.keyboard.press("Control+Home")
    owner.keyboard.insert_text("import math\nimport sys\n\n")
    expect(comment.locator(".comment-line")).to_have_text("Line 8")
    expect(highlight).to_have_text(TARGET)
    expect(reviewer.locator(".comment .comment-line")).to_have_text("Line 8")

    # A reply from the owner reaches the reviewer; the reviewer resolves the thread.
    comment.get_by_label("Reply to Rita").fill("Good catch, will guard it.")
    comment.get_by_role("button", name="Reply").click()
    reviewer_comment = reviewer.locator(".comment", has_text="Division by zero")
    expect(reviewer_comment.locator(".replies")).to_contain_text("Good catch, will guard it.")
    # Jumping from the panel selects the commented code in the editor.
    comment.locator(".comment-line").click()
    expect(owner.locator(".cm-comment-active")).to_have_text(TARGET)
    screenshot(owner)
    screenshot(reviewer, "reviewer")

    reviewer_comment.get_by_role("button", name="Resolve").click()
    expect(owner.locator(".comment", has_text="Division by zero")).to_be_hidden()
    expect(owner.locator(".cm-comment-range")).to_have_count(0)
    expect(owner.locator("#comments-heading")).to_contain_text("(0)")
