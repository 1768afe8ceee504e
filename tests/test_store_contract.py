"""One contract suite for every ``rooms.store.Store`` implementation.

Backends:

- ``sqlite``: ``SQLiteStore`` on a file under ``tmp_path`` (always);
- ``mongomock``: ``MongoStore`` over ``mongomock.MongoClient()`` (always; this is how
  the Mongo code paths run in CI, where there is no MongoDB server);
- ``mongodb``: ``MongoStore.from_url`` against ``$CODEMENTOR_TEST_MONGO_URL``, with a
  fresh database per test that is dropped afterwards (skipped when the variable is unset).
"""

from __future__ import annotations

import dataclasses
import os
import random
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mongomock
import pymongo
import pytest
from pycrdt import Doc, Map, Text

import rooms.mongo_store
from crdt.offsets import codepoint_to_utf8
from rooms.history import SERVER, HistoryBase, HistoryEntry, HistoryRow, Who
from rooms.mongo_store import MongoStore
from rooms.sqlite_store import SQLiteStore
from rooms.store import (
    CorruptDataError,
    RoomInfo,
    Store,
    StoredRoom,
    StoreError,
    decode_batch,
    encode_batch,
)

MONGO_URL_ENV = "CODEMENTOR_TEST_MONGO_URL"


class Backend:
    """Opens a store over some persistent data, and writes raw bytes behind its back."""

    name: str
    store: Store

    def reopen(self) -> Store:
        """Close the store and open a new one over the same data."""
        self.store.close()
        self.store = self._open()
        return self.store

    def _open(self) -> Store:
        raise NotImplementedError

    def another(self) -> Store:
        """A second store over the same data, as another instance or worker has."""
        return self._open()

    def put_raw_batch(self, room: str, seq: int, data: bytes) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        self.store.close()


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "nested" / "rooms.db"
        self.store = self._open()

    def _open(self) -> Store:
        return SQLiteStore(self.path)

    def put_raw_batch(self, room: str, seq: int, data: bytes) -> None:
        db = sqlite3.connect(self.path)
        try:
            with db:
                db.execute(
                    "INSERT INTO updates (room, seq, data) VALUES (?, ?, ?)", (room, seq, data)
                )
        finally:
            db.close()


class MongomockBackend(Backend):
    name = "mongomock"

    def __init__(self) -> None:
        self.client: Any = mongomock.MongoClient()
        self.database = "codementor_test"
        self.store = self._open()

    def _open(self) -> Store:
        return MongoStore(self.client, self.database)  # the same client: data survives

    def put_raw_batch(self, room: str, seq: int, data: bytes) -> None:
        self.client[self.database]["updates"].insert_one({"room": room, "seq": seq, "data": data})

    def collection(self, name: str) -> Any:
        return self.client[self.database][name]


class MongoDBBackend(Backend):
    name = "mongodb"

    def __init__(self, url: str) -> None:
        self.database = f"codementor_test_{uuid.uuid4().hex[:12]}"
        parts = urlsplit(url)
        self.url = urlunsplit(parts._replace(path="/" + self.database))
        self.admin: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            self.url, serverSelectionTimeoutMS=5000
        )
        self.store = self._open()

    def _open(self) -> Store:
        return MongoStore.from_url(self.url)

    def put_raw_batch(self, room: str, seq: int, data: bytes) -> None:
        self.admin[self.database]["updates"].insert_one({"room": room, "seq": seq, "data": data})

    def collection(self, name: str) -> Any:
        return self.admin[self.database][name]

    def cleanup(self) -> None:
        try:
            super().cleanup()
        finally:
            self.admin.drop_database(self.database)
            self.admin.close()


