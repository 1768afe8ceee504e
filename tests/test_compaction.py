"""Compaction (``rooms.persistence.compact_room``) and the ``RoomWriter`` that drives it.

The invariant under test: folding the log into a snapshot never loses an update.
In particular an update the room's document holds only as *pending* (its
dependencies never arrived) is left out of ``Doc.get_update()``, so compaction
must carry it over by other means.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import mongomock
import pytest
from pycrdt import Doc, Map, Text, get_state, merge_updates

from crdt.updates import decode_state_vector, uncovered
from rooms.history import HistoryBase, HistoryEntry, HistoryRow
from rooms.mongo_store import MongoStore
from rooms.observer import RoomObserver
from rooms.persistence import PersistenceSettings, RoomWriter, StoreWorker, compact_room
from rooms.sqlite_store import SQLiteStore
from rooms.store import RoomInfo, RoomSummary, Store, StoredRoom, StoreError

ROOM = "room"


@pytest.fixture(params=["sqlite", "mongomock"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "rooms.db")
    else:
        s = MongoStore(mongomock.MongoClient(), "codementor_test")
    yield s
    s.close()


# --- helpers ---------------------------------------------------------------------


class Editor:
    """A client document that records the update of every transaction."""

    def __init__(self, client_id: int, base: Sequence[bytes] = ()) -> None:
        self.doc: Doc[Any] = Doc(client_id=client_id)
        for update in base:
            self.doc.apply_update(update)
        self.text = self.doc.get("code", type=Text)
        self.updates: list[bytes] = []
        self.doc.observe(lambda event: self.updates.append(event.update))

    def edit(self, fn: Callable[[Text], object]) -> bytes:
        before = len(self.updates)
        fn(self.text)
        assert len(self.updates) == before + 1
        return self.updates[-1]

    def append(self, s: str) -> bytes:
        return self.edit(lambda t: t.__iadd__(s))


def text_of(*updates: bytes) -> str:
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return str(doc.get("code", type=Text))


def doc_from_store(store: Store) -> Doc[Any]:
    stored = store.load(ROOM)
    doc: Doc[Any] = Doc()
    if stored.snapshot is not None:
        doc.apply_update(stored.snapshot)
    for update in stored.updates:
        doc.apply_update(update)
    return doc


def compact_from(store: Store, server: Doc[Any], upto: int) -> None:
    compact_room(store, ROOM, server.get_update(), server.get_state(), upto)


# --- (a) the normal case ---------------------------------------------------------


def test_compaction_keeps_the_text_and_empties_the_log(store: Store) -> None:
    alice = Editor(1)
    server: Doc[Any] = Doc()
    seq = 0
    for chunk in ["def f():\n", "    return 'é😀'\n", "\n# done"]:
        update = alice.append(chunk)
        server.apply_update(update)
        seq = store.append(ROOM, [update])
    del_update = alice.edit(lambda t: t.__delitem__(slice(0, 4)))
    server.apply_update(del_update)
    seq = store.append(ROOM, [del_update])
    expected = str(alice.text)

    compact_from(store, server, seq)

    stored = store.load(ROOM)
    assert stored.updates == []
    assert stored.snapshot is not None
    assert stored.snapshot_upto == seq == stored.last_seq
    assert text_of(stored.snapshot) == expected == str(server.get("code", type=Text))


def test_compaction_keeps_batches_after_upto(store: Store) -> None:
    alice = Editor(1)
    server: Doc[Any] = Doc()
    u1 = alice.append("one ")
    server.apply_update(u1)
    s1 = store.append(ROOM, [u1])
    u2 = alice.append("two")
    s2 = store.append(ROOM, [u2])  # stored, not yet in the snapshot being written
    compact_from(store, server, s1)
    stored = store.load(ROOM)
    assert stored.snapshot_upto == s1
    assert stored.updates == [u2]
    assert stored.last_seq == s2
    assert str(doc_from_store(store).get("code", type=Text)) == "one two"


def test_compacting_twice(store: Store) -> None:
    alice = Editor(1)
    server: Doc[Any] = Doc()
    for round_ in range(2):
        seq = 0
        for i in range(3):
            update = alice.append(f"[{round_}.{i}]")
            server.apply_update(update)
            seq = store.append(ROOM, [update])
        compact_from(store, server, seq)
        stored = store.load(ROOM)
        assert stored.updates == []
        assert stored.snapshot is not None
        assert text_of(stored.snapshot) == str(alice.text)
    assert str(alice.text) == "[0.0][0.1][0.2][1.0][1.1][1.2]"


# --- (b) updates whose dependencies are missing ----------------------------------


def same_client_follow_up() -> tuple[bytes, bytes]:
    """u2 is alice's second edit: it depends on her first, u1."""
    alice = Editor(1)
    u1 = alice.append("hello")
    u2 = alice.append(" world")
    return u1, u2


