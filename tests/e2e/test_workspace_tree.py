"""Workspaces in the browser: the file tree, tabs, rename, delete, per-file undo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import create_room, personal_link, snapshot
from tests.e2e.helpers import (
    create_file,
    editor,
    editor_text,
    file_item,
    file_tab,
    open_file,
    open_room,
    type_at_end,
)
from tests.serverproc import ROOT, ServerProcess
from tests.support import wait_until

SHOTS = ROOT / "test-output" / "issue19"


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def test_create_open_rename_delete_between_two_people(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Workspace")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    bob = open_room(people.page("Bob", "#1f7a3a"), room["links"]["editor"])

    # The entry file is there from the start, marked, and open.
    expect(file_item(ada, "main.py")).to_contain_text("entry")
    expect(file_tab(ada, "main.py")).to_have_attribute("aria-selected", "true")
    type_at_end(ada, "import util.helpers\n")

    # A bad path is refused with the rule, inline, before anything is written.
    ada.locator(".file-actions").get_by_role("button", name="New file").click()
    ada.get_by_label("New file path").fill("../secret.py")
    expect(ada.locator(".file-path-rule")).to_contain_text("must not contain . or .. segments")
    expect(ada.locator(".file-form").get_by_role("button", name="Create")).to_be_disabled()
    ada.get_by_label("New file path").fill("main.py")
    expect(ada.locator(".file-path-rule")).to_contain_text("already exists")
    ada.locator(".file-form").get_by_role("button", name="Cancel").click()

    create_file(ada, "util/helpers.py")
    type_at_end(ada, "def twice(x):\n    return 2 * x")
    # Bob sees the folder and the file, opens it and sees Ada's text.
    expect(bob.locator('.file-tree [data-folder="util"]')).to_be_visible()
    open_file(bob, "util/helpers.py")
    expect(editor(bob)).to_contain_text("return 2 * x")
    assert "import util.helpers" not in editor_text(bob)
    # Two tabs; switching back shows the entry file's text again.
    expect(bob.locator(".file-tabs [role=tab]")).to_have_count(2)
    file_tab(bob, "main.py").click()
    expect(editor(bob)).to_contain_text("import util.helpers")
    file_tab(bob, "util/helpers.py").click()
    expect(editor(bob)).to_contain_text("def twice")
    screenshot(bob)

    # The server keeps the entry file in `code` (what a stock client edits).
    wait_until(
        lambda: (
            "import util.helpers" in snapshot(e2e_server, room)
            and "def twice" not in snapshot(e2e_server, room)
        ),
        what="the entry file's text reached the server",
    )

    # Ada renames it (a move): Bob's tab follows it, with the text.
    file_item(ada, "util/helpers.py").click()
    ada.locator(".file-actions").get_by_role("button", name="Rename").click()
    ada.get_by_label("Rename util/helpers.py to").fill("lib/helpers.py")
    ada.locator(".file-form").get_by_role("button", name="Rename").click()
    expect(file_item(bob, "lib/helpers.py")).to_be_visible()
    expect(file_item(bob, "util/helpers.py")).to_have_count(0)
    expect(file_tab(bob, "lib/helpers.py")).to_have_attribute("aria-selected", "true")
    expect(editor(bob)).to_contain_text("def twice")

    # The entry file cannot be deleted: the button says so.
    file_item(ada, "main.py").click()
    expect(ada.locator(".file-actions").get_by_role("button", name="Delete")).to_be_disabled()
    ada.keyboard.press("Delete")
    expect(ada.locator(".notice").last).to_contain_text("cannot be deleted")

    # Deleting asks first; Bob's open tab closes with a notice.
    file_item(ada, "lib/helpers.py").click()
    ada.locator(".file-actions").get_by_role("button", name="Delete").click()
    dialog = ada.get_by_role("dialog", name="Delete lib/helpers.py?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(file_item(bob, "lib/helpers.py")).to_be_visible()
    ada.locator(".file-actions").get_by_role("button", name="Delete").click()
    ada.get_by_role("dialog", name="Delete lib/helpers.py?").get_by_role(
        "button", name="Delete"
    ).click()
    expect(file_item(bob, "lib/helpers.py")).to_have_count(0)
    expect(file_tab(bob, "lib/helpers.py")).to_have_count(0)
    expect(bob.locator(".notice").last).to_contain_text("deleted by someone else")
    expect(editor(bob)).to_contain_text("import util.helpers")


def test_entry_file_rename_and_per_file_undo(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Undo per file")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    bob = open_room(people.page("Bob", "#1f7a3a"), room["links"]["editor"])

    type_at_end(ada, "print('main')")
    create_file(ada, "b.py")
    type_at_end(ada, "print('b')")
    expect(editor(ada)).to_contain_text("print('b')")
    # Back in main.py, Ctrl+Z undoes main.py's edit, never b.py's.
    file_tab(ada, "main.py").click()
    editor(ada).click()
    ada.keyboard.press("Control+z")
    expect(editor(ada)).not_to_contain_text("print('main')")
    open_file(bob, "b.py")
    expect(editor(bob)).to_contain_text("print('b')")
    # ...and Ctrl+Z in b.py undoes b.py's edit (its history was kept across the switch).
    file_tab(ada, "b.py").click()
    editor(ada).click()
    ada.keyboard.press("Control+z")
    expect(editor(bob)).not_to_contain_text("print('b')")
    ada.keyboard.press("Control+y")
    expect(editor(bob)).to_contain_text("print('b')")

    # Renaming the entry file sets meta.entry: still the entry, everyone's tab follows.
    open_file(ada, "main.py")
    type_at_end(ada, "print('app')")
    bob.bring_to_front()
    open_file(bob, "main.py")
    ada.locator(".file-actions").get_by_role("button", name="Rename").click()
    ada.get_by_label("Rename main.py to").fill("app.py")
    ada.locator(".file-form").get_by_role("button", name="Rename").click()
    expect(file_item(bob, "app.py")).to_contain_text("entry")
    expect(file_tab(bob, "app.py")).to_have_attribute("aria-selected", "true")
    expect(editor(bob)).to_contain_text("print('app')")
    screenshot(ada)
    # Someone who arrives later gets it from the server: app.py, the entry, open.
    cy = open_room(people.page("Cy", "#7a3ac4"), room["links"]["editor"])
    expect(file_tab(cy, "app.py")).to_have_attribute("aria-selected", "true")
    expect(file_item(cy, "b.py")).to_be_visible()
    expect(editor(cy)).to_contain_text("print('app')")


def test_viewer_reads_files_but_cannot_change_them(e2e_server: ServerProcess, people: Any) -> None:
    room = create_room(e2e_server, "pair", "python", "Read only")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    create_file(ada, "notes.py")
    type_at_end(ada, "# notes")
    link = personal_link(e2e_server, room, "viewer", "Vic")
    viewer = open_room(people.page("Vic", "#1f7a3a"), link)
    expect(file_item(viewer, "notes.py")).to_be_visible()
    expect(viewer.locator(".file-actions")).to_be_hidden()
    # Keyboard: the tree is one tab stop; arrows move, Enter opens.
    file_item(viewer, "main.py").focus()
    viewer.keyboard.press("ArrowDown")
    expect(file_item(viewer, "notes.py")).to_be_focused()
    viewer.keyboard.press("Enter")
    expect(file_tab(viewer, "notes.py")).to_have_attribute("aria-selected", "true")
    expect(editor(viewer)).to_contain_text("# notes")
    viewer.keyboard.press("Delete")  # nothing for a viewer
    expect(file_item(viewer, "notes.py")).to_be_visible()
