"""History in the browser (issue 20): two people type a session (with a paste and a run),
then one opens the History tab, plays the session back at three moments, colours the
code by author, and restores the middle moment for everyone."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, WIDE, create_room, personal_link, snapshot
from tests.e2e.helpers import (
    editor,
    editor_text,
    open_history,
    open_room,
    playback_text,
    scrub_to,
    show_tab,
    type_at_end,
)
from tests.e2e.test_accessibility import AXE, serious_violations
from tests.judge0_double import Judge0Double
from tests.serverproc import ROOT, ServerProcess
from tests.support import wait_until

SHOTS = ROOT / "test-output" / "issue20"

LINE1 = "total = 0\n"
LINE2 = "for i in range(3):\n    total += i\n"
# One insert far above the large-insert size (200 characters): a paste.
ROWS = "".join(f"    {n * 7919 % 1000:>4},  # sample {n}\n" for n in range(12))
PASTE = "DATA = [\n" + ROWS + "]\n"
LINE3 = "print(total)\n"


def shot(page: Any, name: str) -> list[Path]:
    """The page at desktop width, then at phone width (the whole page), then back."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    desktop = SHOTS / f"{name}-desktop.png"
    phone = SHOTS / f"{name}-phone.png"
    page.screenshot(path=str(desktop))
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)  # the layout settles at the new width
    page.screenshot(path=str(phone), full_page=True)
    page.set_viewport_size(WIDE)
    page.wait_for_timeout(150)
    return [desktop, phone]


def wait_for_code(server: ServerProcess, room: dict[str, Any], text: str) -> float:
    """Wait until the server holds ``text``; answer the moment it did (unix seconds)."""
    wait_until(lambda: snapshot(server, room) == text, what=f"the server has {text[-20:]!r}")
    return time.time()


