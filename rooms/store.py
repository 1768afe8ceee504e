"""The persistence contract every store implements, and the batch encoding they share.

A room's history is a snapshot (a full v1 update, or none) plus a log of update
batches with increasing sequence numbers. ``compact`` replaces the snapshot and
drops the batches it covers; ``load`` returns the snapshot and every batch after
it. Stores are synchronous and are called from one worker thread (see
``rooms.persistence``), so implementations need no locking of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from crdt.protocol import ProtocolError, Reader, var_bytes
from rooms.history import HistoryBase, HistoryEntry, HistoryRow


class StoreError(Exception):
    """The store could not do what was asked. Never means "the room is empty"."""


class CorruptDataError(StoreError):
    """Stored bytes that cannot be decoded. The room must not be served."""


@dataclass(slots=True)
class RoomInfo:
    """What the server knows of a room besides its document."""

    name: str
    mode: str = "pair"
    language: str = "python"
    title: str = ""
    created_at: float = 0.0  # unix seconds
    updated_at: float = 0.0  # the last flush of an update
    # Tokens issued (``iat``) before this unix second are refused: the owner rotated
    # the room's links. 0: never rotated.
    tokens_after: float = 0.0
    forks: bool = True  # broadcast rooms: whether students may fork the code
    # Whether reviewers may run the code; None: the mode's default (on in review rooms).
    reviewers_run: bool | None = None
    # Whether viewers may read the room's history; None: the mode's default (not in
    # broadcast rooms, where the audience is large and the teacher's drafts are theirs).
    history_viewers: bool | None = None
    # The verified user id of whoever the room was made for (a fork's caller); "" when
    # nobody's own (created with the admin token, anonymously, or by the server). What
    # the rooms-per-user and forks-per-user quotas count (``server.quotas``).
    owner: str = ""

    @property
    def reviewers_may_run(self) -> bool:
        return self.mode == "review" if self.reviewers_run is None else self.reviewers_run

    @property
    def viewers_may_read_history(self) -> bool:
        if self.history_viewers is None:
            return self.mode != "broadcast"
        return self.history_viewers


@dataclass(slots=True)
class StoredRoom:
    snapshot: bytes | None = None
    snapshot_upto: int = 0  # the last batch sequence number the snapshot covers
    updates: list[bytes] = field(default_factory=list)  # after the snapshot, in order
    last_seq: int = 0

    @property
    def is_empty(self) -> bool:
        return self.snapshot is None and not self.updates


@dataclass(slots=True)
class RoomSummary:
    """A room as ``Store.list_rooms`` shows it: its info and what it takes."""

    info: RoomInfo
    document_bytes: int  # the stored snapshot and update log
    history_rows: int


MAX_LIST_ROOMS = 1000  # rooms in one ``list_rooms`` page at most


class Store(Protocol):
    def load(self, room: str) -> StoredRoom: ...

    def append(self, room: str, updates: Sequence[bytes]) -> int:
        """Durably append one batch; return its sequence number."""
        ...

    def append_many(
        self,
        batches: Mapping[str, Sequence[bytes]],
        history: Mapping[str, Sequence[HistoryEntry]] | None = None,
    ) -> dict[str, int]:
        """Durably append one batch to each of several rooms, and their history entries
        (one transaction where the store has them); return each room's new sequence
        number. A history update already stored (``rooms.history.update_key``: another
        instance stored it first) is left out; an entry left empty is not written."""
        ...

    def history(self, room: str, after: int = 0, limit: int | None = None) -> list[HistoryRow]:
        """The room's history rows with ``seq`` above ``after``, in order."""
        ...

    def history_base(self, room: str) -> HistoryBase | None:
        """What the oldest rows were folded into, None while nothing was."""
        ...

    def rewrite_history(
        self,
        room: str,
        remove: Sequence[int],
        add: Sequence[HistoryRow],
        base: HistoryBase | None = None,
    ) -> None:
        """In one transaction: delete the rows numbered ``remove``, insert ``add`` (with
        their own ``seq``), and when ``base`` is given make it the room's base and delete
        every row up to ``base.seq``. How coalescing and pruning change stored rows."""
        ...

    def history_size(self, room: str) -> tuple[int, int, float | None]:
        """The room's history: rows, bytes of updates, and the oldest row's ``ts``."""
        ...

    def compact(self, room: str, snapshot: bytes, upto: int) -> None:
        """Store ``snapshot`` as covering every batch up to ``upto`` and delete those batches."""
        ...

    def create_room(self, info: RoomInfo) -> bool:
        """Record a new room. False (and nothing written) if the name is taken."""
        ...

    def room_info(self, room: str) -> RoomInfo | None: ...

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
        """Change the fields given (None: keep)."""
        ...

    def rotated_since(self, since: float) -> dict[str, float]:
        """Each room whose ``tokens_after`` is ``since`` or later, with that value: how the
        other instances learn of a rotation (one indexed query, whatever the room count)."""
        ...

    def list_rooms(self, after: str = "", limit: int = 100) -> list[RoomSummary]:
        """Rooms with recorded info whose names sort after ``after``, by name, at most
        ``limit`` (capped at ``MAX_LIST_ROOMS``): pass the last name back for the next page."""
        ...

    def import_room(
        self,
        info: RoomInfo,
        snapshot: bytes,
        history: Sequence[HistoryRow],
        base: HistoryBase | None = None,
    ) -> bool:
        """Write a whole room: its info, ``snapshot`` (a full v1 update) as its document,
        its history rows (in order) and base, in one transaction where the store has
        them. False, and nothing written, when the name is taken (info or any stored
        data). Row numbers keep their order but may be moved to fit the store's own."""
        ...

    def delete_room(self, room: str) -> bool:
        """Remove everything of the room: its info, snapshot, update log and history
        (one transaction where the store has them). True if anything of it existed."""
        ...

    def idle_rooms(self, before: float, limit: int) -> list[str]:
        """Up to ``limit`` rooms last changed (``updated_at``, which starts at the
        creation) before ``before``, oldest first: what the retention sweep deletes.
        One indexed query."""
        ...

    def owned_rooms(self, owner: str, since: float = 0.0) -> tuple[int, float | None]:
        """How many rooms ``owner`` owns that were created at ``since`` or later, and the
        oldest one's ``created_at`` (None when there is none): the quotas' count."""
        ...

    def ping(self) -> None:
        """Raise ``StoreError`` unless the store answers."""
        ...

    def close(self) -> None: ...


def encode_batch(updates: Sequence[bytes]) -> bytes:
    return b"".join(var_bytes(u) for u in updates)


def decode_batch(blob: bytes) -> list[bytes]:
    reader = Reader(blob)
    out: list[bytes] = []
    try:
        while not reader.at_end():
            out.append(reader.read_var_bytes())
    except ProtocolError as exc:
        raise CorruptDataError(f"undecodable update batch: {exc.reason}") from exc
    return out
