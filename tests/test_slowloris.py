"""Slow clients cannot hold sockets: a connection that has not completed its request
(head and body) or its websocket upgrade within CODEMENTOR_HANDSHAKE_TIMEOUT_SECONDS is
closed, and until then it counts toward CODEMENTOR_MAX_CONNECTIONS with the open
websockets; past the limit (and a small headroom) a new connection is answered 503.

Raw sockets write exactly the bytes a slow client would. Each case runs against a
uvicorn server (real sockets, the app as ``codementor serve`` builds it) with each of
uvicorn's HTTP protocols, httptools and h11; the last tests run ``codementor serve``
itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from server.app import WebSocketFastPath, create_app
from server.settings import Settings
from server.uvicorn_fast import (
    DirectWebSocketProtocol,
    GuardedH11Protocol,
    GuardedHttpToolsProtocol,
)
from tests.serverproc import ServerProcess
from tests.support import eventually, free_port
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

TIMEOUT = 1.0  # CODEMENTOR_HANDSHAKE_TIMEOUT_SECONDS in these tests


class ThreadServer:
    """The app on uvicorn in a thread of the test process, with a chosen HTTP protocol."""

    def __init__(self, data_dir: Path, http: type[asyncio.Protocol], **settings: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = WebSocketFastPath(create_app(Settings(data_dir=data_dir, **settings)))
        self.limit = app.state.connection_limit
        self.metrics = app.state.metrics
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, http=http, ws=DirectWebSocketProtocol,
            lifespan="on", log_config=None, ws_per_message_deflate=False,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(params=["httptools", "h11"])
def make_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    http = GuardedHttpToolsProtocol if request.param == "httptools" else GuardedH11Protocol
    started: list[ThreadServer] = []

    def make(**settings: Any) -> ThreadServer:
        settings.setdefault("handshake_timeout_seconds", TIMEOUT)
        server = ThreadServer(tmp_path / f"data-{len(started)}", http, **settings)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def upgrade_head(port: int, room: str = "slow") -> bytes:
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    return (
        f"GET /ws/{room} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class Raw:
    """A client socket that sends what it is told, when it is told."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def closed_by_server(self, within: float) -> float | None:
        """Seconds until the server closed the connection (EOF or reset), None if it did
        not within ``within``. What the server sent first is read and dropped."""
        started = time.monotonic()
        self.sock.settimeout(within)
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return None
        except ConnectionResetError:
            pass
        return time.monotonic() - started

    def close(self) -> None:
        self.sock.close()


async def closed_within(raw: Raw, within: float) -> float | None:
    return await asyncio.to_thread(raw.closed_by_server, within)


async def trickle(raw: Raw, data: bytes, every: float = 0.2) -> None:
    """A byte at a time: each one alone would reset an idle timer."""
    for byte in data:
        try:
            raw.send(bytes([byte]))
        except OSError:
            return
        await asyncio.sleep(every)


