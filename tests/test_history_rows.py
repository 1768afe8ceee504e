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
    joined_parts,
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


def test_updates_coalesce_within_the_window_whoever_sent_them() -> None:
    """Two people typing at once share rows (each update keeps its sender in ``parts``)
    rather than alternate one row each."""
    settings = HistorySettings(coalesce_seconds=2.0, coalesce_updates=4)
    entries: list[HistoryEntry] = []
    for e in (entry(ALICE, 0.0), entry(ALICE, 1.0), entry(BOB, 1.5), entry(BOB, 1.6, "chat"),
              entry(ALICE, 1.7), entry(ALICE, 1.8), entry(BOB, 5.0)):  # fmt: skip
        coalesce(entries, e, settings)
    shape = [(e.who, e.kind, e.ts_first, e.ts, len(e.updates), e.parts) for e in entries]
    assert shape == [
        (ALICE, "edit", 0.0, 1.6, 4, ((ALICE, "edit", 2), (BOB, "edit", 1), (BOB, "chat", 1))),
        (ALICE, "edit", 1.7, 1.8, 2, ()),  # four updates at most: a new entry
        (BOB, "edit", 5.0, 5.0, 1, ()),  # past the window
    ]
    assert entries[0].join_seconds == 2.0 and entries[0].join_updates == 4


def test_a_row_splits_into_its_parts() -> None:
    parts = joined_parts(((ALICE, "edit", 1),), ((ALICE, "edit", 2), (BOB, "chat", 1)))
    assert parts == ((ALICE, "edit", 3), (BOB, "chat", 1))
    assert joined_parts(((ALICE, "edit", 1),), ((ALICE, "edit", 1),)) == ()  # one run
    row = HistoryRow(7, 1.0, 2.0, ALICE, "edit", [b"1", b"2", b"3", b"4"], parts)
    assert [(r.seq, r.who, r.kind, r.updates) for r in row.split()] == [
        (7, ALICE, "edit", [b"1", b"2", b"3"]),
        (7, BOB, "chat", [b"4"]),
    ]
    assert HistoryRow(8, 1.0, 2.0, BOB, "edit", [b"x"]).split()[0].who == BOB


def test_a_runs_updates_are_rows_of_their_own() -> None:
    """Queued, running, the result: each a moment to scrub to, never folded into edits."""
    settings = HistorySettings(coalesce_seconds=2.0, coalesce_updates=10)
    entries: list[HistoryEntry] = []
    for e in (entry(ALICE, 0.0), entry(SERVER, 0.1, "run"), entry(SERVER, 0.2, "run"),
              entry(ALICE, 0.3), entry(ALICE, 0.4)):  # fmt: skip
        coalesce(entries, e, settings)
    assert [(e.who, e.kind, len(e.updates), e.join_seconds) for e in entries] == [
        (ALICE, "edit", 1, 2.0),
        (SERVER, "run", 1, 0.0),
        (SERVER, "run", 1, 0.0),
        (ALICE, "edit", 2, 2.0),
    ]
