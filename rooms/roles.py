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

from pycrdt import Doc, get_update

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


def touched_roots(doc: Doc[Any], update: bytes) -> set[str] | None:
    """The roots ``update`` would change in ``doc``, found on a throwaway copy.

    Returns None when the copy cannot integrate the update completely: structs
    whose dependencies are missing, or deletions of items the document lacks.
    A root the update creates outside the schema counts as touched."""
    copy: Doc[Any] = Doc()
    copy.apply_update(doc.get_update())
    changed: set[str] = set()
    for name, kind in ROOT_TYPES.items():
        copy.get(name, type=kind).observe_deep(partial(_mark, changed, name))
    known = set(copy.keys())
    copy.apply_update(update)
    if not _fully_integrated(update, copy.get_state()):
        return None
    return changed | (set(copy.keys()) - known)


def _mark(changed: set[str], name: str, *_event: object) -> None:
    changed.add(name)


def reviewer_may_apply(doc: Doc[Any], update: bytes) -> bool:
    roots = touched_roots(doc, update)
    return roots is not None and roots <= REVIEWER_ROOTS


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