@pytest.fixture(params=["sqlite", "mongomock", "mongodb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b: Backend
    if request.param == "sqlite":
        b = SQLiteBackend(tmp_path)
    elif request.param == "mongomock":
        b = MongomockBackend()
    else:
        url = os.environ.get(MONGO_URL_ENV)
        if not url:
            pytest.skip(f"real MongoDB not configured: set {MONGO_URL_ENV}=mongodb://host:port")
        b = MongoDBBackend(url)
    try:
        yield b
    finally:
        b.cleanup()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


def blob(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


# --- batch encoding --------------------------------------------------------------


def test_batch_encoding_round_trips() -> None:
    updates = [b"", b"\x00", blob(127, 1), blob(128, 2), blob(70_000, 3)]
    assert decode_batch(encode_batch(updates)) == updates
    assert decode_batch(b"") == []


@pytest.mark.parametrize("bad", [b"\x05ab", b"\x80", b"\x02\x00\x00\xff"])
def test_undecodable_batch_is_corrupt_data(bad: bytes) -> None:
    with pytest.raises(CorruptDataError):
        decode_batch(bad)
    assert issubclass(CorruptDataError, StoreError)


# --- the contract ----------------------------------------------------------------


def test_empty_room_loads_as_empty(store: Store) -> None:
    stored = store.load("nobody-here")
    assert stored == StoredRoom()
    assert stored.is_empty
    assert stored.snapshot is None
    assert stored.snapshot_upto == 0
    assert stored.last_seq == 0
    assert stored.updates == []


def test_append_returns_increasing_seqs_and_load_keeps_order(store: Store) -> None:
    batches = [
        [blob(10, 1)],
        [blob(3, 2), b"", blob(200, 3)],
        [blob(1, 4)],
        [blob(5000, 5), blob(2, 6)],
    ]
    seqs = [store.append("room", batch) for batch in batches]
    assert all(a < b for a, b in zip(seqs, seqs[1:], strict=False))
    assert seqs[0] >= 1
    stored = store.load("room")
    assert stored.snapshot is None
    assert stored.snapshot_upto == 0
    assert stored.updates == [u for batch in batches for u in batch]
    assert stored.last_seq == seqs[-1]
    assert not stored.is_empty


def test_append_many_appends_one_batch_per_room(store: Store) -> None:
    store.append("one", [blob(4, 1)])
    seqs = store.append_many({"one": [blob(5, 2), blob(6, 3)], "two": [blob(7, 4)]})
    assert set(seqs) == {"one", "two"}
    assert seqs["one"] > store.load("one").last_seq - 1 >= 1
    assert store.load("one").updates == [blob(4, 1), blob(5, 2), blob(6, 3)]
    assert store.load("one").last_seq == seqs["one"]
    assert store.load("two").updates == [blob(7, 4)]
    assert store.load("two").last_seq == seqs["two"]
    later = store.append_many({"two": [blob(8, 5)]})
    assert later["two"] > seqs["two"]
    assert store.append_many({}) == {}


def test_append_many_over_a_thousand_rooms_some_compacted(store: Store) -> None:
    rooms = [f"r{i:04d}" for i in range(1000)]  # more than one statement's worth of names
    first = store.append_many({r: [blob(3, i)] for i, r in enumerate(rooms)})
    for r in rooms[::7]:  # compacted: their updates are gone, the snapshot covers them
        store.compact(r, blob(9, 99), first[r])
    second = store.append_many({r: [blob(4, i + 5000)] for i, r in enumerate(rooms)})
    for i, r in enumerate(rooms):
        assert second[r] > first[r], r
        stored = store.load(r)
        assert stored.last_seq == second[r]
        if i % 7 == 0:
            assert stored.snapshot == blob(9, 99) and stored.updates == [blob(4, i + 5000)]
        else:
            assert stored.updates == [blob(3, i), blob(4, i + 5000)]


def test_rooms_are_isolated(store: Store) -> None:
    names = ["alpha", "beta", "gamma/ü 😀", "alpha "]
    expected: dict[str, list[bytes]] = {n: [] for n in names}
    for i in range(12):
        name = names[i % len(names)]
        update = blob(20 + i, i)
        store.append(name, [update])
        expected[name].append(update)
    store.compact("beta", b"beta-snapshot", store.load("beta").last_seq)
    for name in names:
        stored = store.load(name)
        if name == "beta":
            assert stored.snapshot == b"beta-snapshot"
            assert stored.updates == []
        else:
            assert stored.snapshot is None
            assert stored.updates == expected[name]
    assert store.load("gamma").is_empty


def test_compact_keeps_snapshot_and_later_batches(store: Store) -> None:
    s1 = store.append("r", [b"u1"])
    s2 = store.append("r", [b"u2a", b"u2b"])
    s3 = store.append("r", [b"u3"])
    store.compact("r", b"SNAP-1-2", s2)
    stored = store.load("r")
    assert stored.snapshot == b"SNAP-1-2"
    assert stored.snapshot_upto == s2
    assert stored.updates == [b"u3"]
    assert stored.last_seq == s3
    assert s1 < s2 < s3


def test_compact_everything_then_append(store: Store) -> None:
    store.append("r", [b"u1"])
    upto = store.append("r", [b"u2"])
    store.compact("r", b"SNAP", upto)
    stored = store.load("r")
    assert stored == StoredRoom(snapshot=b"SNAP", snapshot_upto=upto, updates=[], last_seq=upto)
    assert not stored.is_empty
    seq = store.append("r", [b"u3"])
    assert seq > upto
    seq2 = store.append("r", [b"u4"])
    assert seq2 > seq
    stored = store.load("r")
    assert stored.snapshot == b"SNAP"
    assert stored.updates == [b"u3", b"u4"]
    assert stored.last_seq == seq2


def test_compact_an_empty_log(store: Store) -> None:
    store.compact("fresh", b"SNAP", 0)
    stored = store.load("fresh")
    assert stored.snapshot == b"SNAP"
    assert stored.updates == []
    assert store.append("fresh", [b"u1"]) >= 1
    assert store.load("fresh").updates == [b"u1"]


def test_compact_twice(store: Store) -> None:
    s1 = store.append("r", [b"u1"])
    s2 = store.append("r", [b"u2"])
    store.compact("r", b"SNAP-A", s1)
    s3 = store.append("r", [b"u3"])
    store.compact("r", b"SNAP-B", s2)
    stored = store.load("r")
    assert stored.snapshot == b"SNAP-B"
    assert stored.snapshot_upto == s2
    assert stored.updates == [b"u3"]
    assert stored.last_seq == s3
    store.compact("r", b"SNAP-C", s3)
    s4 = store.append("r", [b"u4"])
    assert s4 > s3
    stored = store.load("r")
    assert stored.snapshot == b"SNAP-C"
    assert stored.updates == [b"u4"]


@pytest.mark.parametrize("size", [1, 16, 17, 16 * 10 + 3, 5000])
def test_snapshot_larger_than_the_chunk_size_round_trips(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(rooms.mongo_store, "CHUNK_BYTES", 16)
    store = backend.store
    first = blob(size, size)
    upto = store.append("big", [b"u1"])
    store.compact("big", first, upto)
    assert store.load("big").snapshot == first
    # A smaller second generation replaces every chunk of the first.
    second = blob(max(size // 3, 1), size + 1)
    store.compact("big", second, store.append("big", [b"u2"]))
    stored = store.load("big")
    assert stored.snapshot == second
    assert stored.updates == []
    if isinstance(backend, MongomockBackend | MongoDBBackend):
        chunks = list(backend.collection("snapshot_chunks").find({"room": "big"}))
        assert len(chunks) == -(-len(second) // 16)
        assert all(len(bytes(c["data"])) <= 16 for c in chunks)
    assert backend.reopen().load("big").snapshot == second


@pytest.mark.parametrize("bad", [b"\x05ab", b"\x80", b"\x01x\xff\xff"])
def test_corrupt_batch_raises_and_never_loads_empty(backend: Backend, bad: bytes) -> None:
    store = backend.store
    seq = store.append("r", [b"good"])
    backend.put_raw_batch("r", seq + 1, bad)
    with pytest.raises(CorruptDataError):
        store.load("r")
    # Even a room whose only batch is corrupt must not look like an empty room.
    backend.put_raw_batch("only-bad", 1, bad)
    with pytest.raises(CorruptDataError):
        store.load("only-bad")
    assert store.load("other") == StoredRoom()


def test_corrupt_batch_after_a_snapshot_raises(backend: Backend) -> None:
    store = backend.store
    upto = store.append("r", [b"u1"])
    store.compact("r", b"SNAP", upto)
    backend.put_raw_batch("r", upto + 1, b"\x7f")
    with pytest.raises(CorruptDataError):
        store.load("r")


def test_mongo_snapshot_with_a_missing_chunk_is_an_error(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not isinstance(backend, MongomockBackend | MongoDBBackend):
        pytest.skip("chunked snapshots are MongoStore-specific")
    monkeypatch.setattr(rooms.mongo_store, "CHUNK_BYTES", 4)
    store = backend.store
    store.compact("r", b"0123456789", store.append("r", [b"u"]))
    backend.collection("snapshot_chunks").delete_one({"room": "r", "i": 1})
    with pytest.raises(StoreError):
        store.load("r")


def test_ping(store: Store) -> None:
    store.ping()  # raises if the store does not answer


# --- room info --------------------------------------------------------------------


def test_room_info_round_trips_with_defaults(store: Store) -> None:
    info = RoomInfo("r", "broadcast", "go", "Loops", 100.0, 101.0)
    assert store.create_room(info)
    assert not store.create_room(RoomInfo("r", "pair"))  # the name is taken
    assert store.room_info("r") == info
    assert (info.tokens_after, info.forks) == (0.0, True)  # never rotated; forks allowed
    assert store.room_info("nobody") is None


def test_update_room_info_changes_only_what_is_given(store: Store) -> None:
    store.create_room(RoomInfo("r", "broadcast", "go", "Loops", 100.0, 101.0))
    store.create_room(RoomInfo("other", "broadcast", "go", "Other", 100.0, 101.0))
    store.update_room_info("r", forks=False)
    store.update_room_info("r", tokens_after=1_700_000_001.0)
    store.update_room_info("r", title="Loops II")
    store.update_room_info("r")  # nothing given: nothing changes
    assert store.room_info("r") == RoomInfo(
        "r", "broadcast", "go", "Loops II", 100.0, 101.0, 1_700_000_001.0, False
    )
    assert store.room_info("other") == RoomInfo("other", "broadcast", "go", "Other", 100.0, 101.0)
    store.update_room_info("r", forks=True)
    info = store.room_info("r")
    assert info is not None and info.forks is True


def test_rotated_since_lists_recently_rotated_rooms(backend: Backend) -> None:
    """How other instances learn of a rotation: one query, seen through another store."""
    store = backend.store
    for name in ("old", "new", "never"):
        store.create_room(RoomInfo(name))
    store.update_room_info("old", tokens_after=1000.0)
    store.update_room_info("new", tokens_after=2000.0)
    other = backend.another()
    try:
        assert other.rotated_since(1500.0) == {"new": 2000.0}
        assert other.rotated_since(1000.0) == {"old": 1000.0, "new": 2000.0}
        assert other.rotated_since(2000.5) == {}
        info = other.room_info("new")
        assert info is not None and info.tokens_after == 2000.0
    finally:
        if other is not store:
            other.close()


OLD_SQLITE_ROOMS = """
CREATE TABLE rooms (
    name TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    language TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
INSERT INTO rooms VALUES ('kept', 'broadcast', 'python', 'Before', 1.0, 2.0);
"""


def test_sqlite_file_of_an_older_version_is_migrated(tmp_path: Path) -> None:
    """A database made before rotation and fork settings existed: its rooms read with
    the defaults and take the new settings; opening it twice adds the columns once."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_SQLITE_ROOMS)
    db.close()
    first, second = SQLiteStore(path), SQLiteStore(path)
    try:
        assert first.room_info("kept") == RoomInfo("kept", "broadcast", "python", "Before", 1, 2)
        second.update_room_info("kept", forks=False, tokens_after=5.0)
        info = first.room_info("kept")
        assert info is not None and (info.forks, info.tokens_after) == (False, 5.0)
        assert first.rotated_since(5.0) == {"kept": 5.0}
    finally:
        first.close()
        second.close()


def test_mongo_room_written_before_the_new_fields_reads_defaults(backend: Backend) -> None:
    if not isinstance(backend, MongomockBackend | MongoDBBackend):
        pytest.skip("MongoDB documents only")
    backend.collection("rooms").insert_one(
        {"_id": "kept", "mode": "pair", "language": "go", "title": "", "created_at": 1.0,
         "updated_at": 2.0}
    )  # fmt: skip
    assert backend.store.room_info("kept") == RoomInfo("kept", "pair", "go", "", 1.0, 2.0)
    assert backend.store.rotated_since(0.0) == {}


def test_data_survives_close_and_reopen(backend: Backend) -> None:
    store = backend.store
    s1 = store.append("r", [b"u1"])
    store.compact("r", b"SNAP", s1)
    s2 = store.append("r", [b"u2", b"u3"])
    store.append("other", [b"o1"])
    before = store.load("r")

    reopened = backend.reopen()
    reopened.ping()
    after = reopened.load("r")
    assert after == before
    assert after == StoredRoom(
        snapshot=b"SNAP", snapshot_upto=s1, updates=[b"u2", b"u3"], last_seq=s2
    )
    assert reopened.load("other").updates == [b"o1"]
    assert reopened.append("r", [b"u4"]) > s2


def test_two_stores_over_the_same_data_append_in_turn(backend: Backend) -> None:
    """Two instances (or --workers) share one store: each must see the other's appends
    when it numbers its own (the SQLite store remembers sequence numbers between
    flushes, and must notice when another connection wrote)."""
    first, second = backend.store, backend.another()
    try:
        seqs: list[int] = []
        expected: list[bytes] = []
        for i in range(12):
            store = (first, second)[i % 2 if i < 6 else (i // 2) % 2]
            batch = [f"u{i}".encode()]
            seqs.append(store.append_many({"r": batch, f"only-{i % 3}": batch})["r"])
            expected += batch
            if i == 7:
                second.compact("r", b"SNAP", seqs[-1])
                expected = []
        assert seqs == sorted(set(seqs)), "two stores gave out the same sequence number"
        for store in (first, second):
            loaded = store.load("r")
            assert loaded.snapshot == b"SNAP"
            assert loaded.updates == expected
            assert loaded.last_seq == seqs[-1]
        assert first.load("only-0").updates == [b"u0", b"u3", b"u6", b"u9"]
    finally:
        second.close()


# --- real documents ----------------------------------------------------------------

ALPHABET = "abcxyz \n\té€😀🎉ü"


def random_edits(seed: int, n_clients: int = 3, n_edits: int = 60) -> tuple[list[bytes], str]:
    """Edits by several clients (inserts and deletes, non-ASCII included), each
    synced to the others, as the list of updates a server would receive."""
    rng = random.Random(seed)
    docs: list[Doc[Any]] = [Doc(client_id=100 + i) for i in range(n_clients)]
    emitted: list[list[bytes]] = [[] for _ in docs]
    for doc, sink in zip(docs, emitted, strict=True):
        doc.observe(lambda event, sink=sink: sink.append(event.update))
    updates: list[bytes] = []
    for _ in range(n_edits):
        k = rng.randrange(len(docs))
        text = docs[k].get("code", type=Text)
        current = str(text)
        if current and rng.random() < 0.3:
            i = rng.randrange(len(current))
            j = min(len(current), i + rng.randint(1, 4))
            del text[codepoint_to_utf8(current, i) : codepoint_to_utf8(current, j)]
        else:
            i = rng.randrange(len(current) + 1)
            chunk = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 5)))
            text.insert(codepoint_to_utf8(current, i), chunk)
        produced = list(emitted[k])
        assert len(produced) == 1
        updates.extend(produced)
        for other in docs:
            if other is not docs[k]:
                other.apply_update(produced[0])
        for sink in emitted:
            sink.clear()  # applying a remote update emits an event too
    texts = {str(d.get("code", type=Text)) for d in docs}
    assert len(texts) == 1
    return updates, texts.pop()


def load_doc(stored: StoredRoom) -> str:
    doc: Doc[Any] = Doc()
    if stored.snapshot is not None:
        doc.apply_update(stored.snapshot)
    for update in stored.updates:
        doc.apply_update(update)
    return str(doc.get("code", type=Text))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_real_document_round_trip(backend: Backend, seed: int) -> None:
    updates, final = random_edits(seed)
    store = backend.store
    rng = random.Random(seed)
    i = 0
    while i < len(updates):
        k = rng.randint(1, 7)
        store.append("doc", updates[i : i + k])
        i += k
    assert store.load("doc").updates == updates
    assert load_doc(store.load("doc")) == final
    assert load_doc(backend.reopen().load("doc")) == final


@pytest.mark.parametrize("seed", [4, 5])
def test_real_document_round_trip_across_compaction(backend: Backend, seed: int) -> None:
    updates, final = random_edits(seed)
    store = backend.store
    half = len(updates) // 2
    server: Doc[Any] = Doc()
    seq = 0
    for u in updates[:half]:
        seq = store.append("doc", [u])
        server.apply_update(u)
    store.compact("doc", server.get_update(), seq)
    for u in updates[half:]:
        store.append("doc", [u])
    stored = store.load("doc")
    assert stored.snapshot == server.get_update()
    assert stored.updates == updates[half:]
    assert load_doc(stored) == final
    assert load_doc(backend.reopen().load("doc")) == final


def test_real_document_with_empty_doc_update(store: Store) -> None:
    doc: Doc[Any] = Doc()
    seq = store.append("r", [doc.get_update()])
    store.compact("r", doc.get_update(), seq)
    assert load_doc(store.load("r")) == ""


# -- history ------------------------------------------------------------------------

ALICE = Who("u-alice", "Alice", "editor")
BOB = Who("u-bob", "Bob", "editor")


def typed(doc: Doc[Any], text: str) -> list[bytes]:
    """One update per character typed at the end of ``doc``'s code (a keystroke each)."""
    updates: list[bytes] = []
    code = doc.get("code", type=Text)
    for ch in text:
        before = doc.get_state()
        code.insert(len(code), ch)
        updates.append(doc.get_update(before))
    return updates


def entry(who: Who, updates: list[bytes], ts: float, kind: str = "edit") -> HistoryEntry:
    return HistoryEntry(ts, ts, who, kind, list(updates))


def replay(rows: list[HistoryRow], base: HistoryBase | None = None) -> str:
    doc: Doc[Any] = Doc()
    if base is not None:
        doc.apply_update(base.state)
    for row in rows:
        for update in row.updates:
            doc.apply_update(update)
    return str(doc.get("code", type=Text))


def test_history_is_written_with_its_batch_in_order(store: Store) -> None:
    alice: Doc[Any] = Doc()
    first, second = typed(alice, "ab"), typed(alice, "cd")
    store.append_many({"r": first}, {"r": [entry(ALICE, first, 10.0)]})
    store.append_many({"r": second}, {"r": [entry(ALICE, second, 11.0, "chat")]})
    rows = store.history("r")
    assert [(r.who, r.kind, r.ts, r.updates) for r in rows] == [
        (ALICE, "edit", 10.0, first),
        (ALICE, "chat", 11.0, second),
    ]
    assert rows[0].seq < rows[1].seq
    assert store.history("r", after=rows[0].seq) == rows[1:]
    assert store.history("r", limit=1) == rows[:1]
    assert store.history("other") == []
    assert replay(rows) == "abcd"
    count, size, oldest = store.history_size("r")
    assert (count, oldest) == (2, 10.0) and size >= sum(map(len, first + second))


def test_history_keeps_one_copy_of_an_update_two_instances_stored(backend: Backend) -> None:
    """Each instance stores what it receives: the second copy of any update is left out,
    whoever offers it and however the updates are cut into entries."""
    alice: Doc[Any] = Doc()
    bob: Doc[Any] = Doc()
    a1 = typed(alice, "hé")
    bob.apply_update(alice.get_update())
    b1 = typed(bob, "😀x")
    a2 = typed(alice, "yz")
    one, two = backend.store, backend.another()
    one.append_many({"r": a1}, {"r": [entry(ALICE, a1, 1.0)]})
    two.append_many({"r": a1 + b1}, {"r": [entry(ALICE, a1, 1.0), entry(BOB, b1, 2.0)]})
    one.append_many({"r": b1 + a2}, {"r": [entry(BOB, b1, 2.0), entry(ALICE, a2, 3.0)]})
    two.append_many({"r": a2}, {"r": [entry(ALICE, a2, 3.0)]})
    # Redis re-seeded with a full state after it lost its data: nothing new in it.
    full = alice.get_update()
    one.append_many({"r": [full]}, {"r": [entry(SERVER, [full], 4.0)]})
    rows = two.history("r")
    assert [(r.who, r.updates) for r in rows] == [(ALICE, a1), (BOB, b1), (ALICE, a2)]
    merged: Doc[Any] = Doc()
    merged.apply_update(alice.get_update())
    merged.apply_update(bob.get_update())
    assert replay(rows) == str(merged.get("code", type=Text))


def test_history_keeps_one_copy_of_a_delete(backend: Backend) -> None:
    alice: Doc[Any] = Doc()
    inserted = typed(alice, "abc")
    before = alice.get_state()
    del alice.get("code", type=Text)[0:1]
    deleted = alice.get_update(before)
    one, two = backend.store, backend.another()
    one.append_many({"r": inserted}, {"r": [entry(ALICE, inserted, 1.0)]})
    one.append_many({"r": [deleted]}, {"r": [entry(ALICE, [deleted], 2.0)]})
    two.append_many({"r": [deleted]}, {"r": [entry(ALICE, [deleted], 2.0)]})
    rows = one.history("r")
    assert [r.updates for r in rows] == [inserted, [deleted]]
    assert replay(rows) == "bc"


def test_history_dedupe_survives_a_restart(backend: Backend) -> None:
    alice: Doc[Any] = Doc()
    updates = typed(alice, "abc")
    backend.store.append_many({"r": updates}, {"r": [entry(ALICE, updates, 1.0)]})
    store = backend.reopen()
    store.append_many({"r": updates}, {"r": [entry(ALICE, updates, 1.0)]})
    assert [r.updates for r in store.history("r")] == [updates]


def test_history_survives_compaction(store: Store) -> None:
    alice: Doc[Any] = Doc()
    updates = typed(alice, "abc")
    seq = store.append_many({"r": updates}, {"r": [entry(ALICE, updates, 1.0)]})["r"]
    store.compact("r", alice.get_update(), seq)
    assert store.load("r").updates == []
    assert [r.updates for r in store.history("r")] == [updates]


def test_rewrite_history_coalesces_and_folds_into_a_base(store: Store) -> None:
    alice: Doc[Any] = Doc()
    parts = [typed(alice, "ab"), typed(alice, "cd"), typed(alice, "ef"), typed(alice, "gh")]
    for i, part in enumerate(parts):
        store.append_many({"r": part}, {"r": [entry(ALICE, part, float(i))]})
    rows = store.history("r")
    merged = HistoryRow(rows[1].seq, rows[0].ts_first, rows[1].ts, ALICE, "edit",
                        rows[0].updates + rows[1].updates)  # fmt: skip
    store.rewrite_history("r", [rows[0].seq, rows[1].seq], [merged])
    after = store.history("r")
    assert [r.seq for r in after] == [rows[1].seq, rows[2].seq, rows[3].seq]
    assert after[0] == merged and replay(after) == "abcdefgh"
    # Fold the first two rows into a base: the document as it was after them.
    folded: Doc[Any] = Doc()
    for row in after[:2]:
        for update in row.updates:
            folded.apply_update(update)
    base = HistoryBase(after[1].seq, after[1].ts, folded.get_update(), {"spans": [[4, 0]]})
    store.rewrite_history("r", [], [], base)
    assert store.history_base("r") == base
    assert store.history("r") == after[2:]
    assert replay(store.history("r"), store.history_base("r")) == "abcdefgh"
    assert store.history_base("other") is None


def test_history_viewers_room_setting_round_trips(store: Store) -> None:
    assert store.create_room(RoomInfo("h", mode="broadcast", created_at=1.0))
    info = store.room_info("h")
    assert info is not None and info.history_viewers is None
    assert not info.viewers_may_read_history  # broadcast: off by default
    store.update_room_info("h", history_viewers=True)
    info = store.room_info("h")
    assert info is not None and info.history_viewers is True and info.viewers_may_read_history
    assert RoomInfo("p").viewers_may_read_history


def joining(who: Who, updates: list[bytes], ts: float, seconds: float = 2.0) -> HistoryEntry:
    return HistoryEntry(ts, ts, who, "edit", list(updates), join_seconds=seconds, join_updates=10)


def test_a_flush_extends_the_rooms_last_row_within_its_window(backend: Backend) -> None:
    """Two people typing at once: their flushes extend one row (each update keeps its
    sender) until the window or the row's size ends it, from any instance."""
    alice: Doc[Any] = Doc()
    a1 = typed(alice, "ab")
    bob: Doc[Any] = Doc()
    bob.apply_update(alice.get_update())
    b1 = typed(bob, "c")
    a2, a3 = typed(alice, "d"), typed(alice, "efghijklmnop")
    one, two = backend.store, backend.another()
    one.append_many({"r": a1}, {"r": [joining(ALICE, a1, 1.0)]})
    one.append_many({"r": b1}, {"r": [joining(BOB, b1, 1.5)]})
    two.append_many({"r": a2 + b1}, {"r": [joining(ALICE, a2, 2.5), joining(BOB, b1, 2.6)]})
    one.append_many({"r": a3}, {"r": [joining(ALICE, a3, 2.8)]})  # 16 > 10 updates: a new row
    one.append_many({"r": []}, {"r": [joining(BOB, [], 2.9)]})  # nothing: no row
    rows = one.history("r")
    assert [(r.ts_first, r.ts, len(r.updates)) for r in rows] == [(1.0, 2.5, 4), (2.8, 2.8, 12)]
    assert rows[0].parts == ((ALICE, "edit", 2), (BOB, "edit", 1), (ALICE, "edit", 1))
    assert [(r.who, r.updates) for r in rows[0].split()] == [(ALICE, a1), (BOB, b1), (ALICE, a2)]
    assert rows[1].parts == () and rows[1].who == ALICE
    merged: Doc[Any] = Doc()
    merged.apply_update(alice.get_update())
    merged.apply_update(bob.get_update())
    assert replay(rows) == str(merged.get("code", type=Text))
    # Past the window, or with joining off, a flush starts a row.
    later = typed(alice, "q")
    one.append_many({"r": later}, {"r": [joining(ALICE, later, 9.0)]})
    assert len(one.history("r")) == 3


def test_rewrite_history_keeps_parts(store: Store) -> None:
    alice: Doc[Any] = Doc()
    a, b = typed(alice, "x"), typed(alice, "y")
    row = HistoryRow(5, 1.0, 2.0, ALICE, "edit", a + b, ((ALICE, "edit", 1), (BOB, "chat", 1)))
    store.rewrite_history("r", [], [row])
    assert store.history("r") == [row]


def test_a_row_is_named_by_the_updates_it_kept(backend: Backend) -> None:
    """An entry of two people's updates whose first sender's were stored already (by
    another instance) becomes a row of the second sender's alone."""
    alice: Doc[Any] = Doc()
    a1 = typed(alice, "a")
    bob: Doc[Any] = Doc()
    bob.apply_update(alice.get_update())
    b1 = typed(bob, "b")
    backend.store.append_many({"r": a1}, {"r": [entry(ALICE, a1, 1.0)]})
    mixed = HistoryEntry(1.0, 1.1, ALICE, "edit", a1 + b1, ((ALICE, "edit", 1), (BOB, "chat", 1)))
    backend.another().append_many({"r": a1 + b1}, {"r": [mixed]})
    rows = backend.store.history("r")
    assert [(r.who, r.kind, r.updates, r.parts) for r in rows] == [
        (ALICE, "edit", a1, ()),
        (BOB, "chat", b1, ()),
    ]


def test_no_flush_extends_a_run_row(store: Store) -> None:
    alice: Doc[Any] = Doc()
    a1, a2 = typed(alice, "a"), typed(alice, "b")
    run = HistoryEntry(1.0, 1.0, SERVER, "run", a1)  # joins nothing
    store.append_many({"r": a1}, {"r": [run]})
    store.append_many({"r": a2}, {"r": [joining(ALICE, a2, 1.1)]})
    assert [(r.who, r.kind) for r in store.history("r")] == [(SERVER, "run"), (ALICE, "edit")]


# -- listing, importing, and rooms moved between stores (.cmroom) --------------------


def test_list_rooms_pages_by_name_with_sizes(store: Store) -> None:
    for name in ("b", "a", "c"):
        assert store.create_room(RoomInfo(name, title=f"T{name}", created_at=1.0))
    alice: Doc[Any] = Doc()
    updates = typed(alice, "hello")
    store.append_many({"b": updates}, {"b": [entry(ALICE, updates, 1.0)]})
    store.append("no-info", [b"\x00\x00"])  # data without info is not listed
    listed = store.list_rooms()
    assert [s.info.name for s in listed] == ["a", "b", "c"]
    assert listed[1].info.title == "Tb" and listed[1].history_rows == 1
    assert listed[1].document_bytes >= sum(map(len, updates)) and listed[0].document_bytes == 0
    assert [s.info.name for s in store.list_rooms(limit=2)] == ["a", "b"]
    assert [s.info.name for s in store.list_rooms(after="b", limit=2)] == ["c"]
    assert store.list_rooms(after="c") == []


def build_room(store: Store, name: str) -> None:
    """A room with several files, chat, a comment, a run record and pruned history."""
    from crdt import schema

    assert store.create_room(
        RoomInfo(name, "review", "rust", "Ferris", 100.0, 200.0, 0.0, True, True, False)
    )
    doc: Doc[Any] = Doc()

    def change(who: Who, kind: str, ts: float, edit: Any) -> None:
        before = doc.get_state()
        edit()
        update = doc.get_update(before)
        store.append_many({name: [update]}, {name: [entry(who, [update], ts, kind)]})

    change(ALICE, "edit", 1.0, lambda: schema.code(doc).insert(0, "fn main() {}\n"))
    change(ALICE, "edit", 2.0, lambda: schema.files(doc).__setitem__("lib.rs", Text("pub x")))
    change(BOB, "chat", 3.0, lambda: schema.chat(doc).append(Map({"text": "hi", "ts": 3.0})))
    change(BOB, "comment", 4.0, lambda: schema.comments(doc).__setitem__(
        "c1", Map({"text": "nice", "resolved": False})))  # fmt: skip
    change(SERVER, "run", 5.0, lambda: schema.runs(doc).__setitem__(
        "r1", Map({"status": "done", "stdout": "ok\n"})))  # fmt: skip
    seq = store.load(name).last_seq
    store.compact(name, doc.get_update(), seq)  # part of the document in the snapshot
    change(ALICE, "edit", 6.0, lambda: schema.code(doc).insert(0, "// hi\n"))
    rows = store.history(name)
    folded: Doc[Any] = Doc()
    for update in rows[0].updates:
        folded.apply_update(update)
    derived = {"large_inserts": [{"seq": rows[0].seq, "chars": 13}], "people": []}
    store.rewrite_history(name, [], [], HistoryBase(rows[0].seq, 1.0, folded.get_update(), derived))


def roots(stored: StoredRoom) -> dict[str, Any]:
    from crdt import schema

    doc: Doc[Any] = Doc()
    for update in [stored.snapshot or b"", *stored.updates]:
        if update:
            doc.apply_update(update)
    getters = (schema.code, schema.meta, schema.chat, schema.comments, schema.runs,
               schema.files, schema.class_state)  # fmt: skip
    return {get.__name__: get(doc).to_py() for get in getters}


@pytest.fixture(params=["sqlite", "mongomock", "mongodb"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A second store, of every kind, to move rooms into."""
    b: Backend
    if request.param == "sqlite":
        b = SQLiteBackend(tmp_path / "target")
    elif request.param == "mongomock":
        b = MongomockBackend()
    else:
        url = os.environ.get(MONGO_URL_ENV)
        if not url:
            pytest.skip(f"real MongoDB not configured: set {MONGO_URL_ENV}=mongodb://host:port")
        b = MongoDBBackend(url)
    try:
        yield b
    finally:
        b.cleanup()


def test_a_room_moves_between_stores_whole(backend: Backend, target: Backend) -> None:
    """Export from every kind of store, import into every kind (SQLite -> Mongo and back
    included): the same document roots, history rows, base and settings."""
    from server import room_transfer

    source = backend.store
    build_room(source, "orig")
    # The target already numbers rows of its own: imported ones must not collide.
    alice: Doc[Any] = Doc()
    mine = [typed(alice, ch) for ch in "xyz"]
    for i, updates in enumerate(mine):
        target.store.append_many({"other": updates}, {"other": [entry(ALICE, updates, i)]})
    data = room_transfer.export_room(source, "orig")
    room = room_transfer.read_file(data, "copy")
    info = room_transfer.import_room(target.store, room)
    assert info.name == "copy"
    store = target.reopen()
    assert roots(store.load("copy")) == roots(source.load("orig"))
    assert roots(store.load("copy"))["code"] == "// hi\nfn main() {}\n"
    got, want = store.history("copy"), source.history("orig")
    assert [(r.ts_first, r.ts, r.who, r.kind, r.updates, r.parts) for r in got] == [
        (r.ts_first, r.ts, r.who, r.kind, r.updates, r.parts) for r in want
    ]
    assert len(got) == 5 and [r.kind for r in got] == ["edit", "chat", "comment", "run", "edit"]
    assert [r.seq for r in got] == sorted({r.seq for r in got})
    base, want_base = store.history_base("copy"), source.history_base("orig")
    assert base is not None and want_base is not None
    assert (base.ts, base.state) == (want_base.ts, want_base.state) and base.seq < got[0].seq
    shift = got[0].seq - want[0].seq
    assert base.seq == want_base.seq + shift
    assert base.derived["large_inserts"] == [{"seq": want_base.seq + shift, "chars": 13}]
    assert replay(got, base) == replay(want, want_base) == "// hi\nfn main() {}\n"
    want_info = source.room_info("orig")
    assert want_info is not None
    assert store.room_info("copy") == dataclasses.replace(want_info, name="copy")
    assert [r.updates for r in store.history("other")] == mine  # untouched
    # The imported room goes on like any other: appends, history, dedupe of copies.
    more = typed(alice, "y")
    store.append_many({"copy": more}, {"copy": [entry(BOB, more, 9.0)]})
    store.append_many({"copy": got[-1].updates}, {"copy": [entry(BOB, got[-1].updates, 9.5)]})
    after = store.history("copy")
    assert len(after) == 6 and after[-1].updates == more and after[-1].seq > got[-1].seq


def test_import_refuses_a_taken_name_and_writes_nothing(store: Store) -> None:
    from server import room_transfer

    build_room(store, "orig")
    room = room_transfer.read_file(room_transfer.export_room(store, "orig"))
    before = (store.history("orig"), store.load("orig"), store.room_info("orig"))
    with pytest.raises(room_transfer.NameTaken):
        room_transfer.import_room(store, room)
    assert (store.history("orig"), store.load("orig"), store.room_info("orig")) == before
    # A name with stored data but no info (a room older than room info) is taken too.
    store.append("old", [b"\x00\x00"])
    assert not store.import_room(RoomInfo("old"), b"\x00\x00", [], None)
    assert store.room_info("old") is None


def test_export_of_an_unknown_room_is_refused(store: Store) -> None:
    from server import room_transfer

    with pytest.raises(room_transfer.UnknownRoom):
        room_transfer.export_room(store, "nobody")


def test_an_import_that_fails_part_way_leaves_nothing(store: Store) -> None:
    """Two rows with one number: the store refuses the second after writing the room's
    info and document, and must take those back (SQLite: the transaction; Mongo: by
    removing them), leaving the name free."""
    alice: Doc[Any] = Doc()
    first, second = typed(alice, "a"), typed(alice, "b")
    rows = [
        HistoryRow(1, 1.0, 1.0, ALICE, "edit", first),
        HistoryRow(1, 2.0, 2.0, ALICE, "edit", second),
    ]
    with pytest.raises(StoreError, match="cannot import room 'half'"):
        store.import_room(RoomInfo("half"), alice.get_update(), rows)
    assert store.room_info("half") is None
    assert store.load("half").is_empty and store.history("half") == []
    assert store.list_rooms() == []
    ok = [
        HistoryRow(1, 1.0, 1.0, ALICE, "edit", first),
        HistoryRow(2, 2.0, 2.0, ALICE, "edit", second),
    ]
    assert store.import_room(RoomInfo("half"), alice.get_update(), ok)
    assert [r.updates for r in store.history("half")] == [first, second]


# --- the life of a room: deletion, idle rooms, owners ------------------------------


def rows_of(backend: Backend, room: str) -> dict[str, int]:
    """Every stored row that names ``room``, by table or collection, found by looking at
    every table (not a list the store keeps): a table added later is checked too."""
    found: dict[str, int] = {}
    if isinstance(backend, SQLiteBackend):
        db = sqlite3.connect(backend.path)
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                column = "room" if "room" in columns else "name" if "name" in columns else None
                if column is None:
                    continue
                (n,) = db.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (room,))
                if n[0]:
                    found[table] = n[0]
        finally:
            db.close()
        return found
    assert isinstance(backend, MongomockBackend | MongoDBBackend)
    db = backend.collection("rooms").database
    for name in db.list_collection_names():
        n = sum(
            1
            for doc in db[name].find()
            if doc.get("room") == room
            or doc.get("_id") == room
            or str(doc.get("_id", "")).startswith(f"{room}\0")
        )
        if n:
            found[name] = n
    return found


def filled_room(store: Store, name: str, ts: float = 1.0) -> None:
    """A room with something in every place a room's data goes: its info, a snapshot and
    a log after it, history rows (with their clocks and a delete's digest), a base."""
    assert store.create_room(RoomInfo(name, created_at=ts, updated_at=ts, owner="u-1"))
    alice: Doc[Any] = Doc()
    typed_first = typed(alice, "abc")
    seq = store.append_many({name: typed_first}, {name: [entry(ALICE, typed_first, ts)]})[name]
    store.compact(name, alice.get_update(), seq)
    before = alice.get_state()
    del alice.get("code", type=Text)[0:1]
    deleted = alice.get_update(before)
    store.append_many({name: [deleted]}, {name: [entry(ALICE, [deleted], ts + 1)]})
    rows = store.history(name)
    base = HistoryBase(rows[0].seq, rows[0].ts, b"\x00\x00", {"spans": []})
    store.rewrite_history(name, [], [], base)


def test_delete_room_removes_every_row_of_the_room_and_no_other(backend: Backend) -> None:
    store = backend.store
    filled_room(store, "gone")
    filled_room(store, "kept")
    filled_room(store, "gone.s.x")  # a name that starts like the deleted one's
    before = rows_of(backend, "gone")
    assert {"updates", "history"} <= before.keys() and len(before) >= 5, before
    kept = rows_of(backend, "kept")
    assert store.delete_room("gone") is True
    assert rows_of(backend, "gone") == {}
    assert store.room_info("gone") is None
    assert store.load("gone").is_empty
    assert store.history("gone") == [] and store.history_base("gone") is None
    assert rows_of(backend, "kept") == kept
    assert rows_of(backend, "gone.s.x") == kept
    assert store.delete_room("gone") is False
    assert store.delete_room("never-was") is False


def test_a_deleted_room_starts_afresh_even_through_a_store_that_cached_it(
    backend: Backend,
) -> None:
    """Sequence numbers and history clocks the store remembered are forgotten: the name,
    made again, is a new room and its first edits are history, not "already stored"."""
    store = backend.store
    alice: Doc[Any] = Doc()
    updates = typed(alice, "ab")
    store.create_room(RoomInfo("again"))
    store.append_many({"again": updates}, {"again": [entry(ALICE, updates, 1.0)]})
    assert store.delete_room("again")
    assert store.create_room(RoomInfo("again"))
    assert store.append_many({"again": updates}, {"again": [entry(ALICE, updates, 2.0)]}) == {
        "again": 1
    }
    assert [r.updates for r in store.history("again")] == [updates]


def test_idle_rooms_lists_rooms_unchanged_since_oldest_first(store: Store) -> None:
    store.create_room(RoomInfo("new", created_at=500.0, updated_at=500.0))
    store.create_room(RoomInfo("old", created_at=100.0, updated_at=100.0))
    store.create_room(RoomInfo("older", created_at=50.0, updated_at=50.0))
    store.create_room(RoomInfo("edited", created_at=10.0, updated_at=10.0))
    store.append("edited", [b"x"])  # a flush moves updated_at to now
    assert store.idle_rooms(before=400.0, limit=10) == ["older", "old"]
    assert store.idle_rooms(before=400.0, limit=1) == ["older"]
    assert store.idle_rooms(before=50.0, limit=10) == []
    store.delete_room("older")
    assert store.idle_rooms(before=400.0, limit=10) == ["old"]


def test_owned_rooms_counts_a_users_rooms_and_a_delete_frees_one(store: Store) -> None:
    for i, at in enumerate((10.0, 20.0, 30.0)):
        store.create_room(RoomInfo(f"f{i}", created_at=at, updated_at=at, owner="u-ann"))
    store.create_room(RoomInfo("theirs", created_at=15.0, owner="u-bob"))
    store.create_room(RoomInfo("nobodys", created_at=15.0))
    assert store.owned_rooms("u-ann") == (3, 10.0)
    assert store.owned_rooms("u-ann", since=15.0) == (2, 20.0)
    assert store.owned_rooms("u-ann", since=31.0) == (0, None)
    assert store.owned_rooms("u-bob") == (1, 15.0)
    assert store.owned_rooms("") == (0, None)  # nobody's rooms are nobody's quota
    info = store.room_info("f1")
    assert info is not None and info.owner == "u-ann"
    store.delete_room("f0")
    assert store.owned_rooms("u-ann") == (2, 20.0)


def test_sqlite_file_of_an_older_version_gains_the_owner_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_SQLITE_ROOMS)
    db.close()
    store = SQLiteStore(path)
    try:
        info = store.room_info("kept")
        assert info is not None and info.owner == ""
        assert store.owned_rooms("u-1") == (0, None)
        assert store.idle_rooms(before=3.0, limit=5) == ["kept"]
        assert store.delete_room("kept") and store.room_info("kept") is None
    finally:
        store.close()
