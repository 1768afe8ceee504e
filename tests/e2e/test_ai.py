"""The AI pair-programmer in the browser: a real server whose real ``anthropic`` SDK talks
to the Messages API double (``tests/anthropic_double.py``); people ask from the chat panel."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page, expect

from tests.anthropic_double import AnthropicDouble, Reply
from tests.e2e.conftest import create_room, personal_link, snapshot
from tests.e2e.helpers import editor, editor_text, open_room, show_tab, type_at_end
from tests.serverproc import ServerProcess
from tests.support import wait_until

AI = "CodeMentor AI"
ANSWER = "The bug is on line two: it returns 1, not 2."
# The text inside the AI-edit marks, without the carets drawn inside them.
MARKED_TEXT_JS = """() => Array.from(document.querySelectorAll('.cm-ai-edit'), (mark) => {
    const copy = mark.cloneNode(true)
    for (const w of copy.querySelectorAll('.cm-ySelectionCaret, .cm-widgetBuffer')) w.remove()
    return copy.textContent
}).join('')"""


def return_two(intro: str) -> Reply:
    """A reply that says ``intro`` and replaces line 2 with ``    return 2``."""
    edit = {"start_line": 2, "end_line": 2, "new_text": "    return 2\n"}
    return Reply([("text", intro), ("tool", "replace_range", edit)])


def marked_text(page: Page) -> str:
    text: str = page.evaluate(MARKED_TEXT_JS)
    return text


def test_ask_ai_streams_the_answer_into_the_chat(
    ai_server: ServerProcess, double: AnthropicDouble, people: Any, screenshot: Any
) -> None:
    steps: list[tuple[Any, ...]] = []
    for word in ("The bug ", "is on ", "line two: ", "it returns ", "1, not 2."):
        steps += [("text", word), ("sleep", 0.4)]
    double.script(Reply(steps))
    room = create_room(ai_server, "pair", "python", "AI help")
    ada = open_room(people.page("Ada", "#2f5bd3"), room["links"]["owner"])
    type_at_end(ada, "def f():\n    return 1\n")
    # Select line 2 (the asker's selection goes with the question).
    ada.locator(".cm-line", has_text="return 1").click()
    ada.keyboard.press("End")
    ada.keyboard.press("Shift+Home")

    ask = ada.get_by_role("button", name="Ask AI")
    expect(ask).to_be_visible()
    ada.get_by_role("textbox", name="Chat message").fill("Why does f return the wrong value?")
    ask.click()

    entry = ada.locator(".chat-message.ai").last
    expect(entry.locator(".author")).to_have_text(AI)
    expect(entry.locator(".typing")).to_be_visible()
    expect(ada.get_by_role("button", name="Stop")).to_be_visible()
    seen: list[str] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = (entry.locator(".chat-text").text_content() or "").strip()
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        if text == ANSWER and entry.get_attribute("aria-busy") == "false":
            break
        time.sleep(0.05)
    partial = [t for t in seen if t != ANSWER]
    assert len(partial) >= 2, seen  # the text grew in steps before it was complete
    assert all(b.startswith(a) for a, b in zip(seen, seen[1:], strict=False)), seen
    expect(entry.locator(".chat-text")).to_have_text(ANSWER)
    expect(entry.locator(".typing")).to_be_hidden()
    expect(ada.get_by_role("button", name="Stop")).to_be_hidden()
    expect(ada.get_by_role("textbox", name="Chat message")).to_have_value("")

    # The question and the selection reached Claude.
    volatile = double.requests[-1]["body"]["messages"][0]["content"][1]["text"]
    assert "Why does f return the wrong value?" in volatile
    assert "return 1" in volatile
    screenshot(ada)


def test_suggestion_applied_from_the_browser_in_a_review_room(
    ai_server: ServerProcess, double: AnthropicDouble, people: Any, screenshot: Any
) -> None:
    double.script(return_two("Return 2 instead."))
    room = create_room(ai_server, "review", "python", "AI review")
    olga = open_room(people.page("Olga", "#7b3fc4"), room["links"]["owner"])
    type_at_end(olga, "def f():\n    return 1\nprint(f())")
    rita = open_room(people.page("Rita", "#0f7481"), room["links"]["reviewer"])
    expect(editor(rita)).to_contain_text("print(f())")

    # The reviewer asks; the reviewer may not apply, the owner may.
    show_tab(rita, "Chat")  # review rooms open on Comments
    show_tab(olga, "Chat")
    rita.get_by_role("textbox", name="Chat message").fill("Should f return 2?")
    rita.get_by_role("button", name="Ask AI").click()
    suggestion = olga.locator(".chat-message.suggestion-entry").last
    expect(suggestion.locator(".ai-diff del")).to_have_text("−    return 1")
    expect(suggestion.locator(".ai-diff ins")).to_have_text("+    return 2")
    rita_suggestion = rita.locator(".chat-message.suggestion-entry").last
    expect(rita_suggestion.get_by_role("button", name="Dismiss")).to_be_visible()
    expect(rita_suggestion.get_by_role("button", name="Apply")).to_be_hidden()

    suggestion.get_by_role("button", name="Apply").click()
    expect(suggestion.locator(".suggestion-status")).to_have_text("Applied")
    expect(rita_suggestion.locator(".suggestion-status")).to_have_text("Applied")
    expect(suggestion.get_by_role("button", name="Apply")).to_be_hidden()
    wait_until(lambda: "return 2" in editor_text(rita), what="the applied edit at the reviewer")
    assert "return 1" not in editor_text(olga)
    screenshot(olga)


def test_stop_ends_a_pending_answer(
    ai_server: ServerProcess, double: AnthropicDouble, people: Any
) -> None:
    steps: list[tuple[Any, ...]] = []
    for i in range(40):
        steps += [("text", f"word{i} "), ("sleep", 0.25)]
    double.script(Reply(steps))
    room = create_room(ai_server, "pair", "python", "AI stop")
    ada = open_room(people.page("Ada", "#2f5bd3"), room["links"]["owner"])
    ada.get_by_role("textbox", name="Chat message").fill("Tell me a long story")
    ada.get_by_role("button", name="Ask AI").click()
    entry = ada.locator(".chat-message.ai").last
    expect(entry.locator(".chat-text")).to_contain_text("word1")
    ada.get_by_role("button", name="Stop").click()
    expect(entry).to_have_attribute("aria-busy", "false")
    expect(entry.locator(".chat-text")).to_contain_text("(stopped)")
    expect(entry.locator(".typing")).to_be_hidden()
    expect(ada.get_by_role("button", name="Stop")).to_be_hidden()
    assert "word39" not in (entry.locator(".chat-text").text_content() or "")


def test_ask_ai_without_a_question_shows_a_hint(ai_server: ServerProcess, people: Any) -> None:
    room = create_room(ai_server, "review", "python", "AI hint")
    olga = open_room(people.page("Olga", "#c43f3f"), room["links"]["owner"])
    show_tab(olga, "Chat")
    olga.get_by_role("button", name="Ask AI").click()  # empty message box: no request
    expect(olga.locator(".notice")).to_contain_text("Type your question")
    # A viewer may not ask (nor chat): no Ask AI button.
    vic = open_room(people.page("Vic", "#0f7481"), personal_link(ai_server, room, "viewer", "Vic"))
    expect(vic.get_by_role("button", name="Ask AI")).to_be_hidden()


def test_ai_edit_is_highlighted_briefly_and_the_ai_is_listed(
    ai_server: ServerProcess, double: AnthropicDouble, people: Any, screenshot: Any
) -> None:
    double.script(return_two("Fixing it."))
    room = create_room(ai_server, "pair", "python", "AI edits")
    ada = open_room(people.page("Ada", "#2f5bd3"), room["links"]["owner"])
    bob = open_room(people.page("Bob", "#0f7481"), room["links"]["editor"])
    # Only the owner has the switch; it is off by default.
    expect(bob.get_by_label("Let the AI edit the code")).to_be_hidden()
    allow = ada.get_by_label("Let the AI edit the code")
    expect(allow).not_to_be_checked()
    allow.check()
    expect(allow).to_be_enabled()  # disabled while the PATCH is in flight
    expect(allow).to_be_checked()
    code = "def f():\n    return 1\nprint(f())\n"
    type_at_end(ada, code)
    wait_until(lambda: snapshot(ai_server, room) == code, what="the code on the server")
    expect(bob.locator(".cm-ai-edit")).to_have_count(0)  # people's own typing is not marked

    bob.get_by_role("textbox", name="Chat message").fill("Make f return 2")
    bob.get_by_role("button", name="Ask AI").click()

    # The AI's new line is marked, with who made it.
    mark = ada.locator(".cm-ai-edit").first
    expect(mark).to_be_visible()
    expect(mark).to_have_attribute("title", f"Edited by {AI}")
    assert marked_text(ada) == "    return 2"
    # Ada types above it while it shows: the mark moves with the text, at both.
    ada.locator(".cm-content").click()
    ada.keyboard.press("Control+Home")
    ada.keyboard.insert_text("# fixed by the AI\n")
    assert marked_text(ada) == "    return 2"
    expect(editor(bob)).to_contain_text("# fixed by the AI")
    expect(bob.locator(".cm-ai-edit").first).to_have_attribute("title", f"Edited by {AI}")
    assert marked_text(bob) == "    return 2"

    # The people panel lists the AI after the owner, badged "AI", with nothing to click.
    show_tab(bob, "People")
    rows = bob.locator(".people-list .person")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Ada")
    expect(rows.nth(1)).to_contain_text(AI)
    ai_row = bob.locator(".person.ai")
    expect(ai_row.locator(".badge.role-ai")).to_have_text("AI")
    expect(ai_row.get_by_role("button")).to_have_count(0)
    screenshot(bob)

    # The marks fade and go; the edit stays.
    for page in (ada, bob):
        expect(page.locator(".cm-ai-edit")).to_have_count(0, timeout=6_000)
    assert editor_text(bob) == "# fixed by the AI\ndef f():\n    return 2\nprint(f())\n"
    expect(ai_row).to_be_visible()  # still present until it has been idle a while
    # Someone who joins later sees the AI's text unmarked: loading it is not news.
    cleo = open_room(people.page("Cleo", "#c4314b"), room["links"]["editor"])
    show_tab(cleo, "People")
    expect(cleo.locator(".person.ai")).to_be_visible()
    expect(editor(cleo)).to_contain_text("return 2")
    # Counted at once (not awaited): a mark made while loading would last 2.5 s.
    assert cleo.locator(".cm-ai-edit").count() == 0
