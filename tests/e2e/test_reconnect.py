"""The server restarts: the client keeps edits made while it was down."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import SECRET, create_room, snapshot
from tests.e2e.helpers import open_room, type_at_end
from tests.serverproc import ServerProcess
from tests.support import wait_until


def test_edits_made_while_the_server_is_down_survive_a_restart(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Restart")
    # While the server is down, the browser reports each reconnect attempt that fails.
    people.allow_console(r"WebSocket connection to .* failed")
    page = open_room(people.page("Remy"), room["links"]["owner"])
    type_at_end(page, "before = 1\n")
    wait_until(lambda: snapshot(e2e_server, room) == "before = 1\n", what="first edit")
    expect(page.locator(".save")).to_have_attribute("data-state", "saved")

    e2e_server.stop()
    conn = page.locator(".conn")
    expect(conn).to_have_attribute("data-state", "reconnecting")
    type_at_end(page, "while_down = 2\n")
    expect(page.locator(".save")).to_have_attribute("data-state", "unsaved")
    screenshot(page, "offline")

    # The same port and data dir: the page's own reconnect finds the new process.
    again = ServerProcess(e2e_server.data_dir, {"CODEMENTOR_SECRET": SECRET})
    again.port = e2e_server.port
    again.log_path = e2e_server.data_dir / f"server-{again.port}-restarted.log"
    try:
        again.start()
        expect(conn).to_have_attribute("data-state", "connected", timeout=15_000)
        wait_until(
            lambda: snapshot(again, room) == "before = 1\nwhile_down = 2\n",
            what="the offline edit on the restarted server",
        )
        expect(page.locator(".save")).to_have_attribute("data-state", "saved")
        screenshot(page)
    finally:
        again.stop()
