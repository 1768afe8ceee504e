"""Past CODEMENTOR_MAX_CONNECTIONS the server sheds load: newcomers are closed with 1013
(y-websocket retries with backoff), /readyz reports "full", and the peers already in
keep working; a freed slot admits the next one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
import websockets

from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

pytestmark = pytest.mark.anyio


async def refused_code(url: str) -> int | None:
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:  # the server may send nothing before its close frame
                await asyncio.wait_for(ws.recv(), 5)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_newcomers_past_the_limit_are_shed(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_MAX_CONNECTIONS="3")
    clients = [await YClient(server.ws_url(f"shed-{i % 2}")).connect() for i in range(3)]
    for client in clients:
        await client.wait_synced()
    async with httpx.AsyncClient(base_url=server.http_url, timeout=5) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "full", "checks": {}, "connections": 3, "half_open": 0, "limit": 3,
        }  # fmt: skip
        assert await refused_code(server.ws_url("shed-0")) == 1013
        assert await refused_code(server.ws_url("another")) == 1013
        assert server.metric("codementor_connections_shed_total") == 2
        # The peers in the room are untouched.
        clients[0].text += "still editing"
        await eventually(lambda: str(clients[2].text) == "still editing")
        # One leaves: ready again, and the next newcomer gets in.
        await clients[1].close()
        await eventually(lambda: server.metric("codementor_connections") == 2)
        assert (await http.get("/readyz")).status_code == 200
        async with YClient(server.ws_url("shed-0")) as late:
            await late.wait_synced()
            await eventually(lambda: str(late.text) == "still editing")
    for client in (clients[0], clients[2]):
        await client.close()


async def test_zero_means_no_limit(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(CODEMENTOR_MAX_CONNECTIONS="0")
    clients = [await YClient(server.ws_url("open")).connect() for _ in range(3)]
    for client in clients:
        await client.wait_synced()
    async with httpx.AsyncClient(base_url=server.http_url, timeout=5) as http:
        assert (await http.get("/readyz")).json()["status"] == "ready"
    assert server.metric("codementor_connections_shed_total") == 0
    for client in clients:
        await client.close()
    with pytest.raises(RuntimeError, match="CODEMENTOR_MAX_CONNECTIONS must be 0 or more"):
        server_factory(CODEMENTOR_MAX_CONNECTIONS="-1")


def test_a_file_limit_below_the_connection_limit_is_reported(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_MAX_CONNECTIONS=str(2**40))  # more than any hard limit
    warning = next(e for e in server.events() if e["event"] == "file_limit_below_max_connections")
    assert warning["level"] == "warning" and warning["max_connections"] == 2**40
    assert "ulimit -n" in warning["hint"]
    quiet = server_factory(CODEMENTOR_MAX_CONNECTIONS="100")
    assert all(e["event"] != "file_limit_below_max_connections" for e in quiet.events())