def other_client_insert() -> tuple[bytes, bytes]:
    """u2 is bob's insert after alice's text: its left origin is in u1."""
    alice = Editor(1)
    u1 = alice.append("hello")
    bob = Editor(2, [u1])
    u2 = bob.edit(lambda t: t.insert(5, " world"))
    return u1, u2


def other_client_delete() -> tuple[bytes, bytes]:
    """u2 is bob deleting part of alice's text: a delete set for items in u1."""
    alice = Editor(1)
    u1 = alice.append("hello world")
    bob = Editor(2, [u1])
    u2 = bob.edit(lambda t: t.__delitem__(slice(0, 6)))
    return u1, u2


MISSING_DEPENDENCY_CASES = [
    pytest.param(same_client_follow_up, id="same-client-follow-up"),
    pytest.param(other_client_insert, id="other-client-insert"),
    pytest.param(other_client_delete, id="other-client-delete"),
]


@pytest.mark.parametrize("make", MISSING_DEPENDENCY_CASES)
def test_pending_update_survives_compaction(
    store: Store, make: Callable[[], tuple[bytes, bytes]]
) -> None:
    u1, u2 = make()
    expected = text_of(u1, u2)
    server: Doc[Any] = Doc()
    server.apply_update(u2)  # u1 never arrived: u2 stays pending in the server doc
    assert str(server.get("code", type=Text)) == ""
    seq = store.append(ROOM, [u2])

    compact_from(store, server, seq)

    fresh = doc_from_store(store)
    fresh.apply_update(u1)  # the missing dependency finally arrives
    assert str(fresh.get("code", type=Text)) == expected


@pytest.mark.parametrize("make", MISSING_DEPENDENCY_CASES)
def test_pending_update_survives_two_compactions(
    store: Store, make: Callable[[], tuple[bytes, bytes]]
) -> None:
    """The second compaction must also carry over what the first snapshot preserved."""
    u1, u2 = make()
    expected = text_of(u1, u2)
    server: Doc[Any] = Doc()
    server.apply_update(u2)
    compact_from(store, server, store.append(ROOM, [u2]))
    # More, unrelated traffic, then another compaction while u1 is still missing.
    other: Doc[Any] = Doc(client_id=3)
    other.get("notes", type=Text).insert(0, "unrelated")
    note = other.get_update()
    server.apply_update(note)
    compact_from(store, server, store.append(ROOM, [note]))

    fresh = doc_from_store(store)
    fresh.apply_update(u1)
    assert str(fresh.get("code", type=Text)) == expected
    assert str(fresh.get("notes", type=Text)) == "unrelated"


@pytest.mark.parametrize("make", MISSING_DEPENDENCY_CASES)
def test_pending_update_integrated_later_compacts_normally(
    store: Store, make: Callable[[], tuple[bytes, bytes]]
) -> None:
    u1, u2 = make()
    expected = text_of(u1, u2)
    server: Doc[Any] = Doc()
    server.apply_update(u2)
    s2 = store.append(ROOM, [u2])
    server.apply_update(u1)
    assert str(server.get("code", type=Text)) == expected
    s1 = store.append(ROOM, [u1])
    assert s1 > s2
    compact_from(store, server, s1)
    stored = store.load(ROOM)
    assert stored.updates == []
    assert stored.snapshot is not None
    assert text_of(stored.snapshot) == expected


