"""Awareness, keep-alives, loading, unloading and health, against a real server.

The room's own awareness rules (query answers, spoofed removals) are tested in
process in ``test_rooms_in_process``."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable

import httpx
import pytest
import websockets

from crdt import protocol
from tests.serverproc import ServerProcess
from tests.support import eventually, free_port
from tests.yclient import YClient

pytestmark = pytest.mark.anyio


async def test_awareness_snapshot_relay_and_removal(server: ServerProcess) -> None:
    url = server.ws_url("presence")
    async with YClient(url) as alice:
        await alice.wait_synced()
        await alice.set_awareness({"user": {"name": "alice", "color": "#f00"}})
        bob = await YClient(url).connect()
        await bob.wait_synced()
        # The join snapshot carries alice's state without alice sending anything new.
        await eventually(lambda: bob.awareness.get(alice.doc.client_id, {}).get("user") is not None)
        await bob.set_awareness({"user": {"name": "bob"}})
        await eventually(
            lambda: alice.awareness.get(bob.doc.client_id) == {"user": {"name": "bob"}}
        )
        await bob.close()
        # Bob's socket closed: his state is removed for everyone else.
        await eventually(lambda: bob.doc.client_id not in alice.awareness)


async def test_idle_peers_get_keepalives(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(CODEMENTOR_KEEPALIVE_SECONDS="0.3")
    async with YClient(server.ws_url("quiet")) as client:
        await client.wait_synced()
        start = len(client.received)
        await eventually(lambda: protocol.KEEPALIVE_FRAME in client.received[start:], timeout=5)
        # A keep-alive is an empty awareness update: it changes nothing on the client.
        assert client.awareness == {}


async def test_empty_room_unloads_after_idle_time_and_reloads(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_IDLE_UNLOAD_SECONDS="0.3")
    async with YClient(server.ws_url("idle")) as client:
        await client.wait_synced()
        client.text += "kept"
        await eventually(lambda: server.metric("codementor_rooms_loaded") == 1)
    await eventually(lambda: server.metric("codementor_rooms_loaded") == 0, timeout=5)
    async with YClient(server.ws_url("idle")) as again:
        await again.wait_synced()
        assert str(again.text) == "kept"


async def test_a_room_that_fails_to_load_is_never_served_or_written(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory()
    async with YClient(server.ws_url("fragile")) as client:
        await client.wait_synced()
        client.text += "precious"
        async with YClient(server.ws_url("fragile")) as other:
            await eventually(lambda: str(other.text) == "precious")
    server.stop()
    db_path = server.data_dir / "codementor.sqlite3"
    with sqlite3.connect(db_path) as db:
        db.execute("INSERT INTO updates (room, seq, data) VALUES ('fragile', 999, x'05ff')")
    before = db_path.read_bytes()
    restarted = server_factory(data_dir=server.data_dir)
    victim = await YClient(restarted.ws_url("fragile")).connect()
    assert await victim.wait_closed() == protocol.CLOSE_INTERNAL_ERROR
    assert str(victim.text) == ""
    assert restarted.metric("codementor_room_load_failures_total") == 1
    # Other rooms are unaffected.
    async with YClient(restarted.ws_url("healthy")) as ok:
        await ok.wait_synced()
    restarted.stop()
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT seq FROM updates WHERE room = 'fragile' ORDER BY seq").fetchall()
    assert rows[-1] == (999,) and len(rows) >= 2, "stored history was rewritten"
    assert len(db_path.read_bytes()) >= len(before) - 4096


async def test_health_ready_and_metrics(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["store"] == "ok"
        async with YClient(server.ws_url("m")) as client:
            await client.wait_synced()
            client.text += "abc"
            await eventually(lambda: server.metric("codementor_store_flush_seconds_count") >= 1)
            text = (await http.get("/metrics")).text
    for name in (
        "codementor_connections",
        "codementor_rooms_loaded",
        'codementor_frames_total{direction="in",type="sync_update"}',
        'codementor_frames_total{direction="out",type="sync_step2"}',
        'codementor_bytes_total{direction="in"}',
        "codementor_update_apply_seconds_bucket",
        "codementor_fanout_seconds_bucket",
        "codementor_store_flush_seconds_bucket",
        "codementor_store_load_seconds_bucket",
        "codementor_room_load_seconds_bucket",
        "codementor_peers_dropped_total",
        "codementor_frames_rejected_total",
    ):
        assert name in text, name
    assert server.metric('codementor_frames_total{direction="in",type="sync_update"}') >= 1
    # Room "m" was loaded from the store once: both load histograms saw it.
    assert server.metric("codementor_store_load_seconds_count") >= 1
    assert server.metric("codementor_room_load_seconds_count") >= 1


async def test_unreachable_mongo_is_not_ready_and_refuses_rooms(
    server_factory: Callable[..., ServerProcess],
) -> None:
    dead = f"mongodb://127.0.0.1:{free_port()}/codementor"
    server = server_factory(CODEMENTOR_MONGO_URL=dead)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    assert time.monotonic() - started < 5
    client = await YClient(server.ws_url("nowhere")).connect()
    assert await client.wait_closed(timeout=20) == protocol.CLOSE_INTERNAL_ERROR
    assert server.alive()


async def test_room_names_at_the_limits_are_accepted(server: ServerProcess) -> None:
    for name in ("a", "A-z_0.9", "x" * 128):
        async with websockets.connect(server.ws_url(name)) as ws:
            first = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(first, bytes) and first[:2] == b"\x00\x00"
