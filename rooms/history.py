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
