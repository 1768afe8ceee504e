"""When a token stops opening its room, connections holding it stop too:

- at the token's ``exp`` the connection is closed with 4401 "token expired", by one
  process-wide schedule (``rooms.access.ExpirySchedule``), never a timer per connection;
- an owner's link rotation refuses every token issued before it (REST 401, websocket
  4401), closes the connections holding one, survives a restart and reaches the other
  instances of a multi-instance deployment;
- with ``CODEMENTOR_ADMIN_TOKEN`` set, a tokenless dev-mode join never creates a room.

Real servers, real websockets, real SQLite (and a real redis-server for the instances).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import jwt
import pytest
import websockets

import rooms.access
import rooms.registry
from rooms.access import CLOSE_TOKEN_REFUSED, EXPIRED, HORIZON, ExpirySchedule
from rooms.peer import Peer
from rooms.registry import RegistrySettings, RoomRegistry
from rooms.sqlite_store import SQLiteStore
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

Factory = Callable[..., ServerProcess]


def link_token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def ws(server: ServerProcess, room: str, token: str | None) -> str:
    return server.ws_url(room, "" if token is None else "token=" + quote(token, safe=""))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def get(server: ServerProcess, path: str, token: str | None) -> httpx.Response:
    """A sync call (the server is another process), made from async tests."""
    headers = bearer(token) if token else {}
    return httpx.get(server.http_url + path, headers=headers, timeout=10)


def post(server: ServerProcess, path: str, token: str | None, body: Any = None) -> httpx.Response:
    headers = bearer(token) if token else {}
    return httpx.post(server.http_url + path, headers=headers, json=body, timeout=10)


def create_room(server: ServerProcess, mode: str = "pair") -> dict[str, Any]:
    response = post(server, "/api/rooms", None, {"mode": mode})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def rotate(server: ServerProcess, room: str, owner: str) -> dict[str, Any]:
    response = post(server, f"/api/rooms/{room}/rotate", owner)
    assert response.status_code == 200, response.text
    rotated: dict[str, Any] = response.json()
    return rotated


def snapshot(server: ServerProcess, room: str, token: str) -> str:
    response = get(server, f"/api/rooms/{room}/snapshot", token)
    assert response.status_code == 200, response.text
    return response.text


async def refused(url: str) -> tuple[int | None, str | None]:
    """Connect and wait for the server to close: its code and reason."""
    async with websockets.connect(url) as connection:
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await connection.recv()
        return connection.close_code, connection.close_reason


@pytest.fixture
def secured(server_factory: Factory) -> ServerProcess:
    return server_factory(CODEMENTOR_SECRET=SECRET)


# -- expiry ---------------------------------------------------------------------------


async def test_a_connection_is_closed_when_its_token_expires(secured: ServerProcess) -> None:
    """A 3 s token edited after 6 s: now it is closed at its ``exp``."""
    created = create_room(secured)
    room, owner = created["room"], created["owner_token"]
    short = sign(room, "editor", ttl=3)
    expires = jwt.decode(short, SECRET, algorithms=["HS256"])["exp"]
    async with (
        YClient(ws(secured, room, short)) as editor,
        YClient(ws(secured, room, owner)) as keeper,
    ):
        await editor.wait_synced()
        await keeper.wait_synced()
        editor.text += "in time;"
        await eventually(lambda: snapshot(secured, room, owner) == "in time;")

        assert await editor.wait_closed(timeout=6) == CLOSE_TOKEN_REFUSED
        closed_at = time.time()
        assert editor.close_reason == EXPIRED
        assert expires <= closed_at < expires + 1.5, (expires, closed_at)

        # Nothing more of it arrives; the connection of the long-lived token stays open.
        editor.text += "too late;"
        keeper.text += "keeper;"
        await eventually(lambda: snapshot(secured, room, owner) == "in time;keeper;")
        assert not keeper.closed.is_set()
    # A reconnect with the expired token is refused, as at any other time.
    assert await refused(ws(secured, room, short)) == (CLOSE_TOKEN_REFUSED, EXPIRED)


async def test_the_expiry_schedule_closes_due_peers_only() -> None:
    """One heap and one timer for the peers about to expire; peers that left are
    forgotten; far expiries cost the heap nothing until a scan finds them close."""
    schedule = ExpirySchedule()
    now = time.time()
    soon, later, gone, tokenless = Peer(), Peer(), Peer(), Peer()
    schedule.add(later, now + 3 * HORIZON)
    schedule.add(soon, now + 0.2)
    schedule.add(gone, now + 0.1)
    schedule.add(tokenless, None)
    schedule.discard(gone)
    assert len(schedule) == 1  # only ``soon``: ``later`` is beyond the horizon
    await eventually(lambda: soon.closed, timeout=5)
    assert (soon.close_code, soon.close_reason) == (CLOSE_TOKEN_REFUSED, EXPIRED)
    assert not gone.closed and not later.closed and not tokenless.closed
    assert len(schedule) == 0

    # A scan (the registry's sweep, every HORIZON / 2) times a peer once it comes close.
    schedule.scan([later, tokenless])
    assert len(schedule) == 0
    later.expires = time.time() + 0.2  # as if the clock had moved on
    schedule.scan([later, tokenless])
    schedule.scan([later])  # scanned twice, timed once
    assert len(schedule) == 1
    await eventually(lambda: later.closed, timeout=5)
    assert later.close_reason == EXPIRED and not tokenless.closed

    # Peers that leave before their expiry leave nothing behind in the schedule.
    for _ in range(1000):
        peer = Peer()
        schedule.add(peer, time.time() + 3600)
        schedule.discard(peer)
    assert len(schedule) == 0 and schedule._heap == []
    schedule.close()


async def test_the_registry_times_a_long_token_when_its_expiry_comes_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep's scan is what moves a peer with a far expiry into the heap (here the
    horizon is shrunk to a second, the scan to a tenth: a real registry and store)."""
    monkeypatch.setattr(rooms.access, "HORIZON", 1.0)
    monkeypatch.setattr(rooms.registry, "SCAN_SECONDS", 0.1)
    registry = RoomRegistry(
        SQLiteStore(tmp_path / "rooms.db"),
        RegistrySettings(idle_unload_seconds=1.0, keepalive_seconds=1.0),
    )
    await registry.start()
    try:
        peer = Peer(issued_at=time.time())
        expires = time.time() + 2.0  # beyond the horizon when it joins
        await registry.join("r", peer, expires)
        assert len(registry.expiry) == 0
        await eventually(lambda: peer.closed, timeout=5)
        assert time.time() >= expires
        assert (peer.close_code, peer.close_reason) == (CLOSE_TOKEN_REFUSED, EXPIRED)
    finally:
        await registry.close()


