"""The start page: create a room, copy its links, open it as owner; open a room from a link."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from tests.e2e.conftest import create_room
from tests.e2e.helpers import editor, type_at_end
from tests.support import wait_until


def test_create_a_room_and_open_it_from_links(
    e2e_server: Any, people: Any, screenshot: Any
) -> None:
    page = people.page("Lena")
    page.goto(e2e_server.http_url + "/")
    page.get_by_label("Review").check()
    page.get_by_label("Title").fill("Sorting homework")
    page.get_by_label("Language").select_option("rust")
    page.get_by_role("button", name="Create room").click()

    owner_link = page.get_by_role("textbox", name="Owner link")
    reviewer_link = page.get_by_role("textbox", name="Reviewer link")
    expect(owner_link).to_be_visible()
    expect(reviewer_link).to_be_visible()
    expect(page.get_by_role("button", name="Copy the owner link")).to_be_visible()
    reviewer_url = reviewer_link.input_value()
    assert "/r/" in reviewer_url and "token=" in reviewer_url
    screenshot(page)

    page.get_by_role("link", name="Open the room as owner").click()
    expect(page.locator(".conn")).to_have_attribute("data-state", "connected")
    expect(page.locator(".room-title")).to_have_text("Sorting homework")
    expect(page.locator(".badge.mode")).to_have_text("Review")
    expect(page.get_by_label("Language")).to_have_value("rust")
    expect(editor(page)).to_have_attribute("data-language", "rust")

    # Someone else pastes the reviewer link into the start page.
    mentor = people.page("Max")
    mentor.goto(e2e_server.http_url + "/")
    mentor.get_by_label("Room link").fill(reviewer_url)
    mentor.get_by_role("button", name="Open", exact=True).click()
    expect(mentor.locator(".conn")).to_have_attribute("data-state", "connected")
    expect(mentor.locator(".me")).to_contain_text("Reviewer")
    expect(mentor.locator(".room-title")).to_have_text("Sorting homework")
    # The owner's start page lists the room it created.
    page.goto(e2e_server.http_url + "/")
    expect(page.get_by_role("link", name="Sorting homework")).to_be_visible()


def test_a_refused_link_says_why(e2e_server: Any, people: Any, screenshot: Any) -> None:
    room = create_room(e2e_server, "pair")
    header, payload, _signature = room["owner_token"].split(".")
    forged = f"{e2e_server.http_url}/r/{room['room']}?token={header}.{payload}.AAAA"
    people.allow_console(r"status of 401 \(Unauthorized\)")  # the forged token, refused
    page = people.page("Mallory")
    page.goto(forged)
    expect(page.locator(".conn")).to_have_attribute("data-state", "closed")
    expect(page.get_by_role("alert")).to_contain_text("Your link is invalid or has expired")
    expect(editor(page)).to_have_attribute("aria-readonly", "true")
    screenshot(page)


def test_dev_mode_opens_tokenless_links_as_editor(
    server_factory: Any, people: Any, screenshot: Any
) -> None:
    server = server_factory()  # no secret on loopback: dev mode, anonymous editors allowed
    page = people.page("Dev")
    page.goto(server.http_url + "/")
    page.get_by_label("Room link").fill("scratch-pad")
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page).to_have_url(server.http_url + "/r/scratch-pad")
    expect(page.locator(".conn")).to_have_attribute("data-state", "connected")
    expect(page.locator(".me")).to_contain_text("Editor")
    type_at_end(page, "print('dev mode')")
    wait_until(
        lambda: (
            httpx.get(f"{server.http_url}/api/rooms/scratch-pad/snapshot").text
            == "print('dev mode')"
        ),
        what="the anonymous edit on the server",
    )
    screenshot(page)
