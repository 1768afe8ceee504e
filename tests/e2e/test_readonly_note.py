"""Read-only editors say so where someone types, and an empty editor says what to do."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import create_room, personal_link, snapshot
from tests.e2e.helpers import editor, open_room, type_at_end
from tests.serverproc import ServerProcess


def test_empty_editor_hint_for_authors_and_viewers(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "broadcast", "python", "Empty")
    teacher = open_room(people.page("Teacher"), room["links"]["owner"])
    expect(teacher.locator(".cm-placeholder")).to_contain_text("Start typing")
    student = open_room(people.page("Student"), room["links"]["viewer"])
    expect(student.locator(".cm-placeholder")).to_have_text("Nothing here yet")
    screenshot(teacher, "author")
    screenshot(student, "viewer")
    type_at_end(teacher, "print('hi')")
    expect(student.locator(".cm-placeholder")).to_have_count(0)


def test_typing_into_a_read_only_editor_shows_a_note(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "review", "python", "Review")
    author = open_room(people.page("Author"), room["links"]["owner"])
    type_at_end(author, "def f():\n    return 1\n")
    expect(author.locator(".save")).to_contain_text("Saved")

    mentor = open_room(people.page("Mentor"), personal_link(e2e_server, room, "reviewer", "Mentor"))
    expect(editor(mentor)).to_contain_text("return 1")
    editor(mentor).click()
    mentor.keyboard.type("oops")
    note = mentor.locator(".cm-readonly-note")
    expect(note).to_have_text("Read-only: select lines and press Comment")
    screenshot(mentor)
    assert snapshot(e2e_server, room) == "def f():\n    return 1\n"
    expect(note).to_have_count(0, timeout=6_000)  # it goes away by itself

    viewer = open_room(people.page("Viewer"), personal_link(e2e_server, room, "viewer", "Viewer"))
    editor(viewer).click()
    viewer.keyboard.press("Backspace")
    expect(viewer.locator(".cm-readonly-note")).to_have_text("Read-only: you are viewing")
    assert snapshot(e2e_server, room) == "def f():\n    return 1\n"
