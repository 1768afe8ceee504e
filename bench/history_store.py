"""What an hour of typing costs the history on disk, and how fast playback seeks in it,
without waiting an hour: real pycrdt keystroke updates with synthetic timestamps, fed
to the real store code exactly as ``RoomWriter`` does: each 100 ms flush window's
updates coalesced with ``rooms.history.coalesce`` (which sets the entries' join
window), then one ``SQLiteStore.append_many``, which appends a flush's first entry to
the room's last row while that row is within the window. Into a fresh SQLite file; no
server, no network."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text, TransactionEvent

from bench.procs import memory_mib
from crdt import schema
from rooms.history import EDIT, HistoryEntry, HistorySettings, Who, coalesce
from rooms.playback import Playback
from rooms.sqlite_store import SQLiteStore

ROOM = "history-bench"
T0 = 1_800_000_000.0  # synthetic start of the hour (unix seconds)
HOUR = 3600.0
RATE = 5.0  # keystrokes per second per typist
DELETE_SHARE = 0.08  # keystrokes that are a backspace
PASTE_EVERY = 180.0  # seconds between two pastes (the typists take turns)
PASTE_LINES = 30  # lines of about 40 characters per paste
FLUSH = 0.1  # the durability window: seconds of updates per store call
HISTORY_TABLES = ("history", "history_room", "history_clocks", "history_deletes", "history_bases")
PEOPLE = (Who("u-alice", "Alice", "owner"), Who("u-bob", "Bob", "editor"))


@dataclass(frozen=True)
class Keystroke:
    ts: float
    who: Who
    update: bytes
    chars: int  # characters inserted (0 for a delete)


def typing_hour(
    typists: int, seconds: float = HOUR, turn_s: float | None = None, seed: int = 20
) -> list[Keystroke]:
    """``typists`` people typing at ``RATE`` keystrokes/s each for ``seconds``, in time
    order: each in their own pycrdt document (fixed client ids), every update applied to
    the others' documents as the room would relay it. The first types at a cursor in the
    middle, the second at the end; some keystrokes delete; every ``PASTE_EVERY`` seconds
    one of them pastes a block (one update). ``turn_s``: they take turns of that many
    seconds (one typing at a time) instead of typing at once."""
    rng = random.Random(seed)
    docs: list[Doc[Any]] = [Doc(client_id=1000 + i) for i in range(typists)]
    texts = [doc.get(schema.CODE, type=Text) for doc in docs]
    captured: list[bytes] = []
    for doc in docs:
        doc.observe(lambda event: _capture(event, captured))
    if turn_s is None:
        times = sorted(
            (k / RATE + rng.uniform(0, 1 / RATE), person)
            for person in range(typists)
            for k in range(int(seconds * RATE))
        )
    else:
        times = [
            (offset, int(offset // turn_s) % typists)
            for k in range(int(seconds * RATE))
            if (offset := k / RATE + rng.uniform(0, 1 / RATE)) < seconds
        ]
    cursor = 0  # the first typist's position; the second types at the end
    own_tail = 0  # characters the second typist has at the end (what it may delete)
    next_paste = PASTE_EVERY
    pastes = 0
    out: list[Keystroke] = []
    for offset, person in times:
        text = texts[person]
        chars = 0
        if offset >= next_paste:
            next_paste += PASTE_EVERY
            person = pastes % typists
            text = texts[person]
            pastes += 1
            block = "".join(_line(rng) for _ in range(PASTE_LINES))
            chars = len(block)
        elif rng.random() < DELETE_SHARE:
            block = ""
        else:
            block = "\n" if rng.random() < 1 / 40 else rng.choice("abcdefghijklmnopqrstuvwxyz  ")
            chars = 1
        position = cursor if person == 0 else len(text)
        if block:
            text.insert(position, block)
        elif person == 0 and cursor > 0:
            del text[cursor - 1 : cursor]
        elif person == 1 and own_tail > 0:
            del text[len(text) - 1 : len(text)]
        else:
            continue
        if person == 0:
            cursor += len(block) if block else -1
        else:
            own_tail += len(block) if block else -1
        update = captured.pop()
        for other in docs:
            if other is not docs[person]:
                other.apply_update(update)
        captured.clear()  # the relays' own (empty) transactions
        out.append(Keystroke(T0 + offset, PEOPLE[person], update, chars))
    return out


def _capture(event: TransactionEvent, captured: list[bytes]) -> None:
    captured.append(event.update)


def _line(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghij klmnop") for _ in range(39)) + "\n"


def flush_windows(keys: list[Keystroke]) -> Iterator[tuple[float, list[Keystroke]]]:
    """The keystrokes cut into ``FLUSH`` windows, each with the time it is written."""
    window: list[Keystroke] = []
    end = T0 + FLUSH
    for key in keys:
        while key.ts >= end:
            if window:
                yield end, window
                window = []
            end += FLUSH
        window.append(key)
    if window:
        yield end, window


def db_pages(path: Path) -> dict[str, int]:
    """The file's bytes (page count × page size, WAL checkpointed) and each history
    table's and index's bytes (``dbstat``)."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (count,) = db.execute("PRAGMA page_count").fetchone()
        (size,) = db.execute("PRAGMA page_size").fetchone()
        per = dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    finally:
        db.close()
    return {"file": count * size, "history_tables": sum(per.get(t, 0) for t in HISTORY_TABLES),
            "updates_table": per.get("updates", 0)}  # fmt: skip


