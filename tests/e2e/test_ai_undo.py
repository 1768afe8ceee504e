"""Undo after the AI, in the browser: a real server whose real ``anthropic`` SDK talks to
the Messages API double. Ctrl+Z after an applied suggestion or an AI edit reverts that
change as one unit (through the server), never an older edit of one's own; the next
Ctrl+Z goes on into one's own history. The chat entry's "Undo AI change" does the same
for anyone who may edit the code."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page, expect

from tests.anthropic_double import AnthropicDouble, Reply
from tests.e2e.conftest import create_room, personal_link, snapshot
from tests.e2e.helpers import editor, editor_text, open_room, type_at_end
from tests.serverproc import ServerProcess
from tests.support import wait_until

FIRST = "def f():\n    return 1\n"
SECOND = "print(f())\n"
BEFORE = FIRST + SECOND
AFTER = "def f():\n    return 2\n" + SECOND
CAPTURE_GAP = 0.7  # longer than Y.UndoManager's 500 ms capture: a separate undo step


def return_two(intro: str = "It should return 2.") -> Reply:
    edit = {"start_line": 2, "end_line": 2, "new_text": "    return 2\n"}
    return Reply([("text", intro), ("tool", "replace_range", edit)])


def owner_link(server: ServerProcess, room: dict[str, Any]) -> str:
    """The owner's own link, in her name (what the server stamps on what she does)."""
    return personal_link(server, room, "owner", "Ada")


def both(server: ServerProcess, room: dict[str, Any], page: Page, text: str, what: str) -> None:
    """The server's copy (REST snapshot) and the editor both hold ``text``."""
    wait_until(lambda: snapshot(server, room) == text, what=f"{what} on the server")
    wait_until(lambda: editor_text(page) == text, what=f"{what} in the editor")


def write_two_steps(page: Page) -> None:
    """Two own edits, far enough apart to be two undo steps."""
    type_at_end(page, FIRST)
    time.sleep(CAPTURE_GAP)
    type_at_end(page, SECOND)
    time.sleep(CAPTURE_GAP)


def ask(page: Page, question: str) -> None:
    page.get_by_role("textbox", name="Chat message").fill(question)
    page.get_by_role("button", name="Ask AI").click()


def test_ctrl_z_after_applying_a_suggestion_undoes_it_not_older_edits(
    ai_server: ServerProcess, double: AnthropicDouble, people: Any, screenshot: Any
) -> None:
    double.script(return_two())
    room = create_room(ai_server, "pair", "python", "Undo a suggestion")
    ada = open_room(people.page("Ada", "#2f5bd3"), owner_link(ai_server, room))
    write_two_steps(ada)
    both(ai_server, room, ada, BEFORE, "the own edits")

    ask(ada, "Should f return 2?")
    card = ada.locator(".chat-message.suggestion-entry").last
    card.get_by_role("button", name="Apply").click()
    expect(card.locator(".suggestion-status")).to_have_text("Applied")
    both(ai_server, room, ada, AFTER, "the applied suggestion")

    editor(ada).click()
    ada.keyboard.press("Control+z")
    both(ai_server, room, ada, BEFORE, "the suggestion undone, own edits kept")
    expect(card.locator(".ai-undone")).to_have_text("Undone by Ada")
    expect(card.get_by_role("button", name="Undo AI change")).to_be_hidden()
    screenshot(ada)

    # The next Ctrl+Z goes on into Ada's own history: her last edit, then the first.
    ada.keyboard.press("Control+z")
    both(ai_server, room, ada, FIRST, "Ada's second edit undone")
    ada.keyboard.press("Control+z")
    # What Ada typed goes; the line the AI put back is the AI's text now (a CRDT cannot
    # bring deleted items back: the revert inserted the removed line anew).
    both(ai_server, room, ada, "    return 1\n", "Ada's first edit undone")