# What a slow client sends first, then what it trickles a byte at a time.
SLOW_CASES: dict[str, tuple[Callable[[int], bytes], bytes]] = {
    "silent": (lambda port: b"", b""),
    "partial-head": (lambda port: b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-Slow: " + b"a" * 99),
    "partial-upgrade": (lambda port: upgrade_head(port)[:-2], b"X-Slow: " + b"a" * 99),
    "slow-body": (
        lambda port: (
            b"POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200\r\n\r\n"
        ),
        b" " * 150,
    ),
}


@pytest.mark.parametrize("case", SLOW_CASES)
async def test_an_unfinished_request_is_closed_at_the_deadline(
    make_server: Callable[..., ThreadServer], case: str
) -> None:
    server = make_server()
    raw = Raw(server.port)
    first, then = SLOW_CASES[case]
    raw.send(first(server.port))
    # Even a client that keeps sending a byte now and then is closed at the deadline.
    trickling = asyncio.create_task(trickle(raw, then))
    took = await closed_within(raw, TIMEOUT + 5)
    trickling.cancel()
    raw.close()
    assert took is not None, "the server held an unfinished request past the deadline"
    assert took >= TIMEOUT - 0.3
    await eventually(lambda: server.limit.half_open == 0)
    assert server.metrics.handshake_timeouts._value.get() == 1


async def test_a_keep_alive_connection_that_starts_a_request_and_stalls_is_closed(
    make_server: Callable[..., ThreadServer],
) -> None:
    """One byte after a response cancels uvicorn's keep-alive timer: then only the
    deadline closes the connection."""
    server = make_server()
    raw = Raw(server.port)
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    raw.sock.settimeout(5)
    assert b"200 OK" in raw.sock.recv(65536)
    raw.send(b"G")
    assert await closed_within(raw, TIMEOUT + 5) is not None
    raw.close()


async def test_finished_requests_and_open_websockets_outlive_the_deadline(
    make_server: Callable[..., ThreadServer],
) -> None:
    server = make_server()
    async with YClient(f"ws://127.0.0.1:{server.port}/ws/steady") as client:
        await client.wait_synced()
        assert server.limit.half_open == 0 and server.limit.open == 1
        await asyncio.sleep(TIMEOUT * 2)  # the deadline would have passed: still open
        client.text += "still here"
        async with YClient(f"ws://127.0.0.1:{server.port}/ws/steady") as other:
            await other.wait_synced()
            await eventually(lambda: str(other.text) == "still here")
    # A keep-alive HTTP connection that idles between requests is uvicorn's (5 s), and
    # a request made on it within that is answered.
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        assert (await http.get("/healthz")).status_code == 200
        await asyncio.sleep(TIMEOUT * 1.5)
        assert (await http.get("/healthz")).status_code == 200
    assert server.metrics.handshake_timeouts._value.get() == 0


async def test_half_open_connections_count_toward_the_limit(
    make_server: Callable[..., ThreadServer],
) -> None:
    server = make_server(max_connections=3, handshake_timeout_seconds=30.0)
    first = await YClient(f"ws://127.0.0.1:{server.port}/ws/counted").connect()
    await first.wait_synced()
    slow = [Raw(server.port) for _ in range(2)]
    for raw in slow:
        raw.send(b"GET /healthz HTTP/1.1\r\n")
    await eventually(lambda: server.limit.half_open == 2)
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "full", "checks": {}, "connections": 1, "half_open": 2, "limit": 3,
        }  # fmt: skip
        # A websocket newcomer is shed, as when three websockets are open.
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/counted") as ws:
            with pytest.raises(websockets.ConnectionClosed) as shed:
                await asyncio.wait_for(ws.recv(), 5)
        assert shed.value.rcvd is not None and shed.value.rcvd.code == 1013
        # Past the limit and its headroom, a new connection gets 503 before it sends a byte.
        cap = 3 + server.limit.HEADROOM  # with the open websocket
        slow += [Raw(server.port) for _ in range(cap - 1 - 2)]
        await eventually(lambda: server.limit.half_open == cap - 1)
        refused = Raw(server.port)
        refused.sock.settimeout(5)
        answer = refused.sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 503 ") and answer.endswith(
            b'"server full: try again later"}'
        )
        assert await closed_within(refused, 5) is not None
        refused.close()
        assert server.metrics.connections_refused._value.get() == 1
        # They go: room for everyone again.
        for raw in slow:
            raw.close()
        await eventually(lambda: server.limit.half_open == 0)
        assert (await http.get("/readyz")).status_code == 200
    async with YClient(f"ws://127.0.0.1:{server.port}/ws/counted") as late:
        await late.wait_synced()
    await first.close()


# -- codementor serve: wired through the CLI, in a process of its own -------------------


async def test_codementor_serve_closes_and_counts_slow_clients(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(
        CODEMENTOR_HANDSHAKE_TIMEOUT_SECONDS=str(TIMEOUT), CODEMENTOR_MAX_CONNECTIONS="2"
    )
    slow = [Raw(server.port) for _ in range(2)]
    slow[0].send(b"GET / HTTP/1.1\r\n")
    slow[1].send(upgrade_head(server.port)[:-2])
    async with httpx.AsyncClient(base_url=server.http_url, timeout=5) as http:
        full = await http.get("/readyz")
        assert full.status_code == 503 and full.json()["half_open"] == 2
        took = await asyncio.gather(*(closed_within(raw, TIMEOUT + 5) for raw in slow))
        assert None not in took
        assert (await http.get("/readyz")).status_code == 200
    assert server.metric("codementor_handshake_timeouts_total") == 2
    for raw in slow:
        with contextlib.suppress(OSError):
            raw.close()