def test_two_people_a_session_played_back_coloured_and_restored(
    runner_server: ServerProcess, judge0: Judge0Double, people: Any
) -> None:
    assert len(PASTE) > 200
    room = create_room(runner_server, "pair", "python", "History")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    bob = open_room(people.page("Bob", "#1f7a3a"), room["links"]["editor"])

    # The session: Ada, Bob, Bob's paste, Ada again, then a run. Pauses longer than the
    # coalescing window (2 s) keep the steps apart in the record.
    type_at_end(ada, LINE1)
    wait_for_code(runner_server, room, LINE1)
    # A moment well inside the pause: the scrubber moves in 0.1 s steps.
    start_moment = time.time() + 1.0
    time.sleep(2.5)
    type_at_end(bob, LINE2)
    wait_for_code(runner_server, room, LINE1 + LINE2)
    show_tab(bob, "Chat")
    chat_box = bob.get_by_role("textbox", name="Chat message")
    chat_box.fill("Pasting the data now")
    chat_box.press("Enter")
    expect(bob.locator(".chat-log")).to_contain_text("Pasting the data now")
    time.sleep(0.5)
    editor(bob).click()
    bob.keyboard.press("Control+End")
    bob.keyboard.insert_text(PASTE)  # one transaction: one update, like a paste
    wait_for_code(runner_server, room, LINE1 + LINE2 + PASTE)
    middle_moment = time.time() + 1.0
    time.sleep(2.5)
    type_at_end(ada, LINE3)
    final = LINE1 + LINE2 + PASTE + LINE3
    wait_for_code(runner_server, room, final)
    ada.locator(".run-button").click()
    expect(ada.locator(".run-status")).to_have_text("Finished")
    expect(ada.locator(".run-stream.stdout .run-output")).to_have_text("3\n")
    shot(ada, "01-session-typed")

    # Ada opens History: the timeline has the paste (Bob's name and its size) and the run.
    open_history(ada)
    expect(ada.locator(".history-status")).to_contain_text("changes from")
    large = ada.locator(".history-marker.large")
    expect(large).to_have_count(1)
    paste_title = re.compile(rf"^Bob inserted {len(PASTE)} characters at ")
    expect(large).to_have_attribute("title", paste_title)
    expect(ada.locator(".history-marker.run")).to_have_count(1)
    expect(ada.locator(".history-marker.run")).to_have_class("history-marker run run-accepted")
    # The summary: Bob typed his loop and pasted the data, Ada typed the rest.
    summary = ada.locator(".history-table")
    expect(summary.locator("tr", has_text="Bob")).to_contain_text(str(len(PASTE)))
    expect(summary.locator("tr", has_text="Ada")).to_contain_text(str(len(LINE1 + LINE3)))
    paste_line = f"Bob · {len(PASTE)} characters in main.py"
    expect(ada.locator(".history-large")).to_contain_text(paste_line)
    shot(ada, "02-history-panel")

    # Three moments: after Ada's first line, after Bob's paste, the end (the End key).
    scrub_to(ada, start_moment)
    expect(ada.locator(".playback-banner")).to_contain_text("Viewing")
    expect(ada.locator(".playback-banner")).to_contain_text("Back to live")
    wait_until(lambda: playback_text(ada) == LINE1, what="the text after Ada's first line")
    expect(ada.locator(".playback-tab[aria-selected=true]")).to_have_text("main.py")
    expect(ada.locator(".playback-run")).to_contain_text("No run yet")
    expect(ada.locator(".playback-chat")).to_contain_text("No messages yet")
    # The live editor is not shown, ...
    expect(ada.get_by_role("textbox", name="Code editor")).to_be_hidden()
    shot(ada, "03-playback-start")

    scrub_to(ada, middle_moment)
    wait_until(lambda: playback_text(ada) == LINE1 + LINE2 + PASTE, what="the text after the paste")
    chat_line = ada.locator(".playback-chat li")
    expect(chat_line).to_have_count(1)
    expect(chat_line).to_contain_text("Pasting the data now")
    # Its time is the time it was sent (the entry holds milliseconds), not decades off.
    clock = (
        "(ts) => new Date(ts * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })"
    )
    # Sent a moment before the paste: that minute (or the one before, at a minute's turn).
    minutes = {ada.evaluate(clock, middle_moment - d) for d in (1.0, 4.0)}
    pattern = "|".join(re.escape(m[:5]) for m in minutes)  # "10:45" of "10:45 PM"
    expect(chat_line).to_contain_text(re.compile(rf"Bob ({pattern})"))
    shot(ada, "04-playback-middle")
    # ... and it is untouched: Bob keeps typing while Ada looks at the past.
    type_at_end(bob, "# still live\n")
    final += "# still live\n"
    wait_for_code(runner_server, room, final)
    assert playback_text(ada) == LINE1 + LINE2 + PASTE

    ada.locator(".history-scrubber").focus()
    ada.keyboard.press("End")
    wait_until(lambda: playback_text(ada).startswith(LINE1 + LINE2 + PASTE + LINE3), what="the end")
    expect(ada.locator(".playback-run")).to_contain_text("main.py: Finished")
    shot(ada, "05-playback-end")

    # Play from the start at 16x: playback time, not per event; /history/at is asked at
    # most a few times a second, however many frames the playing takes.
    asked: list[str] = []

    def note(request: Any) -> None:
        if "/history/at" in request.url:
            asked.append(request.url)

    ada.on("request", note)
    ada.get_by_label("Playback speed").select_option("16")
    scrubber = ada.locator(".history-scrubber")
    session_seconds = float(scrubber.get_attribute("max") or 0) / 1000
    assert session_seconds > 5  # the pauses above
    scrubber.focus()
    ada.keyboard.press("Home")
    wait_until(lambda: playback_text(ada) in ("", LINE1), what="the start (Home)")
    asked.clear()
    started = time.monotonic()
    ada.get_by_role("button", name="Play").click()
    expect(ada.get_by_role("button", name="Pause")).to_have_attribute("aria-pressed", "true")
    expect(ada.get_by_role("button", name="Play")).to_be_visible()  # it stopped at the end
    played = time.monotonic() - started
    wait_until(lambda: playback_text(ada).startswith(LINE1 + LINE2 + PASTE + LINE3), what="end")
    assert played < session_seconds / 8 + 1, (played, session_seconds)  # 16x, not 1x or 4x
    assert 1 <= len(asked) <= played / 0.25 + 2, (len(asked), played)

    # Back to live: the live editor again, with Bob's latest line.
    ada.get_by_role("button", name="Back to live").click()
    expect(editor(ada)).to_be_visible()
    expect(ada.locator(".playback")).to_be_hidden()
    wait_until(lambda: editor_text(ada) == final, what="the live text")

    # Authorship: both names colour the code (names on hover), and the legend says who.
    toggle = ada.get_by_role("button", name="Authorship")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(ada.locator('.cm-author[data-author="Ada"]').first).to_be_visible()
    expect(ada.locator('.cm-author[data-author="Bob"]').first).to_be_visible()
    expect(ada.locator(".cm-author", has_text="DATA = [")).to_have_attribute("title", "Bob")
    expect(ada.locator(".cm-author", has_text="print(total)")).to_have_attribute("title", "Ada")
    expect(ada.locator(".authorship-legend")).to_contain_text("Ada")
    expect(ada.locator(".authorship-legend")).to_contain_text("Bob")
    shot(ada, "06-authorship")
    toggle.click()
    expect(ada.locator(".cm-author")).to_have_count(0)

    # Fork from the middle moment: a new room, in a new tab, with the files of then.
    scrub_to(ada, middle_moment)
    wait_until(lambda: playback_text(ada) == LINE1 + LINE2 + PASTE, what="the middle again")
    with ada.context.expect_page() as opened:
        ada.get_by_role("button", name="Fork from here").click()
    forked = opened.value
    forked.wait_for_url(re.compile(r"/r/(?!" + re.escape(room["room"]) + r"\b)"))
    expect(forked.locator(".conn")).to_have_attribute("data-state", "connected")
    wait_until(lambda: editor_text(forked) == LINE1 + LINE2 + PASTE, what="the forked room")
    shot(forked, "07-forked-room")
    forked.close()

    # Restore the middle moment: a confirm first, then everyone's live text is that moment.
    ada.get_by_role("button", name="Restore this moment").click()
    dialog = ada.get_by_role("dialog", name="Restore this moment?")
    expect(dialog).to_contain_text("Everyone in the room sees the change")
    expect(dialog).to_contain_text("restore the moment just before the restore")
    shot(ada, "08-restore-confirm")
    dialog.get_by_role("button", name="Restore for everyone").click()
    expect(dialog).to_be_hidden()
    expect(editor(ada)).to_be_visible()
    middle = LINE1 + LINE2 + PASTE
    wait_for_code(runner_server, room, middle)
    wait_until(lambda: editor_text(ada) == middle, what="Ada sees the restored text")
    wait_until(lambda: editor_text(bob) == middle, what="Bob sees the restored text")
    shot(ada, "09-restored")
    shot(bob, "09-restored-bob")


