"""When a connected peer's token stops opening its room: at the token's expiry, or when
the owner rotates the room's links (every token issued before is refused).

Expiry is one schedule for the whole process, never a task or timer per connection
(10,000 idle connections is a capacity target, ``bench/conn_memory.py``). A peer's
expiry is one slot on the peer. Peers whose token expires within ``HORIZON`` seconds
are also in a heap with one timer for the earliest, so they are closed on time; the
registry's sweep calls ``scan`` every ``HORIZON / 2`` seconds to move peers whose
expiry came that close into the heap. Most tokens live for days, so the heap holds
the few that are about to expire, not every connection.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Iterable

from rooms.peer import Peer

# The close code and reasons of a refused token, as the server's own refusals (server.auth):
# y-websocket treats 4400-4499 as final and stops reconnecting.
CLOSE_TOKEN_REFUSED = 4401
EXPIRED = "token expired"
ROTATED = "links were rotated: this token was issued before; ask the room owner for a new link"

HORIZON = 120.0  # seconds: expiries closer than this are timed precisely
SCAN_SECONDS = HORIZON / 2


class LinksRotated(Exception):
    """A peer's token was issued before its room's last link rotation."""


class ExpirySchedule:
    """Closes each peer with 4401 "token expired" when its token expires."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []  # (unix seconds, peer id), due soon
        self._due: dict[int, Peer] = {}  # the peers in the heap that are still here
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")

    def __len__(self) -> int:
        """Peers timed precisely now (due within the horizon)."""
        return len(self._due)

    def add(self, peer: Peer, expires: float | None) -> None:
        """Close ``peer`` at ``expires`` (unix seconds) unless it left first. None: never."""
        peer.expires = expires
        if expires is not None and expires - time.time() <= HORIZON:
            self._push(peer, expires)

    def scan(self, peers: Iterable[Peer]) -> None:
        """Time precisely the peers whose expiry is now within the horizon."""
        limit = time.time() + HORIZON
        due = self._due
        for peer in peers:
            expires = peer.expires
            if expires is not None and expires <= limit and peer.id not in due:
                self._push(peer, expires)

    def discard(self, peer: Peer) -> None:
        """``peer`` left: forget it (a heap entry of its own is dropped when it comes due)."""
        self._due.pop(peer.id, None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = float("inf")

    def _push(self, peer: Peer, expires: float) -> None:
        self._due[peer.id] = peer
        heapq.heappush(self._heap, (expires, peer.id))
        if expires < self._timer_at:
            self._arm(expires)

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        # The loop's clock is monotonic, expiries are wall-clock: a clock step only
        # makes the timer early or late, and ``_fire`` looks at the wall clock again.
        delay = max(0.0, at - time.time())
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        now = time.time()
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, peer_id = heapq.heappop(heap)
            peer = self._due.pop(peer_id, None)
            if peer is not None:
                peer.close(CLOSE_TOKEN_REFUSED, EXPIRED)
        if heap:
            self._arm(heap[0][0])
