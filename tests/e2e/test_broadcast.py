"""Broadcast rooms: students follow the teacher, raise hands, get write access, fork."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import create_room, snapshot
from tests.e2e.helpers import editor, open_room, type_at_end
from tests.support import wait_until

LINES = 200
LONG_FILE = "\n".join(f"step_{i:03d} = {i} * 2  # line {i + 1}" for i in range(LINES))


def test_student_follows_raises_hand_and_forks(
    e2e_server: Any, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "broadcast", "python", "Loops 101")
    teacher = open_room(people.page("Ms Tan", "#b85300"), room["links"]["owner"])
    type_at_end(teacher, LONG_FILE)
    wait_until(lambda: snapshot(e2e_server, room) == LONG_FILE, what="the long file")
    teacher.keyboard.press("Control+Home")

    # A personal link (named by the teacher) lets the teacher tell this student apart.
    teacher.get_by_role("button", name="Share").click()
    share = teacher.get_by_role("dialog", name="Invite people")
    expect(share.get_by_label("Role")).to_have_value("viewer")
    share.get_by_label("Name").fill("Sam")
    share.get_by_role("button", name="Create link").click()
    link = share.get_by_role("textbox", name="Viewer link").last
    expect(link).to_have_value(re.compile(r"/r/.+\?token="))
    screenshot(teacher, "share-dialog")
    sam_link = link.input_value()
    share.get_by_role("button", name="Close").click()
    student = open_room(people.page("Sam", "#1f7a3a"), sam_link)
    follow = student.get_by_role("button", name="Following the teacher")
    expect(follow).to_have_attribute("aria-pressed", "true")
    last_line = student.locator(".cm-line", has_text=f"# line {LINES}")

    # The teacher jumps to the end of the file: the student's viewport follows.
    editor(teacher).click()
    teacher.keyboard.press("Control+End")
    expect(last_line).to_be_in_viewport()
    expect(student.locator(".cm-ySelectionInfo", has_text="Ms Tan")).to_be_visible()
    screenshot(student, "follow")

    # Back to the top, but this student stopped following: the viewport stays.
    follow.click()
    expect(student.get_by_role("button", name="Follow the teacher")).to_have_attribute(
        "aria-pressed", "false"
    )
    teacher.keyboard.press("Control+Home")
    expect(student.locator(".cm-ySelectionInfo", has_text="Ms Tan")).not_to_be_in_viewport()
    expect(last_line).to_be_in_viewport()

    # A raised hand shows in the teacher's roster; the teacher grants 10 minutes of writing.
    student.get_by_role("button", name="Raise hand").click()
    raised = teacher.locator(".person.hand-up", has_text="Sam")
    expect(raised).to_be_visible()
    expect(teacher.locator("#people-heading")).to_contain_text("1 hand")
    screenshot(teacher)
    raised.get_by_role("button", name="Let Sam edit for 10 minutes").click()
    expect(editor(student)).to_have_attribute("aria-readonly", "false")
    expect(student.locator(".notice", has_text="You can now edit the code until")).to_be_visible()
    expect(student.get_by_role("button", name="Raise hand")).to_have_attribute(
        "aria-pressed", "false"
    )
    editor(student).click()
    student.keyboard.press("Control+End")
    student.keyboard.insert_text("\n# Sam was here")
    wait_until(
        lambda: snapshot(e2e_server, room) == LONG_FILE + "\n# Sam was here",
        what="the student's edit on the server",
    )

    # Fork: a pair room of the student's own, with the code, editable, in a new tab (the
    # lesson stays open in this one).
    lesson = student
    with lesson.context.expect_page() as opened:
        lesson.get_by_role("button", name="Fork to my own room").click()
    student = opened.value
    student.wait_for_url(lambda url: f"/r/{room['room']}" not in url and "/r/" in url)
    assert f"/r/{room['room']}" in lesson.url
    expect(student.locator(".conn")).to_have_attribute("data-state", "connected")
    expect(editor(student)).to_have_attribute("aria-readonly", "false")
    expect(student.locator(".me")).to_contain_text("Owner")
    expect(student.locator(".badge.mode")).to_have_text("Pair")
    expect(student.locator(".room-title")).to_have_text("Loops 101 (fork)")
    editor(student).click()
    student.keyboard.press("Control+Home")
    student.keyboard.insert_text("# my fork\n")
    expect(student.locator(".cm-line").first).to_have_text("# my fork")
    expect(student.locator(".save")).to_have_attribute("data-state", "saved")
    assert "# my fork" not in snapshot(e2e_server, room)
    screenshot(student, "fork")
