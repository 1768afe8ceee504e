"""The AI's code changes as records that can be reverted, each as one unit.

An AI edit or an applied suggestion is written by the AI's replica: in a browser it is
a remote change, which the person's own undo history does not hold. So every such
change is recorded on its chat entry (fields only the AI writes, ``rooms.authorship``
keeps peers off them), where it survives a restart with the document:

- ``change``: a JSON list of edits, each ``{client, clock, length, inserted, removed,
  tombs, path, created}``: the replica's client id and the clock range (UTF-16 units,
  as Yjs counts) of the text it inserted, that text, the text it removed, and, when it
  only removed, the item ids of what it removed (to find the place again); the file it
  changed (``path``; absent in records made before workspaces: the entry file), and
  ``created`` when the change made that file (reverting it deletes the file);
- ``change_for``: the verified user id of the asker or of the person who applied it;
- ``undone``, ``undone_by``, ``undone_by_id`` once reverted.

Reverting finds the inserted items by their ids wherever the text has moved them. The
revert is refused when any of them was deleted or anyone typed between them since:
someone else's later typing is never deleted.

pycrdt 0.14's ``StickyIndex.get_index`` adds a clock delta inside a block to a UTF-8
offset (pycrdt#382), which is exact only at a block's first clock; ``locate`` asks for
that first clock (from the document's own encoding) and walks the rest in the text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, StickyIndex, Text

from crdt import offsets, schema, structs

Range = tuple[int, int, int]  # (client, clock, length)


@dataclass(frozen=True, slots=True)
class Edit:
    client: int
    clock: int
    length: int  # UTF-16 units inserted
    inserted: str
    removed: str
    tombs: tuple[Range, ...] = ()
    path: str | None = None  # None: the entry file (records made before workspaces)
    created: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "client": self.client,
            "clock": self.clock,
            "length": self.length,
            "inserted": self.inserted,
            "removed": self.removed,
            "tombs": [list(t) for t in self.tombs],
        }
        if self.path is not None:
            out["path"] = self.path
        if self.created:
            out["created"] = True
        return out

    @classmethod
    def from_json(cls, raw: Any) -> Edit:
        tombs = tuple((int(c), int(k), int(n)) for c, k, n in raw.get("tombs") or ())
        path = raw.get("path")
        return cls(int(raw["client"]), int(raw["clock"]), int(raw["length"]),
                   str(raw["inserted"]), str(raw["removed"]), tombs,
                   str(path) if path is not None else None, raw.get("created") is True)  # fmt: skip


class RevertRefused(Exception):
    """The change cannot be reverted as it is now (a plain sentence why)."""


def load(raw: Any) -> list[Edit]:
    """The edits recorded in an entry's ``change`` field (a JSON string)."""
    if not isinstance(raw, str) or not raw:
        return []
    try:
        return [Edit.from_json(item) for item in json.loads(raw)]
    except (ValueError, KeyError, TypeError) as exc:
        raise RevertRefused("the record of this change is damaged") from exc


def dump(edits: list[Edit]) -> str:
    return json.dumps([e.to_json() for e in edits], ensure_ascii=False)


def new_deletions(before: list[Range], after: list[Range]) -> list[Range]:
    """The ranges of ``after`` that ``before`` did not cover (what one change deleted)."""
    old: dict[int, list[tuple[int, int]]] = {}
    for client, clock, length in before:
        old.setdefault(client, []).append((clock, clock + length))
    out: list[Range] = []
    for client, clock, length in after:
        pieces = [(clock, clock + length)]
        for a, b in old.get(client, ()):
            pieces = [p for s, e in pieces for p in ((s, min(e, a)), (max(s, b), e)) if p[1] > p[0]]
        out += [(client, s, e - s) for s, e in pieces]
    return out


class Locator:
    """Item ids of one file's text to positions (code points) in its text now."""

    def __init__(self, doc: Doc[Any], text: Text | None = None) -> None:
        self.text: Text = schema.code(doc) if text is None else text
        self.current = str(self.text)
        update = structs.parse(doc.get_update())
        self.structs = update.structs
        self.deletes = update.deletes

    def deleted(self, client: int, clock: int, length: int) -> bool:
        """Was any of the ``length`` clocks from ``clock`` deleted?"""
        return any(c == client and k < clock + length and clock < k + n for c, k, n in self.deletes)

    def locate(self, client: int, clock: int) -> int | None:
        """Where item ``(client, clock)`` is now (code points); a deleted one: where it
        was. None when it is not in the text."""
        block = next(
            (s for s in self.structs if s.client == client and 0 <= clock - s.clock < s.length),
            None,
        )
        if block is None:
            return None
        sticky = StickyIndex.from_json(
            {"type": None, "tname": None, "item": {"client": client, "clock": block.clock},
             "assoc": 0},
            self.text,
        )  # fmt: skip
        try:
            base = offsets.utf8_to_codepoint(self.current, int(sticky.get_index()))
        except (offsets.OffsetError, BaseException):  # noqa: BLE001 - yrs panics too
            return None
        if block.kind != structs.STRING:
            return base  # a tombstone: all of it sits at one place
        units, at = clock - block.clock, base
        while units > 0 and at < len(self.current):
            units -= 2 if ord(self.current[at]) > 0xFFFF else 1
            at += 1
        return at if units == 0 else None


@dataclass(frozen=True, slots=True)
class Step:
    at: int  # code points
    remove: int  # code points of the AI's text to delete there
    put_back: str


def by_file(doc: Doc[Any], edits: list[Edit]) -> dict[str, list[Edit]]:
    """The edits grouped by the file they changed (no path: the entry file)."""
    out: dict[str, list[Edit]] = {}
    for edit in edits:
        out.setdefault(edit.path or schema.entry_path(doc), []).append(edit)
    return out


def plan(doc: Doc[Any], edits: list[Edit], text: Text | None = None) -> list[Step]:
    """How to revert ``edits`` in ``text`` (default ``code``) as it is now; raises
    ``RevertRefused``."""
    where = Locator(doc, text)
    steps: list[Step] = []
    for edit in edits:
        if edit.inserted:
            if where.deleted(edit.client, edit.clock, edit.length):
                raise RevertRefused("the AI's text was changed since (part of it was deleted)")
            first = where.locate(edit.client, edit.clock)
            last_width = offsets.utf16_len(edit.inserted[-1])
            last = where.locate(edit.client, edit.clock + edit.length - last_width)
            size = len(edit.inserted)
            if (
                first is None
                or last != first + size - 1
                or where.current[first : first + size] != edit.inserted
            ):
                raise RevertRefused("the AI's text was edited since")
            steps.append(Step(first, size, edit.removed))
        elif edit.removed:
            places = [p for c, k, _ in edit.tombs if (p := where.locate(c, k)) is not None]
            if not places:
                raise RevertRefused("the code around the AI's change is gone")
            steps.append(Step(min(places), 0, edit.removed))
    ordered = sorted(steps, key=lambda s: s.at)
    for left, right in zip(ordered, ordered[1:], strict=False):
        if left.at + left.remove > right.at:
            raise RevertRefused("the AI's edits overlap; undo them by hand")
    return ordered


def apply(text: Text, steps: list[Step]) -> None:
    """Carry out ``plan``'s steps (inside the caller's transaction), right to left."""
    for step in reversed(steps):
        current = str(text)
        a = offsets.codepoint_to_utf8(current, step.at)
        if step.remove:
            b = offsets.codepoint_to_utf8(current, step.at + step.remove)
            del text[a:b]
        if step.put_back:
            text.insert(a, step.put_back)
