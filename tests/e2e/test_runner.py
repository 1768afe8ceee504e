"""The Run button end to end: the browser asks the server to run, the server runs the code on
the Judge0 double (real Python subprocess), and every browser in the room shows the result."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import create_room, personal_link, snapshot
from tests.e2e.helpers import editor, open_room, type_at_end
from tests.judge0_double import Judge0Double
from tests.serverproc import ServerProcess
from tests.support import wait_until


def test_run_button_shows_the_result_to_the_whole_room(
    runner_server: ServerProcess, judge0: Judge0Double, people: Any, screenshot: Any
) -> None:
    room = create_room(runner_server, "pair", "python", "Run it")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    bob = open_room(
        people.page("Bob", "#1f7a3a"), personal_link(runner_server, room, "editor", "Bob")
    )
    vera = open_room(
        people.page("Vera", "#7b3fc4"), personal_link(runner_server, room, "viewer", "Vera")
    )
    code = "name = input()\nprint(f'Hello, {name}!')"
    type_at_end(ada, code)
    wait_until(lambda: snapshot(runner_server, room) == code, what="the code on the server")

    # Owners and editors get the Run button and an input box; a viewer only the output.
    for page in (ada, bob):
        expect(page.get_by_role("button", name="Run")).to_be_visible()
        expect(page.get_by_label("Program input (stdin)")).to_be_visible()
    expect(vera.locator(".panel.runs")).to_be_visible()
    expect(vera.get_by_role("button", name="Run")).to_be_hidden()
    expect(vera.get_by_label("Program input (stdin)")).to_be_hidden()

    # Ada gives input and runs with Ctrl+Enter from the editor.
    ada.get_by_label("Program input (stdin)").fill("Bob")
    judge0.processing_delay = 1.0  # long enough to see it running everywhere
    editor(ada).click()
    ada.keyboard.press("Control+Enter")
    for page in (ada, bob, vera):
        expect(page.locator(".run-status")).to_have_text("Running")
    expect(bob.locator(".run-button")).to_be_disabled()  # one run at a time per room
    expect(bob.locator(".run-button")).to_contain_text("Running…")
    for page in (ada, bob, vera):
        expect(page.locator(".run-status")).to_have_text("Finished")
        expect(page.locator(".run-stream.stdout .run-output")).to_have_text("Hello, Bob!\n")
        expect(page.locator(".run-facts")).to_contain_text(" s · ")
        expect(page.locator(".run-facts")).to_contain_text(" MB")
    assert editor(ada).inner_text().count("Hello") == 1  # Ctrl+Enter inserted no newline
    assert judge0.count("submit") == 1
    screenshot(vera, "viewer")

    # Bob breaks it and clicks Run: everyone sees the runtime error and its traceback.
    judge0.processing_delay = 0.0
    type_at_end(bob, "\nraise ValueError('oops')")
    expect(editor(ada)).to_contain_text("raise ValueError('oops')")
    wait_until(lambda: "oops" in snapshot(runner_server, room), what="Bob's edit on the server")
    bob.get_by_label("Program input (stdin)").fill("Ada")
    bob.get_by_role("button", name="Run").click()
    for page in (ada, bob, vera):
        expect(page.locator(".run-status")).to_have_text("Runtime error")
        expect(page.locator(".run-stream.stderr .run-output")).to_contain_text("ValueError: oops")
        expect(page.locator(".run-stream.stdout .run-output")).to_have_text("Hello, Ada!\n")
        expect(page.locator(".run-who")).to_contain_text("Run by Bob")
        expect(page.locator(".run-facts")).to_contain_text("exit code 1")
    screenshot(ada)
