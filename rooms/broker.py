"""Cross-instance sync, as the room sees it.

A room hands every update it applied for a local peer (or made itself) to
``publish_update``, and every awareness change to ``publish_awareness``; the
broker delivers what other instances published back through
``Room.apply_remote_update`` and ``Room.apply_remote_awareness``. Compaction
asks the broker for a lease, so that only one instance at a time rewrites a
room's snapshot, and tells it afterwards how far the snapshot reaches, so the
broker may forget what is now stored.

``Broker`` itself is the embedded default: one instance, nothing to share,
every lease granted. ``rooms.redis_broker`` is the multi-instance one.

A broker sees a room only as a ``SyncedRoom``: what it needs of ``rooms.room.Room``
and nothing more, so this module does not import the room (which imports it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pycrdt import Doc


class SyncedRoom(Protocol):
    """The part of a room a broker uses: its name, its document (a full state to
    re-seed others with), and the two ways in for what other instances published."""

    @property
    def name(self) -> str: ...

    @property
    def doc(self) -> Doc[Any]: ...

    def apply_remote_update(self, update: bytes, origin: bytes | None = None) -> None: ...

    def apply_remote_awareness(self, payload: bytes, instance: str, on_stage: bool) -> None: ...


class Broker:
    enabled = False
    instance_id = "local"
    # Called with a room's name when another instance deleted it (``delete_room``).
    on_deleted: Callable[[str], None] | None = None

    async def start(self) -> None:
        """Connect and start background work. Must not fail when the backend is down."""

    async def close(self) -> None:
        """Publish what is pending, if possible, and stop."""

    async def attach(self, room: SyncedRoom) -> None:
        """Bring a freshly loaded room up to date with what others published, then
        follow it. Called before the room serves anyone."""

    def detach(self, room: SyncedRoom) -> None:
        """Stop following an unloaded room."""

    def publish_update(self, room: str, update: bytes, origin: bytes | None = None) -> None:
        """Queue an update for the other instances, with who sent it and when
        (``rooms.history.pack_origin``) for their history. Never blocks, never raises."""

    def publish_awareness(self, room: str, payload: bytes, on_stage: bool) -> None:
        """Send an awareness change to the other instances (best effort)."""

    async def acquire_lease(self, room: str) -> bool:
        """True if this instance may compact ``room`` now."""
        return True

    def position(self, room: str) -> str | None:
        """How far this instance has applied what others published (an opaque mark)."""
        return None

    async def forget_before(self, room: str, mark: str | None) -> None:
        """Everything up to ``mark`` is in the store now; the broker may drop it."""

    async def check(self) -> None:
        """Raise unless the backend answers (readiness)."""

    async def delete_room(self, room: str) -> bool:
        """The room was deleted here: drop what is queued for it, remove its keys, and
        tell the other instances (their ``on_deleted``). False if the backend could not
        be reached (its keys may be left)."""
        return True

    async def loaded_elsewhere(self, room: str) -> bool:
        """Whether another instance has ``room`` loaded (one instance: never)."""
        return False

    async def acquire_named_lease(self, name: str, ttl: float) -> bool:
        """True if this instance holds the lease ``name`` for ``ttl`` seconds (taken or
        renewed): work one instance at a time does (the retention sweep)."""
        return True

    async def release_named_lease(self, name: str) -> None:
        """Give the lease ``name`` back, if this instance holds it."""
