"""Runs in the browser: Stop (the run ends ``cancelled`` for everyone), who ran it and with
what input, failed requests said in plain sentences, error lines marked in the editor, and
reviewers running the code in a review room. Real server, Judge0 double, Chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, create_room, personal_link, snapshot
from tests.e2e.helpers import editor, open_room, run_record, type_at_end
from tests.judge0_double import Judge0Double
from tests.serverproc import ServerProcess
from tests.support import wait_until


def set_code(page: Any, server: ServerProcess, room: dict[str, Any], code: str) -> None:
    type_at_end(page, code)
    wait_until(lambda: snapshot(server, room) == code, what="the code on the server")


def test_stop_ends_the_run_for_everyone_with_name_and_input(
    runner_server: ServerProcess, judge0: Judge0Double, people: Any, screenshot: Any
) -> None:
    room = create_room(runner_server, "pair", "python", "Stop it")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    bob = open_room(
        people.page("Bob", "#1f7a3a"), personal_link(runner_server, room, "editor", "Bob")
    )
    set_code(ada, runner_server, room, "a = int(input())\nb = int(input())\nprint(a + b)")
    ada.get_by_label("Program input (stdin)").fill("3\n4")
    judge0.hold = True  # Judge0 keeps it Processing until released
    with ada.expect_response(re.compile(r"/runs$")) as answer:
        ada.get_by_role("button", name="Run").click()
    run_id = answer.value.json()["run_id"]
    for page in (ada, bob):
        expect(page.locator(".run-status")).to_have_text("Running")
        # Stop: for the person who started it, and for editors.
        expect(page.get_by_role("button", name="Stop")).to_be_visible()
        # The person's name (the owner link is renamed to Ada), not the role; the input.
        expect(page.locator(".run-who")).to_contain_text("Run by Ada")
        expect(page.locator(".run-stdin-used code")).to_have_text("3 ⏎ 4")
    screenshot(ada, "running")
    ada.get_by_role("button", name="Stop").click()
    for page in (ada, bob):
        expect(page.locator(".run-status")).to_have_text("Stopped")
        expect(page.locator(".run-who")).to_contain_text("stopped by Ada")
        expect(page.get_by_role("button", name="Stop")).to_be_hidden()
        expect(page.get_by_role("button", name="Run")).to_be_enabled()
    record = run_record(runner_server, room, run_id)
    assert record["status"] == "cancelled" and record["by"] == "Ada"
    assert record["cancelled_by"] == "Ada" and record["stdin"] == "3\n4"
    screenshot(bob)
    judge0.hold = False

    # The next run goes through, for Bob this time.
    bob.get_by_label("Program input (stdin)").fill("5\n6")
    bob.get_by_role("button", name="Run").click()
    for page in (ada, bob):
        expect(page.locator(".run-status")).to_have_text("Finished")
        expect(page.locator(".run-stream.stdout .run-output")).to_have_text("11\n")
        expect(page.locator(".run-who")).to_contain_text("Run by Bob")


def test_failed_requests_say_a_plain_sentence_cleared_by_the_next_run(
    runner_server: ServerProcess, judge0: Judge0Double, people: Any, screenshot: Any
) -> None:
    room = create_room(runner_server, "pair", "python", "Offline")
    # The failures are provoked: the browser logs each one it saw.
    people.allow_console(r"ERR_INTERNET_DISCONNECTED|status of 429")
    page = people.page("Ada", "#c4314b")
    open_room(page, room["links"]["owner"])
    set_code(page, runner_server, room, "print('back online')")
    problem = page.locator(".run-problem")

    page.context.set_offline(True)
    page.get_by_role("button", name="Run").click()
    expect(problem).to_have_text("You are offline; run again when reconnected.")
    expect(problem).to_be_visible()
    assert "TypeError" not in page.locator(".panel.runs").inner_text()
    screenshot(page, "offline")
    page.context.set_offline(False)

    # A rate limit says when to try again (the server's Retry-After).
    page.route(
        re.compile(r"/runs$"),
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "7", "Content-Type": "application/json"},
            body='{"error": "too many runs: wait a moment"}',
        ),
    )
    page.get_by_role("button", name="Run").click()
    expect(problem).to_have_text("Too many runs in a short time. Try again in 7 s.")
    page.unroute(re.compile(r"/runs$"))

    # The next run clears the sentence.
    page.get_by_role("button", name="Run").click()
    expect(page.locator(".run-status")).to_have_text("Finished")
    expect(problem).to_be_hidden()
    expect(page.locator(".run-stream.stdout .run-output")).to_have_text("back online\n")
    assert judge0.count("submit") == 1  # neither failed request reached Judge0


@pytest.mark.parametrize("viewport", ["wide", "phone"])
def test_a_python_error_marks_its_line_in_the_editor(
    runner_server: ServerProcess,
    judge0: Judge0Double,
    people: Any,
    screenshot: Any,
    viewport: str,
) -> None:
    room = create_room(runner_server, "pair", "python", "Traceback")
    size = PHONE if viewport == "phone" else None
    ada = open_room(people.page("Ada", "#c4314b", viewport=size), room["links"]["owner"])
    bob = open_room(
        people.page("Bob", "#1f7a3a", viewport=size),
        personal_link(runner_server, room, "editor", "Bob"),
    )
    code = "def ratio(a, b):\n    return a / b\n\nprint(ratio(1, 2))\nprint(ratio(1, 0))"
    set_code(ada, runner_server, room, code)
    ada.get_by_role("button", name="Run").click()
    for page in (ada, bob):
        expect(page.locator(".run-status")).to_have_text("Runtime error")
        marked = page.locator(".cm-run-error-line")
        expect(marked).to_have_count(1)
        # The last frame in the user's file: line 2, where the division is.
        expect(marked).to_have_text("    return a / b")
        expect(marked).to_have_attribute("title", "ZeroDivisionError: division by zero")
        marker = page.locator(".cm-run-error-marker")
        expect(marker).to_have_count(1)
        expect(marker).to_have_attribute("title", "ZeroDivisionError: division by zero")
        expect(page.locator(".run-marks-note")).to_have_text("Marked line 2 in the editor.")
    marked_line = ada.locator(".cm-run-error-line").bounding_box()
    gutter_marker = ada.locator(".cm-run-error-marker").bounding_box()
    assert marked_line and gutter_marker
    assert (
        abs(
            (marked_line["y"] + marked_line["height"] / 2)
            - (gutter_marker["y"] + gutter_marker["height"] / 2)
        )
        < 4
    )  # the marker sits on its line
    if viewport == "phone":
        ada.locator(".panel.runs").scroll_into_view_if_needed()
        screenshot(ada, "output")
        editor(ada).scroll_into_view_if_needed()
    screenshot(ada)

    # Fixing the line removes its mark, for everyone.
    editor(bob).locator(".cm-line", has_text="return a / b").click()
    bob.keyboard.press("End")
    bob.keyboard.type(" if b else 0.0")
    for page in (ada, bob):
        expect(page.locator(".cm-run-error-line")).to_have_count(0)
    # A new run starts with no marks; a compile-free run marks nothing.
    ada.get_by_role("button", name="Run").click()
    expect(ada.locator(".run-status")).to_have_text("Finished")
    expect(ada.locator(".cm-run-error-line")).to_have_count(0)


def test_a_reviewer_runs_in_a_review_room(
    runner_server: ServerProcess, judge0: Judge0Double, people: Any, screenshot: Any
) -> None:
    room = create_room(runner_server, "review", "python", "Review with runs")
    author = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    rita = open_room(
        people.page("Rita", "#7b3fc4"), personal_link(runner_server, room, "reviewer", "Rita")
    )
    set_code(author, runner_server, room, "print(sum(range(10)))")
    # Review rooms let reviewers run by default.
    expect(rita.get_by_role("button", name="Run")).to_be_visible()
    rita.get_by_role("button", name="Run").click()
    for page in (author, rita):
        expect(page.locator(".run-status")).to_have_text("Finished")
        expect(page.locator(".run-stream.stdout .run-output")).to_have_text("45\n")
        expect(page.locator(".run-who")).to_contain_text("Run by Rita")
    screenshot(rita)

    # The owner turns it off in the Share dialog: Rita's Run button goes, live.
    author.get_by_role("button", name="Share").click()
    toggle = author.get_by_label("Reviewers may run the code to check a fix")
    expect(toggle).to_be_checked()
    toggle.uncheck()
    expect(
        author.get_by_text("Run is hidden from reviewers and refused by the server.")
    ).to_be_visible()
    screenshot(author, "share")
    expect(rita.get_by_role("button", name="Run")).to_be_hidden()
    assert runner_server.room_details(room["room"], room["owner_token"])["reviewers_run"] is False
