"""Keyboard users: Tab never gets trapped in the editor (nor edits the shared code),
Escape then Tab leaves it, a visible hint says so, and `?` lists the shortcuts."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import create_room, snapshot
from tests.e2e.helpers import editor, open_room, type_at_end
from tests.serverproc import ServerProcess

CODE = "def f():\n    return 1\n"
# Where focus is, relative to the editor: inside, before or after it in document order.
FOCUS_JS = """() => {
    const active = document.activeElement, cm = document.querySelector('.cm-editor')
    if (cm.contains(active)) return 'editor'
    const after = cm.compareDocumentPosition(active) & Node.DOCUMENT_POSITION_FOLLOWING
    return after ? 'after' : 'before'
}"""


def focus_place(page: Page) -> str:
    place: str = page.evaluate(FOCUS_JS)
    return place


def wait_saved(server: ServerProcess, room: dict[str, Any], page: Page, text: str) -> None:
    expect(page.locator(".save")).to_contain_text("Saved")
    page.wait_for_function(
        "t => document.querySelector('.cm-content').innerText.includes(t.trim())", arg=text
    )
    assert snapshot(server, room) == text


def test_tab_from_the_last_control_passes_the_editor_by(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Keyboard")
    page = open_room(people.page("Kim"), room["links"]["owner"])
    type_at_end(page, CODE)
    wait_saved(e2e_server, room, page, CODE)

    # The last control before the editor (the open file's tab), then Tab x10.
    last = page.locator(".file-tabs [role=tab][aria-selected=true]")
    last.focus()
    page.keyboard.press("Tab")
    assert focus_place(page) == "editor"
    hint = page.locator(".cm-keyboard-hint")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("Escape, then Tab")
    screenshot(page, "hint")
    page.keyboard.press("Tab")
    assert focus_place(page) == "after"
    expect(hint).to_be_hidden()
    # Eight more: focus goes round the page (and through the editor again) without sticking.
    places = []
    for _ in range(8):
        page.keyboard.press("Tab")
        places.append(focus_place(page))
    assert ["editor", "editor"] not in [places[i : i + 2] for i in range(len(places) - 1)], places
    assert places[-1] != "editor", places
    page.wait_for_timeout(500)
    assert snapshot(e2e_server, room) == CODE  # no Tab reached the shared code
    screenshot(page)


def test_escape_then_tab_leaves_after_typing(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Escape")
    page = open_room(people.page("Kim"), room["links"]["owner"])
    editor(page).click()
    page.keyboard.type("x = 1")
    page.keyboard.press("Home")
    page.keyboard.press("Tab")  # while typing, Tab indents
    assert focus_place(page) == "editor"
    page.keyboard.press("Escape")
    expect(page.locator(".cm-keyboard-hint")).to_contain_text("Press Tab now")
    page.keyboard.press("Tab")
    assert focus_place(page) == "after"
    wait_saved(e2e_server, room, page, "    x = 1")


def test_question_mark_opens_the_shortcuts_and_escape_closes_them(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Shortcuts")
    page = open_room(people.page("Kim"), room["links"]["owner"])
    # Typed in the editor, "?" is just text.
    editor(page).click()
    page.keyboard.type("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_hidden()
    wait_saved(e2e_server, room, page, "?")

    page.get_by_role("tab", name="People").click()  # focus on a control, not a text field
    page.keyboard.press("?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Escape, then Tab")
    expect(dialog).to_contain_text("Run the code")
    screenshot(page)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # And from the button; on a phone too.
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("button", name="Keyboard shortcuts").click()
    expect(dialog).to_be_visible()
    screenshot(page, "phone")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
