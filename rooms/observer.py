"""Hooks the room core calls at measurable moments.

The room knows nothing of Prometheus: ``server.metrics`` subclasses this and
counts. The base class does nothing, so tests and tools can use rooms bare.
"""

from __future__ import annotations


class RoomObserver:
    def frame_received(self, frame: bytes) -> None:
        """Called for every frame a peer sent, before parsing."""

    def frames_sent(self, frame: bytes, count: int) -> None:
        """``frame`` was handed to ``count`` peers (written or queued)."""

    def frame_rejected(self, reason: str) -> None:
        """A frame was refused (malformed, oversize, unknown type, undecodable)."""

    def write_refused(self, role: str) -> None:
        """A peer's document change was dropped because its role may not make it."""

    def update_applied(self, seconds: float) -> None:
        """Time spent in ``Doc.apply_update`` for one incoming update."""

    def fanned_out(self, seconds: float) -> None:
        """From an update's receipt to its enqueue on the last local peer."""

    def peer_dropped(self, reason: str) -> None:
        """A peer was closed by the server for being too slow or over a bound."""

    def flushed(self, seconds: float, updates: int) -> None:
        """A batch of updates reached the store."""

    def flush_failed(self) -> None:
        """The store refused a batch; it stays pending and is retried."""

    def compacted(self, seconds: float) -> None:
        """A room's log was folded into a new snapshot."""

    def stream_lag(self, seconds: float) -> None:
        """Age of the newest update read from the other instances when it was read."""

    def publish_failed(self) -> None:
        """The broker could not publish; what it held stays queued."""

    def awareness_dropped(self) -> None:
        """Awareness waiting for Redis was dropped: its queue was full (it is renewed)."""

    def buffered_updates(self, count: int) -> None:
        """Updates waiting to be published (the broker is unreachable or slow)."""

    def lease_acquired(self) -> None:
        """This instance took over compacting a room."""

    def broker_connected(self, connected: bool) -> None: ...

    def document_rebuilt(self, outcome: str) -> None:
        """A room's document failed in yrs and is rebuilt: ``started``, ``done``, ``failed``."""

    def room_loaded(self, seconds: float) -> None: ...

    def store_loaded(self, seconds: float) -> None:
        """The store's reads for one room load (its record and its stored history)."""

    def room_load_failed(self) -> None: ...

    def room_unloaded(self) -> None: ...