def test_viewers_see_history_only_where_the_room_allows_it(
    e2e_server: ServerProcess, people: Any
) -> None:
    """A viewer in a pair room may play the history back (not restore it); in a broadcast
    room the tab says in words that it is not for viewers."""
    pair = create_room(e2e_server, "pair", "python", "Pairing")
    ada = open_room(people.page("Ada", "#c4314b"), pair["links"]["owner"])
    type_at_end(ada, "y = 2\n")
    wait_for_code(e2e_server, pair, "y = 2\n")
    vera = open_room(
        people.page("Vera", "#1f7a3a"), personal_link(e2e_server, pair, "viewer", "Vera")
    )
    open_history(vera)
    expect(vera.locator(".history-status")).to_contain_text("changes from")
    expect(vera.get_by_role("button", name="Restore this moment")).to_be_hidden()
    vera.locator(".history-scrubber").focus()
    vera.keyboard.press("End")
    wait_until(lambda: playback_text(vera) == "y = 2\n", what="the viewer's playback")
    expect(vera.get_by_role("button", name="Fork from here")).to_be_enabled()
    vera.locator(".playback-editor .cm-content").focus()
    vera.keyboard.press("Escape")  # back to live from the keyboard
    expect(vera.locator(".playback")).to_have_count(0)
    expect(vera.get_by_role("textbox", name="Code editor")).to_be_visible()

    room = create_room(e2e_server, "broadcast", "python", "Lecture")
    owner = open_room(people.page("Olga", "#c4314b"), room["links"]["owner"])
    type_at_end(owner, "x = 1\n")
    wait_for_code(e2e_server, room, "x = 1\n")
    people.allow_console(r"status of 403")  # the browser logs the refused request
    viewer = open_room(people.page("Vic", "#1f7a3a"), room["links"]["viewer"])
    show_tab(viewer, "History")
    expect(viewer.locator(".history-status")).to_have_text(
        "The history of this room is not shown to viewers."
    )
    expect(viewer.locator(".history-scrubber")).to_have_count(0)
    # The owner's panel works in the same room.
    open_history(owner)
    expect(owner.locator(".history-status")).to_contain_text("changes from")


def test_history_panel_has_no_serious_accessibility_violation(
    e2e_server: ServerProcess, browser: Any
) -> None:
    """axe on the History panel and the playback view, desktop and phone."""
    assert AXE.exists(), "run `make install` (npm ci in tests/js)"
    room = create_room(e2e_server, "pair", "python", "Audit")
    for viewport in (WIDE, PHONE):
        # axe is injected as a script: the room's CSP is bypassed here (test_csp.py's).
        context = browser.new_context(viewport=viewport, bypass_csp=True)
        identity = json.dumps({"name": "Ada", "color": "#2f5bd3"})
        context.add_init_script(
            f"localStorage.setItem('codementor.identity', {json.dumps(identity)})"
        )
        context.set_default_timeout(10_000)
        try:
            page = open_room(context.new_page(), room["links"]["owner"])
            type_at_end(page, "a = 1\n")
            wait_for_code(e2e_server, room, "a = 1\n" * (1 if viewport is WIDE else 2))
            open_history(page)
            expect(page.locator(".history-status")).to_contain_text("changes from")
            assert serious_violations(page) == []
            page.locator(".history-scrubber").focus()
            page.keyboard.press("Home")
            expect(page.locator(".playback-banner")).to_be_visible()
            assert serious_violations(page) == []
        finally:
            context.close()
