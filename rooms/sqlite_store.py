"""The embedded store: one SQLite file in WAL mode.

WAL with ``synchronous=NORMAL`` keeps every committed transaction across a
process kill (SIGKILL); only a power loss can take the last few. Compaction
writes the snapshot and deletes the batches it covers in one transaction.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rooms.history import (
    SEPARATE,
    HistoryBase,
    HistoryEntry,
    HistoryRow,
    Part,
    Who,
    append_runs,
    joined_parts,
    merged_runs,
    parts_from_json,
    parts_json,
    recorded_keys,
    renumbered,
    run_line,
    update_key,
)
from rooms.store import (
    MAX_LIST_ROOMS,
    RoomInfo,
    RoomSummary,
    StoredRoom,
    StoreError,
    decode_batch,
    encode_batch,
)

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS updates (
    room TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rooms (
    name TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    language TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    tokens_after REAL NOT NULL DEFAULT 0,
    forks INTEGER NOT NULL DEFAULT 1,
    reviewers_run INTEGER,
    history_viewers INTEGER
);
CREATE TABLE IF NOT EXISTS snapshots (
    room TEXT PRIMARY KEY,
    upto INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    room TEXT NOT NULL,
    ts_first REAL NOT NULL,
    ts REAL NOT NULL,
    who_id TEXT NOT NULL,
    who_name TEXT NOT NULL,
    who_role TEXT NOT NULL,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    parts TEXT,
    n INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS history_room ON history (room, seq);
CREATE TABLE IF NOT EXISTS history_clocks (
    room TEXT NOT NULL,
    client INTEGER NOT NULL,
    upto INTEGER NOT NULL,
    PRIMARY KEY (room, client)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history_deletes (
    room TEXT NOT NULL,
    digest TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (room, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history_bases (
    room TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    state BLOB NOT NULL,
    derived TEXT NOT NULL
);
"""

# Columns added since the first schema, added to an older file when it is opened.
ADDED_ROOM_COLUMNS = {
    "tokens_after": "REAL NOT NULL DEFAULT 0",
    "forks": "INTEGER NOT NULL DEFAULT 1",
    "reviewers_run": "INTEGER",  # NULL: the mode's default
    "history_viewers": "INTEGER",  # NULL: the mode's default
    "owner": "TEXT NOT NULL DEFAULT ''",  # the verified user id the room is owned by
}
INDEXES = "CREATE INDEX IF NOT EXISTS rooms_tokens_after ON rooms (tokens_after);"
# The retention sweep's query and the quotas' count (``idle_rooms``, ``owned_rooms``).
LIFE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS rooms_updated_at ON rooms (updated_at)",
    "CREATE INDEX IF NOT EXISTS rooms_owner ON rooms (owner, created_at) WHERE owner != ''",
)
# Every table that holds rows of a room, and its room column: what ``delete_room`` clears.
ROOM_TABLES = (
    ("updates", "room"),
    ("snapshots", "room"),
    ("history", "room"),
    ("history_clocks", "room"),
    ("history_deletes", "room"),
    ("history_bases", "room"),
    ("rooms", "name"),
)
ROOM_COLUMNS = (
    "name, mode, language, title, created_at, updated_at, tokens_after, forks, reviewers_run,"
    " history_viewers, owner"
)
HISTORY_COLUMNS = "seq, ts_first, ts, who_id, who_name, who_role, kind, data, parts"

OPEN_TIMEOUT = 10.0
ROWS_PER_STATEMENT = 256  # rows per multi-row INSERT / names per IN (...)
MAX_CACHED_SEQS = 100_000  # rooms whose last sequence number is remembered


def chunks(items: Sequence[T], largest: int = ROWS_PER_STATEMENT) -> Iterator[Sequence[T]]:
    """``items`` cut into runs whose lengths are powers of two (at most ``largest``): a
    statement per run length, so sqlite3's statement cache keeps a handful, not hundreds."""
    start = 0
    while start < len(items):
        size = min(largest, 1 << ((len(items) - start).bit_length() - 1))
        yield items[start : start + size]
        start += size