# -- rotation -------------------------------------------------------------------------


async def test_rotation_closes_connections_holding_earlier_tokens(
    secured: ServerProcess,
) -> None:
    created = create_room(secured)
    room, owner = created["room"], created["owner_token"]
    editor_link = link_token(created["links"]["editor"])
    personal = post(
        secured, f"/api/rooms/{room}/tokens", owner, {"role": "reviewer", "name": "Rae"}
    ).json()["token"]
    clients = [YClient(ws(secured, room, token)) for token in (owner, editor_link, personal)]
    for client in clients:
        await client.connect()
        await client.wait_synced()
    clients[0].text += "kept;"
    await eventually(lambda: snapshot(secured, room, owner) == "kept;")

    rotated = rotate(secured, room, owner)
    for client in clients:
        assert await client.wait_closed(timeout=5) == CLOSE_TOKEN_REFUSED
        assert "rotated" in (client.close_reason or "")
        await client.close()
    # The old tokens stay refused; the new links open the room, its content intact.
    for token in (owner, editor_link, personal):
        code, reason = await refused(ws(secured, room, token))
        assert code == CLOSE_TOKEN_REFUSED and "rotated" in (reason or "")
    new_owner = rotated["owner_token"]
    async with YClient(ws(secured, room, link_token(rotated["links"]["editor"]))) as editor:
        await editor.wait_synced()
        assert str(editor.text) == "kept;"
        editor.text += "new;"
    assert snapshot(secured, room, new_owner) == "kept;new;"
    async with YClient(ws(secured, room, new_owner)) as again:
        await again.wait_synced()


