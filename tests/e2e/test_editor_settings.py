"""Editor settings: indentation per language, and the per-browser settings menu (theme,
font size, tab width, line wrap), plus the search panel styled in both themes."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import PHONE, create_room, snapshot
from tests.e2e.helpers import editor, open_room
from tests.serverproc import ServerProcess

HIGHLIGHTED = "() => !!document.querySelector('.cm-content .cm-line > span')"


def wait_for_snapshot(server: ServerProcess, room: dict[str, Any], expected: str) -> str:
    """The server's text once it matches (edits reach it within moments)."""
    deadline = time.monotonic() + 10
    text = snapshot(server, room)
    while text != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        text = snapshot(server, room)
    return text


def type_code(page: Page, first: str, then: str) -> None:
    """Types `first`, waits for the language's highlighting, presses Enter, types `then`."""
    editor(page).click()
    page.keyboard.insert_text(first)
    page.wait_for_function(HIGHLIGHTED)
    page.keyboard.press("Enter")
    page.keyboard.insert_text(then)


def test_python_indents_four_spaces_and_go_a_tab(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    python = create_room(e2e_server, "pair", "python", "Python indent")
    page = open_room(people.page("Ada"), python["links"]["owner"])
    type_code(page, "def f():", "return 1")
    assert wait_for_snapshot(e2e_server, python, "def f():\n    return 1") == (
        "def f():\n    return 1"
    )
    screenshot(page, "python")

    go = create_room(e2e_server, "pair", "go", "Go indent")
    page = open_room(people.page("Gopher"), go["links"]["owner"])
    type_code(page, "func main() {", "x := 1")
    assert wait_for_snapshot(e2e_server, go, "func main() {\n\tx := 1") == (
        "func main() {\n\tx := 1"
    )
    screenshot(page, "go")


def open_settings(page: Page) -> Any:
    page.get_by_role("button", name="Settings").click()
    menu = page.get_by_role("dialog", name="Editor settings")
    expect(menu).to_be_visible()
    return menu


def test_settings_apply_at_once_and_are_kept_after_reload(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Settings")
    page = open_room(people.page("Ada"), room["links"]["owner"])
    editor(page).click()
    long_line = "x = '" + "a long string " * 20 + "'"
    page.keyboard.insert_text("print('hi')\n" + long_line)
    light_bg = page.locator(".cm-editor").evaluate("e => getComputedStyle(e).backgroundColor")

    menu = open_settings(page)
    menu.get_by_role("radio", name="Dark").check()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    dark_bg = page.locator(".cm-editor").evaluate("e => getComputedStyle(e).backgroundColor")
    assert dark_bg != light_bg, (light_bg, dark_bg)
    assert sum(int(c) for c in dark_bg[4:-1].split(",")[:3]) < 3 * 80, dark_bg

    menu.get_by_label("Font size").select_option("18")
    expect(page.locator(".cm-content")).to_have_css("font-size", "18px")

    line = page.locator(".cm-line", has_text="a long string").first
    one_line = line.evaluate("e => e.getBoundingClientRect().height")
    menu.get_by_label("Wrap long lines").check()
    expect(page.locator(".cm-content")).to_have_class(has_class("cm-lineWrapping"))
    wrapped = line.evaluate("e => e.getBoundingClientRect().height")
    assert wrapped > one_line * 1.8, (one_line, wrapped)
    screenshot(page, "menu")

    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(page.get_by_role("button", name="Settings")).to_be_focused()

    page.reload()
    open_room(page, page.url)
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator(".cm-content")).to_have_css("font-size", "18px")
    expect(page.locator(".cm-content")).to_have_class(has_class("cm-lineWrapping"))
    menu = open_settings(page)
    expect(menu.get_by_role("radio", name="Dark")).to_be_checked()
    screenshot(page, "after-reload")

    # On a phone the menu fits the screen.
    page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
    page.keyboard.press("Escape")
    menu = open_settings(page)
    box = menu.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    screenshot(page, "phone")


def has_class(name: str) -> re.Pattern[str]:
    """A class attribute that contains `name`."""
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


def search_panel(page: Page) -> None:
    editor(page).click()
    page.keyboard.press("Control+f")
    expect(page.locator(".cm-search")).to_be_visible()
    page.keyboard.type("total")
    expect(page.locator(".cm-searchMatch").first).to_be_visible()


def test_search_panel_in_both_themes(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Search")
    page = open_room(people.page("Ada"), room["links"]["owner"])
    editor(page).click()
    page.keyboard.insert_text("total = 0\nfor n in range(10):\n    total += n\nprint(total)\n")
    search_panel(page)
    # Styled like the page's buttons: no browser-default grey gradient.
    button = page.locator(".cm-search .cm-button").first
    assert button.evaluate("e => getComputedStyle(e).backgroundImage") == "none"
    assert button.evaluate("e => getComputedStyle(e).borderRadius") == "6px"
    screenshot(page, "light")

    open_settings(page).get_by_role("radio", name="Dark").check()
    page.keyboard.press("Escape")
    search_panel(page)
    panel_bg = page.locator(".cm-panels").evaluate("e => getComputedStyle(e).backgroundColor")
    assert sum(int(c) for c in panel_bg[4:-1].split(",")[:3]) < 3 * 80, panel_bg
    screenshot(page, "dark")

    phone = open_room(people.page("Phone", viewport=PHONE), room["links"]["editor"])
    search_panel(phone)
    widths = phone.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths
    screenshot(phone, "phone")
