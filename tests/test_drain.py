"""Graceful drain: on SIGTERM the server stops taking peers and reports not ready,
stores every room, and only then closes its websockets with 1012 (so a client that
reconnects to another replica finds everything it had sent already stored)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from pycrdt import Doc, Text

from rooms.sqlite_store import SQLiteStore
from server.datadir import SQLITE_FILE
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

pytestmark = pytest.mark.anyio


def stored_text(server: ServerProcess, room: str) -> str:
    store = SQLiteStore(server.data_dir / SQLITE_FILE)
    try:
        stored = store.load(room)
    finally:
        store.close()
    doc: Doc[Any] = Doc()
    doc["code"] = text = Text()
    for update in ([stored.snapshot] if stored.snapshot else []) + stored.updates:
        doc.apply_update(update)
    return str(text)


@contextlib.contextmanager
def store_locked(server: ServerProcess) -> Iterator[None]:
    """Hold the SQLite write lock: every flush of the server waits until it is let go."""
    lock = sqlite3.connect(server.data_dir / SQLITE_FILE, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        lock.execute("ROLLBACK")
        lock.close()


async def typed_unstored(server: ServerProcess, room: str, text: str) -> YClient:
    """A client that typed ``text``, which the server received and has not stored
    (its durability window is a minute)."""
    client = await YClient(server.ws_url(room)).connect()
    await client.wait_synced()
    client.text += text
    await eventually(lambda: server.metric("codementor_frames_total") > 0)
    return client


def readiness(server: ServerProcess) -> tuple[int, str]:
    r = httpx.get(server.http_url + "/readyz", timeout=2)
    return r.status_code, r.json()["status"]


async def test_sigterm_drains_flush_before_1012(
    server_factory: Callable[..., ServerProcess],
) -> None:
    # No flush happens by itself: a minute-long durability window.
    server = server_factory(CODEMENTOR_DURABILITY_WINDOW_MS="60000")
    writer = await YClient(server.ws_url("drained")).connect()
    watcher = await YClient(server.ws_url("drained")).connect()
    await writer.wait_synced()
    await watcher.wait_synced()
    writer.text += "every keystroke is kept 😀"
    await eventually(lambda: str(watcher.text) == "every keystroke is kept 😀")
    assert stored_text(server, "drained") == ""  # relayed, not yet stored
    assert readiness(server) == (200, "ready")

    # Hold the database's write lock so the drain's flush waits on it.
    with store_locked(server):
        server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        await eventually(lambda: readiness(server) == (503, "draining"))
        # A newcomer is turned away to another replica...
        async with websockets.connect(server.ws_url("drained")) as late:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(late.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        # ...but the connected peers stay until their edits are stored.
        assert not writer.closed.is_set() and not watcher.closed.is_set()
    assert await watcher.wait_closed() == 1012
    assert stored_text(server, "drained") == "every keystroke is kept 😀"
    assert await writer.wait_closed() == 1012
    assert server.wait_exit() in (0, -signal.SIGTERM)
    events = [e["event"] for e in server.events()]
    assert events.index("draining") < events.index("drained") < events.index("Shutting down")
    drained = next(e for e in server.events() if e["event"] == "drained")
    assert drained["rooms"] == 1 and drained["peers"] == 2 and drained["stored"] is True


async def test_a_second_signal_does_not_wait_for_the_drain(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_DURABILITY_WINDOW_MS="60000", CODEMENTOR_DRAIN_SECONDS="30")
    client = await typed_unstored(server, "stuck", "x")
    with store_locked(server):
        server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        await eventually(lambda: readiness(server) == (503, "draining"))
        server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        # uvicorn's shutdown now runs although the drain's flush is still blocked.
        assert await client.wait_closed() == 1012
    assert server.wait_exit() in (0, -signal.SIGTERM)
    # The flush still happened before exit: the store answered once the lock went.
    assert stored_text(server, "stuck") == "x"


async def test_a_drain_past_its_time_ends_and_loses_nothing(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_DURABILITY_WINDOW_MS="60000", CODEMENTOR_DRAIN_SECONDS="1")
    client = await typed_unstored(server, "slow-store", "kept")
    with store_locked(server):
        server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        # The store stays locked: after 1 s the drain gives up and the shutdown goes on.
        assert await client.wait_closed() == 1012
        await eventually(lambda: any(e["event"] == "drain_timeout" for e in server.events()))
    assert server.wait_exit() in (0, -signal.SIGTERM)
    assert stored_text(server, "slow-store") == "kept"  # the last flush stored it
