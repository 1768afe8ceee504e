"""Running a workspace of several files from the browser: the Run menu chooses the file
that runs (sent as ``entry``), the output names what ran, an error's line is marked in the
file it is in (and follows the tabs), and Ask AI sends the file shown as ``path``.
Real server, the Judge0 double (real Python subprocesses), the Anthropic double, Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.anthropic_double import AnthropicDouble
from tests.e2e.conftest import PHONE, WIDE, create_room, personal_link, snapshot
from tests.e2e.helpers import (
    create_file,
    editor,
    file_tab,
    open_file,
    open_room,
    run_record,
    show_tab,
    type_at_end,
)
from tests.e2e.test_accessibility import AXE
from tests.judge0_double import Judge0Double
from tests.serverproc import ROOT, ServerProcess
from tests.support import wait_until

SHOTS = ROOT / "test-output" / "issue19"
MAIN = 'import util\nprint("mean", util.mean([1, 2, 3]))\n'
UTIL = (
    "def mean(xs):\n"
    "    return sum(xs) / len(xs)\n"
    "\n"
    'if __name__ == "__main__":\n'
    '    print("util self-test", mean([4, 6]))\n'
)


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def server_file(server: ServerProcess, room: dict[str, Any], path: str) -> str:
    response = httpx.get(
        f"{server.http_url}/api/rooms/{room['room']}/files/{path}",
        headers={"Authorization": f"Bearer {room['owner_token']}"},
        timeout=10,
    )
    return response.text if response.status_code == 200 else ""


def is_run_request(request: Any) -> bool:
    return bool(request.method == "POST" and request.url.endswith("/runs"))


def test_run_menu_chooses_the_file_and_marks_errors_in_their_file(
    runner_server: ServerProcess, judge0: Judge0Double, people: Any, screenshot: Any
) -> None:
    room = create_room(runner_server, "pair", "python", "Two files")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    bob = open_room(
        people.page("Bob", "#1f7a3a"), personal_link(runner_server, room, "editor", "Bob")
    )
    run_button = ada.locator(".run-button")
    toggle = ada.get_by_role("button", name="Choose what to run")

    # One file: Run as before workspaces, no menu.
    type_at_end(ada, MAIN)
    wait_until(lambda: snapshot(runner_server, room) == MAIN, what="main.py on the server")
    expect(run_button).to_have_text("Run")
    expect(toggle).to_be_hidden()

    create_file(ada, "util.py")
    type_at_end(ada, UTIL)
    wait_until(
        lambda: server_file(runner_server, room, "util.py") == UTIL, what="util.py on the server"
    )
    # Two files: the button says it runs the entry file; Run runs it, importing util.
    expect(run_button).to_have_text("Run main.py")
    expect(toggle).to_be_visible()
    with ada.expect_request(is_run_request) as sent:
        run_button.click()
    assert sent.value.post_data_json == {"stdin": ""}  # the entry file: the server's meta.entry
    for page in (ada, bob):
        expect(page.locator(".run-status")).to_have_text("Finished")
        expect(page.locator(".run-stream.stdout .run-output")).to_have_text("mean 2.0\n")
        expect(page.locator(".run-ran")).to_have_text("main.py · 2 files")

    # The menu lists the files (the entry first and checked) and, as util.py is the tab
    # shown, "Run current file".
    toggle.click()
    menu = ada.get_by_role("menu", name="Run which file")
    expect(menu).to_be_visible()
    items = menu.get_by_role("menuitemradio")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("main.py")
    expect(items.nth(0)).to_have_attribute("aria-checked", "true")
    expect(items.nth(1)).to_have_text("util.py")
    expect(items.nth(1)).to_have_attribute("aria-checked", "false")
    expect(menu.get_by_role("menuitem")).to_have_text("Run current file (util.py)")
    expect(items.nth(0)).to_be_focused()  # the keyboard starts on the chosen file
    shot(ada, "run-menu")
    ada.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(toggle).to_be_focused()

    # Choosing util.py runs it (entry util.py); the button now says so.
    toggle.click()
    with ada.expect_request(is_run_request) as sent:
        menu.get_by_role("menuitemradio", name="util.py").click()
    assert sent.value.post_data_json == {"stdin": "", "entry": "util.py"}
    answer = sent.value.response()
    assert answer is not None
    run_id = answer.json()["run_id"]
    expect(run_button).to_contain_text("Run util.py")
    for page in (ada, bob):
        expect(page.locator(".run-status")).to_have_text("Finished")
        expect(page.locator(".run-stream.stdout .run-output")).to_have_text("util self-test 5.0\n")
        expect(page.locator(".run-ran")).to_have_text("util.py · 2 files")
    record = run_record(runner_server, room, run_id)
    assert record["entry"] == "util.py"
    assert record["file_count"] == 2
    shot(ada, "run-util")

    # main.py calls util.mean([]): the error is in util.py, line 2, and marked there only.
    file_tab(ada, "main.py").click()
    type_at_end(ada, "print(util.mean([]))\n")
    wait_until(lambda: "mean([])" in snapshot(runner_server, room), what="the call on the server")
    toggle.click()
    with ada.expect_request(is_run_request) as sent:
        menu.get_by_role("menuitemradio", name="main.py").click()
    assert sent.value.post_data_json == {"stdin": ""}  # back to the entry file
    expect(run_button).to_have_text("Run main.py")
    expect(ada.locator(".run-status")).to_have_text("Runtime error")
    expect(ada.locator(".run-marks-note")).to_have_text("Marked line 2 in util.py.")
    expect(editor(ada)).to_contain_text("mean([])")
    expect(ada.locator(".cm-run-error-line")).to_have_count(0)  # main.py has no mark
    # Its tab shows it; switching back and forth keeps each file's marks to itself.
    file_tab(ada, "util.py").click()
    marked = ada.locator(".cm-run-error-line")
    expect(marked).to_have_count(1)
    expect(marked).to_have_text("    return sum(xs) / len(xs)")
    expect(marked).to_have_attribute("title", "ZeroDivisionError: division by zero")
    expect(ada.locator(".cm-run-error-marker")).to_have_count(1)
    shot(ada, "run-marks")
    file_tab(ada, "main.py").click()
    expect(editor(ada)).to_contain_text("mean([])")
    expect(ada.locator(".cm-run-error-line")).to_have_count(0)
    # The file's name in the note opens it.
    ada.locator(".run-marks-file", has_text="util.py").click()
    expect(file_tab(ada, "util.py")).to_have_attribute("aria-selected", "true")
    expect(marked).to_have_count(1)
    # Bob sees the same: nothing in main.py, the line in util.py.
    expect(bob.locator(".run-status")).to_have_text("Runtime error")
    expect(bob.locator(".cm-run-error-line")).to_have_count(0)
    open_file(bob, "util.py")
    expect(bob.locator(".cm-run-error-line")).to_have_text("    return sum(xs) / len(xs)")
    screenshot(bob)

    # Fixing the line removes its mark, and it stays gone after a tab switch.
    editor(bob).locator(".cm-line", has_text="return sum(xs)").click()
    bob.keyboard.press("End")
    bob.keyboard.type(" if xs else 0.0")
    expect(marked).to_have_count(0)
    file_tab(ada, "main.py").click()
    expect(editor(ada)).to_contain_text("mean([])")
    file_tab(ada, "util.py").click()
    expect(editor(ada)).to_contain_text("if xs else 0.0")
    expect(marked).to_have_count(0)


def test_ask_ai_from_a_file_sends_its_path(
    ai_server: ServerProcess, double: AnthropicDouble, people: Any
) -> None:
    room = create_room(ai_server, "pair", "python", "Ask about b")
    ada = open_room(people.page("Ada", "#2f5bd3"), room["links"]["owner"])
    type_at_end(ada, "import b\nprint(b.two())\n")
    create_file(ada, "b.py")
    type_at_end(ada, "def two():\n    return 3\n")
    wait_until(
        lambda: "return 3" in server_file(ai_server, room, "b.py"), what="b.py on the server"
    )
    # Select line 2 of b.py and ask about it.
    ada.locator(".cm-line", has_text="return 3").click()
    ada.keyboard.press("End")
    ada.keyboard.press("Shift+Home")
    show_tab(ada, "Chat")
    ada.get_by_role("textbox", name="Chat message").fill("Why does two() return 3?")
    with ada.expect_request(
        lambda r: r.method == "POST" and r.url.endswith(f"/api/rooms/{room['room']}/ai")
    ) as sent:
        ada.get_by_role("button", name="Ask AI").click()
    body: dict[str, Any] = sent.value.post_data_json or {}
    assert body["path"] == "b.py"
    assert body["prompt"] == "Why does two() return 3?"
    # The selection is in b.py's text: line 2 without its indentation ("return 3").
    b_text = "def two():\n    return 3\n"
    ends = sorted((body["selection"]["anchor"], body["selection"]["head"]))
    assert b_text[ends[0] : ends[1]].strip() == "return 3"

    wait_until(lambda: len(double.requests) > 0, what="the question reached the AI")
    volatile = double.requests[-1]["body"]["messages"][0]["content"][1]["text"]
    assert "Ada's current file: b.py" in volatile
    assert "Ada's selection in b.py" in volatile
    assert "return 3" in volatile
    expect(ada.locator(".chat-message.ai").last.locator(".chat-text")).not_to_be_empty()
    shot(ada, "run-ask-ai")


def run_controls_violations(page: Any) -> list[str]:
    """axe's serious and critical violations in the Run button and its open menu."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "() => axe.run({include: [['.run-actions']]}, {resultTypes: ['violations']})"
    )
    return [
        f"{v['id']} ({v['impact']}): {[n['html'][:80] for n in v['nodes']][:5]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def put_file(server: ServerProcess, room: dict[str, Any], path: str, text: str) -> None:
    response = httpx.put(
        f"{server.http_url}/api/rooms/{room['room']}/files/{path}",
        content=text.encode(),
        headers={
            "Authorization": f"Bearer {room['owner_token']}",
            "Content-Type": "text/plain",
        },
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize(
    ("viewport", "theme"), [(WIDE, "dark"), (PHONE, "light")], ids=["desktop-dark", "phone"]
)
def test_the_open_run_menu_is_accessible_and_fits(
    runner_server: ServerProcess, browser: Any, viewport: dict[str, int], theme: str
) -> None:
    """axe finds no serious violation with the menu open; on a phone it stays on screen."""
    room = create_room(runner_server, "pair", "python", "Menu")
    put_file(runner_server, room, "main.py", MAIN)
    put_file(runner_server, room, "util.py", UTIL)
    put_file(runner_server, room, "lib/deep/folder/with_a_long_name.py", "print('deep')\n")
    context = browser.new_context(viewport=viewport, bypass_csp=True)  # axe is a script
    try:
        context.add_init_script(
            "localStorage.setItem('codementor.identity', JSON.stringify({name: 'Ada', "
            "color: '#2f5bd3'}));"
            f"localStorage.setItem('codementor.editor-settings', '{{\"theme\": \"{theme}\"}}')"
        )
        context.set_default_timeout(10_000)
        page = open_room(context.new_page(), room["links"]["owner"])
        if viewport == PHONE:  # the tree folds behind a "Files" button
            page.locator(".files-toggle").click()
        open_file(page, "util.py")
        page.get_by_role("button", name="Choose what to run").click()
        menu = page.get_by_role("menu", name="Run which file")
        expect(menu.get_by_role("menuitemradio")).to_have_count(3)
        expect(menu.get_by_role("menuitem")).to_have_text("Run current file (util.py)")
        box = menu.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        shot(page, f"run-menu-{theme}-{viewport['width']}")
        # Only the run controls: the file tabs are another module's (see the report).
        assert run_controls_violations(page) == []
        # The keyboard: Down moves to the next file, Enter runs it.
        page.keyboard.press("ArrowDown")
        expect(menu.get_by_role("menuitemradio").nth(1)).to_be_focused()
        with page.expect_request(is_run_request) as sent:
            page.keyboard.press("Enter")
        assert sent.value.post_data_json == {
            "stdin": "",
            "entry": "lib/deep/folder/with_a_long_name.py",
        }
        expect(page.locator(".run-stream.stdout .run-output")).to_have_text("deep\n")
    finally:
        context.close()


C_MAIN = (
    "#include <stdio.h>\n"
    "int twice(int x);\n"
    "int main(void) {\n"
    '    printf("%d\\n", twice(21));\n'
    "    return 0;\n"
    "}\n"
)
C_UTIL = "int twice(int x) {\n    return 2 * y;\n}\n"
JAVA_MAIN = (
    "public class Main {\n"
    "    public static void main(String[] args) {\n"
    "        System.out.println(Util.tenth(4));\n"
    "        System.out.println(Util.tenth(0));\n"
    "    }\n"
    "}\n"
)
JAVA_UTIL = "public class Util {\n    static int tenth(int x) {\n        return 10 / x;\n    }\n}\n"


@pytest.mark.parametrize(
    ("language", "files", "other", "line", "status", "message"),
    [
        (
            "c",
            {"main.c": C_MAIN, "util.c": C_UTIL},
            "util.c",
            "    return 2 * y;",
            "Compile error",
            "undeclared (first use in this function)",
        ),
        (
            "java",
            {"Main.java": JAVA_MAIN, "Util.java": JAVA_UTIL},
            "Util.java",
            "        return 10 / x;",
            "Runtime error",
            "java.lang.ArithmeticException: / by zero",
        ),
    ],
    ids=["c-compile-error", "java-exception"],
)
def test_compiled_languages_mark_the_file_the_error_names(
    runner_server: ServerProcess,
    people: Any,
    language: str,
    files: dict[str, str],
    other: str,
    line: str,
    status: str,
    message: str,
) -> None:
    """gcc's `util.c:2:16: error` and Java's `at Util.tenth(Util.java:3)` frame mark
    util.c / Util.java, never the entry file."""
    room = create_room(runner_server, "pair", language, f"Two {language} files")
    for path, text in files.items():
        put_file(runner_server, room, path, text)
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    entry = next(iter(files))
    expect(file_tab(ada, entry)).to_have_attribute("aria-selected", "true")
    expect(ada.locator(".run-button")).to_have_text(f"Run {entry}")
    ada.locator(".run-button").click()
    expect(ada.locator(".run-status")).to_have_text(status, timeout=30_000)
    expect(ada.locator(".run-marks-note")).to_have_text(
        f"Marked line {line_no(files[other], line)} in {other}."
    )
    expect(ada.locator(".cm-run-error-line")).to_have_count(0)
    open_file(ada, other)
    marked = ada.locator(".cm-run-error-line")
    expect(marked).to_have_text(line)
    expect(marked).to_have_attribute("title", re.compile(re.escape(message)))
    shot(ada, f"run-marks-{language}")


def line_no(text: str, line: str) -> int:
    return text.split("\n").index(line) + 1
