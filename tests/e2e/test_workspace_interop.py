"""A stock yjs client (yjs + y-websocket in Node, tests/js/yjs_client.mjs, bound to
``doc.getText('code')`` and knowing nothing of files) and a browser on the workspace
client edit the same room: the entry file *is* ``code``, so they share main.py, and the
files the browser makes are none of the stock client's business.

Needs Node on PATH and ``npm ci --prefix tests/js``.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import create_room
from tests.e2e.helpers import (
    create_file,
    editor,
    editor_text,
    file_dot,
    file_tab,
    issue_shot,
    open_room,
    person_row,
    show_tab,
    type_at_end,
)
from tests.serverproc import ServerProcess
from tests.support import wait_until

JS_DIR = Path(__file__).resolve().parents[1] / "js"
TIMEOUT = 10.0


class StockClient:
    """``node yjs_client.mjs`` driven from a synchronous test: commands on stdin, JSON
    events read by a thread (the browser tests' Playwright owns this thread's loop)."""

    def __init__(
        self, ws_base: str, room: str, token: str, script: str = "yjs_client.mjs", *args: str
    ) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not on PATH: install Node 20 to run the yjs interop tests")
        if not (JS_DIR / "node_modules").is_dir():
            pytest.fail("tests/js/node_modules is missing: run `npm ci --prefix tests/js`")
        self.proc = subprocess.Popen(
            [node, str(JS_DIR / script), ws_base, room, token, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.errors: list[str] = []
        self.closes: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.synced = threading.Event()
        self._threads = [
            threading.Thread(target=self._read_events, daemon=True),
            threading.Thread(target=self._drain, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            kind = event["event"]
            if kind == "synced":
                self.synced.set()
            elif kind == "error":
                self.errors.append(event["message"])
            elif kind == "connection-close":
                self.closes.append(event)
            elif kind == "state":
                self.events.put(event)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def diagnostics(self) -> str:
        return f"errors={self.errors} server_closes={self.closes} stderr={self.stderr}"

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def wait_synced(self) -> None:
        assert self.synced.wait(TIMEOUT), f"the stock client never synced: {self.diagnostics()}"

    def text(self) -> str:
        """The stock client's ``code`` now."""
        self.send(op="state")
        try:
            state = self.events.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no state from node: {self.diagnostics()}") from None
        text: str = state["text"]
        return text

    def wait_text(self, wanted: str) -> str:
        """Polls until ``code`` holds ``wanted``; returns the whole text."""
        deadline = time.monotonic() + TIMEOUT
        text = self.text()
        while wanted not in text:
            assert time.monotonic() < deadline, f"{wanted!r} not in {text!r}: {self.diagnostics()}"
            time.sleep(0.1)
            text = self.text()
        return text

    def close(self) -> None:
        """``provider.destroy()`` and exit; kills the process if it does not."""
        if self.proc.poll() is None:
            try:
                self.send(op="close")
                self.proc.wait(TIMEOUT)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(TIMEOUT)
        for thread in self._threads:
            thread.join(TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def token_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["token"][0]


def file_text(server: ServerProcess, created: dict[str, Any], path: str) -> str:
    response = httpx.get(
        f"{server.http_url}/api/rooms/{created['room']}/files/{path}",
        headers={"Authorization": f"Bearer {created['owner_token']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.text


def test_stock_client_on_code_and_browser_on_files_edit_one_room(
    e2e_server: ServerProcess, people: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Interop")
    stock = StockClient(e2e_server.ws_base, room["room"], token_of(room["links"]["editor"]))
    try:
        stock.wait_synced()
        stock.send(op="insert", index=0, text="# from the stock client «js» 😀\n")
        ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
        # The stock client's text is the browser's main.py (the entry file).
        expect(file_tab(ada, "main.py")).to_have_attribute("aria-selected", "true")
        expect(editor(ada)).to_contain_text("# from the stock client «js» 😀")

        # The browser makes util.py and types in it: nothing reaches `code`.
        create_file(ada, "util.py")
        type_at_end(ada, "def helper():\n    return 'ü'")
        # ...then types in main.py: the stock client sees it in `code`.
        file_tab(ada, "main.py").click()
        type_at_end(ada, "from util import helper\nprint(helper())")
        text = stock.wait_text("print(helper())")
        assert "def helper" not in text

        # The stock client types at the end and in the middle: both land in main.py.
        stock.send(op="insert", index="end", text="\n# the end, from js")
        stock.send(op="insert", after="«js» 😀\n", text="import sys  # js ñ\n")
        expect(editor(ada)).to_contain_text("# the end, from js")
        expect(editor(ada)).to_contain_text("import sys  # js ñ")
        final = stock.wait_text("import sys  # js ñ")
        assert final == (
            "# from the stock client «js» 😀\n"
            "import sys  # js ñ\n"
            "from util import helper\nprint(helper())\n"
            "# the end, from js"
        )
        assert editor_text(ada) == final
        issue_shot(ada, "interop-main-py")

        # util.py is as the browser left it, and the server agrees with both.
        file_tab(ada, "util.py").click()
        expect(editor(ada)).to_contain_text("return 'ü'")
        assert editor_text(ada) == "def helper():\n    return 'ü'"
        assert file_text(e2e_server, room, "util.py") == "def helper():\n    return 'ü'"
        assert file_text(e2e_server, room, "main.py") == final
        issue_shot(ada, "interop-util-py")
        # The stock client types while the browser shows util.py: util.py is untouched,
        # and main.py has it when the browser goes back.
        stock.send(op="insert", index="end", text="\n# while you were in util.py")
        stock.wait_text("# while you were in util.py")
        wait_until(
            lambda: "# while you were in util.py" in file_text(e2e_server, room, "main.py"),
            what="the stock client's edit on the server",
        )
        assert editor_text(ada) == "def helper():\n    return 'ü'"
        assert file_text(e2e_server, room, "util.py") == "def helper():\n    return 'ü'"
        file_tab(ada, "main.py").click()
        expect(editor(ada)).to_contain_text("# while you were in util.py")
        assert not stock.errors and not stock.closes, stock.diagnostics()
        expect(ada.locator(".notice.error")).to_have_count(0)
    finally:
        stock.close()
    assert stock.proc.returncode == 0, stock.diagnostics()


def test_a_client_from_before_workspaces_is_in_the_entry_file(
    e2e_server: ServerProcess, people: Any
) -> None:
    """A client that predates workspaces announces a caret in ``code`` but no ``file``:
    the browser counts it in the entry file (People tab, tree) and Follow goes there."""
    room = create_room(e2e_server, "pair", "python", "Old client")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    type_at_end(ada, "x = 1\ny = 2")
    create_file(ada, "util.py")
    type_at_end(ada, "# util")
    old = StockClient(
        e2e_server.ws_base,
        room["room"],
        token_of(room["links"]["editor"]),
        "caret_client.mjs",
        "Olga",
        "#1f7a3a",
    )
    try:
        old.wait_synced()
        old.send(op="caret", after="x = 1")
        show_tab(ada, "People")
        olga = person_row(ada, "Olga")
        expect(olga.locator(".people-file")).to_have_text("main.py")
        expect(olga.locator(".badge")).to_have_count(0)  # it says no role: no empty badge
        expect(file_dot(ada, "main.py", "Olga")).to_be_visible()
        issue_shot(ada, "interop-old-client-presence")
        # Ada, in util.py, follows Olga: her editor goes to main.py, Olga's caret there.
        olga.get_by_role("button", name="Follow Olga").click()
        expect(file_tab(ada, "main.py")).to_have_attribute("aria-selected", "true")
        expect(ada.locator(".cm-ySelectionInfo", has_text="Olga")).to_be_visible()
        assert not old.errors and not old.closes, old.diagnostics()
    finally:
        old.close()
    assert old.proc.returncode == 0, old.diagnostics()
