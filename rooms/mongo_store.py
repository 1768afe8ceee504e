"""The production store: MongoDB through pymongo's synchronous client.

Collections:

- ``updates``: ``{room, seq, data}``, one document per flushed batch, unique on (room, seq);
- ``snapshots``: ``{_id: room, upto, gen, chunks}``, the pointer to the current snapshot;
- ``rooms``: ``{_id: name, mode, language, title, created_at, updated_at, tokens_after,
  forks, reviewers_run, owner}`` (documents written before the last ones existed read as 0,
  true, null (the mode's default) and "" (nobody's own));
- ``snapshot_chunks``: ``{room, gen, i, data}``, the snapshot cut into pieces, because
  a MongoDB document is capped at 16 MB and a large room's snapshot need not be;
- ``history``: ``{room, seq, ts_first, ts, who: {id, name, role}, kind, data}``, unique on
  (room, seq), the numbers taken from ``history_seq`` (``{_id: room, seq}``);
- ``history_clocks``: ``{_id: "room\\0client", upto}`` and ``history_deletes``:
  ``{_id: "room\\0digest", room, ts}``, what the history already holds (``rooms.history``);
- ``history_bases``: ``{_id: room, seq, ts, state, derived}``.

Compaction writes the new generation's chunks first, then swings the pointer,
then deletes the old chunks and the covered batches. A crash at any step leaves
a loadable room: ``load`` reads only the generation the pointer names and only
batches after ``upto``. No multi-document transaction (and so no replica set)
is needed.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, MongoClient, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

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
    recorded_keys,
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

CHUNK_BYTES = 8 * 1024 * 1024
TIMEOUT_MS = 5000


class MongoStore:
    def __init__(self, client: Any, database: str = "codementor") -> None:
        self._client = client
        db = client[database]
        self._updates = db["updates"]
        self._snapshots = db["snapshots"]
        self._chunks = db["snapshot_chunks"]
        self._rooms = db["rooms"]
        self._history = db["history"]
        self._history_seq = db["history_seq"]
        self._history_clocks = db["history_clocks"]
        self._history_deletes = db["history_deletes"]
        self._history_bases = db["history_bases"]
        self._indexed = False

    def _ensure_indexes(self) -> None:
        """Created on first use, not at start: a server must start (and report
        not ready) while MongoDB is down."""
        if self._indexed:
            return
        self._updates.create_index([("room", ASCENDING), ("seq", ASCENDING)], unique=True)
        self._chunks.create_index(
            [("room", ASCENDING), ("gen", ASCENDING), ("i", ASCENDING)], unique=True
        )
        self._rooms.create_index([("tokens_after", ASCENDING)], sparse=True)
        # The retention sweep and the quotas (``idle_rooms``, ``owned_rooms``).
        self._rooms.create_index([("updated_at", ASCENDING)])
        self._rooms.create_index([("owner", ASCENDING), ("created_at", ASCENDING)], sparse=True)
        self._history.create_index([("room", ASCENDING), ("seq", ASCENDING)], unique=True)
        self._history_deletes.create_index([("room", ASCENDING), ("ts", ASCENDING)])
        self._indexed = True

    @classmethod
    def from_url(cls, url: str) -> MongoStore:
        """Connect with bounded timeouts; the database is the URL's path, else ``codementor``."""
        client: MongoClient[dict[str, Any]] = MongoClient(
            url,
            serverSelectionTimeoutMS=TIMEOUT_MS,
            connectTimeoutMS=TIMEOUT_MS,
            socketTimeoutMS=2 * TIMEOUT_MS,
        )
        name = client.get_default_database(default="codementor").name
        return cls(client, name)

    def load(self, room: str) -> StoredRoom:
        try:
            self._ensure_indexes()
            pointer = self._snapshots.find_one({"_id": room})
            stored = StoredRoom()
            if pointer is not None:
                stored.snapshot = self._read_snapshot(room, pointer)
                stored.snapshot_upto = stored.last_seq = int(pointer["upto"])
            cursor = self._updates.find({"room": room, "seq": {"$gt": stored.snapshot_upto}}).sort(
                "seq", ASCENDING
            )
            for doc in cursor:
                stored.updates.extend(decode_batch(bytes(doc["data"])))
                stored.last_seq = int(doc["seq"])
        except PyMongoError as exc:
            raise StoreError(f"cannot read room {room!r}: {exc}") from exc
        return stored

    def _read_snapshot(self, room: str, pointer: dict[str, Any]) -> bytes:
        chunks = list(self._chunks.find({"room": room, "gen": pointer["gen"]}).sort("i", ASCENDING))
        if len(chunks) != pointer["chunks"]:
            raise StoreError(
                f"room {room!r}: snapshot has {len(chunks)} of {pointer['chunks']} chunks"
            )
        return b"".join(bytes(c["data"]) for c in chunks)

    def append(self, room: str, updates: Sequence[bytes]) -> int:
        blob = encode_batch(updates)
        try:
            self._ensure_indexes()
            for _ in range(5):
                seq = self._last_seq(room) + 1
                try:
                    self._updates.insert_one({"room": room, "seq": seq, "data": blob})
                    self._rooms.update_one({"_id": room}, {"$set": {"updated_at": time.time()}})
                    return seq
                except DuplicateKeyError:
                    continue  # another writer took this seq; read again
        except PyMongoError as exc:
            raise StoreError(f"cannot append to room {room!r}: {exc}") from exc
        raise StoreError(f"cannot append to room {room!r}: sequence contention")

    def append_many(
        self,
        batches: Mapping[str, Sequence[bytes]],
        history: Mapping[str, Sequence[HistoryEntry]] | None = None,
    ) -> dict[str, int]:
        """One insert per room: MongoDB without a replica set has no multi-document
        transaction. After a failure part-way, the retry appends some batches twice,
        which is harmless (applying an update again changes nothing), and offers the
        history again, whose keys leave out what was stored the first time. The history
        is written after the batches, so it never holds an update the log lacks."""
        seqs = {room: self.append(room, updates) for room, updates in batches.items()}
        for room, entries in (history or {}).items():
            try:
                self._append_history(room, entries)
            except PyMongoError as exc:
                raise StoreError(f"cannot append to the history of {room!r}: {exc}") from exc
        return seqs

    def _append_history(self, room: str, entries: Sequence[HistoryEntry]) -> None:
        keyed = [(entry, [(u, update_key(u)) for u in entry.updates]) for entry in entries]
        # Per client: the smallest and largest first clock offered. One atomic $max per
        # client says what was recorded before (by anyone) and claims the rest.
        spans: dict[int, int] = {}
        for _, pairs in keyed:
            for _, key in pairs:
                if isinstance(key, tuple):
                    spans[key[0]] = max(spans.get(key[0], 0), key[1] + 1)
        before: dict[int, int] = {}
        for client, upto in spans.items():
            old = self._history_clocks.find_one_and_update(
                {"_id": f"{room}\0{client}"},
                {"$max": {"upto": upto}},
                upsert=True,
                return_document=ReturnDocument.BEFORE,
            )
            before[client] = int(old["upto"]) if old else 0
        digests = [k for _, pairs in keyed for _, k in pairs if isinstance(k, str)]
        taken = self._claim_digests(room, digests, entries[-1].ts if entries else 0.0)
        rows: list[dict[str, Any]] = []
        for entry, pairs in keyed:
            kept: list[bytes] = []
            runs: list[Part] = []
            owners = (run[:2] for run in entry.runs() for _ in range(run[2]))
            for (update, key), (who, kind) in zip(pairs, owners, strict=True):
                if (isinstance(key, tuple) and key[1] >= before[key[0]]) or (
                    isinstance(key, str) and key in taken
                ):
                    kept.append(update)
                    runs.append((who, kind, 1))
            if not kept:
                continue
            owned = merged_runs(tuple(runs))
            if not rows and self._extend_last_row(room, entry, kept, owned):
                continue
            rows.append(
                {"room": room, "ts_first": entry.ts_first, "ts": entry.ts,
                 "who": owned[0][0].as_json(), "kind": owned[0][1], "data": encode_batch(kept),
                 "parts": _parts_doc(joined_parts(owned)), "n": len(kept)}
            )  # fmt: skip
        if not rows:
            return
        counter = self._history_seq.find_one_and_update(
            {"_id": room}, {"$inc": {"seq": len(rows)}}, upsert=True,
            return_document=ReturnDocument.AFTER,
        )  # fmt: skip
        first = int(counter["seq"]) - len(rows) + 1
        for i, row in enumerate(rows):
            row["seq"] = first + i
        self._history.insert_many(rows)

    def _extend_last_row(
        self, room: str, entry: HistoryEntry, kept: list[bytes], owned: tuple[Part, ...]
    ) -> bool:
        """Append ``kept`` to the room's last row when it began within the entry's window
        and has room. The update names the row's count as read, so a concurrent extension
        by another instance makes this one fail (False: a new row is written instead)."""
        if entry.join_seconds <= 0:
            return False
        last = self._history.find_one({"room": room}, sort=[("seq", -1)])
        if last is None:
            return False
        count = int(last.get("n", 0))
        runs = _history_row(last).runs()
        if (
            entry.ts_first - float(last["ts_first"]) > entry.join_seconds
            or count + len(kept) > entry.join_updates
            or runs[-1][1] in SEPARATE
        ):
            return False
        merged = append_runs(runs, owned)
        merged = merged if len(merged) > 1 else ()
        done = self._history.update_one(
            {"room": room, "seq": last["seq"], "n": count},
            {"$set": {"data": bytes(last["data"]) + encode_batch(kept), "ts": entry.ts,
                      "n": count + len(kept), "parts": _parts_doc(merged)}},
        )  # fmt: skip
        return bool(done.modified_count)

    def _claim_digests(self, room: str, digests: list[str], ts: float) -> set[str]:
        """Record these delete-only updates' digests; return the ones nobody had."""
        fresh = list(dict.fromkeys(digests))
        if not fresh:
            return set()
        docs = [{"_id": f"{room}\0{d}", "room": room, "ts": ts} for d in fresh]
        try:
            self._history_deletes.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            refused = {
                error["index"]
                for error in exc.details.get("writeErrors", [])
                if error.get("code") == 11000
            }
            if len(refused) != len(exc.details.get("writeErrors", [])):
                raise
            return {d for i, d in enumerate(fresh) if i not in refused}
        return set(fresh)

    def history(self, room: str, after: int = 0, limit: int | None = None) -> list[HistoryRow]:
        try:
            cursor = self._history.find({"room": room, "seq": {"$gt": after}}).sort(
                "seq", ASCENDING
            )
            if limit is not None:
                cursor = cursor.limit(limit)
            return [_history_row(doc) for doc in cursor]
        except PyMongoError as exc:
            raise StoreError(f"cannot read the history of room {room!r}: {exc}") from exc

    def history_base(self, room: str) -> HistoryBase | None:
        try:
            doc = self._history_bases.find_one({"_id": room})
        except PyMongoError as exc:
            raise StoreError(f"cannot read the history of room {room!r}: {exc}") from exc
        if doc is None:
            return None
        return HistoryBase(int(doc["seq"]), float(doc["ts"]), bytes(doc["state"]), doc["derived"])

    def rewrite_history(
        self,
        room: str,
        remove: Sequence[int],
        add: Sequence[HistoryRow],
        base: HistoryBase | None = None,
    ) -> None:
        """Without transactions, in an order a crash cannot make lose an update: the new
        rows first (a row taking a removed one's number replaces it), then the removals,
        then the base before the rows it folds are deleted. A crash between two steps
        leaves some updates in two rows, which replays to the same document."""
        try:
            self._ensure_indexes()
            for row in add:
                self._history.replace_one(
                    {"room": room, "seq": row.seq},
                    {"room": room, "seq": row.seq, "ts_first": row.ts_first, "ts": row.ts,
                     "who": row.who.as_json(), "kind": row.kind,
                     "data": encode_batch(row.updates), "parts": _parts_doc(row.parts),
                     "n": len(row.updates)},
                    upsert=True,
                )  # fmt: skip
            kept = {row.seq for row in add}
            gone = [seq for seq in remove if seq not in kept]
            if gone:
                self._history.delete_many({"room": room, "seq": {"$in": gone}})
            if base is not None:
                self._history_bases.replace_one(
                    {"_id": room},
                    {"_id": room, "seq": base.seq, "ts": base.ts, "state": base.state,
                     "derived": base.derived},
                    upsert=True,
                )  # fmt: skip
                self._history.delete_many({"room": room, "seq": {"$lte": base.seq}})
                self._history_deletes.delete_many({"room": room, "ts": {"$lt": base.ts}})
        except PyMongoError as exc:
            raise StoreError(f"cannot rewrite the history of room {room!r}: {exc}") from exc

    def history_size(self, room: str) -> tuple[int, int, float | None]:
        try:
            rows = 0
            size = 0
            oldest: float | None = None
            for doc in self._history.find({"room": room}, {"data": 1, "ts": 1}):
                rows += 1
                size += len(doc["data"])
                oldest = float(doc["ts"]) if oldest is None else min(oldest, float(doc["ts"]))
        except PyMongoError as exc:
            raise StoreError(f"cannot read the history of room {room!r}: {exc}") from exc
        return rows, size, oldest

    def _last_seq(self, room: str) -> int:
        last = self._updates.find_one({"room": room}, sort=[("seq", -1)])
        pointer = self._snapshots.find_one({"_id": room})
        return max(int(last["seq"]) if last else 0, int(pointer["upto"]) if pointer else 0)

    def compact(self, room: str, snapshot: bytes, upto: int) -> None:
        try:
            self._ensure_indexes()
            old = self._snapshots.find_one({"_id": room})
            gen = int(old["gen"]) + 1 if old else 1
            pieces = [snapshot[i : i + CHUNK_BYTES] for i in range(0, len(snapshot), CHUNK_BYTES)]
            pieces = pieces or [b""]
            self._chunks.delete_many({"room": room, "gen": gen})  # debris of a crashed attempt
            self._chunks.insert_many(
                [{"room": room, "gen": gen, "i": i, "data": p} for i, p in enumerate(pieces)]
            )
            self._snapshots.replace_one(
                {"_id": room},
                {"_id": room, "upto": upto, "gen": gen, "chunks": len(pieces)},
                upsert=True,
            )
            self._chunks.delete_many({"room": room, "gen": {"$lt": gen}})
            self._updates.delete_many({"room": room, "seq": {"$lte": upto}})
        except PyMongoError as exc:
            raise StoreError(f"cannot compact room {room!r}: {exc}") from exc

    def create_room(self, info: RoomInfo) -> bool:
        try:
            self._rooms.insert_one(
                {
                    "_id": info.name,
                    "mode": info.mode,
                    "language": info.language,
                    "title": info.title,
                    "created_at": info.created_at,
                    "updated_at": info.updated_at,
                    "tokens_after": info.tokens_after,
                    "forks": info.forks,
                    "reviewers_run": info.reviewers_run,
                    "history_viewers": info.history_viewers,
                    **({"owner": info.owner} if info.owner else {}),  # sparse index
                }
            )
        except DuplicateKeyError:
            return False
        except PyMongoError as exc:
            raise StoreError(f"cannot create room {info.name!r}: {exc}") from exc
        return True

    def room_info(self, room: str) -> RoomInfo | None:
        try:
            doc = self._rooms.find_one({"_id": room})
        except PyMongoError as exc:
            raise StoreError(f"cannot read room {room!r}: {exc}") from exc
        return None if doc is None else _room_info(doc)

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
        given = (
            ("title", title),
            ("language", language),
            ("forks", forks),
            ("tokens_after", tokens_after),
            ("reviewers_run", reviewers_run),
            ("history_viewers", history_viewers),
        )
        changes = {k: v for k, v in given if v is not None}
        if not changes:
            return
        try:
            self._rooms.update_one({"_id": room}, {"$set": changes})
        except PyMongoError as exc:
            raise StoreError(f"cannot update room {room!r}: {exc}") from exc

    def rotated_since(self, since: float) -> dict[str, float]:
        try:
            self._ensure_indexes()
            cursor = self._rooms.find({"tokens_after": {"$gte": since}}, {"tokens_after": 1})
            return {doc["_id"]: float(doc["tokens_after"]) for doc in cursor}
        except PyMongoError as exc:
            raise StoreError(f"cannot read rotated rooms: {exc}") from exc

    def list_rooms(self, after: str = "", limit: int = 100) -> list[RoomSummary]:
        try:
            docs = list(
                self._rooms.find({"_id": {"$gt": after}})
                .sort("_id", ASCENDING)
                .limit(max(1, min(limit, MAX_LIST_ROOMS)))
            ) if limit > 0 else []  # fmt: skip
            out: list[RoomSummary] = []
            for doc in docs:
                room = doc["_id"]
                size = sum(
                    len(c["data"]) for c in self._chunks.find({"room": room}, {"data": 1})
                ) + sum(len(u["data"]) for u in self._updates.find({"room": room}, {"data": 1}))
                rows = self._history.count_documents({"room": room})
                out.append(RoomSummary(_room_info(doc), size, rows))
        except PyMongoError as exc:
            raise StoreError(f"cannot list rooms: {exc}") from exc
        return out

    def import_room(
        self,
        info: RoomInfo,
        snapshot: bytes,
        history: Sequence[HistoryRow],
        base: HistoryBase | None = None,
    ) -> bool:
        """Without a multi-document transaction: the room's info is written first and
        claims the name (the unique ``_id``), then its document and history; if a write
        fails, what was written is removed again. Rows keep their numbers (a room's
        own), and the room's row counter starts past them."""
        room = info.name
        try:
            self._ensure_indexes()
            for collection in (self._snapshots, self._updates, self._history):
                if collection.find_one({"_id": room} if collection is self._snapshots
                                       else {"room": room}) is not None:  # fmt: skip
                    return False
            if not self.create_room(info):
                return False
            try:
                self._write_imported(room, snapshot, list(history), base)
            except PyMongoError:
                self._remove_imported(room)
                raise
        except PyMongoError as exc:
            raise StoreError(f"cannot import room {room!r}: {exc}") from exc
        return True

    def _write_imported(
        self, room: str, snapshot: bytes, rows: list[HistoryRow], base: HistoryBase | None
    ) -> None:
        self.compact(room, snapshot, 0)
        if rows:
            self._history.insert_many(
                [{"room": room, "seq": r.seq, "ts_first": r.ts_first, "ts": r.ts,
                  "who": r.who.as_json(), "kind": r.kind, "data": encode_batch(r.updates),
                  "parts": _parts_doc(r.parts), "n": len(r.updates)} for r in rows]
            )  # fmt: skip
        top = max([r.seq for r in rows] + [base.seq if base else 0])
        self._history_seq.update_one({"_id": room}, {"$max": {"seq": top}}, upsert=True)
        if base is not None:
            self._history_bases.replace_one(
                {"_id": room},
                {"_id": room, "seq": base.seq, "ts": base.ts, "state": base.state,
                 "derived": base.derived},
                upsert=True,
            )  # fmt: skip
        clocks, digests = recorded_keys(rows)
        for client, upto in clocks.items():
            self._history_clocks.update_one(
                {"_id": f"{room}\0{client}"}, {"$max": {"upto": upto}}, upsert=True
            )
        for digest, ts in digests:
            self._history_deletes.update_one(
                {"_id": f"{room}\0{digest}"},
                {"$setOnInsert": {"room": room, "ts": ts}},
                upsert=True,
            )

    def _remove_imported(self, room: str) -> None:
        """Undo a failed import as far as the server still answers."""
        for collection, query in (
            (self._history, {"room": room}),
            (self._history_deletes, {"room": room}),
            (self._history_clocks, {"_id": {"$regex": f"^{re.escape(room)}\x00"}}),
            (self._history_bases, {"_id": room}),
            (self._history_seq, {"_id": room}),
            (self._chunks, {"room": room}),
            (self._snapshots, {"_id": room}),
            (self._rooms, {"_id": room}),
        ):
            with contextlib.suppress(PyMongoError):
                collection.delete_many(query)

    def delete_room(self, room: str) -> bool:
        """No multi-document transaction (no replica set needed): the contents go first
        and the room's info last, so a failure part way leaves a room that exists and
        that deleting again finishes."""
        removed = 0
        try:
            for collection in (self._updates, self._chunks, self._history, self._history_deletes):
                removed += collection.delete_many({"room": room}).deleted_count
            # history_clocks' ids are "room\0client": the room's are one id range.
            clocks = {"_id": {"$gte": f"{room}\0", "$lt": f"{room}\x01"}}
            removed += self._history_clocks.delete_many(clocks).deleted_count
            for collection in (self._snapshots, self._history_seq, self._history_bases):
                removed += collection.delete_one({"_id": room}).deleted_count
            removed += self._rooms.delete_one({"_id": room}).deleted_count
        except PyMongoError as exc:
            raise StoreError(f"cannot delete room {room!r}: {exc}") from exc
        return bool(removed > 0)

    def idle_rooms(self, before: float, limit: int) -> list[str]:
        try:
            self._ensure_indexes()
            cursor = (
                self._rooms.find({"updated_at": {"$lt": before}}, {"_id": 1})
                .sort("updated_at", ASCENDING)
                .limit(limit)
            )
            return [str(doc["_id"]) for doc in cursor]
        except PyMongoError as exc:
            raise StoreError(f"cannot read idle rooms: {exc}") from exc

    def owned_rooms(self, owner: str, since: float = 0.0) -> tuple[int, float | None]:
        if not owner:
            return 0, None
        try:
            self._ensure_indexes()
            query = {"owner": owner, "created_at": {"$gte": since}}
            count = self._rooms.count_documents(query)
            first = self._rooms.find_one(query, {"created_at": 1}, sort=[("created_at", 1)])
        except PyMongoError as exc:
            raise StoreError(f"cannot count the rooms of {owner!r}: {exc}") from exc
        return count, None if first is None else float(first["created_at"])

    def ping(self) -> None:
        try:
            self._client.admin.command("ping")
        except PyMongoError as exc:
            raise StoreError(f"MongoDB unavailable: {exc}") from exc

    def close(self) -> None:
        self._client.close()


