"""Pruning folds old rows into the history's base on a real SQLite store: the state at
any moment after the cut, who wrote each character (old ones included) and the summary
stay what they were; rows past the cap go the same way; a sweep finds the rooms."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from crdt import schema
from rooms.history import HistoryEntry, HistorySettings, Who
from rooms.history_prune import DAY, PruneSweep, prune_room
from rooms.persistence import StoreWorker
from rooms.playback import Playback
from rooms.sqlite_store import SQLiteStore
from rooms.store import RoomInfo, Store
from server.history_api import _catch_up

pytestmark = pytest.mark.anyio

ANN = Who("u-ann", "Ann", "editor")
BOB = Who("u-bob", "Bob", "owner")
NOW = time.time()
OLD = NOW - 40 * DAY  # past the default 30 days


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[StoreWorker]:
    """A real SQLite store behind its worker (closing the worker closes the store)."""
    w = StoreWorker(SQLiteStore(tmp_path / "h.sqlite3"))
    yield w
    await w.close()


def record(store: Store, room: str, start: float) -> list[float]:
    """Ann and Bob edit ``room`` (12 rows, one a second from ``start``, the first six
    forty days older); returns each row's ts."""
    store.create_room(RoomInfo(room, created_at=start, updated_at=start))
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    code = schema.code(doc)
    stamps = []
    steps: list[tuple[Who, Callable[[], object]]] = [
        (ANN, lambda: code.insert(0, "def héllo():\n")),
        (BOB, lambda: code.insert(len(str(code).encode()), "    return 1\n")),
        (ANN, lambda: schema.files(doc).__setitem__("util.py", Text("X = 'ü'\n"))),
        (BOB, lambda: code.insert(0, "# Bob 😀\n")),
        (ANN, lambda: schema.files(doc)["util.py"].insert(0, "Y = 2\n")),
        (BOB, lambda: code.insert(0, "p" * 250 + "\n")),  # a paste
        (ANN, lambda: code.insert(len(str(code).encode()), "print(héllo())\n")),
        (BOB, lambda: code.__delitem__(slice(0, 251))),
        (ANN, lambda: schema.files(doc).__setitem__("b.py", Text("B"))),
        (BOB, lambda: schema.files(doc)["util.py"].insert(0, "# u\n")),
        (ANN, lambda: code.insert(0, "#!\n")),
        (BOB, lambda: schema.files(doc).pop("b.py")),
    ]
    for i, (who, step) in enumerate(steps):
        before = len(updates)
        with doc.transaction():
            step()
        ts = (start if i < 6 else NOW - 100) + i
        new = updates[before:]
        entry = HistoryEntry(ts, ts, who, "edit", new)
        store.append_many({room: new}, {room: [entry]})
        stamps.append(ts)
    return stamps


def replay(store: Store, room: str) -> Playback:
    playback = Playback(store.history_base(room))
    playback.extend(store.history(room))
    return playback


async def test_rows_past_the_retention_fold_into_the_base(worker: StoreWorker) -> None:
    store = worker.store
    stamps = record(store, "r", OLD)
    before = replay(store, "r")
    folded = await prune_room(worker, "r", HistorySettings(retention_days=30))
    assert folded == 6
    assert await prune_room(worker, "r", HistorySettings(retention_days=30)) == 0
    base = store.history_base("r")
    assert base is not None and base.seq == 6 and base.ts == stamps[5]
    assert [row.ts for row in store.history("r")] == stamps[6:]
    after = replay(store, "r")
    for ts in [stamps[5], *stamps[6:], NOW + 10]:
        assert after.files_at(ts) == before.files_at(ts)
    for path in ("main.py", "util.py"):
        assert after.authorship_at(path) == before.authorship_at(path)
        spans = after.authorship_at(path)
        assert spans is not None and {s["who"] for s in spans["spans"]} == {0, 1}
    assert after.summary() == before.summary()
    assert after.summary()["large_inserts"][0]["chars"] == 251
    assert after.authors_json() == before.authors_json()


async def test_rows_past_the_cap_fold_even_when_young(worker: StoreWorker) -> None:
    store = worker.store
    record(store, "r", NOW - 1000)
    before = replay(store, "r")
    folded = await prune_room(worker, "r", HistorySettings(max_rows=4), now=NOW)
    assert folded == 8 and len(store.history("r")) == 4
    after = replay(store, "r")
    assert after.files_at(None) == before.files_at(None)
    assert after.authorship_at("main.py") == before.authorship_at("main.py")


async def test_history_off_prunes_nothing(worker: StoreWorker) -> None:
    store = worker.store
    record(store, "r", OLD)
    assert await prune_room(worker, "r", HistorySettings(retention_days=0)) == 0
    assert store.history_base("r") is None and len(store.history("r")) == 12


async def test_the_sweep_prunes_the_rooms_served(worker: StoreWorker) -> None:
    store = worker.store
    record(store, "a", OLD)
    record(store, "b", OLD)
    loaded = ["a", "b"]
    sweep = PruneSweep(worker, HistorySettings(), lambda: list(loaded), every=3600)
    assert await sweep.sweep() == 12
    assert await sweep.sweep() == 0
    assert len(store.history("a")) == len(store.history("b")) == 6


async def test_the_history_api_replays_afresh_once_the_base_moved(worker: StoreWorker) -> None:
    """A cached playback made before a prune learns of the new base on its next read."""
    store = worker.store
    record(store, "r", OLD)
    cached = replay(store, "r")
    # Up to date: only the last row again (the store may have appended to it).
    base, rows, more = _catch_up(store, "r", cached.last_seq, cached.first_seq)
    assert (base, [r.seq for r in rows], more) == (None, [cached.last_seq], False)
    await prune_room(worker, "r", HistorySettings())
    base, rows, more = _catch_up(store, "r", cached.last_seq, cached.first_seq)
    assert base is not None and base.seq == 6 and [r.seq for r in rows] == list(range(7, 13))
    fresh = Playback(base)
    fresh.extend(rows)
    assert fresh.files_at(None) == cached.files_at(None) and not more
    base, rows, more = _catch_up(store, "r", fresh.last_seq, fresh.first_seq)
    assert (base, [r.seq for r in rows], more) == (None, [fresh.last_seq], False)
