"""Two people edit together; a viewer cannot edit."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import create_room, personal_link, room_details, snapshot
from tests.e2e.helpers import editor, editor_text, open_room, show_tab, type_at_end
from tests.serverproc import ServerProcess
from tests.support import wait_until


def test_two_people_see_each_others_text_and_cursors(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Pairing demo")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    bob = open_room(people.page("Bob", "#1f7a3a"), room["links"]["editor"])

    type_at_end(ada, "def greet(name):\n    return f'hello {name}'\n")
    expect(editor(bob)).to_contain_text("return f'hello {name}'")
    type_at_end(bob, "\nprint(greet('Bob'))")
    expect(editor(ada)).to_contain_text("print(greet('Bob'))")

    # Each sees the other's caret labelled with their name, in their colour.
    expect(ada.locator(".cm-ySelectionInfo", has_text="Bob")).to_be_visible()
    ada.locator(".cm-content").click()  # Ada's caret is in her editor again
    expect(bob.locator(".cm-ySelectionInfo", has_text="Ada")).to_be_visible()
    # ...and in the people list, with roles.
    expect(ada.locator(".person", has_text="Bob")).to_contain_text("Editor")
    expect(bob.locator(".person", has_text="Ada")).to_contain_text("Owner")
    screenshot(ada)

    # Bob renames himself; Ada's people list and cursor label follow.
    bob.get_by_role("button", name="Change name and colour").click()
    dialog = bob.get_by_role("dialog", name="Your name and colour")
    dialog.get_by_label("Display name").fill("Bobby T.")
    dialog.get_by_label("Purple").check()
    screenshot(bob, "identity-dialog")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    show_tab(ada, "People")
    expect(ada.locator(".person", has_text="Bobby T.")).to_be_visible()
    bob.locator(".cm-content").click()
    expect(ada.locator(".cm-ySelectionInfo", has_text="Bobby T.")).to_be_visible()

    # Undo takes back only your own edits.
    type_at_end(ada, "\n# Ada's note")
    expect(editor(bob)).to_contain_text("# Ada's note")
    type_at_end(bob, "\n# Bob's typo")
    expect(editor(ada)).to_contain_text("# Bob's typo")
    ada.keyboard.press("Control+z")
    expect(editor(bob)).not_to_contain_text("# Ada's note")
    expect(editor(ada)).to_contain_text("# Bob's typo")

    # The owner switches the language: everyone's highlighting follows.
    ada.get_by_label("Language").select_option("javascript")
    expect(editor(bob)).to_have_attribute("data-language", "javascript")
    expect(bob.locator(".language-label")).to_have_text("JavaScript")
    wait_until(lambda: room_details(e2e_server, room)["language"] == "javascript", what="PATCH")

    # Chat.
    bob.get_by_role("textbox", name="Chat message").fill("Shall we add a docstring?")
    bob.get_by_role("textbox", name="Chat message").press("Enter")
    expect(ada.locator(".chat-message")).to_contain_text("Shall we add a docstring?")

    # Undo may also take back Ada's earlier typing (edits close in time are one undo
    # step), but never Bob's.
    expected = editor_text(ada)
    assert "# Bob's typo" in expected and "print(greet('Bob'))" in expected
    assert editor_text(bob) == expected
    wait_until(lambda: snapshot(e2e_server, room) == expected, what="the server's copy")
    expect(ada.locator(".save")).to_have_attribute("data-state", "saved")
    expect(ada.locator(".badge.mode")).to_have_text("Pair")
    screenshot(ada, "after-undo")


def test_viewer_cannot_change_the_text(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Read-only check")
    owner = open_room(people.page("Olivia"), room["links"]["owner"])
    original = "x = 1\ny = 2"
    type_at_end(owner, original)
    wait_until(lambda: snapshot(e2e_server, room) == original, what="the seeded code")

    viewer = open_room(people.page("Victor"), personal_link(e2e_server, room, "viewer", "Victor"))
    expect(editor(viewer)).to_have_attribute("aria-readonly", "true")
    expect(viewer.locator(".me")).to_contain_text("Viewer")
    expect(viewer.locator("#chat-input")).to_be_hidden()  # viewers cannot post

    editor(viewer).click()
    viewer.keyboard.press("Control+End")
    viewer.keyboard.type("HACKED")
    viewer.keyboard.press("Enter")
    viewer.keyboard.press("Backspace")
    viewer.keyboard.press("Control+Home")
    viewer.keyboard.press("Delete")
    viewer.keyboard.insert_text("pasted")
    assert editor_text(viewer) == original

    # The owner edits after the viewer typed: once that reached the server, anything the
    # viewer might have sent earlier on its own socket would have too.
    type_at_end(owner, "\n# end")
    expect(editor(viewer)).to_contain_text("# end")
    wait_until(lambda: snapshot(e2e_server, room) == original + "\n# end", what="owner edit")
    assert editor_text(viewer) == original + "\n# end"
    assert e2e_server.metric("codementor_writes_refused_total") == 0  # nothing was even sent
    screenshot(viewer)