def test_ctrl_z_after_an_ai_edit_steps_back_through_typing_then_the_ai(
    ai_server: ServerProcess, double: AnthropicDouble, people: Any, screenshot: Any
) -> None:
    double.script(return_two("Fixed: f returns 2 now."))
    room = create_room(ai_server, "pair", "python", "Undo an AI edit")
    ada = open_room(people.page("Ada", "#2f5bd3"), owner_link(ai_server, room))
    allow = ada.get_by_label("Let the AI edit the code")
    allow.check()
    expect(allow).to_be_enabled()
    write_two_steps(ada)
    both(ai_server, room, ada, BEFORE, "the own edits")

    ask(ada, "Make f return 2")
    both(ai_server, room, ada, AFTER, "the AI's edit")
    entry = ada.locator(".chat-message.ai").last
    expect(entry.get_by_role("button", name="Undo AI change")).to_be_visible()
    # Ada types after the AI's edit: that typing is the newest step.
    time.sleep(CAPTURE_GAP)
    type_at_end(ada, "# checked\n")
    both(ai_server, room, ada, AFTER + "# checked\n", "Ada's typing after the AI")

    ada.keyboard.press("Control+z")
    both(ai_server, room, ada, AFTER, "Ada's own typing undone first")
    ada.keyboard.press("Control+z")
    both(ai_server, room, ada, BEFORE, "then the AI's edit, as one unit")
    expect(entry.locator(".ai-undone")).to_have_text("Undone by Ada")
    screenshot(ada)
    ada.keyboard.press("Control+z")
    both(ai_server, room, ada, FIRST, "then Ada's older edit")


def test_undo_button_on_the_chat_entry_and_a_refusal(
    ai_server: ServerProcess, double: AnthropicDouble, people: Any, screenshot: Any
) -> None:
    double.script(return_two(), return_two("Again: return 2."))
    room = create_room(ai_server, "pair", "python", "Undo from chat")
    people.allow_console(r"status of 409 \(Conflict\)")  # the refusal, on purpose
    ada = open_room(people.page("Ada", "#2f5bd3"), owner_link(ai_server, room))
    bob = open_room(people.page("Bob", "#0f7481"), room["links"]["editor"])
    write_two_steps(ada)
    both(ai_server, room, ada, BEFORE, "the code")

    # Ada asks and applies; Bob, who did neither, undoes it from the chat entry.
    ask(ada, "Should f return 2?")
    card = ada.locator(".chat-message.suggestion-entry").last
    card.get_by_role("button", name="Apply").click()
    both(ai_server, room, bob, AFTER, "the applied suggestion at Bob")
    bob_card = bob.locator(".chat-message.suggestion-entry").last
    bob_card.get_by_role("button", name="Undo AI change").click()
    both(ai_server, room, ada, BEFORE, "undone from the chat")
    expect(card.locator(".ai-undone")).to_have_text("Undone by Bob")
    expect(bob_card.locator(".ai-undone")).to_have_text("Undone by Bob")
    # Ada's Ctrl+Z now goes to her own last edit: the AI change is no longer hers to undo.
    editor(ada).click()
    ada.keyboard.press("Control+z")
    both(ai_server, room, ada, FIRST, "Ada's own last edit undone")
    ada.keyboard.press("Control+y")
    both(ai_server, room, ada, BEFORE, "and redone")

    # Applied again, then someone edits inside the AI's text: the undo is refused.
    ask(ada, "Again?")
    second = ada.locator(".chat-message.suggestion-entry").last
    expect(second.get_by_role("button", name="Apply")).to_be_visible()
    second.get_by_role("button", name="Apply").click()
    both(ai_server, room, ada, AFTER, "applied again")
    bob.locator(".cm-line", has_text="return 2").click()
    bob.keyboard.press("End")
    bob.keyboard.insert_text("0")
    both(ai_server, room, ada, AFTER.replace("return 2", "return 20"), "Bob's edit inside")
    time.sleep(CAPTURE_GAP)
    editor(ada).click()
    ada.keyboard.press("Control+z")
    expect(ada.locator(".notice.error")).to_contain_text("edited since")
    assert snapshot(ai_server, room) == AFTER.replace("return 2", "return 20")
    screenshot(ada, "refused")
