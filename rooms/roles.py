"""Roles, room modes, and which document changes each role may make.

Checked on every update on the server; the client only mirrors it.

- ``owner`` and ``editor`` may change every root. Their updates take the fast
  path: one attribute test, no decoding.
- ``reviewer`` may change ``chat`` and ``comments`` only. Which roots an update
  touches cannot be read off its bytes alone (an inserted item names its parent
  through neighbours the update does not contain), so the update is applied to
  a throwaway copy of the document and the copy's events say which roots
  changed. An update that would stay pending is refused too: once its
  dependencies arrived it could land anywhere.
- ``viewer`` changes nothing.
"""

from __future__ import annotations

import enum
from functools import partial
from typing import Any

from pycrdt import Doc, Map, get_update

from crdt.protocol import Reader
from crdt.schema import CHAT, COMMENTS, ROOT_TYPES
from crdt.updates import decode_state_vector


class Role(enum.StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    REVIEWER = "reviewer"
    VIEWER = "viewer"

    @property
    def writes_everything(self) -> bool:
        return self in (Role.OWNER, Role.EDITOR)

    @property
    def on_stage(self) -> bool:
        """In broadcast rooms, whose presence everyone sees (the teacher and helpers)."""
        return self in (Role.OWNER, Role.EDITOR)


class Mode(enum.StrEnum):
    PAIR = "pair"
    REVIEW = "review"
    BROADCAST = "broadcast"

    @property
    def join_role(self) -> Role:
        """The role of the links a room of this mode hands out to participants."""
        return {Mode.PAIR: Role.EDITOR, Mode.REVIEW: Role.REVIEWER, Mode.BROADCAST: Role.VIEWER}[
            self
        ]


REVIEWER_ROOTS = frozenset({CHAT, COMMENTS})


class ReviewerCheck:
    """Finds which roots an update would change by applying it to a copy of the
    room's document first.

    The copy is kept between checks and brought up to date with only what the
    document gained since (``Doc.get_update(state)``), so a check costs about
    one extra apply rather than a rebuild. After a refused update the copy holds
    content the document never will, so it is thrown away and rebuilt next time.
    """

    def __init__(self, doc: Doc[Any]) -> None:
        self._doc = doc
        self._copy: Doc[Any] | None = None
        self._changed: set[str] = set()
        # pycrdt stops calling an observer once its Subscription is garbage: keep them.
        self._subscriptions: dict[str, Any] = {}

    def _touched_roots(self, update: bytes) -> set[str] | None:
        """The roots ``update`` would change. None when it cannot be integrated
        completely: structs whose dependencies are missing, or deletions of items
        the document lacks. A root it creates outside the schema counts as touched."""
        copy = self._copy
        if copy is None:
            copy = self._copy = Doc()
            self._subscriptions = {}
            for name, kind in ROOT_TYPES.items():
                self._observe(copy, name, kind)
            copy.apply_update(self._doc.get_update())
        else:
            copy.apply_update(self._doc.get_update(copy.get_state()))
        known = set(copy.keys())
        for name in known - self._subscriptions.keys():
            # A root outside the schema (an editor made it). Its type is unknown, but
            # yrs reports deep events on a root observed under any shared type.
            self._observe(copy, name, Map)
        self._changed.clear()
        try:
            copy.apply_update(update)
        except BaseException:
            self._copy = None
            raise
        if not _fully_integrated(update, copy.get_state()):
            self._copy = None
            return None
        return self._changed | (set(copy.keys()) - known)

    def _observe(self, copy: Doc[Any], name: str, kind: type) -> None:
        root = copy.get(name, type=kind)
        self._subscriptions[name] = root.observe_deep(partial(_mark, self._changed, name))

    def allows(self, update: bytes) -> bool:
        """May a reviewer apply ``update``? The copy is kept only when it may."""
        roots = self._touched_roots(update)
        if roots is None or not roots <= REVIEWER_ROOTS:
            self._copy = None
            return False
        return True


def _mark(changed: set[str], name: str, *_event: object) -> None:
    changed.add(name)


def touched_roots(doc: Doc[Any], update: bytes) -> set[str] | None:
    """The roots ``update`` would change in ``doc``, found on a throwaway copy."""
    return ReviewerCheck(doc)._touched_roots(update)


def reviewer_may_apply(doc: Doc[Any], update: bytes) -> bool:
    return ReviewerCheck(doc).allows(update)


def _fully_integrated(update: bytes, state_vector: bytes) -> bool:
    """True when, after applying, nothing of ``update`` is left pending: no struct
    beyond ``state_vector`` and no deletion of a clock the document has not reached."""
    rest = Reader(get_update(update, state_vector))
    if rest.read_var_uint() != 0:  # struct groups the document could not integrate
        return False
    reached = decode_state_vector(state_vector)
    for _ in range(rest.read_var_uint()):  # delete set: client, then (clock, length) ranges
        client = rest.read_var_uint()
        for _ in range(rest.read_var_uint()):
            clock = rest.read_var_uint()
            length = rest.read_var_uint()
            if clock + length > reached.get(client, 0):
                return False
    return True
