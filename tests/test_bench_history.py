"""The history bench's synthetic hour (bench/history_store.py) must be what its report
says it is: real keystroke updates that replay to the typed text, cut into 100 ms flush
windows without losing or reordering any, and written through the real store so that
coalescing shows (one typist: far fewer rows than updates; ``coalesce_seconds=0``: one
row per update; history off: no rows), flushes extend the room's last row, and two
people typing at once share rows with every update still attributed to its sender."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

from bench.history_store import (
    FLUSH,
    RATE,
    ROOM,
    flush_windows,
    record_hour,
    seek_latency,
    typing_hour,
)
from crdt import schema
from rooms.history import HistorySettings
from rooms.playback import Playback
from rooms.sqlite_store import SQLiteStore


def test_typing_is_real_updates_at_the_rate_in_time_order() -> None:
    keys = typing_hour(2, 200)
    assert [k.ts for k in keys] == sorted(k.ts for k in keys)
    # a delete with nothing of one's own left to delete is skipped
    assert 0.95 * 2 * 200 * RATE <= len(keys) <= 2 * 200 * RATE
    assert any(k.chars > 1 for k in keys)  # a paste (every 180 s)
    assert any(k.chars == 0 for k in keys)  # deletes
    assert {k.who.id for k in keys} == {"u-alice", "u-bob"}
    doc: Doc[Any] = Doc()
    for key in keys:
        doc.apply_update(key.update)
    text = str(doc.get(schema.CODE, type=Text))
    assert len(text) == sum(k.chars for k in keys) - sum(k.chars == 0 for k in keys)


def test_flush_windows_keep_every_keystroke_in_order_within_100_ms() -> None:
    keys = typing_hour(1, 30)
    windows = list(flush_windows(keys))
    assert [k for _, w in windows for k in w] == keys
    for written_at, window in windows:
        assert all(written_at - FLUSH <= k.ts < written_at for k in window)


def test_record_hour_coalesces_one_typist_and_not_with_zero_window(tmp_path: Path) -> None:
    keys = typing_hour(1, 60)
    one = record_hour(keys, tmp_path / "a" / "s.sqlite3", HistorySettings())
    zero = record_hour(keys, tmp_path / "b" / "s.sqlite3", HistorySettings(coalesce_seconds=0))
    off = record_hour(keys, tmp_path / "c" / "s.sqlite3", None)
    assert zero["rows"] == len(keys)
    assert one["rows"] <= len(keys) / 5  # 5/s within a 2 s window: about 10 per row
    assert off["rows"] == 0 and off["history_table_bytes"] == 0
    assert (
        one["history_update_bytes"]
        == zero["history_update_bytes"]
        >= sum(len(k.update) for k in keys)
    )
    assert one["file_growth"] > off["file_growth"] > 0
    store = SQLiteStore(tmp_path / "a" / "s.sqlite3")
    try:
        rows = store.history("history-bench")
    finally:
        store.close()
    assert [u for r in rows for u in r.updates] == [k.update for k in keys]


def test_two_at_once_share_rows_that_span_flushes(tmp_path: Path) -> None:
    keys = typing_hour(2, 60)
    path = tmp_path / "s.sqlite3"
    row = record_hour(keys, path, HistorySettings())
    # a room's row holds its 2 s window whoever typed: ~20 updates (10/s), not ~1
    assert row["rows"] <= len(keys) / 10
    assert row["entries"] > row["rows"]  # most flushes' entries extended the last row
    assert row["parts"] > row["rows"] and row["parts_bytes"] > 0
    store = SQLiteStore(path)
    try:
        rows = store.history(ROOM)
    finally:
        store.close()
    assert [u for r in rows for u in r.updates] == [k.update for k in keys]
    assert any(r.ts - r.ts_first > FLUSH for r in rows)  # rows outlive one flush window
    # the store joins by the entry's first update: a row spans at most the window + a flush
    assert all(r.ts - r.ts_first <= HistorySettings().coalesce_seconds + FLUSH for r in rows)
    assert sum(len(r.runs()) for r in rows) == row["parts"]
    seek = seek_latency(path, seeks=5)
    assert seek["rows"] == row["rows"] and seek["parts"] == row["parts"]
    assert seek["seeks"] == 7


def test_shared_rows_keep_every_sender_and_replay_to_the_typed_text(tmp_path: Path) -> None:
    keys = typing_hour(2, 60)
    path = tmp_path / "s.sqlite3"
    record_hour(keys, path, HistorySettings())
    store = SQLiteStore(path)
    try:
        rows = store.history(ROOM)
    finally:
        store.close()
    senders = [who for r in rows for who, _kind, n in r.runs() for _ in range(n)]
    assert senders == [k.who for k in keys]
    play = Playback(None)
    play.extend(rows)
    doc: Doc[Any] = Doc()
    for key in keys:
        doc.apply_update(key.update)
    assert play.files_at(None)[schema.entry_path(doc)] == str(doc.get(schema.CODE, type=Text))