@pytest.mark.parametrize("make", MISSING_DEPENDENCY_CASES)
def test_uncovered_keeps_what_a_pending_update_holds(
    make: Callable[[], tuple[bytes, bytes]],
) -> None:
    """The predicate compact_room relies on: a pending update is never "covered",
    and what it reports, merged into the document's state, restores the update."""
    u1, u2 = make()
    server: Doc[Any] = Doc()
    server.apply_update(u2)
    part = uncovered(u2, server.get_state())
    assert part is not None
    fresh: Doc[Any] = Doc()
    fresh.apply_update(merge_updates(server.get_update(), part))
    fresh.apply_update(u1)
    full: Doc[Any] = Doc()
    full.apply_update(u1)
    full.apply_update(u2)
    assert str(fresh.get("code", type=Text)) == str(full.get("code", type=Text))


def test_uncovered_is_none_for_an_integrated_insert() -> None:
    a: Doc[Any] = Doc()
    text = a.get("code", type=Text)
    updates: list[bytes] = []
    a.observe(lambda e: updates.append(e.update))
    text += "hello"
    text += " world"
    server: Doc[Any] = Doc()
    for u in updates:
        server.apply_update(u)
    assert all(uncovered(u, server.get_state()) is None for u in updates)


# --- (c) RoomWriter end to end ---------------------------------------------------


class RecordingObserver(RoomObserver):
    def __init__(self) -> None:
        self.flushes: list[int] = []
        self.failures = 0
        self.compactions = 0

    def flushed(self, seconds: float, updates: int) -> None:
        self.flushes.append(updates)

    def flush_failed(self) -> None:
        self.failures += 1

    def compacted(self, seconds: float) -> None:
        self.compactions += 1


