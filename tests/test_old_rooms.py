"""A room stored by the release before workspaces opens unchanged on this server: its
``code`` is the entry file (``main.py`` for a Python room), text and comment intact, and
files can be added to it (``tests/fixtures/before-workspaces/README.md``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from crdt import schema
from rooms.roles import Role
from tests.serverproc import ServerProcess
from tests.support import SECRET, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

FIXTURE = Path(__file__).parent / "fixtures" / "before-workspaces" / "codementor.sqlite3"
ROOM = "z5f9bl7FyQEX"
CODE = (
    "def grüße(name: str) -> str:\n"
    '    """Say hello — in German: «Grüß dich»."""\n'
    '    return f"Grüß dich, {name}! 👋"\n'
    "\n"
    'print(grüße("Zoë"))\n'
)


async def test_a_room_from_the_previous_release_opens_intact(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(FIXTURE, data / "codementor.sqlite3")
    headers = {"Authorization": f"Bearer {sign(ROOM, Role.EDITOR)}"}
    with ServerProcess(data, {"CODEMENTOR_SECRET": SECRET}) as server:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            snapshot = await http.get(f"/api/rooms/{ROOM}/snapshot", headers=headers)
            assert snapshot.status_code == 200, snapshot.text
            assert snapshot.text == CODE
            listed = await http.get(f"/api/rooms/{ROOM}/files", headers=headers)
            assert listed.json() == [
                {"path": "main.py", "bytes": len(CODE.encode()), "language": "python"}
            ]
            entry = await http.get(f"/api/rooms/{ROOM}/files/main.py", headers=headers)
            assert entry.text == CODE
            added = await http.put(
                f"/api/rooms/{ROOM}/files/util.py", content="X = 'ä'\n", headers=headers
            )
            assert added.status_code == 201, added.text
        client = YClient(server.ws_url(ROOM))
        await client.connect(f"token={sign(ROOM, Role.EDITOR)}")
        try:
            await client.wait_synced()
            assert schema.code_text(client.doc) == CODE
            comment = schema.comments(client.doc)["c1"]
            assert comment["text"] == "Schön! Use a docstring?"
            assert str(schema.files(client.doc)["util.py"]) == "X = 'ä'\n"
            assert schema.entry_path(client.doc) == "main.py"
        finally:
            await client.close()
