"""The app under a second ASGI server, hypercorn: nothing of the fast transport is there,
so the endpoint takes the plain ASGI path for every frame in and out (the outbox and its
sender task). What a room promises must hold there too: sync, roles, awareness, bad input
and unknown rooms closed with their codes, durability across a restart."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from rooms.roles import Role
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio


class HypercornProcess(ServerProcess):
    """The app from ``server.app:app_from_env`` (settings from ``CODEMENTOR_*``) served by
    hypercorn instead of ``codementor serve``."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{self.port}",
                "server.app:app_from_env()"]  # fmt: skip


def start(data_dir: Path) -> HypercornProcess:
    env = {"CODEMENTOR_DATA_DIR": str(data_dir), "CODEMENTOR_SECRET": SECRET}
    server = HypercornProcess(data_dir, env)
    server.start()
    return server


@pytest.fixture
def hypercorn(tmp_path: Path) -> Iterator[HypercornProcess]:
    server = start(tmp_path / "data")
    try:
        yield server
    finally:
        server.stop()


def create_room(server: ServerProcess) -> tuple[str, str]:
    """A pair room and its owner token."""
    answer = httpx.post(
        server.http_url + "/api/rooms",
        json={"mode": "pair", "language": "python", "title": "under hypercorn"},
        headers={"authorization": f"Bearer {token('*', Role.OWNER)}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return body["room"], body["owner_token"]


def token(room: str, role: Role) -> str:
    return sign(room, role, name=role.value)


async def test_two_editors_a_viewer_and_awareness(hypercorn: HypercornProcess) -> None:
    room, owner = create_room(hypercorn)
    url = hypercorn.ws_url(room)
    editor = token(room, Role.EDITOR)
    a, b, viewer = YClient(url), YClient(url), YClient(url)
    await a.connect(f"token={owner}")
    await b.connect(f"token={editor}")
    await viewer.connect(f"token={token(room, Role.VIEWER)}")
    try:
        for client in (a, b, viewer):
            await client.wait_synced()
        a.text += "print('hypercorn')\n"
        await eventually(lambda: str(b.text) == str(viewer.text) == "print('hypercorn')\n")
        b.text.insert(0, "# ")
        await eventually(lambda: str(a.text).startswith("# print"))

        viewer.text += "not allowed"
        await eventually(lambda: len(viewer.denials) == 1)
        assert "permission denied" in viewer.denials[0]
        a.text += "# after\n"
        await eventually(lambda: str(b.text).endswith("# after\n"))
        assert "not allowed" not in str(a.text) + str(b.text)

        await a.set_awareness({"user": {"name": "owner"}, "cursor": None})
        await eventually(lambda: a.doc.client_id in b.awareness)
        assert b.awareness[a.doc.client_id]["user"] == {"name": "owner"}
    finally:
        for client in (a, b, viewer):
            await client.close()
    assert hypercorn.metric('codementor_ws_connections_total{transport="direct"}') == 0
    assert hypercorn.metric('codementor_ws_connections_total{transport="asgi"}') >= 3


async def test_bad_frames_and_unknown_rooms_are_closed_with_their_codes(
    hypercorn: HypercornProcess,
) -> None:
    room, owner = create_room(hypercorn)
    unknown = YClient(hypercorn.ws_url("no-such-room"))
    await unknown.connect(f"token={token('no-such-room', Role.EDITOR)}")
    assert await unknown.wait_closed() == 4404

    async with websockets.connect(hypercorn.ws_url(room, f"token={owner}")) as ws:
        await ws.send(b"\x00\x07")  # a sync message of an unknown kind
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert hypercorn.alive()

    async with websockets.connect(hypercorn.ws_url(room, f"token={owner}")) as ws:
        await ws.send("text frames are refused")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


async def test_a_room_survives_a_restart(tmp_path: Path) -> None:
    """Written through the plain path, flushed on SIGTERM, loaded by the next process."""
    server = start(tmp_path / "data")
    try:
        room, owner = create_room(server)
        writer = YClient(server.ws_url(room))
        await writer.connect(f"token={owner}")
        await writer.wait_synced()
        writer.text += "kept"
        await writer.close()
    finally:
        assert server.stop() == 0
    server = start(tmp_path / "data")
    try:
        reader = YClient(server.ws_url(room))
        await reader.connect(f"token={owner}")
        await reader.wait_synced()
        assert str(reader.text) == "kept"
        await reader.close()
    finally:
        server.stop()
