"""History is recorded as the room relays updates: who sent each (the verified token,
never a peer's field), when, and what kind of change it was; it is as durable as the
document, outlives compaction, and holds one copy of each update however many
instances stored it. Read back from the SQLite file the servers write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Array, Doc, Map, Text

from crdt.structs import parse
from rooms.history import HistoryRow
from rooms.sqlite_store import SQLiteStore
from server.datadir import SQLITE_FILE
from tests.multi import doc_text, start_instances, stop_all, stored_doc
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

WINDOW_MS = 100


async def join(server: ServerProcess, room: str, name: str) -> tuple[str, str]:
    """A personal token for ``name`` (dev mode): (token, user id)."""
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        response = await http.post(f"/api/rooms/{room}/join", json={"name": name})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["token"], body["user_id"]


def stored_history(data_dir: Path, room: str) -> list[HistoryRow]:
    """The room's history rows, each cut into its parts (one sender and kind each)."""
    store = SQLiteStore(data_dir / SQLITE_FILE)
    try:
        return [part for row in store.history(room) for part in row.split()]
    finally:
        store.close()


def replayed(rows: list[HistoryRow]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    for row in rows:
        for update in row.updates:
            doc.apply_update(update)
    return doc


def code_of(doc: Doc[Any]) -> str:
    return str(doc.get("code", type=Text))


def clients_of(row: HistoryRow) -> set[int]:
    return {s.client for u in row.updates for s in parse(u).structs}


async def test_each_update_is_recorded_with_the_senders_verified_identity(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_DURABILITY_WINDOW_MS=str(WINDOW_MS))
    alice_token, alice_id = await join(server, "rec", "Alice")
    bob_token, bob_id = await join(server, "rec", "Bob")
    async with (
        YClient(server.ws_url("rec", f"token={alice_token}")) as alice,
        YClient(server.ws_url("rec", f"token={bob_token}")) as bob,
    ):
        await alice.wait_synced()
        await bob.wait_synced()
        for ch in "print(1)\n":
            alice.text += ch
        await eventually(lambda: str(bob.text) == "print(1)\n")
        for ch in "# bob":
            bob.text += ch
        # Bob posts a chat message claiming to be Alice: the history says Bob.
        chat = bob.doc.get("chat", type=Array)
        chat.append(Map({"id": "m1", "text": "hi", "author": "Alice", "ts": 1}))
        await eventually(lambda: len(alice.doc.get("chat", type=Array)) == 1)
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            response = await http.put(
                "/api/rooms/rec/files/util.py",
                content="X = 1\n",
                headers={"Authorization": f"Bearer {alice_token}"},
            )
            assert response.status_code == 201, response.text
        expected = str(alice.text)

        def all_recorded() -> bool:
            doc = replayed(stored_history(server.data_dir, "rec"))
            return code_of(doc) == expected and "util.py" in doc.get("files", type=Map)

        await eventually(all_recorded)
    rows = stored_history(server.data_dir, "rec")
    by = {(r.who.id, r.who.name, r.who.role, r.kind) for r in rows}
    assert by == {
        ("server", "server", "server", "edit"),  # the new room's seed (meta)
        (alice_id, "Alice", "editor", "edit"),
        (bob_id, "Bob", "editor", "edit"),
        (bob_id, "Bob", "editor", "chat"),
    }, by
    # Alice's rows carry only Alice's client's structs, Bob's code rows only Bob's.
    for row in rows:
        if row.kind == "edit" and row.who.id == bob_id:
            assert clients_of(row) == {bob.doc.client_id}
        elif row.kind == "edit" and row.who.id == alice_id and clients_of(row) != set():
            assert alice.doc.client_id in clients_of(row) or row.updates  # the REST edit
    alice_updates = sum(len(r.updates) for r in rows if r.who.id == alice_id)
    assert alice_updates >= 10  # nine keystrokes and the REST edit, coalesced into rows
    assert len({r.seq for r in rows}) < len(rows) or len(rows) < alice_updates
    doc = replayed(rows)
    assert code_of(doc) == expected
    assert str(doc.get("files", type=Map)["util.py"]) == "X = 1\n"
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    assert len({r.seq for r in rows}) < sum(len(r.updates) for r in rows) / 3  # coalesced
    assert all(a.ts <= b.ts for a, b in zip(rows, rows[1:], strict=False))


async def test_history_outlives_compaction_and_sigkill(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(
        CODEMENTOR_DURABILITY_WINDOW_MS=str(WINDOW_MS),
        CODEMENTOR_COMPACT_UPDATES="20",
        CODEMENTOR_HISTORY_COALESCE_SECONDS="0",  # a row per flush at most
    )
    async with YClient(server.ws_url("kill")) as writer, YClient(server.ws_url("kill")) as seen:
        await writer.wait_synced()
        await seen.wait_synced()
        for i in range(150):
            writer.text.insert(0, f"{i}é😀 ")
            if i % 10 == 0:
                await asyncio.sleep(0.02)
        expected = str(writer.text)
        await eventually(lambda: str(seen.text) == expected)
        await asyncio.sleep(WINDOW_MS / 1000 + 0.5)
        server.kill()
        await seen.wait_closed()
    rows = stored_history(server.data_dir, "kill")
    typed = [r for r in rows if r.who.id != "server"]  # not the new room's seed
    assert sum(len(r.updates) for r in typed) == 150  # every keystroke, once
    assert code_of(replayed(rows)) == expected
    # The document was compacted meanwhile (the log kept less than everything).
    store = SQLiteStore(server.data_dir / SQLITE_FILE)
    try:
        assert store.load("kill").snapshot is not None
    finally:
        store.close()
    restarted = server_factory(data_dir=server.data_dir)
    async with YClient(restarted.ws_url("kill")) as again:
        await again.wait_synced()
        again.text += "!"
        await eventually(
            lambda: code_of(replayed(stored_history(server.data_dir, "kill"))) == expected + "!"
        )
    await asyncio.to_thread(restarted.stop)
    rows = stored_history(server.data_dir, "kill")
    assert code_of(replayed(rows)) == expected + "!"


async def test_two_instances_write_one_history(
    server_factory: Callable[..., ServerProcess], redis_server: RedisProcess, tmp_path: Path
) -> None:
    data_dir = tmp_path / "shared"
    a, b = await start_instances(
        server_factory, redis_server.url, data_dir, ["a", "b"],
        CODEMENTOR_DURABILITY_WINDOW_MS=str(WINDOW_MS),
    )  # fmt: skip
    alice_token, alice_id = await join(a, "two", "Alice")
    bob_token, bob_id = await join(b, "two", "Bob")
    async with (
        YClient(a.ws_url("two", f"token={alice_token}")) as alice,
        YClient(b.ws_url("two", f"token={bob_token}")) as bob,
    ):
        await alice.wait_synced()
        await bob.wait_synced()
        for i in range(40):
            alice.text += "a"
            bob.text += "b"
            if i % 5 == 0:
                del alice.text[0:1]  # deletes, recorded once too
            await asyncio.sleep(0.01)
        await eventually(lambda: str(alice.text) == str(bob.text), timeout=20)
        expected = str(alice.text)
    await stop_all([a, b])  # each flushes what it applied (and so recorded)
    rows = stored_history(data_dir, "two")
    # Each instance stored both people's updates; the history kept one copy of each.
    assert sum(len(r.updates) for r in rows if r.who.id == alice_id) == 48
    assert sum(len(r.updates) for r in rows if r.who.id == bob_id) == 40
    assert {r.who.id for r in rows} == {alice_id, bob_id, "server"}
    assert len([r for r in rows if r.who.id == "server"]) == 1  # the new room's seed
    for row in rows:
        if row.who.id == "server":
            continue
        owner = alice.doc.client_id if row.who.id == alice_id else bob.doc.client_id
        assert clients_of(row) <= {owner}
    assert code_of(replayed(rows)) == expected
    # Two people typing at once, on two instances, share rows rather than alternate.
    assert len({r.seq for r in rows}) <= 88 / 4


async def test_history_off_records_nothing(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(CODEMENTOR_HISTORY_DAYS="0", CODEMENTOR_DURABILITY_WINDOW_MS="50")
    async with YClient(server.ws_url("off")) as writer:
        await writer.wait_synced()
        writer.text += "x"
        await eventually(lambda: doc_text(stored_doc(server.data_dir, "off")) == "x")
    await asyncio.to_thread(server.stop)
    assert stored_history(server.data_dir, "off") == []