def vacuumed(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        db.execute("VACUUM")
        (count,) = db.execute("PRAGMA page_count").fetchone()
        (size,) = db.execute("PRAGMA page_size").fetchone()
    finally:
        db.close()
    return int(count * size)


def window_entries(window: list[Keystroke], settings: HistorySettings | None) -> list[HistoryEntry]:
    """One flush window's history entries as ``RoomWriter.record`` builds them (None: off)."""
    entries: list[HistoryEntry] = []
    if settings is not None:
        for key in window:
            coalesce(entries, HistoryEntry(key.ts, key.ts, key.who, EDIT, [key.update]), settings)
    return entries


def record_hour(
    keys: list[Keystroke], path: Path, settings: HistorySettings | None
) -> dict[str, Any]:
    """Write ``keys`` as ``RoomWriter`` would (``settings`` None: history off, the
    document log alone) into a fresh SQLite file; what it grew by."""
    store = SQLiteStore(path)
    store.close()
    before = db_pages(path)
    store = SQLiteStore(path)
    started = time.perf_counter()
    flushes = offered = 0
    try:
        for _written_at, window in flush_windows(keys):
            entries = window_entries(window, settings)
            history = {ROOM: entries} if entries else None
            store.append_many({ROOM: [k.update for k in window]}, history)
            flushes += 1
            offered += len(entries)
        rows, update_bytes, _ = store.history_size(ROOM)
        write_s = time.perf_counter() - started
        parts = sum(len(r.runs()) for r in store.history(ROOM)) if settings else 0
    finally:
        store.close()
    after = db_pages(path)
    db = sqlite3.connect(path)
    try:  # what the rows' ``parts`` (who sent which update) take, as stored
        (parts_bytes,) = db.execute(
            "SELECT COALESCE(SUM(LENGTH(parts)), 0) FROM history"
        ).fetchone()
    finally:
        db.close()
    return {
        "updates": len(keys),
        "flushes": flushes,
        "entries": offered,  # handed to the store; those beyond ``rows`` extended a row
        "rows": rows,
        "parts": parts,  # runs of one person's updates of one kind, over all rows
        "history_update_bytes": update_bytes,
        "parts_bytes": int(parts_bytes),
        "file_growth": after["file"] - before["file"],
        "history_table_bytes": after["history_tables"] - before["history_tables"],
        "updates_table_bytes": after["updates_table"] - before["updates_table"],
        "file_growth_vacuumed": vacuumed(path) - before["file"],
        "write_s": round(write_s, 2),
    }


def seek_latency(path: Path, seeks: int, seed: int = 20) -> dict[str, Any]:
    """Build the playback index of the room in ``path`` and seek it: the first and last
    moments and ``seeks`` random ones, each through ``at_json`` (what ``GET
    .../history/at`` answers) and ``authorship_at`` of the code (the Authorship view)."""
    store = SQLiteStore(path)
    rss_before, _ = memory_mib(os.getpid())
    try:
        started = time.perf_counter()
        base = store.history_base(ROOM)
        rows = store.history(ROOM)
        read_s = time.perf_counter() - started
        play = Playback(base)
        play.extend(rows)
        build_s = time.perf_counter() - started
    finally:
        store.close()
    rss_after, _ = memory_mib(os.getpid())
    first, last = rows[0].ts_first, rows[-1].ts
    rng = random.Random(seed)
    moments = [first, last] + [rng.uniform(first, last) for _ in range(seeks)]
    at_ms: list[float] = []
    who_ms: list[float] = []
    for ts in moments:
        t = time.perf_counter()
        play.at_json(ts)
        at_ms.append(1000 * (time.perf_counter() - t))
        path_of_code = schema.entry_path(play.state_at(ts))
        t = time.perf_counter()
        play.authorship_at(path_of_code, ts)
        who_ms.append(1000 * (time.perf_counter() - t))
    return {
        "rows": len(rows),
        "parts": sum(len(r.runs()) for r in rows),  # what playback replays as events
        "read_s": round(read_s, 3),
        "build_s": round(build_s, 3),
        "index_mib": round(rss_after - rss_before, 1),  # resident growth while building
        "seeks": len(moments),
        "at": summary_ms(at_ms),
        "authorship": summary_ms(who_ms),
        "first_last_ms": [round(at_ms[0], 2), round(at_ms[1], 2)],
    }


def summary_ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
    }


def store_cpu(rooms: int, seconds: float, settings: HistorySettings | None) -> dict[str, Any]:
    """The store thread's CPU per update for ``rooms`` pair rooms (two people typing at
    once at ``RATE`` each, one flush of every room per 100 ms window, as the server's
    ``BatchFlusher`` writes them), with history recorded (``settings``) or not (None):
    the store's part of recording's cost, without a server, sockets or a generator."""
    keys = typing_hour(2, seconds)
    names = [f"room-{i}" for i in range(rooms)]
    path = Path(tempfile.mkdtemp(prefix="history-cpu-")) / "store.sqlite3"
    store = SQLiteStore(path)
    append_s = 0.0
    count = 0
    try:
        for _written_at, window in flush_windows(keys):
            updates = [k.update for k in window]
            history: dict[str, list[HistoryEntry]] = {}
            started = time.process_time()
            if settings is not None:
                for name in names:
                    history[name] = window_entries(window, settings)
            store.append_many(dict.fromkeys(names, updates), history or None)
            append_s += time.process_time() - started
            count += len(updates) * rooms
    finally:
        store.close()
        shutil.rmtree(path.parent, ignore_errors=True)
    return {
        "updates": count,
        "append_us": round(1e6 * append_s / count, 1),  # entries built included
    }
