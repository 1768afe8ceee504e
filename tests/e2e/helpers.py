"""Small page helpers shared by the browser tests."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.serverproc import ServerProcess
from tests.yclient import YClient

# The text of the rendered lines, without the widgets (remote carets, the empty-editor
# hint) drawn inside them.
DOC_TEXT_JS = """() => Array.from(document.querySelectorAll('.cm-content .cm-line'), (line) => {
    const copy = line.cloneNode(true)
    const widgets = '.cm-ySelectionCaret, .cm-widgetBuffer, .cm-placeholder'
    for (const w of copy.querySelectorAll(widgets)) w.remove()
    return copy.textContent
}).join('\\n')"""


def open_room(page: Page, url: str) -> Page:
    page.goto(url)
    expect(page.locator(".conn")).to_have_attribute("data-state", "connected")
    expect(page.locator(".cm-content")).to_be_visible()
    return page


def editor(page: Page) -> Any:
    return page.locator(".cm-content")


def editor_text(page: Page) -> str:
    """The rendered editor text (short documents: CodeMirror renders what is visible)."""
    text: str = page.evaluate(DOC_TEXT_JS)
    return text


def type_at_end(page: Page, text: str) -> None:
    editor(page).click()
    page.keyboard.press("Control+End")
    page.keyboard.insert_text(text)


def show_tab(page: Page, name: str) -> None:
    """Show one of the room page's side tabs (Output, People, Comments, Chat)."""
    tab = page.get_by_role("tab", name=name)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


# -- workspaces (several files) ---------------------------------------------------------


def file_item(page: Page, path: str) -> Any:
    """A file's row in the file tree."""
    return page.locator(f'.file-tree [role="treeitem"][data-path="{path}"]')


def file_tab(page: Page, path: str) -> Any:
    """A file's tab above the editor."""
    return page.locator(f'.file-tabs [role="tab"][data-path="{path}"]')


def create_file(page: Page, path: str) -> None:
    """New file through the tree's form; the new file opens in the editor."""
    page.locator(".file-actions").get_by_role("button", name="New file").click()
    page.get_by_label("New file path").fill(path)
    page.locator(".file-form").get_by_role("button", name="Create").click()
    expect(file_tab(page, path)).to_have_attribute("aria-selected", "true")


def open_file(page: Page, path: str) -> None:
    """Open a file from the tree; its tab becomes the active one."""
    file_item(page, path).click()
    expect(file_tab(page, path)).to_have_attribute("aria-selected", "true")


def person_row(page: Page, name: str) -> Any:
    """A person's row in the People tab (show the tab first on narrow layouts)."""
    return page.locator(".people-list .person", has=page.locator(".person-name", has_text=name))


def file_dot(page: Page, path: str, name: str) -> Any:
    """The coloured dot on a file's tree row saying `name` has that file open."""
    return file_item(page, path).locator(f'.file-dots .dot[data-name="{name}"]')


def issue_shot(page: Page, name: str, issue: int = 19) -> Path:
    """A screenshot for an issue's record: test-output/issue<N>/<name>.png."""
    folder = Path(__file__).resolve().parents[2] / "test-output" / f"issue{issue}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def run_record(server: ServerProcess, room: dict[str, Any], run_id: str) -> dict[str, Any]:
    """A run's record as the REST API answers it, read with the room owner's token."""
    response = httpx.get(
        f"{server.http_url}/api/rooms/{room['room']}/runs/{run_id}",
        headers={"Authorization": f"Bearer {room['owner_token']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


# -- history (issue 20) -----------------------------------------------------------------

PLAYBACK_TEXT_JS = """() => Array.from(
    document.querySelectorAll('.playback-editor .cm-content .cm-line'), (line) => line.textContent
).join('\\n')"""


def open_history(page: Page) -> None:
    """Show the History tab and wait for its timeline."""
    show_tab(page, "History")
    expect(page.locator(".history-scrubber")).to_be_visible()


def playback_text(page: Page) -> str:
    """The text of the read-only playback view (the file shown at the chosen moment)."""
    text: str = page.evaluate(PLAYBACK_TEXT_JS)
    return text


def scrub_to(page: Page, ts: float) -> None:
    """Move the History scrubber to unix time ``ts`` (as dragging it there would)."""
    page.locator(".history-scrubber").evaluate(
        """(el, ts) => {
            el.value = String(Math.round((ts - Number(el.dataset.start)) * 1000))
            el.dispatchEvent(new Event('input', { bubbles: true }))
        }""",
        ts,
    )


async def thirteen_students(
    server: ServerProcess,
    room: str,
    token: str,
    stop: threading.Event,
    hands: int = 0,
    file: str | None = None,
) -> None:
    """Thirteen students' connections (one shared viewer token, names Student 01-13) until
    ``stop``; the first ``hands`` raise a (presence) hand, and each has ``file`` open."""
    clients = []
    for i in range(13):
        client = await YClient(server.ws_url(room)).connect(f"token={token}")
        await client.wait_synced()
        user = {
            "name": f"Student {i + 1:02d}",
            "color": "#1f7a3a",
            "colorLight": "#1f7a3a33",
            "role": "viewer",
            "uid": f"s{i}",
        }
        state: dict[str, Any] = {"user": user, "status": "active"}
        if hands:
            state["hand"] = i < hands
        if file is not None:
            state["file"] = file
        await client.set_awareness(state)
        clients.append(client)
    await asyncio.to_thread(stop.wait)
    for client in clients:
        await client.close()