async def test_rotation_is_stored_and_survives_a_restart(
    server_factory: Factory, tmp_path: Path
) -> None:
    data = tmp_path / "kept"
    first = server_factory(data_dir=data, CODEMENTOR_SECRET=SECRET)
    created = create_room(first)
    room, owner = created["room"], created["owner_token"]
    rotated = rotate(first, room, owner)
    first.stop()

    again = server_factory(data_dir=data, CODEMENTOR_SECRET=SECRET)
    response = get(again, f"/api/rooms/{room}", owner)
    assert response.status_code == 401 and "rotated" in response.json()["error"]
    code, reason = await refused(ws(again, room, owner))
    assert code == CLOSE_TOKEN_REFUSED and "rotated" in (reason or "")
    async with YClient(ws(again, room, rotated["owner_token"])) as fresh:
        await fresh.wait_synced()


async def test_rotation_reaches_the_other_instances(
    server_factory: Factory, redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Instance b learns of a rotation made on a from the shared store (one query a
    second for every room rotated lately): its peers are closed, its joins refused."""
    env = {"CODEMENTOR_REDIS_URL": redis_server.url, "CODEMENTOR_SECRET": SECRET}
    a = server_factory(data_dir=tmp_path / "shared", CODEMENTOR_INSTANCE_ID="a", **env)
    b = server_factory(data_dir=tmp_path / "shared", CODEMENTOR_INSTANCE_ID="b", **env)
    created = create_room(a)
    room, owner = created["room"], created["owner_token"]
    editor_link = link_token(created["links"]["editor"])
    async with YClient(ws(b, room, editor_link)) as on_b:
        await on_b.wait_synced()
        on_b.text += "from b;"
        await eventually(lambda: snapshot(a, room, owner) == "from b;")

        started = time.monotonic()
        rotated = rotate(a, room, owner)
        assert await on_b.wait_closed(timeout=10) == CLOSE_TOKEN_REFUSED
        assert "rotated" in (on_b.close_reason or "")
        assert time.monotonic() - started < 5
    # b refuses the old link for good, and serves the new one.
    code, _ = await refused(ws(b, room, editor_link))
    assert code == CLOSE_TOKEN_REFUSED
    response = get(b, f"/api/rooms/{room}", owner)
    assert response.status_code == 401
    async with YClient(ws(b, room, link_token(rotated["links"]["editor"]))) as fresh:
        await fresh.wait_synced()
        assert str(fresh.text) == "from b;"


# -- rooms appear only through the REST API when an admin token is set ---------------------


async def test_no_implicit_room_with_an_admin_token_in_dev_mode(server_factory: Factory) -> None:
    """Dev mode (no secret, anonymous on) let a tokenless join create any room name
    although ``CODEMENTOR_ADMIN_TOKEN`` guarded ``POST /api/rooms``."""
    admin = secrets.token_hex(16)
    server = server_factory(CODEMENTOR_ADMIN_TOKEN=admin)
    code, reason = await refused(ws(server, "made-up-name", None))
    assert (code, reason) == (4404, "unknown room")
    assert get(server, "/api/rooms/made-up-name", None).status_code == 404
    # Rooms made with the admin token still take tokenless dev-mode joins.
    response = post(server, "/api/rooms", admin, {})
    assert response.status_code == 201
    async with YClient(ws(server, response.json()["room"], None)) as anonymous:
        await anonymous.wait_synced()