class FlakyStore:
    """Delegates to a real store, but ``append`` raises ``StoreError`` ``failures`` times."""

    def __init__(self, inner: Store, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.attempts = 0

    def load(self, room: str) -> StoredRoom:
        return self.inner.load(room)

    def append(self, room: str, updates: Sequence[bytes]) -> int:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise StoreError("store is down")
        return self.inner.append(room, updates)

    def append_many(
        self,
        batches: Mapping[str, Sequence[bytes]],
        history: Mapping[str, Sequence[HistoryEntry]] | None = None,
    ) -> dict[str, int]:
        # Through ``append``, so subclasses' failure and blocking behaviour applies.
        seqs = {room: self.append(room, updates) for room, updates in batches.items()}
        if history:
            self.inner.append_many({}, history)
        return seqs

    def history(self, room: str, after: int = 0, limit: int | None = None) -> list[HistoryRow]:
        return self.inner.history(room, after, limit)

    def history_base(self, room: str) -> HistoryBase | None:
        return self.inner.history_base(room)

    def rewrite_history(
        self,
        room: str,
        remove: Sequence[int],
        add: Sequence[HistoryRow],
        base: HistoryBase | None = None,
    ) -> None:
        self.inner.rewrite_history(room, remove, add, base)

    def history_size(self, room: str) -> tuple[int, int, float | None]:
        return self.inner.history_size(room)

    def compact(self, room: str, snapshot: bytes, upto: int) -> None:
        self.inner.compact(room, snapshot, upto)

    def create_room(self, info: RoomInfo) -> bool:
        return self.inner.create_room(info)

    def room_info(self, room: str) -> RoomInfo | None:
        return self.inner.room_info(room)

    def update_room_info(self, room: str, **fields: Any) -> None:
        self.inner.update_room_info(room, **fields)

    def rotated_since(self, since: float) -> dict[str, float]:
        return self.inner.rotated_since(since)

    def list_rooms(self, after: str = "", limit: int = 100) -> list[RoomSummary]:
        return self.inner.list_rooms(after, limit)

    def import_room(
        self,
        info: RoomInfo,
        snapshot: bytes,
        history: Sequence[HistoryRow],
        base: HistoryBase | None = None,
    ) -> bool:
        return self.inner.import_room(info, snapshot, history, base)

    def delete_room(self, room: str) -> bool:
        return self.inner.delete_room(room)

    def idle_rooms(self, before: float, limit: int) -> list[str]:
        return self.inner.idle_rooms(before, limit)

    def owned_rooms(self, owner: str, since: float = 0.0) -> tuple[int, float | None]:
        return self.inner.owned_rooms(owner, since)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()


class Harness:
    """A server-side room document whose every update goes to a RoomWriter."""

    def __init__(
        self,
        store: Store,
        settings: PersistenceSettings,
        preload: Sequence[bytes] = (),
        doc: Doc[Any] | None = None,
    ) -> None:
        self.store = store
        self.doc = doc if doc is not None else Doc()
        for update in preload:  # what loading the room applied, before anyone observes
            self.doc.apply_update(update)
        self.text = self.doc.get("code", type=Text)
        self.worker = StoreWorker(store)
        self.observer = RecordingObserver()
        self.durable: list[bytes] = []
        self.durable_event = asyncio.Event()
        self.writer = RoomWriter(
            ROOM,
            self.doc,
            store.load(ROOM),
            self.worker,
            settings,
            self.observer,
            self._on_durable,
        )
        self.doc.observe(lambda event: self.writer.add(event.update))

    def _on_durable(self, state_vector: bytes) -> None:
        self.durable.append(state_vector)
        self.durable_event.set()

    async def wait_durable(self, count: int) -> None:
        """Wait (at most 10 s) until ``on_durable`` has been called ``count`` times."""
        async with asyncio.timeout(10):
            while len(self.durable) < count:
                self.durable_event.clear()
                await self.durable_event.wait()

    def stored_text(self) -> str:
        return str(doc_from_store(self.store).get("code", type=Text))


def settings(**overrides: float) -> PersistenceSettings:
    base: dict[str, float] = {
        "durability_window": 0.005,
        "compact_updates": 1000,
        "compact_bytes": 10**9,
        "shutdown_flush_timeout": 5.0,
    }
    base.update(overrides)
    return PersistenceSettings(**base)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_flush_writes_one_batch_and_reports_the_state_vector(store: Store) -> None:
    h = Harness(store, settings())
    for chunk in ["a", "é", "😀", "b"]:
        h.text += chunk
    assert h.writer.pending == 4
    assert await h.writer.flush()
    assert h.writer.pending == 0
    assert h.observer.flushes == [4]
    stored = store.load(ROOM)
    assert len(stored.updates) == 4
    assert stored.last_seq >= 1
    assert h.stored_text() == "aé😀b"
    assert h.durable == [h.doc.get_state()]
    # The state vector reported durable covers everything that was stored.
    covered = decode_state_vector(h.durable[0])
    assert all(
        all(covered.get(c, 0) >= k for c, k in decode_state_vector(get_state(u)).items())
        for u in stored.updates
    )
    assert await h.writer.flush()  # nothing pending: a no-op
    assert h.observer.flushes == [4]
    assert h.durable == [h.doc.get_state()]
    await h.worker.close()


@pytest.mark.anyio
async def test_timer_flushes_after_the_durability_window(store: Store) -> None:
    h = Harness(store, settings())
    h.writer.start()
    h.text += "typed"
    await h.wait_durable(1)
    assert h.stored_text() == "typed"
    h.text += " more"
    await h.wait_durable(2)
    assert h.stored_text() == "typed more"
    assert decode_state_vector(h.durable[-1]) == decode_state_vector(h.doc.get_state())
    assert await h.writer.close()
    await h.worker.close()


@pytest.mark.anyio
async def test_update_count_threshold_triggers_compaction(store: Store) -> None:
    h = Harness(store, settings(compact_updates=3))
    h.text += "one "
    h.text += "two "
    assert await h.writer.flush()
    assert h.observer.compactions == 0
    assert store.load(ROOM).snapshot is None
    h.text += "three"
    assert await h.writer.flush()  # 3 updates in the log: compact
    assert h.observer.compactions == 1
    stored = store.load(ROOM)
    assert stored.updates == []
    assert stored.snapshot is not None
    assert text_of(stored.snapshot) == "one two three"
    # The count restarts after compaction.
    h.text += "!"
    assert await h.writer.flush()
    assert h.observer.compactions == 1
    assert len(store.load(ROOM).updates) == 1
    assert h.stored_text() == "one two three!"
    await h.worker.close()


class MisencodingDoc(Doc[Any]):
    """A document whose full encoding leaves out its last change: what a yrs bug (seen
    with a fuzzed, hostile update) would hand compaction."""

    stale: bytes | None = None  # None: encode faithfully

    def get_update(self, state: bytes | None = None) -> bytes:
        if state is None and self.stale is not None:
            return self.stale
        return super().get_update(state)


@pytest.mark.anyio
async def test_compaction_is_refused_when_the_encoding_differs_from_the_document(
    store: Store,
) -> None:
    doc = MisencodingDoc()
    h = Harness(store, settings(compact_updates=3), doc=doc)
    h.text += "one "
    doc.stale = Doc.get_update(doc)  # the encoding misses everything after this
    h.text += "two "
    h.text += "three"
    assert await h.writer.flush()  # 3 updates: compaction is tried, and refused
    assert h.observer.compactions == 0
    stored = store.load(ROOM)
    assert stored.snapshot is None and len(stored.updates) == 3  # the log stays whole
    assert h.stored_text() == "one two three"
    # The next attempt waits for as much history again, not the next flush.
    h.text += "!"
    assert await h.writer.flush()
    assert len(store.load(ROOM).updates) == 4
    # With a faithful encoding, compaction goes ahead.
    doc.stale = None
    h.text += "?"
    h.text += "."
    assert await h.writer.flush()
    assert h.observer.compactions == 1
    assert store.load(ROOM).updates == []
    assert h.stored_text() == "one two three!?."
    await h.worker.close()


@pytest.mark.anyio
async def test_compaction_compares_state_vectors_by_value(store: Store) -> None:
    """yrs writes a state vector's clients in no fixed order: a room that first saw a
    small client id and then a larger one encodes them the other way round from a fresh
    copy of itself. Compared as bytes, that refused every compaction of such rooms
    (seen in the server: the meta write at creation, then a writer)."""
    h = Harness(store, settings(compact_updates=3))
    server: Doc[Any] = Doc(client_id=70733227773274)
    server.get("meta", type=Map)["mode"] = "pair"
    h.doc.apply_update(server.get_update())
    writer = Editor(5796844669695366, [h.doc.get_update()])
    for letter in "abc":
        h.doc.apply_update(writer.append(letter))
    fresh: Doc[Any] = Doc()
    fresh.apply_update(h.doc.get_update())
    assert fresh.get_state() != h.doc.get_state()  # the same vector, written differently
    assert await h.writer.flush()  # 4 updates: compaction
    assert h.observer.compactions == 1
    assert store.load(ROOM).updates == []
    assert h.stored_text() == "abc"
    await h.worker.close()


@pytest.mark.anyio
async def test_byte_threshold_triggers_compaction(store: Store) -> None:
    h = Harness(store, settings(compact_bytes=200))
    h.text += "short"
    assert await h.writer.flush()
    assert h.observer.compactions == 0
    h.text += "x" * 300
    assert await h.writer.flush()
    assert h.observer.compactions == 1
    stored = store.load(ROOM)
    assert stored.updates == []
    assert h.stored_text() == "short" + "x" * 300
    await h.worker.close()


@pytest.mark.anyio
async def test_log_loaded_from_the_store_counts_towards_the_threshold(store: Store) -> None:
    seed = Editor(9)
    for chunk in ["a", "b"]:
        store.append(ROOM, [seed.append(chunk)])
    h = Harness(store, settings(compact_updates=3), preload=store.load(ROOM).updates)
    assert h.writer.pending == 0
    h.text += "c"
    assert await h.writer.flush()
    assert h.observer.compactions == 1
    assert h.stored_text() == "abc"
    await h.worker.close()


@pytest.mark.anyio
async def test_failed_append_keeps_the_batch_and_a_later_flush_stores_it(store: Store) -> None:
    flaky = FlakyStore(store, failures=2)
    h = Harness(flaky, settings())
    h.text += "first "
    h.text += "second "
    assert not await h.writer.flush()
    assert h.writer.pending == 2
    assert h.observer.failures == 1
    assert h.durable == []
    assert store.load(ROOM).is_empty
    h.text += "third"  # arrives while the store is down
    assert not await h.writer.flush()
    assert h.writer.pending == 3
    assert h.durable == []
    assert await h.writer.flush()
    assert h.writer.pending == 0
    assert flaky.attempts == 3
    stored = store.load(ROOM)
    assert len(stored.updates) == 3
    assert h.stored_text() == "first second third" == str(h.text)
    assert h.durable == [h.doc.get_state()]
    await h.worker.close()


@pytest.mark.anyio
async def test_timer_retries_a_failing_store_until_it_succeeds(store: Store) -> None:
    flaky = FlakyStore(store, failures=3)
    h = Harness(flaky, settings())
    h.writer.start()
    h.text += "survives "
    h.text += "outage"
    await h.wait_durable(1)
    assert h.observer.failures == 3
    assert h.observer.flushes == [2]
    assert h.stored_text() == "survives outage"
    assert await h.writer.close()
    await h.worker.close()


@pytest.mark.anyio
async def test_failing_store_with_compaction_loses_nothing(store: Store) -> None:
    flaky = FlakyStore(store, failures=1)
    h = Harness(flaky, settings(compact_updates=2))
    h.text += "a"
    assert not await h.writer.flush()
    h.text += "b"
    assert await h.writer.flush()  # both updates in one batch, then compaction
    assert h.observer.compactions == 1
    h.text += "c"
    assert await h.writer.flush()
    assert h.stored_text() == "abc"
    await h.worker.close()


@pytest.mark.anyio
async def test_close_flushes_what_is_left(store: Store) -> None:
    h = Harness(store, settings(durability_window=60.0))
    h.writer.start()
    h.text += "unsaved"
    assert await h.writer.close()  # does not wait for the 60 s window
    assert h.stored_text() == "unsaved"
    assert len(h.durable) == 1
    await h.worker.close()


@pytest.mark.anyio
async def test_close_gives_up_on_a_dead_store_but_keeps_the_batch(store: Store) -> None:
    flaky = FlakyStore(store, failures=10**6)
    h = Harness(flaky, settings(shutdown_flush_timeout=0.05))
    h.text += "at risk"
    assert not await h.writer.close()
    assert h.writer.pending == 1
    assert store.load(ROOM).is_empty
    flaky.failures = 0
    assert await h.writer.flush()
    assert h.stored_text() == "at risk"
    await h.worker.close()


@pytest.mark.anyio
async def test_writer_compaction_preserves_a_pending_update(store: Store) -> None:
    u1, u2 = other_client_insert()
    h = Harness(store, settings(compact_updates=1))
    h.doc.apply_update(u2)  # pending: u1 is missing
    assert h.writer.pending == 0  # pycrdt emits no event for a pending update...
    h.writer.add(u2)  # ...so the room hands the received bytes to the writer itself
    assert await h.writer.flush()
    assert h.observer.compactions == 1
    fresh = doc_from_store(store)
    fresh.apply_update(u1)
    assert str(fresh.get("code", type=Text)) == "hello world"
    await h.worker.close()


class BlockingStore(FlakyStore):
    """``append`` blocks (on the store thread) until the test releases it."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner, failures=0)
        self.entered = threading.Event()
        self.release = threading.Event()

    def append(self, room: str, updates: Sequence[bytes]) -> int:
        self.entered.set()
        if not self.release.wait(10):
            raise StoreError("test never released the append")
        return super().append(room, updates)


@pytest.mark.anyio
async def test_close_during_an_in_flight_write_loses_and_duplicates_nothing(
    store: Store,
) -> None:
    blocking = BlockingStore(store)
    h = Harness(blocking, settings())
    h.writer.start()
    h.text += "in flight"
    assert await asyncio.to_thread(blocking.entered.wait, 10)
    h.text += ", then more"  # added while the first batch is being written
    closing = asyncio.create_task(h.writer.close())
    blocking.release.set()
    assert await asyncio.wait_for(closing, 10)
    stored = store.load(ROOM)
    assert len(stored.updates) == 2  # each update stored exactly once
    assert h.stored_text() == "in flight, then more"
    assert blocking.attempts == 2
    await h.worker.close()
