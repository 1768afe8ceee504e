"""The owner's Share panel: rotate every link (the owner's page keeps working with the new
owner token, old links are refused), and forbid forks (students' Fork button goes away,
the server refuses a fork). Desktop and phone sizes. And a link that expires while open:
warned before, told why after."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, SECRET, WIDE, create_room
from tests.e2e.helpers import editor, open_room, type_at_end
from tests.support import sign, wait_until

SIZES = [pytest.param(WIDE, id="desktop"), pytest.param(PHONE, id="phone")]


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def snapshot_with(server: Any, room: str, token: str) -> str:
    response = httpx.get(
        f"{server.http_url}/api/rooms/{room}/snapshot",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return response.text if response.status_code == 200 else f"<{response.status_code}>"


@pytest.mark.parametrize("viewport", SIZES)
def test_owner_rotates_links_from_the_share_panel(
    e2e_server: Any, people: Any, screenshot: Any, viewport: dict[str, int]
) -> None:
    room = create_room(e2e_server, "broadcast", "python", "Leaky")
    # The old links are refused after the rotation: that refusal is what is tested.
    people.allow_console(r"status of 401 \(Unauthorized\)")
    name = room["room"]
    old_owner, old_viewer = room["links"]["owner"], room["links"]["viewer"]
    teacher = open_room(people.page("Ms Tan", "#b85300", viewport), old_owner)
    student = open_room(people.page("Sam", "#1f7a3a", viewport), old_viewer)
    type_at_end(teacher, "print('before')")
    wait_until(lambda: snapshot_with(e2e_server, name, room["owner_token"]) == "print('before')")

    teacher.get_by_role("button", name="Share").click()
    share = teacher.get_by_role("dialog", name="Invite people")
    share.get_by_role("button", name="Rotate links…").click()
    confirm = share.get_by_role("group", name=re.compile("Every link to this room stops"))
    expect(confirm).to_be_visible()
    expect(share.get_by_role("button", name="Cancel")).to_be_focused()
    screenshot(teacher, "confirm")
    # Cancel changes nothing.
    share.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    assert snapshot_with(e2e_server, name, room["owner_token"]) == "print('before')"

    share.get_by_role("button", name="Rotate links…").click()
    share.get_by_role("button", name="Rotate now").click()
    expect(share.get_by_text("Links rotated.")).to_be_visible()
    new_owner_link = share.get_by_role("textbox", name="Your new owner link").input_value()
    new_viewer_link = share.get_by_role("textbox", name="Viewer link").input_value()
    assert new_owner_link != old_owner and new_viewer_link != old_viewer
    screenshot(teacher, "rotated")

    # The student's old link was closed, with a message that says why.
    banner = student.get_by_role("alert")
    expect(banner).to_contain_text("The room owner replaced the links")
    expect(editor(student)).to_have_attribute("aria-readonly", "true")
    screenshot(student, "student-closed")

    # The owner's page carries on with the new owner token: connected, editing, in the URL.
    share.get_by_role("button", name="Close").click()
    expect(teacher.locator(".conn")).to_have_attribute("data-state", "connected")
    new_owner = token_of(new_owner_link)
    assert token_of(teacher.url) == new_owner
    type_at_end(teacher, "\nprint('after')")
    wait_until(
        lambda: snapshot_with(e2e_server, name, new_owner) == "print('before')\nprint('after')",
        what="the owner's edit after the rotation",
    )
    assert snapshot_with(e2e_server, name, room["owner_token"]) == "<401>"
    expect(teacher.get_by_role("alert")).to_have_count(0)
    screenshot(teacher, "owner-after")

    # Old links are refused at the door; the new viewer link opens the room.
    late = people.page("Late", "#2f5bd3", viewport)
    late.goto(old_viewer)
    expect(late.get_by_role("alert")).to_contain_text("The room owner replaced the links")
    fresh = open_room(people.page("Fresh", "#7b3fc4", viewport), new_viewer_link)
    expect(fresh.locator(".cm-content")).to_contain_text("print('after')")
    screenshot(fresh, "new-link")
    # A reload keeps the owner in (the URL holds the new token).
    teacher.reload()
    expect(teacher.locator(".conn")).to_have_attribute("data-state", "connected")


@pytest.mark.parametrize("viewport", SIZES)
def test_student_whose_fork_is_forbidden(
    e2e_server: Any, people: Any, screenshot: Any, viewport: dict[str, int]
) -> None:
    room = create_room(e2e_server, "broadcast", "python", "Exam")
    teacher = open_room(people.page("Ms Tan", "#b85300", viewport), room["links"]["owner"])
    student = open_room(people.page("Sam", "#1f7a3a", viewport), room["links"]["viewer"])
    fork = student.get_by_role("button", name="Fork to my own room")
    expect(fork).to_be_visible()

    teacher.get_by_role("button", name="Share").click()
    share = teacher.get_by_role("dialog", name="Invite people")
    allowed = share.get_by_role("checkbox", name="Students may fork the code")
    expect(allowed).to_be_checked()
    allowed.uncheck()
    expect(share.get_by_text("Fork is hidden from students")).to_be_visible()
    screenshot(teacher, "teacher")

    # The student's Fork goes away at once, and stays away after a reload.
    expect(fork).to_be_hidden()
    screenshot(student, "student")
    student.reload()
    expect(student.locator(".conn")).to_have_attribute("data-state", "connected")
    expect(student.get_by_role("button", name="Following the teacher")).to_be_visible()
    expect(fork).to_be_hidden()
    # The server refuses it anyway, with a message that says why.
    refused = httpx.post(
        f"{e2e_server.http_url}/api/rooms/{room['room']}/fork",
        headers={"Authorization": f"Bearer {token_of(room['links']['viewer'])}"},
        timeout=10,
    )
    assert refused.status_code == 403
    assert "does not allow forks" in refused.json()["error"]

    # Allowed again: the button comes back.
    allowed.check()
    expect(fork).to_be_visible()


@pytest.mark.serial
def test_a_link_that_expires_while_open_says_so(
    e2e_server: Any, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Short")
    short = sign(room["room"], "editor", name="Kim", ttl=4, secret=SECRET)
    page = open_room(
        people.page("Kim", "#1f7a3a"), f"{e2e_server.http_url}/r/{room['room']}?token={short}"
    )
    # Under ten minutes left: said at once.
    expect(page.locator(".notice", has_text="Your link expires at")).to_be_visible()
    # At its expiry the server closes the connection, and the page says why.
    expect(page.get_by_role("alert")).to_contain_text("Your link has expired", timeout=10_000)
    expect(editor(page)).to_have_attribute("aria-readonly", "true")
    screenshot(page)