def _make_private(path: Path) -> None:
    """The database (every room's code and chat) is readable by its owner only. SQLite
    creates a new file 0644 and gives the -wal and -shm files the database's mode, so
    the file is created 0600 before SQLite opens it; one an older version left
    readable to others is tightened, with its -wal and -shm."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open SQLite store at {path}: {exc.strerror}") from exc
    try:
        if os.fstat(fd).st_mode & 0o077:
            for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                with contextlib.suppress(OSError):
                    os.chmod(name, 0o600)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class _LastRow:
    """A room's last history row, as far as a flush appending to it needs."""

    seq: int
    ts_first: float
    count: int  # updates
    runs: tuple[Part, ...]  # whose they are, never empty
    head: str  # the stored lines of every run but the last (``run_line``)


def _head(runs: tuple[Part, ...]) -> str:
    return "\n".join(map(run_line, runs[:-1]))


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        _make_private(path)
        self._db = self._open(path)
        # Each room's last sequence number as of this connection's last commit, valid
        # while no other connection (another instance or worker) has committed since:
        # SQLite's data_version says so. Spares a lookup per room per flush.
        self._seqs: dict[str, int] = {}
        # Each (room, Yjs client)'s next unrecorded clock in the history, valid as long as
        # ``_seqs`` is: what makes a copy of an update another instance stored a no-op.
        self._clocks: dict[tuple[str, int], int] = {}
        # Each room's last history row as this connection last wrote or read it (valid
        # like ``_seqs``): what lets a flush append to it without reading it back.
        self._last_rows: dict[str, _LastRow] = {}
        self._data_version: int | None = None

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        """Connect, switch to WAL and create the tables. Several processes (instances,
        ``--workers``) may do this to a new file at the same moment; SQLite can refuse
        the WAL switch with "database is locked" without waiting, so that is retried."""
        delay = 0.01
        deadline = time.monotonic() + OPEN_TIMEOUT
        while True:
            db: sqlite3.Connection | None = None
            try:
                db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA busy_timeout=5000")
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(SCHEMA)
                _migrate(db)
                return db
            except sqlite3.OperationalError as exc:
                if db is not None:
                    db.close()
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise StoreError(f"cannot open SQLite store at {path}: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            except sqlite3.Error as exc:
                if db is not None:
                    db.close()
                raise StoreError(f"cannot open SQLite store at {path}: {exc}") from exc

    def load(self, room: str) -> StoredRoom:
        try:
            row = self._db.execute(
                "SELECT upto, data FROM snapshots WHERE room = ?", (room,)
            ).fetchone()
            upto = row[0] if row else 0
            batches = self._db.execute(
                "SELECT seq, data FROM updates WHERE room = ? AND seq > ? ORDER BY seq",
                (room, upto),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read room {room!r}: {exc}") from exc
        stored = StoredRoom(
            snapshot=bytes(row[1]) if row else None, snapshot_upto=upto, last_seq=upto
        )
        for seq, blob in batches:
            stored.updates.extend(decode_batch(bytes(blob)))
            stored.last_seq = seq
        return stored

    def append(self, room: str, updates: Sequence[bytes]) -> int:
        return self.append_many({room: updates})[room]

    def append_many(
        self,
        batches: Mapping[str, Sequence[bytes]],
        history: Mapping[str, Sequence[HistoryEntry]] | None = None,
    ) -> dict[str, int]:
        """One transaction and a few statements for any number of rooms (a durability
        window of a busy server touches hundreds). Per-row statements cost more in
        Python than SQLite spends on the rows, and each one lets go of the GIL and takes
        it back, a thread switch against the event loop (bench/README)."""
        now = time.time()
        rooms = list(batches)
        try:
            with self._transaction():
                last = self._last_seqs(rooms)
                seqs = {room: last[room] + 1 for room in rooms}
                rows = [(room, seqs[room], encode_batch(batches[room])) for room in rooms]
                for run in chunks(rows):
                    self._db.execute(
                        "INSERT INTO updates (room, seq, data) VALUES "
                        + ",".join(["(?, ?, ?)"] * len(run)),
                        [value for row in run for value in row],
                    )
                for names in chunks(rooms):
                    self._db.execute(
                        "UPDATE rooms SET updated_at = ? WHERE name IN "
                        f"({','.join('?' * len(names))})",
                        [now, *names],
                    )
                if history:
                    self._append_history(history)
        except sqlite3.Error as exc:
            self._seqs.clear()
            self._clocks.clear()
            self._last_rows.clear()
            raise StoreError(f"cannot append to {len(batches)} room(s): {exc}") from exc
        if len(self._seqs) > MAX_CACHED_SEQS:
            self._seqs.clear()
        self._seqs.update(seqs)
        return seqs

    def _last_seqs(self, rooms: list[str]) -> dict[str, int]:
        """Each room's last sequence number: its newest update, or what its snapshot
        covers (compaction deletes the updates it folded), 0 for none. Inside the write
        transaction, so another process appending to the same file cannot take the same
        number; from memory when nobody else wrote to the file since our last commit."""
        (version,) = self._db.execute("PRAGMA data_version").fetchone()
        if version != self._data_version:
            self._seqs.clear()
            self._clocks.clear()
            self._last_rows.clear()
            self._data_version = version
        known = self._seqs
        missing = [room for room in rooms if room not in known]
        last = {room: known[room] for room in rooms if room in known}
        for chunk in chunks(missing):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT room, MAX(seq) FROM updates WHERE room IN ({marks}) GROUP BY room"
                f" UNION ALL SELECT room, upto FROM snapshots WHERE room IN ({marks})",
                [*chunk, *chunk],
            )
            found: dict[str, int] = {}
            for room, seq in rows:
                found[room] = max(found.get(room, 0), seq)
            for room in chunk:
                last[room] = found.get(room, 0)
        return last

    def _append_history(self, history: Mapping[str, Sequence[HistoryEntry]]) -> None:
        """Write the entries, leaving out every update the history already holds
        (``rooms.history.update_key``); a room's first entry is appended to its last row
        when that row is still within the entry's window. Inside ``append_many``'s
        transaction."""
        keyed = [
            (room, entry, [(u, update_key(u)) for u in entry.updates])
            for room, entries in history.items()
            for entry in entries
        ]
        clocks = self._known_clocks(
            {(room, k[0]) for room, _, pairs in keyed for _, k in pairs if isinstance(k, tuple)}
        )
        digests = self._known_digests(
            {(room, k) for room, _, pairs in keyed for _, k in pairs if isinstance(k, str)}
        )
        moved: dict[tuple[str, int], int] = {}
        new_digests: list[tuple[str, str, float]] = []
        kept_entries: list[tuple[str, HistoryEntry, list[bytes], tuple[Part, ...]]] = []
        for room, entry, pairs in keyed:
            kept: list[bytes] = []
            runs: list[Part] = []
            owners = (run[:2] for run in entry.runs() for _ in range(run[2]))
            for (update, key), (who, kind) in zip(pairs, owners, strict=True):
                if isinstance(key, tuple):
                    client, clock = key
                    if clock < clocks.get((room, client), 0):
                        continue
                    clocks[(room, client)] = moved[(room, client)] = clock + 1
                elif isinstance(key, str):
                    if (room, key) in digests:
                        continue
                    digests.add((room, key))
                    new_digests.append((room, key, entry.ts))
                else:
                    continue
                kept.append(update)
                runs.append((who, kind, 1))
            if kept:
                kept_entries.append((room, entry, kept, merged_runs(tuple(runs))))
        self._load_last_rows({room for room, entry, _, _ in kept_entries if entry.join_seconds > 0})
        rows: list[tuple[object, ...]] = []
        made: list[tuple[str, float, int, tuple[Part, ...]]] = []  # the rows, for _last_rows
        extended: list[tuple[object, ...]] = []
        firsts: set[str] = set()
        for room, entry, kept, owned in kept_entries:
            first = room not in firsts
            firsts.add(room)
            extension = self._extend_last_row(room, entry, kept, owned) if first else None
            if extension is not None:
                extended.append(extension)
                continue
            who, kind = owned[0][0], owned[0][1]
            parts = parts_json(joined_parts(owned))
            rows.append((room, entry.ts_first, entry.ts, who.id, who.name, who.role, kind,
                         encode_batch(kept), parts, len(kept)))  # fmt: skip
            made.append((room, entry.ts_first, len(kept), owned))
        # One call for every extended row: a call per room cost more in Python than
        # SQLite spends on the rows (bench/README, "The pair path since 2026-11-26").
        self._db.executemany(
            "UPDATE history SET data = CAST(data || ? AS BLOB), ts = ?, n = n + ?, parts = ?,"
            " who_id = ?, who_name = ?, who_role = ?, kind = ? WHERE seq = ?",
            extended,
        )
        at = 0
        for run in chunks(rows):
            marks = ",".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(run))
            cursor = self._db.execute(
                "INSERT INTO history (room, ts_first, ts, who_id, who_name, who_role, kind,"
                f" data, parts, n) VALUES {marks}",
                [value for row in run for value in row],
            )
            # One INSERT numbers its rows one after the other, under the write lock.
            first_seq = (cursor.lastrowid or 0) - len(run) + 1
            for offset, (room, ts_first, count, owned) in enumerate(made[at : at + len(run)]):
                self._last_rows[room] = _LastRow(
                    first_seq + offset, ts_first, count, owned, _head(owned)
                )
            at += len(run)
        clock_rows = [(room, client, upto) for (room, client), upto in moved.items()]
        for clock_run in chunks(clock_rows):
            self._db.execute(
                "INSERT INTO history_clocks (room, client, upto) VALUES "
                + ",".join(["(?, ?, ?)"] * len(clock_run))
                + " ON CONFLICT (room, client) DO UPDATE SET upto = MAX(upto, excluded.upto)",
                [value for row in clock_run for value in row],
            )
        for digest_run in chunks(new_digests):
            self._db.execute(
                "INSERT OR IGNORE INTO history_deletes (room, digest, ts) VALUES "
                + ",".join(["(?, ?, ?)"] * len(digest_run)),
                [value for row in digest_run for value in row],
            )
        if len(self._clocks) > MAX_CACHED_SEQS:
            self._clocks.clear()
        self._clocks.update(clocks)
        if len(self._last_rows) > MAX_CACHED_SEQS:
            self._last_rows.clear()

    def _load_last_rows(self, rooms: set[str]) -> None:
        """Read the last history row of each of ``rooms`` not in ``_last_rows``, one
        statement per chunk (``_extend_last_row`` then reads memory). Another process
        writing the file clears the cache on every flush (``_last_seqs``), and a
        ``SELECT`` per room then cost more than the flush's other statements together."""
        missing = sorted(room for room in rooms if room not in self._last_rows)
        for chunk in chunks(missing):
            names = ",".join(["(?)"] * len(chunk))
            found = self._db.execute(
                f"WITH names(room) AS (VALUES {names})"
                " SELECT h.room, h.seq, h.ts_first, h.n, h.who_id, h.who_name, h.who_role,"
                " h.kind, h.parts FROM names JOIN history AS h"
                " ON h.seq = (SELECT MAX(seq) FROM history WHERE room = names.room)",
                chunk,
            )
            for room, seq, ts_first, n, who_id, name, role, kind, raw in found:
                runs = parts_from_json(raw) or ((Who(who_id, name, role), kind, n),)
                self._last_rows[room] = _LastRow(seq, ts_first, n, runs, _head(runs))

    def _extend_last_row(
        self, room: str, entry: HistoryEntry, kept: list[bytes], owned: tuple[Part, ...]
    ) -> tuple[object, ...] | None:
        """The ``UPDATE`` parameters that append ``kept`` to the room's last row (read by
        ``_load_last_rows``) if it began within the entry's window and has room; None
        otherwise."""
        last = self._last_rows.get(room)
        if entry.join_seconds <= 0 or last is None:
            return None
        if (
            entry.ts_first - last.ts_first > entry.join_seconds
            or last.count + len(kept) > entry.join_updates
            or last.runs[-1][1] in SEPARATE
        ):
            return None
        merged = append_runs(last.runs, owned)
        # Only the seam changed: the lines before the old last run stay as stored.
        head = "\n".join(
            line for line in (last.head, *map(run_line, merged[len(last.runs) - 1 : -1])) if line
        )
        parts = f"{head}\n{run_line(merged[-1])}" if len(merged) > 1 else None
        self._last_rows[room] = _LastRow(
            last.seq, last.ts_first, last.count + len(kept), merged, head
        )
        first_who, first_kind = last.runs[0][0], last.runs[0][1]
        return (encode_batch(kept), entry.ts, len(kept), parts,
                first_who.id, first_who.name, first_who.role, first_kind, last.seq)  # fmt: skip

    def _known_clocks(self, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The next unrecorded clock of each (room, client), 0 for one never recorded."""
        known = {key: self._clocks[key] for key in wanted if key in self._clocks}
        missing = sorted(wanted - known.keys())
        for run in chunks(missing):
            found = self._db.execute(
                "SELECT room, client, upto FROM history_clocks WHERE (room, client) IN (VALUES "
                + ",".join(["(?, ?)"] * len(run))
                + ")",
                [value for pair in run for value in pair],
            )
            for room, client, upto in found:
                known[(room, client)] = upto
            for key in run:
                known.setdefault(key, 0)
        return known

    def _known_digests(self, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these delete-only updates the history already holds."""
        known: set[tuple[str, str]] = set()
        for run in chunks(sorted(wanted)):
            found = self._db.execute(
                "SELECT room, digest FROM history_deletes WHERE (room, digest) IN (VALUES "
                + ",".join(["(?, ?)"] * len(run))
                + ")",
                [value for pair in run for value in pair],
            )
            known.update((room, digest) for room, digest in found)
        return known

    def history(self, room: str, after: int = 0, limit: int | None = None) -> list[HistoryRow]:
        try:
            rows = self._db.execute(
                f"SELECT {HISTORY_COLUMNS} FROM history WHERE room = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (room, after, -1 if limit is None else limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the history of room {room!r}: {exc}") from exc
        return [
            HistoryRow(
                seq,
                ts_first,
                ts,
                Who(who_id, name, role),
                kind,
                decode_batch(bytes(data)),
                parts_from_json(parts),
            )  # fmt: skip
            for seq, ts_first, ts, who_id, name, role, kind, data, parts in rows
        ]

    def history_base(self, room: str) -> HistoryBase | None:
        try:
            row = self._db.execute(
                "SELECT seq, ts, state, derived FROM history_bases WHERE room = ?", (room,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the history of room {room!r}: {exc}") from exc
        if row is None:
            return None
        seq, ts, state, derived = row
        return HistoryBase(seq, ts, bytes(state), json.loads(derived))

    def rewrite_history(
        self,
        room: str,
        remove: Sequence[int],
        add: Sequence[HistoryRow],
        base: HistoryBase | None = None,
    ) -> None:
        try:
            with self._transaction():
                for run in chunks(list(remove)):
                    marks = ",".join("?" * len(run))
                    self._db.execute(
                        f"DELETE FROM history WHERE room = ? AND seq IN ({marks})", [room, *run]
                    )
                for row in add:
                    who = row.who
                    self._db.execute(
                        f"INSERT INTO history ({HISTORY_COLUMNS}, n, room)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (row.seq, row.ts_first, row.ts, who.id, who.name, who.role, row.kind,
                         encode_batch(row.updates), parts_json(row.parts), len(row.updates),
                         room),
                    )  # fmt: skip
                self._last_rows.pop(room, None)
                if base is not None:
                    self._db.execute(
                        "INSERT INTO history_bases (room, seq, ts, state, derived)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (room) DO UPDATE SET"
                        " seq = excluded.seq, ts = excluded.ts, state = excluded.state,"
                        " derived = excluded.derived",
                        (room, base.seq, base.ts, base.state, base.derived_json()),
                    )
                    self._db.execute(
                        "DELETE FROM history WHERE room = ? AND seq <= ?", (room, base.seq)
                    )
                    # A copy of an update older than the base can no longer arrive.
                    self._db.execute(
                        "DELETE FROM history_deletes WHERE room = ? AND ts < ?", (room, base.ts)
                    )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot rewrite the history of room {room!r}: {exc}") from exc

    def history_size(self, room: str) -> tuple[int, int, float | None]:
        try:
            rows, size, oldest = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0), MIN(ts) FROM history"
                " WHERE room = ?",
                (room,),
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the history of room {room!r}: {exc}") from exc
        return int(rows), int(size), oldest

    def compact(self, room: str, snapshot: bytes, upto: int) -> None:
        try:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO snapshots (room, upto, data) VALUES (?, ?, ?)"
                    " ON CONFLICT(room) DO UPDATE SET upto = excluded.upto, data = excluded.data",
                    (room, upto, snapshot),
                )
                self._db.execute("DELETE FROM updates WHERE room = ? AND seq <= ?", (room, upto))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot compact room {room!r}: {exc}") from exc

    def create_room(self, info: RoomInfo) -> bool:
        try:
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO rooms ({ROOM_COLUMNS}) VALUES ({', '.join('?' * 11)})",
                (
                    info.name,
                    info.mode,
                    info.language,
                    info.title,
                    info.created_at,
                    info.updated_at,
                    info.tokens_after,
                    info.forks,
                    info.reviewers_run,
                    info.history_viewers,
                    info.owner,
                ),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create room {info.name!r}: {exc}") from exc
        return cursor.rowcount == 1

    def room_info(self, room: str) -> RoomInfo | None:
        try:
            row = self._db.execute(
                f"SELECT {ROOM_COLUMNS} FROM rooms WHERE name = ?", (room,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read room {room!r}: {exc}") from exc
        return None if row is None else _room_info(row)

    def update_room_info(
        self,
        room: str,
        *,
        title: str | None = None,
        language: str | None = None,
        forks: bool | None = None,
        tokens_after: float | None = None,
        reviewers_run: bool | None = None,
        history_viewers: bool | None = None,
    ) -> None:
        try:
            self._db.execute(
                "UPDATE rooms SET title = COALESCE(?, title), language = COALESCE(?, language),"
                " forks = COALESCE(?, forks), tokens_after = COALESCE(?, tokens_after),"
                " reviewers_run = COALESCE(?, reviewers_run),"
                " history_viewers = COALESCE(?, history_viewers) WHERE name = ?",
                (title, language, forks, tokens_after, reviewers_run, history_viewers, room),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot update room {room!r}: {exc}") from exc

    def rotated_since(self, since: float) -> dict[str, float]:
        try:
            rows = self._db.execute(
                "SELECT name, tokens_after FROM rooms WHERE tokens_after >= ?", (since,)
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read rotated rooms: {exc}") from exc
        return {name: float(after) for name, after in rows}

    def list_rooms(self, after: str = "", limit: int = 100) -> list[RoomSummary]:
        try:
            rows = self._db.execute(
                f"SELECT {ROOM_COLUMNS},"
                " COALESCE((SELECT LENGTH(data) FROM snapshots WHERE room = name), 0)"
                " + COALESCE((SELECT SUM(LENGTH(data)) FROM updates WHERE room = name), 0),"
                " (SELECT COUNT(*) FROM history WHERE room = name)"
                " FROM rooms WHERE name > ? ORDER BY name LIMIT ?",
                (after, max(0, min(limit, MAX_LIST_ROOMS))),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot list rooms: {exc}") from exc
        return [RoomSummary(_room_info(row[:11]), int(row[11]), int(row[12])) for row in rows]

    def import_room(
        self,
        info: RoomInfo,
        snapshot: bytes,
        history: Sequence[HistoryRow],
        base: HistoryBase | None = None,
    ) -> bool:
        """One transaction. History row numbers are shared by every room of the file, so
        the imported rows are moved past the highest ever used (order and gaps kept)."""
        room = info.name
        try:
            with self._transaction():
                taken = self._db.execute(
                    "SELECT 1 FROM rooms WHERE name = ? UNION ALL SELECT 1 FROM snapshots"
                    " WHERE room = ? UNION ALL SELECT 1 FROM updates WHERE room = ?"
                    " UNION ALL SELECT 1 FROM history WHERE room = ? LIMIT 1",
                    (room, room, room, room),
                ).fetchone()
                if taken is not None:
                    return False
                self._db.execute(
                    f"INSERT INTO rooms ({ROOM_COLUMNS}) VALUES ({', '.join('?' * 11)})",
                    _room_values(info),
                )
                self._db.execute(
                    "INSERT INTO snapshots (room, upto, data) VALUES (?, 0, ?)", (room, snapshot)
                )
                found = self._db.execute(
                    "SELECT MAX(seq) FROM (SELECT seq FROM sqlite_sequence WHERE name = 'history'"
                    " UNION ALL SELECT MAX(seq) FROM history)"
                ).fetchone()
                highest = int(found[0] or 0)
                lowest = min([r.seq for r in history] + ([base.seq + 1] if base else []), default=1)
                rows, base = renumbered(list(history), base, max(0, highest + 1 - lowest))
                for run in chunks(rows):
                    self._db.execute(
                        f"INSERT INTO history ({HISTORY_COLUMNS}, n, room) VALUES "
                        + ",".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(run)),
                        [value for row in run for value in _history_values(room, row)],
                    )
                if base is not None:
                    # Upserts here and below: a deleted room of this name may have left them.
                    self._db.execute(
                        "INSERT OR REPLACE INTO history_bases (room, seq, ts, state, derived)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (room, base.seq, base.ts, base.state, base.derived_json()),
                    )
                clocks, digests = recorded_keys(rows)
                for clock_run in chunks(list(clocks.items())):
                    self._db.execute(
                        "INSERT INTO history_clocks (room, client, upto) VALUES "
                        + ",".join(["(?, ?, ?)"] * len(clock_run))
                        + " ON CONFLICT (room, client) DO UPDATE SET"
                        " upto = MAX(upto, excluded.upto)",
                        [value for client, upto in clock_run for value in (room, client, upto)],
                    )
                for digest_run in chunks(digests):
                    self._db.execute(
                        "INSERT OR IGNORE INTO history_deletes (room, digest, ts) VALUES "
                        + ",".join(["(?, ?, ?)"] * len(digest_run)),
                        [value for digest, ts in digest_run for value in (room, digest, ts)],
                    )
        except (sqlite3.Error, StoreError) as exc:
            raise StoreError(f"cannot import room {room!r}: {exc}") from exc
        for cache in (self._seqs, self._last_rows):
            cache.pop(room, None)
        return True

    def delete_room(self, room: str) -> bool:
        removed = 0
        try:
            with self._transaction():
                for table, column in ROOM_TABLES:
                    cursor = self._db.execute(f"DELETE FROM {table} WHERE {column} = ?", (room,))
                    removed += cursor.rowcount
        except sqlite3.Error as exc:
            raise StoreError(f"cannot delete room {room!r}: {exc}") from exc
        finally:
            # Whatever this connection remembered of the room is wrong either way.
            self._seqs.pop(room, None)
            self._last_rows.pop(room, None)
            for key in [key for key in self._clocks if key[0] == room]:
                del self._clocks[key]
        return removed > 0

    def idle_rooms(self, before: float, limit: int) -> list[str]:
        try:
            rows = self._db.execute(
                "SELECT name FROM rooms WHERE updated_at < ? ORDER BY updated_at LIMIT ?",
                (before, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read idle rooms: {exc}") from exc
        return [name for (name,) in rows]

    def owned_rooms(self, owner: str, since: float = 0.0) -> tuple[int, float | None]:
        if not owner:
            return 0, None
        try:
            count, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(created_at) FROM rooms WHERE owner = ? AND owner != ''"
                " AND created_at >= ?",
                (owner, since),
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot count the rooms of {owner!r}: {exc}") from exc
        return int(count), oldest

    def ping(self) -> None:
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store unavailable: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


def _room_values(info: RoomInfo) -> tuple[object, ...]:
    return (info.name, info.mode, info.language, info.title, info.created_at, info.updated_at,
            info.tokens_after, info.forks, info.reviewers_run, info.history_viewers,
            info.owner)  # fmt: skip


def _room_info(row: Sequence[Any]) -> RoomInfo:
    """A ``rooms`` row (``ROOM_COLUMNS``) read back."""
    name, mode, language, title, created, updated, after, forks, reviewers, viewers, owner = row
    return RoomInfo(
        name, mode, language, title, created, updated, after, bool(forks),
        None if reviewers is None else bool(reviewers),
        None if viewers is None else bool(viewers),
        owner,
    )  # fmt: skip


def _history_values(room: str, row: HistoryRow) -> tuple[object, ...]:
    """A history row as ``HISTORY_COLUMNS``, ``n`` and ``room``."""
    who = row.who
    return (row.seq, row.ts_first, row.ts, who.id, who.name, who.role, row.kind,
            encode_batch(row.updates), parts_json(row.parts), len(row.updates), room)  # fmt: skip


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a file made by an older version up to this schema. The columns are added in
    one write transaction, looked for again inside it: two processes opening the same
    old file must not both add one. A current file is only read."""
    if _missing_columns(db):
        with _Transaction(db):
            for column in _missing_columns(db):
                db.execute(f"ALTER TABLE rooms ADD COLUMN {column} {ADDED_ROOM_COLUMNS[column]}")
    db.execute(INDEXES)
    for index in LIFE_INDEXES:
        db.execute(index)


def _missing_columns(db: sqlite3.Connection) -> list[str]:
    present = {row[1] for row in db.execute("PRAGMA table_info(rooms)")}
    return [column for column in ADDED_ROOM_COLUMNS if column not in present]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
