"""Review comments in a workspace: a comment anchors inside the file it was made in, the
panel names that file, highlights show only in it, a click opens it, and a rename keeps
the comment on its code under the new name."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from tests.e2e.conftest import create_room
from tests.e2e.helpers import (
    create_file,
    editor,
    file_item,
    file_tab,
    open_file,
    open_room,
    show_tab,
    type_at_end,
)
from tests.e2e.test_workspace_tree import shot
from tests.test_interop_yjs import JS_DIR

MAIN = "".join(f"print('main line {n}')\n" for n in range(1, 46))
# Long enough that its last line is out of sight while the top is shown.
B = "".join(f"x{n} = {n}\n" for n in range(1, 45)) + "answer = x1 / (x2 - 2)"
TARGET = "answer = x1 / (x2 - 2)"  # line 45 of b.py


def test_comment_in_another_file_is_named_shown_there_and_follows_a_rename(
    e2e_server: Any, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "review", "python", "Review: workspace comments")
    owner = open_room(people.page("Olga", "#7b3fc4"), room["links"]["owner"])
    type_at_end(owner, MAIN)
    create_file(owner, "b.py")
    type_at_end(owner, B)
    open_file(owner, "main.py")
    reviewer = open_room(people.page("Rita", "#0f7481"), room["links"]["reviewer"])

    # The reviewer opens b.py, selects its last line and comments on it.
    open_file(reviewer, "b.py")
    expect(editor(reviewer)).to_contain_text("x1 = 1")
    editor(reviewer).click()
    reviewer.keyboard.press("Control+End")
    reviewer.keyboard.press("Home")
    reviewer.keyboard.press("Shift+End")
    reviewer.keyboard.press("Control+Alt+m")
    composer = reviewer.get_by_label("Comment text")
    expect(composer).to_be_focused()
    expect(reviewer.locator(".composer .where")).to_contain_text("b.py · Line 45")
    composer.fill("x2 - 2 is zero: this divides by zero.")
    composer.press("Control+Enter")
    expect(reviewer.locator(".cm-comment-range")).to_have_text(TARGET)

    # The owner, in main.py, sees the comment naming b.py, and no highlight in main.py
    # (main.py is as long as b.py: a highlight at b.py's offsets would land on its line 45).
    show_tab(owner, "Comments")
    comment = owner.locator(".comment", has_text="divides by zero")
    expect(comment.locator(".comment-file")).to_have_text("b.py")
    expect(comment.locator(".comment-line")).to_have_text("Line 45")
    expect(comment.locator(".author")).to_have_text("Rita")
    expect(file_tab(owner, "main.py")).to_have_attribute("aria-selected", "true")
    expect(owner.locator(".cm-comment-line")).to_have_count(0)
    expect(owner.locator(".cm-comment-range")).to_have_count(0)
    owner.locator(".cm-scroller").evaluate("(el) => { el.scrollTop = 0 }")
    shot(owner, "comments-named-in-panel")

    # Clicking the comment while main.py is open switches the owner to b.py, scrolled to it.
    comment.locator(".comment-line").click()
    expect(file_tab(owner, "b.py")).to_have_attribute("aria-selected", "true")
    active = owner.locator(".cm-comment-active")
    expect(active).to_have_text(TARGET)
    expect(active).to_be_in_viewport()
    expect(owner.locator(".cm-comment-line")).to_have_count(1)
    shot(owner, "comments-jump-to-file")

    # Back in main.py the highlight goes; in b.py it comes back (decorations follow the tab).
    file_tab(owner, "main.py").click()
    expect(owner.locator(".cm-comment-line")).to_have_count(0)
    file_tab(owner, "b.py").click()
    expect(owner.locator(".cm-comment-line")).to_have_count(1)

    # The owner renames b.py to c.py: the comment stays on its code and names c.py, for
    # both people (the reviewer's page did not rename: it reads what the owner's moved).
    file_item(owner, "b.py").click()
    owner.locator(".file-actions").get_by_role("button", name="Rename").click()
    owner.get_by_label("Rename b.py to").fill("c.py")
    owner.locator(".file-form").get_by_role("button", name="Rename").click()
    expect(file_tab(owner, "c.py")).to_have_attribute("aria-selected", "true")
    expect(comment.locator(".comment-file")).to_have_text("c.py")
    expect(comment.locator(".comment-line")).to_have_text("Line 45")
    expect(comment).not_to_have_class("outdated")
    show_tab(reviewer, "Comments")
    theirs = reviewer.locator(".comment", has_text="divides by zero")
    expect(theirs.locator(".comment-file")).to_have_text("c.py")
    expect(theirs.locator(".comment-line")).to_have_text("Line 45")
    expect(owner.locator(".cm-comment-range")).to_have_text(TARGET)
    expect(reviewer.locator(".cm-comment-range")).to_have_text(TARGET)
    shot(owner, "comments-after-rename")

    # Deleting c.py leaves the comment, naming the file it was in.
    owner.locator(".file-actions").get_by_role("button", name="Delete").click()
    owner.get_by_role("dialog", name="Delete c.py?").get_by_role("button", name="Delete").click()
    expect(file_item(owner, "c.py")).to_have_count(0)
    expect(comment.locator(".comment-file")).to_have_text("in c.py (deleted)")
    expect(comment.locator(".comment-line")).to_have_text("File deleted (was line 45)")
    expect(comment.locator(".comment-line")).to_be_disabled()
    expect(theirs.locator(".comment-file")).to_have_text("in c.py (deleted)")
    expect(owner.locator(".cm-comment-line")).to_have_count(0)
    shot(owner, "comments-file-deleted")
    screenshot(owner)


def stock_client_comment(server: Any, room: dict[str, Any], covering: str, text: str) -> None:
    """A stock y-websocket client (tests/js/yjs_client.mjs, bound to `code`) adds a comment
    the way clients before workspaces did: anchors into `code`, no `path`."""
    node = shutil.which("node")
    assert node, "node is not on PATH: install Node 20 to run this test"
    token = parse_qs(urlsplit(room["links"]["reviewer"]).query)["token"][0]
    command = [node, str(JS_DIR / "yjs_client.mjs"), server.ws_base, room["room"], token]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        watchdog = threading.Timer(20, proc.kill)  # a stuck client fails the test, not CI
        watchdog.start()
        try:
            assert proc.stdin is not None and proc.stdout is not None
            lines = iter(proc.stdout)

            def send(**command: Any) -> None:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(command) + "\n")
                proc.stdin.flush()

            def next_event(kind: str) -> dict[str, Any]:
                for line in lines:
                    event: dict[str, Any] = json.loads(line)
                    if event["event"] == kind:
                        return event
                raise AssertionError(f"the yjs client exited before {kind!r}")

            next_event("synced")
            send(op="comment", id="old1", covering=covering, text=text, author="Rita")
            send(op="state")
            state = next_event("state")
            assert state["comments"]["old1"]["covered"] == covering, state
            send(op="close")
            assert proc.wait(timeout=10) == 0
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()


def test_comment_without_path_is_in_the_entry_file_and_follows_its_rename(
    e2e_server: Any, people: Any
) -> None:
    room = create_room(e2e_server, "review", "python", "Review: old comments")
    owner = open_room(people.page("Olga", "#7b3fc4"), room["links"]["owner"])
    type_at_end(owner, "total = 0\nprint(total)\n")
    create_file(owner, "b.py")
    type_at_end(owner, "print('b')\n")
    expect(file_tab(owner, "b.py")).to_have_attribute("aria-selected", "true")

    stock_client_comment(e2e_server, room, "print(total)", "Made by an old client.")
    show_tab(owner, "Comments")
    comment = owner.locator(".comment", has_text="Made by an old client")
    expect(comment.locator(".comment-file")).to_have_text("main.py")
    expect(comment.locator(".comment-line")).to_have_text("Line 2")
    expect(owner.locator(".cm-comment-line")).to_have_count(0)  # b.py is shown

    # Renaming the entry file (meta.entry; its text stays `code`): the comment names it.
    file_item(owner, "main.py").click()
    owner.locator(".file-actions").get_by_role("button", name="Rename").click()
    owner.get_by_label("Rename main.py to").fill("app.py")
    owner.locator(".file-form").get_by_role("button", name="Rename").click()
    expect(comment.locator(".comment-file")).to_have_text("app.py")
    comment.locator(".comment-line").click()
    expect(file_tab(owner, "app.py")).to_have_attribute("aria-selected", "true")
    expect(owner.locator(".cm-comment-active")).to_have_text("print(total)")
