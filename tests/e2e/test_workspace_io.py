"""Workspace in and out of the browser: upload by drop, folder picker and .zip; refusals
in plain words; download of the workspace as the server's own zip bytes; search across
files opening a match. Screenshots of the drop overlay and the search panel go to
test-output/issue19/."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import create_room, personal_link
from tests.e2e.helpers import open_room
from tests.serverproc import ROOT, ServerProcess
from tests.support import wait_until

SHOTS = ROOT / "test-output" / "issue19"

# Files made in the page and dragged onto the editor, as the browser fires it: `steps`
# is which events, in order (a drop is dragenter, dragover, drop).
DROP_JS = """async ({ files, steps }) => {
    const data = new DataTransfer()
    for (const [name, text] of files) data.items.add(new File([text], name, { type: 'text/plain' }))
    const target = document.querySelector('#main .editor-host')
    for (const type of steps) {
        const init = { bubbles: true, cancelable: true, dataTransfer: data }
        target.dispatchEvent(new DragEvent(type, init))
    }
}"""


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def auth(room: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {room['owner_token']}"}


def files(server: ServerProcess, room: dict[str, Any]) -> dict[str, int]:
    """Path -> UTF-8 bytes, from GET /files."""
    response = httpx.get(
        f"{server.http_url}/api/rooms/{room['room']}/files", headers=auth(room), timeout=10
    )
    assert response.status_code == 200, response.text
    return {f["path"]: f["bytes"] for f in response.json()}


def file_text(server: ServerProcess, room: dict[str, Any], path: str) -> str:
    response = httpx.get(
        f"{server.http_url}/api/rooms/{room['room']}/files/{path}", headers=auth(room), timeout=10
    )
    assert response.status_code == 200, response.text
    return response.text


def put_file(server: ServerProcess, room: dict[str, Any], path: str, text: str) -> None:
    response = httpx.put(
        f"{server.http_url}/api/rooms/{room['room']}/files/{path}",
        content=text.encode(),
        headers=auth(room),
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text


def drop(page: Page, entries: list[tuple[str, str]], only_enter: bool = False) -> None:
    steps = ["dragenter", "dragover"] if only_enter else ["dragenter", "dragover", "drop"]
    page.evaluate(DROP_JS, {"files": [list(e) for e in entries], "steps": steps})


def notice(page: Page, text: str) -> None:
    expect(page.locator(".notices .notice").filter(has_text=text)).to_be_visible()


def test_dropping_two_files_adds_them_and_replaces_by_path(
    e2e_server: ServerProcess, people: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Drop")
    ada = open_room(people.page("Ada"), room["links"]["owner"])

    drop(ada, [("helpers.py", "def helper():\n    return 1\n")], only_enter=True)
    overlay = ada.locator(".drop-overlay")
    expect(overlay).to_be_visible()
    expect(overlay).to_contain_text("Drop to upload into the workspace")
    expect(overlay).to_contain_text("a .zip is unpacked")
    shot(ada, "drop-overlay")
    ada.evaluate(DROP_JS, {"files": [["helpers.py", ""]], "steps": ["dragleave"]})
    expect(overlay).to_be_hidden()

    drop(ada, [("helpers.py", "def helper():\n    return 1\n"), ("notes.md", "# Notes\n")])
    notice(ada, "Added 2 files.")
    expect(overlay).to_be_hidden()
    wait_until(
        lambda: set(files(e2e_server, room)) == {"main.py", "helpers.py", "notes.md"},
        what="the dropped files on the server",
    )
    assert file_text(e2e_server, room, "notes.md") == "# Notes\n"

    # The same path again replaces; the entry file's path writes the entry file (`code`).
    drop(ada, [("notes.md", "# Notes, v2\n"), ("main.py", "import helpers\n")])
    notice(ada, "Replaced 2 files.")
    wait_until(lambda: file_text(e2e_server, room, "notes.md") == "# Notes, v2\n", what="v2")
    wait_until(lambda: file_text(e2e_server, room, "main.py") == "import helpers\n", what="main")
    expect(ada.locator(".cm-content")).to_contain_text("import helpers")


def test_a_folder_from_the_picker_keeps_its_paths_and_skips_binaries(
    e2e_server: ServerProcess, people: Any, tmp_path: Path
) -> None:
    room = create_room(e2e_server, "pair", "python", "Folder")
    ada = open_room(people.page("Ada"), room["links"]["owner"])
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / ".git").mkdir()
    (project / "main.py").write_text("from pkg import util\n")
    (project / "pkg" / "util.py").write_text("X = 1\n")
    (project / "pkg" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")

    ada.get_by_role("button", name="Upload").click()
    with ada.expect_file_chooser() as chooser:
        ada.get_by_role("menuitem", name="A folder…").click()
    chooser.value.set_files(str(project))
    # The picked folder's own name is dropped: its files are the workspace's.
    notice(ada, "Added 1 file, replaced 1.")
    notice(ada, "Skipped a binary file (only text files can be edited): “pkg/logo.png”.")
    wait_until(
        lambda: files(e2e_server, room) == {"main.py": 21, "pkg/util.py": 6},
        what="the folder's text files, without .git and the binary",
    )


def test_a_zip_is_unpacked_by_the_server(
    e2e_server: ServerProcess, people: Any, tmp_path: Path
) -> None:
    room = create_room(e2e_server, "pair", "python", "Zip")
    ada = open_room(people.page("Ada"), room["links"]["owner"])
    archive = tmp_path / "lesson.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("main.py", "print('from the zip')\n")
        z.writestr("lib/shapes.py", "class Square: ...\n")
        z.writestr("README.txt", "Read me\n")

    ada.get_by_role("button", name="Upload").click()
    with ada.expect_file_chooser() as chooser:
        ada.get_by_role("menuitem", name="Files or a .zip…").click()
    chooser.value.set_files(str(archive))
    notice(ada, "lesson.zip: Added 2 files, replaced 1.")
    listed = files(e2e_server, room)
    assert set(listed) == {"main.py", "lib/shapes.py", "README.txt"}
    assert file_text(e2e_server, room, "lib/shapes.py") == "class Square: ...\n"
    expect(ada.locator(".cm-content")).to_contain_text("print('from the zip')")


def test_refused_uploads_say_which_file_and_rule(
    e2e_server: ServerProcess, people: Any, tmp_path: Path
) -> None:
    room = create_room(e2e_server, "pair", "python", "Refusals")
    ada = open_room(people.page("Ada"), room["links"]["owner"])
    people.allow_console("Failed to load resource: the server responded with a status of 400")

    # Too big: refused before anything is written, with its name and the limit.
    big = "x" * (1024 * 1024 + 1)
    drop(ada, [("small.py", "ok = 1\n"), ("big.txt", big)])
    notice(ada, "Nothing was uploaded: “big.txt” is 1,048,577 bytes; a file may be at most 1 MiB.")
    # A path the workspace cannot hold.
    drop(ada, [("a\\b.py", "x = 1\n")])
    notice(ada, "“a\\b.py” cannot be a file's path: use / to separate folders")
    # Not a zip, though named one: the server says so.
    drop(ada, [("broken.zip", "this is no zip")])
    notice(ada, "“broken.zip” was not uploaded: it is not a zip file.")
    assert set(files(e2e_server, room)) == {"main.py"}

    # A viewer has no Upload button, and a drop says why nothing happens.
    viewer = open_room(people.page("Vic"), personal_link(e2e_server, room, "viewer", "Vic"))
    expect(viewer.get_by_role("button", name="Download")).to_be_visible()
    expect(viewer.get_by_role("button", name="Upload")).to_be_hidden()
    drop(viewer, [("sneaky.py", "x = 1\n")], only_enter=True)
    expect(viewer.locator(".drop-overlay")).to_contain_text("Only owners and editors can upload")
    drop(viewer, [("sneaky.py", "x = 1\n")])
    notice(viewer, "Only owners and editors can upload files.")
    assert set(files(e2e_server, room)) == {"main.py"}


def test_download_is_the_servers_zip_of_the_workspace(
    e2e_server: ServerProcess, people: Any, tmp_path: Path
) -> None:
    room = create_room(e2e_server, "pair", "python", "Shapes (v2)")
    put_file(e2e_server, room, "main.py", "from lib.shapes import Square\n")
    put_file(e2e_server, room, "lib/shapes.py", "class Square:\n    side = 1\n")
    put_file(e2e_server, room, "notes/ünïcode.md", "naïve\n")
    ada = open_room(people.page("Ada"), room["links"]["owner"])
    expect(ada.locator(".cm-content")).to_contain_text("from lib.shapes import Square")

    ada.get_by_role("button", name="Download").click()
    expect(ada.get_by_role("menuitem", name="This file (main.py)")).to_be_visible()
    with ada.expect_download() as info:
        ada.get_by_role("menuitem", name="Workspace as .zip").click()
    download = info.value
    assert download.suggested_filename == "shapes-v2.zip"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    served = httpx.get(
        f"{e2e_server.http_url}/api/rooms/{room['room']}/archive", headers=auth(room), timeout=10
    )
    assert served.status_code == 200
    assert saved.read_bytes() == served.content
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as z:
        unpacked = {name: z.read(name).decode() for name in z.namelist()}
    assert unpacked == {
        "main.py": "from lib.shapes import Square\n",
        "lib/shapes.py": "class Square:\n    side = 1\n",
        "notes/ünïcode.md": "naïve\n",
    }

    # The open file alone, by its own name.
    ada.get_by_role("button", name="Download").click()
    with ada.expect_download() as info:
        ada.get_by_role("menuitem", name="This file (main.py)").click()
    assert info.value.suggested_filename == "main.py"


def test_search_finds_matches_in_two_files_and_opens_one(
    e2e_server: ServerProcess, people: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Search")
    put_file(
        e2e_server,
        room,
        "main.py",
        "import util\n\n\ndef main():\n    Total = util.total([1, 2])\n    print(Total)\n",
    )
    put_file(e2e_server, room, "util.py", "def total(xs):\n    return sum(xs)  # the total\n")
    put_file(e2e_server, room, "other.py", "nothing here\n")
    ada = open_room(people.page("Ada"), room["links"]["owner"])
    expect(ada.locator(".cm-content")).to_contain_text("import util")

    ada.locator(".cm-content").click()
    ada.keyboard.press("Control+Shift+F")
    panel = ada.get_by_role("search")
    query = panel.get_by_role("searchbox", name="Search across files")
    expect(query).to_be_focused()
    query.fill("total")
    expect(panel.get_by_role("status")).to_have_text("5 matches in 2 files.")
    groups = panel.locator(".ws-file")
    expect(groups).to_have_count(2)
    expect(groups.nth(0).locator(".ws-path")).to_have_text("main.py")
    expect(groups.nth(1).locator(".ws-path")).to_have_text("util.py")
    expect(groups.nth(0).locator(".ws-hit")).to_have_count(2)
    expect(groups.nth(0).locator(".ws-hit").first).to_contain_text("5")
    expect(groups.nth(0).locator("mark").first).to_have_text("Total")
    shot(ada, "search-panel")

    panel.get_by_label("Match case").check()
    expect(panel.get_by_role("status")).to_have_text("3 matches in 2 files.")
    expect(groups.nth(0).locator("mark")).to_have_text(["total"])

    # Opening a match puts the cursor on its line.
    groups.nth(0).locator(".ws-hit").first.click()
    expect(ada.locator(".cm-activeLine")).to_have_text("    Total = util.total([1, 2])")
    expect(ada.locator(".cm-content")).to_be_focused()

    # Escape closes the panel; live results follow the document.
    ada.keyboard.press("Control+Shift+F")
    expect(query).to_be_focused()
    put_file(e2e_server, room, "other.py", "total = 0\n")
    expect(panel.get_by_role("status")).to_have_text("4 matches in 3 files.")
    query.press("Escape")
    expect(panel).to_be_hidden()
