"""Remote cursors: names show on hover and for a moment after their person moves or
types, then fade; a rename shows at once; everyone in a room has a colour of their own."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import create_room
from tests.e2e.helpers import editor, open_room, type_at_end

NAMES = ["Ana", "Ms. Rivera", "Bo", "Chen", "Dara", "Eli", "Farah", "Gus", "Hana", "Ivo"]
COLOURS_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll('.person'), (li) => [
    li.querySelector('.person-name').firstChild.textContent,
    li.querySelector('.dot').style.background]))"""


def colours(page: Page, count: int) -> dict[str, str]:
    """Name -> dot colour in the people panel, once it lists `count` distinct colours."""
    page.wait_for_function(
        f"""() => {{ const c = ({COLOURS_JS})(); const v = Object.values(c);
            return v.length === {count} && new Set(v).size === {count} }}""",
        timeout=20_000,
    )
    result: dict[str, str] = page.evaluate(COLOURS_JS)
    return result


def test_ten_people_get_ten_distinct_colours(e2e_server: Any, people: Any, screenshot: Any) -> None:
    room = create_room(e2e_server, "pair", "python", "Ten people")
    # Everyone chose the same colour.
    pages = [
        open_room(people.page(name, color="#2f5bd3"), room["links"]["editor"]) for name in NAMES
    ]
    first = colours(pages[0], len(NAMES))
    last = colours(pages[-1], len(NAMES))
    assert first == last, (first, last)  # every browser shows the same colour per person
    assert len(set(first.values())) == len(NAMES)
    # The "You" button shows the colour the others see.
    me_dot = pages[-1].locator("button.me .dot")
    expect(me_dot).to_have_attribute("style", f"background:{hex_of(last[NAMES[-1]])}")
    # Whoever was here first keeps the colour they chose.
    assert first["Ana"] in ("rgb(47, 91, 211)", "#2f5bd3"), first
    for i, page in enumerate(pages[:4]):
        editor(page).click()
        page.keyboard.press("Control+End")
        page.keyboard.insert_text(f"# line from {NAMES[i]}\n")
    screenshot(pages[0])


def hex_of(rgb: str) -> str:
    """rgb(47, 91, 211) -> #2f5bd3."""
    if rgb.startswith("#"):
        return rgb
    return "#" + "".join(f"{int(c):02x}" for c in rgb[4:-1].split(","))


def label(page: Page, name: str) -> Any:
    return page.locator(".cm-ySelectionInfo", has_text=name)


def test_names_show_after_typing_and_fade_and_rename_shows_at_once(
    e2e_server: Any, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Labels")
    ana = open_room(people.page("Ana", color="#c4314b"), room["links"]["owner"])
    rivera = open_room(people.page("Ms. Rivera", color="#1f7a3a"), room["links"]["editor"])
    type_at_end(ana, "def greet(name):\n    return name\n")
    type_at_end(rivera, "print(greet('x'))")
    rivera.keyboard.press("ArrowUp")

    ana_label = label(rivera, "Ana")
    expect(ana_label).to_have_count(1)
    # At rest, the name is hidden (it would cover the line above).
    expect(ana_label).to_have_css("opacity", "0", timeout=6_000)
    expect(label(ana, "Ms. Rivera")).to_have_css("opacity", "0", timeout=6_000)
    screenshot(rivera, "rest")

    # Ana types: her name shows on Ms. Rivera's screen ...
    ana.bring_to_front()  # a page typed into has the focus (awareness follows focus)
    editor(ana).click()
    expect(ana_label).to_have_css("opacity", "0", timeout=6_000)
    ana.keyboard.insert_text("x")
    expect(ana_label).to_have_css("opacity", "1")
    screenshot(rivera, "typing")
    # ... and fades again about two seconds later.
    expect(ana_label).to_have_css("opacity", "0", timeout=5_000)

    # Hovering the caret shows the name.
    rivera.bring_to_front()
    rivera.locator(".cm-ySelectionCaret").first.hover()
    expect(ana_label).to_have_css("opacity", "1")
    rivera.mouse.move(5, 400)
    expect(ana_label).to_have_css("opacity", "0", timeout=5_000)

    # A rename shows on the caret at once.
    ana.bring_to_front()
    ana.locator("button.me").click()
    ana.get_by_label("Display name").fill("Ana Lima")
    ana.get_by_role("button", name="Save").click()
    renamed = label(rivera, "Ana Lima")
    expect(renamed).to_have_count(1)
    expect(renamed).to_have_css("opacity", "1")
    screenshot(rivera, "renamed")
