"""The history a room keeps besides its document: every accepted update, when the
server accepted it and who sent it (the verified token identity, ``ai`` for the AI,
``server`` for runs and server edits).

Compaction folds the document's log into a snapshot; history is a separate
append-only record written in the same store transaction as the batch it belongs to
(so it is exactly as durable), bounded by a retention and a per-room row cap.

Rows are what the store keeps. One row holds a room's consecutive updates within a
window (``coalesce_seconds``): an hour of typing is a couple of thousand rows, not
36,000, however many people type at once. Each update is kept whole, so playback still
sees every paste as the one update it was, and who sent it and its kind are kept per
update (``parts``: runs of one person's updates of one kind, in order). A row's state
is exact at its ``ts``: rows never overlap, so "the files at a recorded moment" is
every row up to it. A flush's entry may extend the room's last stored row rather than
start one (``join_seconds``). Pruning folds the oldest rows into the ``HistoryBase``:
the document as it was at the cut, from which playback starts.

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

# What an event is, for markers and filters: a person's code edit, a run result the
# server wrote, the AI's change or chat turn, a comment, a chat message.
EDIT, RUN, AI, COMMENT, CHAT = "edit", "run", "ai", "comment", "chat"
KINDS = (EDIT, RUN, AI, COMMENT, CHAT)
# Kinds whose updates are rows of their own, never coalesced with others: a run's
# updates are few and each is a moment worth scrubbing to (queued, running, its result).
SEPARATE = frozenset({RUN})


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


Part = tuple[Who, str, int]  # (who, kind, how many consecutive updates)


@dataclass(slots=True)
class HistoryEntry:
    """Updates on their way to the store, in order. ``who`` and ``kind`` are the first
    update's; ``parts`` says whose the others are (empty: all ``who``'s)."""

    ts_first: float  # unix seconds when the server accepted the first of them
    ts: float  # ... and the last
    who: Who
    kind: str
    updates: list[bytes]
    parts: tuple[Part, ...] = ()
    # The store may append the entry to the room's last row when that row began at most
    # this long before ``ts`` and holds at most ``join_updates`` updates with it.
    join_seconds: float = 0.0
    join_updates: int = 0

    def runs(self) -> tuple[Part, ...]:
        return self.parts or ((self.who, self.kind, len(self.updates)),)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """A stored entry. ``seq`` orders rows within a room (the store assigns it)."""

    seq: int
    ts_first: float
    ts: float
    who: Who
    kind: str
    updates: list[bytes]
    parts: tuple[Part, ...] = ()

    def runs(self) -> tuple[Part, ...]:
        return self.parts or ((self.who, self.kind, len(self.updates)),)

    def split(self) -> list[HistoryRow]:
        """One row per part (each one person's updates of one kind), same seq and times."""
        if not self.parts:
            return [self]
        out: list[HistoryRow] = []
        at = 0
        for who, kind, count in self.parts:
            updates = self.updates[at : at + count]
            out.append(HistoryRow(self.seq, self.ts_first, self.ts, who, kind, updates))
            at += count
        return out


def merged_runs(*runs: tuple[Part, ...]) -> tuple[Part, ...]:
    """Runs one after the other, neighbours of one person and kind merged."""
    out: list[Part] = []
    for part in (p for r in runs for p in r):
        if part[2] <= 0:
            continue
        if out and out[-1][:2] == part[:2]:
            out[-1] = (part[0], part[1], out[-1][2] + part[2])
        else:
            out.append(part)
    return tuple(out)


def joined_parts(*runs: tuple[Part, ...]) -> tuple[Part, ...]:
    """``merged_runs`` as a row's ``parts``: empty when a single run is left, which the
    row's own ``who`` and ``kind`` must then say (take them from ``merged_runs``)."""
    out = merged_runs(*runs)
    return out if len(out) > 1 else ()


def append_runs(runs: tuple[Part, ...], more: tuple[Part, ...]) -> tuple[Part, ...]:
    """``runs`` then ``more`` (each already merged), joined at the seam only: extending
    a row with a flush costs the same however many runs the row has."""
    if not runs or not more:
        return runs or more
    last, first = runs[-1], more[0]
    if last[1] == first[1] and last[0] == first[0]:
        return (*runs[:-1], (last[0], last[1], last[2] + first[2]), *more[1:])
    return runs + more


def run_line(part: Part) -> str:
    """One run as stored: a JSON array on a line of its own (JSON never holds a raw
    newline), so a row's ``parts`` grow by lines, not by encoding them all again."""
    who, kind, count = part
    return json.dumps([who.id, who.name, who.role, kind, count])


def parts_json(parts: tuple[Part, ...]) -> str | None:
    """``parts`` as stored: one ``run_line`` per run (None for a single run)."""
    if not parts:
        return None
    return "\n".join(run_line(p) for p in parts)


def parts_from_json(raw: Any) -> tuple[Part, ...]:
    """Stored ``parts`` read back: ``parts_json``'s lines, or a list of 5-lists."""
    if not raw:
        return ()
    value = [json.loads(line) for line in raw.split("\n")] if isinstance(raw, str) else raw
    return tuple((Who(str(i), str(nm), str(r)), str(k), int(n)) for i, nm, r, k, n in value)


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
    are not a v1 update (never stored as history). Read by hand: it runs for every
    update a flush stores, and four varints need no ``Reader``."""
    try:
        groups, at = _var_uint(update, 0)
        if not groups:
            return "d:" + hashlib.blake2b(update, digest_size=12).hexdigest()
        _, at = _var_uint(update, at)  # the group's struct count
        client, at = _var_uint(update, at)
        clock, _ = _var_uint(update, at)
    except IndexError:
        return None
    return (client, clock)


def _var_uint(data: bytes, at: int) -> tuple[int, int]:
    """A LEB128 unsigned integer at ``at``, and where the next value starts."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def coalesce(entries: list[HistoryEntry], entry: HistoryEntry, settings: HistorySettings) -> None:
    """Append ``entry`` to ``entries``, into the last one while that one is within the
    window (whoever sent it: two people typing at once share rows, not alternate them)."""
    if entry.kind in SEPARATE:
        entries.append(entry)
        return
    if entries:
        last = entries[-1]
        if (
            last.kind not in SEPARATE
            and entry.ts - last.ts_first <= settings.coalesce_seconds
            and len(last.updates) + len(entry.updates) <= settings.coalesce_updates
        ):
            if last.parts or (last.who, last.kind) != (entry.who, entry.kind) or entry.parts:
                runs = append_runs(last.runs(), entry.runs())
                last.parts = runs if len(runs) > 1 else ()
            # else: one person's keystrokes, the common case: the single run just grows.
            last.updates.extend(entry.updates)
            last.ts = entry.ts
            return
    entry.join_seconds = settings.coalesce_seconds
    entry.join_updates = settings.coalesce_updates
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


def renumbered(
    rows: list[HistoryRow], base: HistoryBase | None, shift: int
) -> tuple[list[HistoryRow], HistoryBase | None]:
    """``rows`` and ``base`` with every ``seq`` moved by ``shift``, the ones ``base``
    derived (its large inserts) too: how an imported history fits a store whose row
    numbers are shared by every room. Order and gaps are kept."""
    if not shift:
        return rows, base
    moved = [
        HistoryRow(r.seq + shift, r.ts_first, r.ts, r.who, r.kind, r.updates, r.parts) for r in rows
    ]
    if base is None:
        return moved, None
    derived = dict(base.derived)
    if isinstance(derived.get("large_inserts"), list):
        derived["large_inserts"] = [
            {**item, "seq": item["seq"] + shift}
            if isinstance(item, dict) and isinstance(item.get("seq"), int)
            else item
            for item in derived["large_inserts"]
        ]
    return moved, HistoryBase(base.seq + shift, base.ts, base.state, derived)


def recorded_keys(rows: list[HistoryRow]) -> tuple[dict[int, int], list[tuple[str, float]]]:
    """What a store remembers of ``rows`` so another copy of one of their updates is
    left out (``update_key``): each Yjs client's next unrecorded clock, and the digest
    (with its row's ``ts``) of each delete-only update."""
    clocks: dict[int, int] = {}
    digests: list[tuple[str, float]] = []
    for row in rows:
        for update in row.updates:
            key = update_key(update)
            if isinstance(key, tuple):
                clocks[key[0]] = max(clocks.get(key[0], 0), key[1] + 1)
            elif isinstance(key, str):
                digests.append((key, row.ts))
    return clocks, digests
