"""The pure parts of the history record: update keys, who-and-when over Redis, and
which rows coalesce."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Text

from rooms.history import (
    AI_WHO,
    SERVER,
    HistoryEntry,
    HistoryRow,
    HistorySettings,
    Who,
    coalesce,
    coalesce_rows,
    pack_origin,
    unpack_origin,
    update_key,
)

ALICE = Who("u-a", "Alice", "editor")
BOB = Who("u-b", "Bob", "editor")


def keystroke(doc: Doc[Any], ch: str) -> bytes:
    before = doc.get_state()
    text = doc.get("code", type=Text)
    text.insert(len(text), ch)
    return doc.get_update(before)


def test_update_key_names_the_first_struct_or_the_delete_set() -> None:
    doc: Doc[Any] = Doc()
    first, second = keystroke(doc, "a"), keystroke(doc, "é")
    assert update_key(first) == (doc.client_id, 0)
    assert update_key(second) == (doc.client_id, 1)
    before = doc.get_state()
    del doc.get("code", type=Text)[0:1]
    deleted = doc.get_update(before)
    key = update_key(deleted)
    assert isinstance(key, str) and key.startswith("d:") and key == update_key(deleted)
    assert update_key(b"\xff\xff") is None


def test_origin_round_trips_and_garbage_is_refused() -> None:
    packed = pack_origin(1700000000.123456, Who("u-1", "Zoë 😀", "owner"), "chat")
    assert unpack_origin(packed) == (1700000000.123456, Who("u-1", "Zoë 😀", "owner"), "chat")
    assert unpack_origin(pack_origin(1.0, AI_WHO, "ai")) == (1.0, AI_WHO, "ai")
    for bad in (b"", b"\xff\xfe", b"1.0\x00edit\x00a\x00b", b"nan\x00edit\x00a\x00b\x00c",
                b"1.0\x00hack\x00a\x00b\x00c"):  # fmt: skip
        assert unpack_origin(bad) is None


def entry(who: Who, ts: float, kind: str = "edit") -> HistoryEntry:
    return HistoryEntry(ts, ts, who, kind, [f"{who.id}@{ts}".encode()])


def test_one_persons_updates_coalesce_within_the_window() -> None:
    settings = HistorySettings(coalesce_seconds=2.0, coalesce_updates=3)
    entries: list[HistoryEntry] = []
    for e in (entry(ALICE, 0.0), entry(ALICE, 1.0), entry(BOB, 1.5), entry(BOB, 1.6, "chat"),
              entry(ALICE, 1.7), entry(ALICE, 1.8), entry(ALICE, 1.9), entry(ALICE, 2.0),
              entry(ALICE, 5.0)):  # fmt: skip
        coalesce(entries, e, settings)
    shape = [(e.who, e.kind, e.ts_first, e.ts, len(e.updates)) for e in entries]
    assert shape == [
        (ALICE, "edit", 0.0, 1.0, 2),
        (BOB, "edit", 1.5, 1.5, 1),
        (BOB, "chat", 1.6, 1.6, 1),
        (ALICE, "edit", 1.7, 1.9, 3),  # three updates at most
        (ALICE, "edit", 2.0, 2.0, 1),
        (ALICE, "edit", 5.0, 5.0, 1),  # past the window
    ]


def row(seq: int, who: Who, ts: float, kind: str = "edit") -> HistoryRow:
    return HistoryRow(seq, ts, ts, who, kind, [f"{seq}".encode()])


def test_coalesce_rows_merges_closed_runs_and_says_what_is_final() -> None:
    settings = HistorySettings(coalesce_seconds=2.0, coalesce_updates=10)
    rows = [row(1, ALICE, 0.0), row(2, ALICE, 0.5), row(3, ALICE, 1.0), row(4, BOB, 1.1),
            row(5, SERVER, 1.2, "run"), row(6, SERVER, 1.3, "run"), row(7, ALICE, 3.0),
            row(9, ALICE, 9.5)]  # fmt: skip
    merges, final = coalesce_rows(rows, settings, now=10.0)
    assert [(remove, r.seq, r.ts_first, r.ts, r.updates) for remove, r in merges] == [
        ([1, 2, 3], 3, 0.0, 1.0, [b"1", b"2", b"3"]),
        ([5, 6], 6, 1.2, 1.3, [b"5", b"6"]),
    ]
    # Row 9 is younger than the window: left for later, and row 7's run may grow.
    assert final == 6
    assert coalesce_rows([row(1, ALICE, 9.0)], settings, now=10.0) == ([], 0)
