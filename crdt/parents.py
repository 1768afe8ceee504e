"""Which shared type each item of a document belongs to, by ranges of ids.

A Yjs item names its parent only when it has neither origin nor right origin;
otherwise it belongs where its origin (else its right origin) belongs. An update
whose origin and right origin sit in different types, or that puts a right origin
on a map entry, is one that yrs integrates differently from a fresh copy of the
same document (``tests/corpus/yrs`` keeps such cases), and no honest client writes
one. ``crdt.integrity`` asks this index, fed with every update a room applies, before
the update reaches the document.

Ranges of consecutive clocks with one parent are merged, so a person typing into
one text costs one range, however long they type.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from crdt import structs

# A parent: a root type's name, or the id of the item holding a nested type; with the
# map key when the item is a map entry (None for an item of a sequence).
Parent = tuple[str | tuple[int, int], str | None]


@dataclass(slots=True)
class _Ranges:
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    parents: list[Parent | None] = field(default_factory=list)


class ParentIndex:
    __slots__ = ("_clients", "_lows")

    def __init__(self) -> None:
        self._clients: dict[int, _Ranges] = {}
        # Per client, the clocks that are second halves of surrogate pairs (an emoji
        # takes two clocks; yrs splits between them if an origin asks it to).
        self._lows: dict[int, set[int]] = {}

    def splits_a_character(
        self, origin: tuple[int, int] | None, right: tuple[int, int] | None
    ) -> bool:
        """Would these origins cut a character in two? An origin is an item's last
        unit, so never a pair's first; a right origin never a pair's second."""
        if origin is not None and origin[1] + 1 in self._lows.get(origin[0], ()):
            return True
        return right is not None and right[1] in self._lows.get(right[0], ())

    def add_low_surrogates(self, client: int, clocks: list[int]) -> None:
        if clocks:
            self._lows.setdefault(client, set()).update(clocks)

    def parent_of(self, client: int, clock: int) -> Parent | None:
        """The parent of item (client, clock); None when unknown (or a GC'd item)."""
        ranges = self._clients.get(client)
        if ranges is None:
            return None
        at = bisect_right(ranges.starts, clock) - 1
        if at < 0 or clock >= ranges.ends[at]:
            return None
        return ranges.parents[at]

    def parents_in(self, client: int, start: int, end: int) -> list[Parent | None]:
        """The parents of the known items of ``client`` from ``start`` to ``end``."""
        ranges = self._clients.get(client)
        if ranges is None:
            return []
        at = max(bisect_right(ranges.starts, start) - 1, 0)
        found: list[Parent | None] = []
        while at < len(ranges.starts) and ranges.starts[at] < end:
            if ranges.ends[at] > start:
                found.append(ranges.parents[at])
            at += 1
        return found

    def parent_for(self, struct: structs.Struct) -> Parent | None:
        """Where ``struct`` goes: its own parent, else its origin's, else its right origin's."""
        if struct.named_parent is not None:
            return struct.named_parent
        for ref in (struct.origin, struct.right_origin):
            if ref is not None:
                return self.parent_of(*ref)
        return None

    def add(self, client: int, start: int, end: int, parent: Parent | None) -> None:
        ranges = self._clients.get(client)
        if ranges is None:
            ranges = self._clients[client] = _Ranges()
        if ranges.ends and ranges.ends[-1] == start and ranges.parents[-1] == parent:
            ranges.ends[-1] = end  # typing on: the same range grows
            return
        if ranges.starts and start < ranges.ends[-1]:
            return  # already known (an update repeating what the document holds)
        ranges.starts.append(start)
        ranges.ends.append(end)
        ranges.parents.append(parent)

    def learn(self, update: structs.Update) -> None:
        """Record the structs of an update the document applied, in order (an item's
        origin may be an earlier struct of the same update)."""
        for struct in update.structs:
            self.add(
                struct.client, struct.clock, struct.clock + struct.length, self.parent_for(struct)
            )
