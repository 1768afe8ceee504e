"""The room page's side area: tabs with unread counts, a resizable width kept per browser,
a chat that follows the newest message, a dense people list, and the phone layout."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import PHONE, create_room, personal_link, snapshot
from tests.e2e.helpers import open_room, thirteen_students, type_at_end
from tests.serverproc import ServerProcess
from tests.support import wait_until

AT_BOTTOM_JS = "(el) => el.scrollHeight - el.scrollTop - el.clientHeight <= 24"


def tab(page: Page, name: str) -> Any:
    return page.get_by_role("tab", name=name)


def unread(page: Page, name: str) -> Any:
    return tab(page, name).locator(".tab-unread")


def send_chat(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Chat message")
    box.fill(text)
    box.press("Enter")


def test_tabs_count_what_happened_while_hidden(
    runner_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(runner_server, "pair", "python", "Tabs")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    bob = open_room(
        people.page("Bob", "#1f7a3a"), personal_link(runner_server, room, "editor", "Bob")
    )
    code = "def f():\n    raise ValueError('" + "a long message " * 12 + "')\n\nf()"
    type_at_end(ada, code)
    wait_until(lambda: snapshot(runner_server, room) == code, what="the code on the server")

    # ARIA tabs: one tablist, Output first and shown (the runner is on), the others hidden.
    tablist = ada.get_by_role("tablist", name="Room panels")
    expect(tablist.get_by_role("tab")).to_have_text(
        ["Output", "People", "Comments", "Chat", "History"]
    )
    expect(tab(ada, "Output")).to_have_attribute("aria-selected", "true")
    expect(ada.get_by_role("tabpanel", name="Output")).to_be_visible()
    expect(ada.locator("#tabpanel-chat")).to_be_hidden()

    # Arrow keys move between tabs and show them; Home and End jump to the ends.
    tab(ada, "Output").focus()
    ada.keyboard.press("ArrowRight")
    expect(tab(ada, "People")).to_be_focused()
    expect(tab(ada, "People")).to_have_attribute("aria-selected", "true")
    expect(ada.get_by_role("tabpanel", name="People")).to_contain_text("Bob")
    ada.keyboard.press("End")
    expect(tab(ada, "History")).to_have_attribute("aria-selected", "true")
    ada.keyboard.press("ArrowRight")  # wraps around
    expect(tab(ada, "Output")).to_have_attribute("aria-selected", "true")
    expect(tab(ada, "Output")).to_have_attribute("tabindex", "0")
    expect(tab(ada, "Chat")).to_have_attribute("tabindex", "-1")
    tab(ada, "People").click()

    # Bob chats twice, comments once and runs the code, all while Ada looks at People.
    tab(bob, "Chat").click()
    send_chat(bob, "Found it: line 2 raises.")
    send_chat(bob, "Want me to run it?")
    bob.locator(".cm-line", has_text="def f").click()
    bob.keyboard.press("Home")
    bob.keyboard.press("Shift+End")
    bob.keyboard.press("Control+Alt+m")
    expect(tab(bob, "Comments")).to_have_attribute("aria-selected", "true")
    composer = bob.get_by_role("textbox", name="Comment")
    composer.fill("Name this better")
    composer.press("Control+Enter")
    bob.get_by_role("button", name="Run").click()
    expect(tab(bob, "Output")).to_have_attribute("aria-selected", "true")  # the runner sees it
    expect(bob.locator(".run-status")).to_have_text("Runtime error")

    expect(unread(ada, "Chat")).to_have_text("2 new")
    expect(unread(ada, "Comments")).to_have_text("1 new")
    expect(unread(ada, "Output")).to_have_text("1 new")  # started and finished: one run
    expect(unread(ada, "People")).to_be_hidden()
    expect(tab(ada, "Chat")).to_have_accessible_name("Chat 2 new")
    screenshot(ada, "unread")

    # Ada's own messages are not news to her; Bob's reply to his comment is.
    tab(ada, "Chat").click()
    expect(unread(ada, "Chat")).to_be_hidden()
    send_chat(ada, "Yes please")
    tab(bob, "Comments").click()
    bob.locator(".comment").get_by_role("textbox").fill("(or rename f)")
    bob.locator(".comment").get_by_role("button", name="Reply").click()
    expect(unread(ada, "Comments")).to_have_text("2 new")
    expect(unread(bob, "Chat")).to_have_text("1 new")

    # The traceback keeps its lines: the output scrolls sideways instead of wrapping.
    tab(ada, "Output").click()
    expect(unread(ada, "Output")).to_be_hidden()
    errors = ada.locator(".run-stream.stderr .run-output")
    expect(errors).to_contain_text("ValueError")
    style = errors.evaluate(
        "(el) => [getComputedStyle(el).whiteSpace, getComputedStyle(el).fontFamily,"
        " el.scrollWidth > el.clientWidth]"
    )
    assert style[0] == "pre" and "monospace" in style[1] and style[2], style
    screenshot(ada)


def test_side_area_resizes_by_drag_and_keyboard_and_keeps_its_width(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Resize")
    ada = open_room(people.page("Ada"), room["links"]["owner"])
    handle = ada.get_by_role("separator", name="Resize the side panels")
    side = ada.locator("aside.side")
    expect(handle).to_have_attribute("aria-valuenow", "400")
    start = side.bounding_box()
    box = handle.bounding_box()
    assert start and box and abs(start["width"] - 400) <= 1, start

    # Dragging the handle 150 px to the left widens the side area by as much.
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    ada.mouse.move(x, y)
    ada.mouse.down()
    ada.mouse.move(x - 75, y, steps=4)
    ada.mouse.move(x - 150, y, steps=4)
    ada.mouse.up()
    expect(handle).to_have_attribute("aria-valuenow", "550")
    after = side.bounding_box()
    assert after and abs(after["width"] - 550) <= 1, after

    # The keyboard: focus the separator; arrows step 16 px, Shift 64, Home/End the limits.
    handle.focus()
    ada.keyboard.press("ArrowRight")
    ada.keyboard.press("ArrowRight")
    expect(handle).to_have_attribute("aria-valuenow", "518")
    ada.keyboard.press("Shift+ArrowLeft")
    expect(handle).to_have_attribute("aria-valuenow", "582")
    ada.keyboard.press("Home")
    expect(handle).to_have_attribute("aria-valuenow", "280")
    ada.keyboard.press("End")
    maximum = int(handle.get_attribute("aria-valuemax") or 0)
    expect(handle).to_have_attribute("aria-valuenow", str(maximum))
    editor_box = ada.locator(".editor-pane").bounding_box()
    assert editor_box and editor_box["width"] >= 360 - 1, editor_box  # the editor keeps room
    ada.keyboard.press("Shift+ArrowRight")
    ada.keyboard.press("Shift+ArrowRight")
    kept = int(handle.get_attribute("aria-valuenow") or 0)
    assert kept == maximum - 128

    # Kept per browser: a reload (and another room) opens at the same width.
    ada.reload()
    expect(ada.locator(".conn")).to_have_attribute("data-state", "connected")
    expect(handle).to_have_attribute("aria-valuenow", str(kept))
    other = create_room(e2e_server, "pair", "python", "Another")
    open_room(ada, other["links"]["owner"])
    reopened = side.bounding_box()
    assert reopened and abs(reopened["width"] - kept) <= 1, reopened
    # The file tree (issue 19) has its column next to the editor.
    expect(ada.locator("nav.file-slot")).to_be_visible()
    screenshot(ada)


def test_chat_follows_the_newest_message_unless_scrolled_up(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Chatty")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    bob = open_room(people.page("Bob", "#1f7a3a"), personal_link(e2e_server, room, "editor", "Bob"))
    expect(tab(ada, "Chat")).to_have_attribute("aria-selected", "true")  # pair rooms: chat
    for i in range(1, 31):
        send_chat(bob, f"Message number {i}: a few words so the log fills up")
    log = ada.locator(".chat-log")
    expect(log.locator(".chat-message")).to_have_count(30)
    wait_until(lambda: log.evaluate(AT_BOTTOM_JS), what="Ada's chat at its newest message")
    height = log.evaluate("(el) => el.clientHeight")
    assert height >= 400, height  # the chat has room, not ~170 px
    assert log.evaluate("(el) => el.scrollHeight > el.clientHeight")

    # Ada scrolls up to read: new messages leave her place alone and offer a jump down.
    log.evaluate("(el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')) }")
    send_chat(bob, "Message number 31: are you there?")
    expect(log.locator(".chat-message")).to_have_count(31)
    jump = ada.get_by_role("button", name="New messages")
    expect(jump).to_be_visible()
    assert log.evaluate("(el) => el.scrollTop") == 0
    screenshot(ada, "scrolled-up")
    jump.click()
    expect(jump).to_be_hidden()
    assert log.evaluate(AT_BOTTOM_JS)

    # At the bottom again, the next message is followed; also after a trip to another tab.
    send_chat(bob, "Message number 32")
    expect(log.locator(".chat-message").last).to_contain_text("Message number 32")
    wait_until(lambda: log.evaluate(AT_BOTTOM_JS), what="the log following the newest message")
    tab(ada, "People").click()
    send_chat(bob, "Message number 33")
    expect(unread(ada, "Chat")).to_have_text("1 new")
    tab(ada, "Chat").click()
    wait_until(lambda: log.evaluate(AT_BOTTOM_JS), what="the newest message after a tab switch")
    expect(log.locator(".chat-message").last).to_be_in_viewport()
    screenshot(ada)


def test_a_class_of_thirteen_fits_in_the_people_tab(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "broadcast", "python", "Loops 101")
    stop = threading.Event()
    students = threading.Thread(
        target=lambda: asyncio.run(
            thirteen_students(
                e2e_server, room["room"], room["links"]["viewer"].split("token=")[1], stop
            )
        ),
        daemon=True,
    )
    students.start()
    try:
        teacher = open_room(people.page("Ms Rivera", "#c4314b"), room["links"]["owner"])
        # A teacher's first view is the class.
        expect(tab(teacher, "People")).to_have_attribute("aria-selected", "true")
        rows = teacher.locator(".person")
        expect(rows).to_have_count(14)
        visible = teacher.evaluate(
            """() => {
                const list = document.querySelector('.people-list').getBoundingClientRect()
                return [...document.querySelectorAll('.person')].filter((row) => {
                    const r = row.getBoundingClientRect()
                    return r.top >= list.top - 1 && r.bottom <= list.bottom + 1
                        && r.bottom <= window.innerHeight
                }).length
            }"""
        )
        assert visible == 14, visible  # the whole class at once, no scrolling
        heights = {round(box["height"]) for box in (r.bounding_box() for r in rows.all()) if box}
        assert max(heights) <= 34, heights  # one line per person
        screenshot(teacher)
    finally:
        stop.set()
        students.join(timeout=10)


def test_phone_puts_the_editor_first_and_the_tabs_below(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "On the bus")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    type_at_end(ada, "print('hello from a very long line that would not fit a phone screen')")
    send_chat(ada, "Can you check this on your phone?")
    bob_link = personal_link(e2e_server, room, "editor", "Bob")
    bob = open_room(people.page("Bob", "#1f7a3a", viewport=PHONE), bob_link)
    expect(bob.locator(".chat-message")).to_contain_text("on your phone")

    widths = bob.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == PHONE["width"], widths
    expect(bob.get_by_role("separator")).to_be_hidden()
    editor_box = bob.locator(".editor-pane").bounding_box()
    tabs_box = bob.get_by_role("tablist", name="Room panels").bounding_box()
    assert editor_box and tabs_box and tabs_box["y"] >= editor_box["y"] + editor_box["height"] - 1
    for name in ("People", "Comments", "Chat"):  # every tab fits the width
        box = tab(bob, name).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
    screenshot(bob)

    # Scrolled down to the chat, the tab bar stays on screen; a reply is typed in place.
    tab(bob, "Chat").click()
    send_chat(bob, "Looks fine here")
    expect(ada.locator(".chat-message").last).to_contain_text("Looks fine here")
    bob.get_by_role("textbox", name="Chat message").scroll_into_view_if_needed()
    expect(bob.get_by_role("tablist", name="Room panels")).to_be_in_viewport()
    tab(bob, "People").click()
    expect(bob.get_by_role("tabpanel", name="People")).to_contain_text("Ada")
    screenshot(bob, "people", full_page=True)
