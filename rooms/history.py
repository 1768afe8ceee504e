"""The history a room keeps besides its document: every accepted update, when the
server accepted it and who sent it (the verified token identity, ``ai`` for the AI,
``server`` for runs and server edits).

Compaction folds the document's log into a snapshot; history is a separate
append-only record written in the same store transaction as the batch it belongs to
(so it is exactly as durable), bounded by a retention and a per-room row cap.

Rows are what the store keeps. One row holds one person's consecutive updates of one
kind (coalesced within a window, so an hour of typing is a few thousand rows, not
36,000), each update kept whole, so playback still sees every paste as the one update
it was. Pruning folds the oldest rows into the ``HistoryBase``: the document as it was
at the cut, from which playback starts.

With several instances every instance stores what it receives, so each update is
offered to the store more than once. ``update_key`` names an update by what it
carries: the Yjs client and clock of its first struct (no two updates carry the same
one, and the full-state update an instance re-seeds Redis with repeats a known one),
or, for an update that only deletes, a digest of its delete set.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from crdt.protocol import ProtocolError, Reader

# What an event is, for markers and filters: a person's code edit, a run result the
# server wrote, the AI's change or chat turn, a comment, a chat message.
EDIT, RUN, AI, COMMENT, CHAT = "edit", "run", "ai", "comment", "chat"
KINDS = (EDIT, RUN, AI, COMMENT, CHAT)


@dataclass(frozen=True, slots=True)
class Who:
    """A verified identity: a token's ``sub``, name and role, or the AI, or the server."""

    id: str
    name: str
    role: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "role": self.role}


SERVER = Who("server", "server", "server")
AI_WHO = Who("ai", "AI", "ai")


@dataclass(slots=True)
class HistoryEntry:
    """Updates on their way to the store: one person's, of one kind, in order."""

    ts_first: float  # unix seconds when the server accepted the first of them
    ts: float  # ... and the last
    who: Who
    kind: str
    updates: list[bytes]


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """A stored entry. ``seq`` orders rows within a room (the store assigns it)."""

    seq: int
    ts_first: float
    ts: float
    who: Who
    kind: str
    updates: list[bytes]


@dataclass(frozen=True, slots=True)
class HistoryBase:
    """The history before its oldest row: the document at ``ts`` (a full v1 update) and
    what playback had derived up to there (JSON, see ``rooms.playback``)."""

    seq: int  # the last row it folds
    ts: float
    state: bytes
    derived: dict[str, Any] = field(default_factory=dict)

    def derived_json(self) -> str:
        return json.dumps(self.derived, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class HistorySettings:
    retention_days: float = 30.0  # 0: history is off (nothing recorded)
    max_rows: int = 200_000  # per room; the oldest are folded into the base past it
    coalesce_seconds: float = 2.0  # one person's updates closer than this share a row
    coalesce_updates: int = 256  # ... up to this many per row
    large_insert: int = 200  # characters inserted by one update that mark a paste
    viewers_default: bool = True  # viewers may read history (not in broadcast rooms)

    @property
    def enabled(self) -> bool:
        return self.retention_days > 0


def update_key(update: bytes) -> tuple[int, int] | str | None:
    """What names ``update`` among a room's updates: ``(client, clock)`` of its first
    struct, or a digest of its delete set when it carries no struct; None for bytes that
    are not a v1 update (never stored as history)."""
    reader = Reader(update)
    try:
        groups = reader.read_var_uint()
        if groups:
            reader.read_var_uint()  # the group's struct count
            return (reader.read_var_uint(), reader.read_var_uint())
    except ProtocolError:
        return None
    return "d:" + hashlib.blake2b(update, digest_size=12).hexdigest()


def coalesce(entries: list[HistoryEntry], entry: HistoryEntry, settings: HistorySettings) -> None:
    """Append ``entry`` to ``entries``, into the last one when it is the same person's
    same kind of change within the window."""
    if entries:
        last = entries[-1]
        if (
            last.who == entry.who
            and last.kind == entry.kind
            and entry.ts - last.ts_first <= settings.coalesce_seconds
            and len(last.updates) + len(entry.updates) <= settings.coalesce_updates
        ):
            last.updates.extend(entry.updates)
            last.ts = entry.ts
            return
    entries.append(entry)


def pack_origin(ts: float, who: Who, kind: str) -> bytes:
    """Who sent an update and when, as it travels to the other instances with it."""
    return "\0".join((repr(ts), kind, who.id, who.name, who.role)).encode()


def unpack_origin(packed: bytes) -> tuple[float, Who, str] | None:
    """``pack_origin`` read back; None for anything else (an older instance's entry)."""
    try:
        ts, kind, who_id, name, role = packed.decode().split("\0")
        when = float(ts)
    except (UnicodeDecodeError, ValueError):
        return None
    if kind not in KINDS or when != when:  # NaN
        return None
    return when, Who(who_id, name, role), kind


def _joins(group: list[HistoryRow], row: HistoryRow, settings: HistorySettings) -> bool:
    first, last = group[0], group[-1]
    return (
        last.who == row.who
        and last.kind == row.kind
        and row.ts - first.ts_first <= settings.coalesce_seconds
        and sum(len(r.updates) for r in group) + len(row.updates) <= settings.coalesce_updates
    )


def coalesce_rows(
    rows: list[HistoryRow], settings: HistorySettings, now: float
) -> tuple[list[tuple[list[int], HistoryRow]], int]:
    """Which runs of ``rows`` (in seq order) to merge, each as (the seqs it replaces, the
    merged row, numbered as the run's last), and the seq up to which rows are final.
    Rows younger than the window are left for a later pass: the next flush may continue
    them. The last run is merged but not final: its next rows may join it later."""
    merges: list[tuple[list[int], HistoryRow]] = []
    final = 0
    group: list[HistoryRow] = []

    def close() -> None:
        if len(group) > 1:
            merged = HistoryRow(
                group[-1].seq, group[0].ts_first, group[-1].ts, group[0].who, group[0].kind,
                [u for r in group for u in r.updates],
            )  # fmt: skip
            merges.append(([r.seq for r in group], merged))

    for row in rows:
        if now - row.ts <= settings.coalesce_seconds:
            break
        if group and _joins(group, row, settings):
            group.append(row)
            continue
        close()
        if group:
            final = group[-1].seq
        group = [row]
    close()
    return merges, final
