"""A peer as the room sees it: an identity, its options, and a bounded outbox.

The room never awaits a peer. It appends frames to the peer's outbox and moves
on; the transport (``server.websocket``) drains the outbox at the peer's own
pace. A peer whose outbox passes its bound is closed with 1013 (try again
later): the y-websocket client reconnects and resyncs with Step1/Step2, so
nothing is lost, and no other peer waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from crdt.protocol import CLOSE_TRY_AGAIN_LATER
from rooms.roles import Role

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class QueueLimits:
    max_frames: int = 1000
    max_bytes: int = 8 * 1024 * 1024


class Peer:
    """One participant in one room. Transports subclass nothing: they drain ``outbox``.

    An idle peer is what a capacity of 10,000 connections multiplies: slots instead of
    an instance dict, and no outbox until a frame has to wait (most never do: the
    transport writes directly while the socket keeps up)."""

    __slots__ = (
        "id", "role", "granted_role", "user_id", "name", "told_denied", "grant_timer",
        "grant_expires", "limits", "wants_receipts", "_outbox", "queued_bytes",
        "last_enqueued", "close_code", "close_reason", "on_close", "direct", "busy",
        "on_queue", "issued_at", "expires", "personal",
    )  # fmt: skip

    def __init__(
        self,
        *,
        limits: QueueLimits = QueueLimits(),
        wants_receipts: bool = False,
        role: Role = Role.EDITOR,
        user_id: str = "anonymous",
        name: str = "anonymous",
        issued_at: float = math.inf,
        personal: bool = False,
    ) -> None:
        self.id = next(_ids)
        self.role = role
        self.granted_role = role  # the role the token gave; a timed grant reverts to it
        self.user_id = user_id
        self.name = name
        self.personal = personal  # ``user_id`` is one person's (not a link many opened)
        self.told_denied = False  # the permission-denied answer goes once per connection
        self.grant_timer: asyncio.TimerHandle | None = None  # a timed role change
        self.grant_expires: float | None = None  # unix seconds when it reverts
        self.limits = limits
        self.wants_receipts = wants_receipts
        self._outbox: deque[bytes] | None = None  # made by the first frame that waits
        self.queued_bytes = 0
        self.last_enqueued = time.monotonic()
        self.close_code: int | None = None
        self.close_reason = ""
        self.on_close: Callable[[], None] | None = None  # set by the transport
        # Set by a transport that can write at once without awaiting (returns False
        # when it cannot right now); ``busy`` while its own sender is mid-write.
        self.direct: Callable[[bytes], bool] | None = None
        self.busy = False
        # Set by the transport, which drains ``outbox`` when told something was queued.
        self.on_queue: Callable[[], None] | None = None
        # When its token was issued (unix seconds): a link rotation closes peers whose
        # token predates it. Infinite: no token (dev mode, the server's own peers).
        self.issued_at = issued_at
        self.expires: float | None = None  # its token's expiry (rooms.access.ExpirySchedule)

    @property
    def conn_id(self) -> str:
        """This connection's id in REST answers and role changes."""
        return f"c{self.id}"

    @property
    def outbox(self) -> deque[bytes]:
        """Frames waiting for the transport, oldest first."""
        if self._outbox is None:
            self._outbox = deque()
        return self._outbox

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def send(self, frame: bytes) -> bool:
        """Queue a frame. Returns False (and closes the peer on overflow) if it was not queued."""
        if self.close_code is not None:
            return False
        # Nothing queued or in flight: write now, keeping order, skipping the queue.
        outbox = self._outbox
        if not outbox and not self.busy and self.direct is not None and self.direct(frame):
            self.last_enqueued = time.monotonic()
            return True
        size = len(frame)
        if outbox is None:
            outbox = self.outbox
        if (
            len(outbox) >= self.limits.max_frames
            or self.queued_bytes + size > self.limits.max_bytes
        ):
            self.close(CLOSE_TRY_AGAIN_LATER, "send queue full: peer too slow")
            return False
        outbox.append(frame)
        self.queued_bytes += size
        self.last_enqueued = time.monotonic()
        self._wake()
        return True

    def _wake(self) -> None:
        if self.on_queue is not None:
            self.on_queue()

    def close(self, code: int, reason: str = "") -> None:
        """Ask the transport to close with ``code``; queued frames are discarded."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self._outbox = None
            self.queued_bytes = 0
            if self.on_close is not None:
                self.on_close()