def _history_row(doc: dict[str, Any]) -> HistoryRow:
    who = doc["who"]
    return HistoryRow(
        int(doc["seq"]), float(doc["ts_first"]), float(doc["ts"]),
        Who(str(who["id"]), str(who["name"]), str(who["role"])), str(doc["kind"]),
        decode_batch(bytes(doc["data"])), parts_from_json(doc.get("parts")),
    )  # fmt: skip


def _parts_doc(parts: tuple[Part, ...]) -> list[list[Any]] | None:
    return [[w.id, w.name, w.role, kind, n] for w, kind, n in parts] if parts else None


def _room_info(doc: dict[str, Any]) -> RoomInfo:
    return RoomInfo(
        name=doc["_id"],
        mode=doc["mode"],
        language=doc["language"],
        title=doc["title"],
        created_at=float(doc["created_at"]),
        updated_at=float(doc["updated_at"]),
        tokens_after=float(doc.get("tokens_after", 0.0)),
        forks=bool(doc.get("forks", True)),
        reviewers_run=_optional_bool(doc.get("reviewers_run")),
        history_viewers=_optional_bool(doc.get("history_viewers")),
        owner=str(doc.get("owner", "")),
    )


def _optional_bool(value: object) -> bool | None:
    return None if value is None else bool(value)
