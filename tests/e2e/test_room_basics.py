"""Room basics: the owner renames the room in place, anyone downloads the code, a slow
network shows the page frame at once, and the page follows the dark theme."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Route, WebSocketRoute, expect

from tests.e2e.conftest import PHONE, create_room, personal_link, room_details, snapshot
from tests.e2e.helpers import open_room, type_at_end
from tests.serverproc import ServerProcess
from tests.support import wait_until


def test_owner_renames_the_room_and_everyone_sees_it(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "review", "python", "Review: mean()")
    ada = open_room(people.page("Ada"), room["links"]["owner"])
    rita = open_room(
        people.page("Rita", "#7b3fc4"), personal_link(e2e_server, room, "reviewer", "Rita")
    )
    expect(rita.get_by_role("button", name="Rename the room")).to_be_hidden()  # owners only

    ada.get_by_role("button", name="Rename the room").click()
    title = ada.get_by_role("textbox", name="Room title")
    expect(title).to_be_focused()
    expect(title).to_have_value("Review: mean()")
    # Escape cancels: nothing changes.
    title.fill("Never saved")
    title.press("Escape")
    expect(ada.locator(".room-title")).to_have_text("Review: mean()")
    # An empty title is refused plainly, and the box stays open.
    ada.locator(".room-title").click()
    title.fill("   ")
    title.press("Enter")
    expect(ada.get_by_role("alert")).to_have_text("A title cannot be empty.")
    title.fill("Review: mean() and median()")
    title.press("Enter")
    expect(ada.locator(".room-title")).to_have_text("Review: mean() and median()")
    expect(ada.get_by_role("button", name="Rename the room")).to_be_focused()
    # Everyone sees it live, and the server keeps it.
    expect(rita.locator(".room-title")).to_have_text("Review: mean() and median()")
    expect(rita).to_have_title("Review: mean() and median() · CodeMentor Collab")
    assert room_details(e2e_server, room)["title"] == "Review: mean() and median()"
    screenshot(rita)


def test_a_failed_rename_says_why(e2e_server: ServerProcess, people: Any) -> None:
    room = create_room(e2e_server, "pair", "python", "Before")
    people.allow_console(r"status of 503 \(Service Unavailable\)")  # the failure, on purpose
    ada = open_room(people.page("Ada"), room["links"]["owner"])
    ada.route(
        "**/api/rooms/*",
        lambda route: (
            route.fulfill(status=503, json={"error": "the store is busy"})
            if route.request.method == "PATCH"
            else route.fallback()
        ),
    )
    ada.get_by_role("button", name="Rename the room").click()
    ada.get_by_role("textbox", name="Room title").fill("After")
    ada.get_by_role("textbox", name="Room title").press("Enter")
    expect(ada.get_by_role("alert")).to_contain_text("Could not rename the room")
    expect(ada.get_by_role("textbox", name="Room title")).to_be_editable()
    assert room_details(e2e_server, room)["title"] == "Before"


def test_download_saves_the_current_code(
    e2e_server: ServerProcess, people: Any, tmp_path: Path
) -> None:
    room = create_room(e2e_server, "pair", "javascript", "Binary search (v2)")
    ada = open_room(people.page("Ada"), room["links"]["owner"])
    code = "function find(xs, x) {\n  return xs.indexOf(x) // naïve: O(n)\n}\n"
    type_at_end(ada, code)
    wait_until(lambda: snapshot(e2e_server, room) == code, what="the code on the server")
    with ada.expect_download() as info:
        ada.get_by_role("button", name="Download").click()
    download = info.value
    assert download.suggested_filename == "binary-search-v2.js"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_text(encoding="utf-8") == code

    # No title: the language's usual file name.
    untitled = create_room(e2e_server, "pair", "python", "")
    open_room(ada, untitled["links"]["owner"])
    with ada.expect_download() as info:
        ada.get_by_role("button", name="Download").click()
    assert info.value.suggested_filename == "main.py"


def test_a_slow_network_shows_the_frame_at_once(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Slow")
    bob = open_room(people.page("Bob"), room["links"]["editor"])
    type_at_end(bob, "print('already here')")
    wait_until(lambda: snapshot(e2e_server, room) == "print('already here')", what="Bob's code")
    page = people.page("Ada")
    release = threading.Event()

    def slow_config(route: Route) -> None:
        release.wait(timeout=10)
        route.fallback()

    # The websocket is held back: what the page sends waits until it is let through.
    sockets: list[WebSocketRoute] = []
    servers: list[WebSocketRoute] = []
    held: list[str | bytes] = []

    def hold(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        ws.on_message(lambda message: servers[0].send(message) if servers else held.append(message))

    page.route("**/api/config", slow_config)
    page.route_web_socket("**/ws/**", hold)
    page.goto(room["links"]["owner"], wait_until="commit")
    # The frame and a plain "Connecting…" before the config has even arrived.
    expect(page.locator(".room-loading")).to_contain_text("Connecting to the room…")
    expect(page.locator(".room-title")).to_have_text(room["room"])
    screenshot(page, "config")
    release.set()
    # The page is built; the editor waits (covered) for the held-back first sync.
    expect(page.locator(".conn")).not_to_have_attribute("data-state", "connected")
    expect(page.locator(".editor-loading")).to_contain_text("Loading the code…")
    expect(page.get_by_role("tab", name="Chat")).to_be_visible()
    wait_until(lambda: bool(sockets), what="the websocket being opened")
    time.sleep(0.3)  # held back a little longer: still covered
    expect(page.locator(".editor-loading")).to_be_visible()
    screenshot(page, "sync")
    servers.append(sockets[0].connect_to_server())
    for message in held:
        servers[0].send(message)
    expect(page.locator(".conn")).to_have_attribute("data-state", "connected")
    expect(page.locator(".editor-loading")).to_have_count(0)
    expect(page.locator(".cm-content")).to_contain_text("print('already here')")


def test_the_page_follows_the_dark_theme(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "review", "python", "Night shift")
    for viewport, suffix in ((None, ""), (PHONE, "phone")):
        ada = open_room(people.page("Ada", "#c4314b", viewport=viewport), room["links"]["owner"])
        # The reader picks the dark theme in the editor settings (kept per browser).
        ada.get_by_role("button", name="Settings").click()
        ada.get_by_role("dialog", name="Editor settings").get_by_role("radio", name="Dark").check()
        ada.keyboard.press("Escape")
        if not suffix:
            type_at_end(ada, "def mean(xs):\n    return sum(xs) / len(xs)\n")
            ada.locator(".cm-line", has_text="return sum").click()
            ada.keyboard.press("Home")
            ada.keyboard.press("Shift+End")
            ada.keyboard.press("Control+Alt+m")
            ada.get_by_role("textbox", name="Comment text").fill("Empty list?")
            ada.get_by_role("textbox", name="Comment text").press("Control+Enter")
        colours = ada.evaluate(
            """() => {
                const bg = (sel) => getComputedStyle(document.querySelector(sel)).backgroundColor
                return [bg('.topbar'), bg('aside.side'), getComputedStyle(document.body).color,
                        getComputedStyle(document.documentElement).colorScheme]
            }"""
        )
        assert colours[0] == "rgb(23, 29, 38)" and colours[1] == "rgb(23, 29, 38)", colours
        assert colours[2] == "rgb(230, 233, 239)" and colours[3] == "dark", colours
        screenshot(ada, suffix, full_page=bool(suffix))
