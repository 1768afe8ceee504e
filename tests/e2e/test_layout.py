"""Phones: the room page stacks its panels and never scrolls sideways."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, create_room
from tests.e2e.helpers import editor, open_room, show_tab, type_at_end
from tests.serverproc import ServerProcess


def test_room_page_fits_a_phone(e2e_server: ServerProcess, people: Any, screenshot: Any) -> None:
    room = create_room(e2e_server, "broadcast", "javascript", "A long title for a phone screen")
    teacher = open_room(people.page("Teacher"), room["links"]["owner"])
    long_line = "const message = '" + "a very long string literal " * 8 + "'"
    type_at_end(teacher, "function hello(name) {\n  return `hi ${name}`\n}\n" + long_line)
    show_tab(teacher, "Chat")  # a teacher's page opens on People
    chat = teacher.get_by_role("textbox", name="Chat message")
    chat.fill("Welcome! Follow along on your phone.")
    chat.press("Enter")

    student = people.page("Student with a long name", viewport=PHONE)
    open_room(student, room["links"]["viewer"])
    expect(student.get_by_role("button", name="Raise hand")).to_be_visible()
    expect(editor(student)).to_contain_text("a very long string literal")
    expect(student.locator(".chat-message")).to_contain_text("Welcome!")

    widths = student.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == PHONE["width"], widths
    # The side tabs stack under the editor instead of sitting beside it.
    editor_box = student.locator(".editor-pane").bounding_box()
    tabs_box = student.get_by_role("tablist", name="Room panels").bounding_box()
    assert editor_box and tabs_box and tabs_box["y"] >= editor_box["y"] + editor_box["height"]
    screenshot(student, full_page=True)

    # The start page fits too.
    student.goto(e2e_server.http_url + "/")
    expect(student.get_by_role("button", name="Create room")).to_be_visible()
    widths = student.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == PHONE["width"], widths
    screenshot(student, "landing", full_page=True)
