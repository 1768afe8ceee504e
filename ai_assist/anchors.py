"""Positions taken when a question is asked, resolved when the answer's edit is applied.

The model answers in line numbers of the snapshot it was shown; people keep typing
meanwhile. At ask time every line start of the snapshot is captured as a Yjs relative
position (a pycrdt ``StickyIndex``: the item id of the character at that place), and
resolved again at apply time, so an edit lands where it was meant to.

pycrdt 0.14's ``StickyIndex`` is only correct for ASCII (pycrdt#382): it
treats a byte offset inside a block as a clock delta. So relative positions are used
only when both the snapshot and the current text are ASCII. Otherwise, positions are
rebased through a character diff of the snapshot against the current text
(``difflib``): a position moves with the text around it. Both paths work in code
points; callers convert to pycrdt's UTF-8 indices with ``crdt.offsets``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Assoc, Text

MAX_STICKY_LINES = 5000  # beyond this, capturing every line start costs too much: diff only


def line_starts(text: str) -> list[int]:
    """Code-point offsets of each line's start; one more entry: the end of the text."""
    starts = [0]
    for i, char in enumerate(text):
        if char == "\n":
            starts.append(i + 1)
    starts.append(len(text))
    return starts


@dataclass(slots=True)
class Anchors:
    snapshot: str
    starts: list[int]  # line starts in the snapshot (code points), then len(snapshot)
    sticky: list[Any] | None = None  # StickyIndex per entry of ``starts`` (ASCII only)
    extra: dict[int, Any] = field(default_factory=dict)

    @property
    def lines(self) -> int:
        return len(self.starts) - 1

    def line_offset(self, line: int) -> int:
        """Snapshot offset of the start of 1-based ``line``; ``lines + 1`` is the end."""
        if not 1 <= line <= self.lines + 1:
            raise ValueError(f"line {line} outside 1..{self.lines + 1}")
        return self.starts[line - 1] if line <= self.lines else len(self.snapshot)

    def resolve(self, text: Text, offset: int, before: bool = False) -> int:
        """Where snapshot offset ``offset`` is in ``text`` now (code points). ``before``:
        a position that sticks to the character on its left (a range's end)."""
        current = str(text)
        if self.sticky is not None and current.isascii() and offset in self.starts:
            sticky = self.sticky[self.starts.index(offset)]
            if sticky is not None:
                try:
                    index = int(sticky.get_index())
                    if 0 <= index <= len(current):
                        return index
                except BaseException:  # noqa: BLE001 - yrs panics are BaseException
                    pass
        return rebase(self.snapshot, current, offset, before)


def capture(text: Text) -> Anchors:
    """Anchors for every line start of ``text`` as it is now. Synchronous: call it in the
    same step as reading the snapshot the prompt is built from."""
    snapshot = str(text)
    starts = line_starts(snapshot)
    anchors = Anchors(snapshot, starts)
    if snapshot.isascii() and len(starts) <= MAX_STICKY_LINES:
        sticky: list[Any] = []
        for offset in starts:
            # AFTER sticks to the character on the right (text typed at a line start
            # stays before the edit); at the end of the text AFTER panics: use BEFORE.
            assoc = Assoc.AFTER if offset < len(snapshot) else Assoc.BEFORE
            try:
                sticky.append(text.sticky_index(offset, assoc))
            except BaseException:  # noqa: BLE001 - yrs panics are BaseException
                sticky.append(None)
        anchors.sticky = sticky
    return anchors


def sticky_json(index: Any) -> dict[str, Any]:
    """A StickyIndex as Yjs RelativePosition JSON with all four keys (y-codemirror needs
    them)."""
    raw = dict(index.to_json())
    return {
        "type": raw.get("type"),
        "tname": raw.get("tname"),
        "item": raw.get("item"),
        "assoc": raw.get("assoc", 0),
    }


def rebase(old: str, new: str, offset: int, before: bool = False) -> int:
    """Map a code-point offset in ``old`` to ``new`` through a character diff."""
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "insert" and i1 == offset:
            return j1 if before else j2  # text typed right at the position
        if i1 <= offset < i2:
            return j1 + (offset - i1) if tag == "equal" else j1
    return len(new)
