"""When a connected peer's token stops opening its room: at the token's expiry, or when
the owner rotates the room's links (every token issued before is refused).

Expiry is one schedule for the whole process: a heap of (expiry, peer id) and a single
timer armed for the earliest, so 10,000 idle connections cost no task or timer each
(``bench/conn_memory.py``). Peers that leave first are only forgotten from a dict; their
heap entries go when they come due, or when the heap grows to twice what is live.
"""

from __future__ import annotations

import asyncio
import heapq
import time

from rooms.peer import Peer

# The close code and reasons of a refused token, as the server's own refusals (server.auth):
# y-websocket treats 4400-4499 as final and stops reconnecting.
CLOSE_TOKEN_REFUSED = 4401
EXPIRED = "token expired"
ROTATED = "links were rotated: this token was issued before; ask the room owner for a new link"

COMPACT_ABOVE = 1024  # stale heap entries tolerated before a rebuild is considered


class LinksRotated(Exception):
    """A peer's token was issued before its room's last link rotation."""


class ExpirySchedule:
    """Closes each registered peer with 4401 "token expired" when its token expires."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []  # (unix seconds, peer id)
        self._peers: dict[int, Peer] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")

    def __len__(self) -> int:
        return len(self._peers)

    def add(self, peer: Peer, expires: float | None) -> None:
        """Close ``peer`` at ``expires`` (unix seconds) unless it left first. None: never."""
        if expires is None:
            return
        self._peers[peer.id] = peer
        heapq.heappush(self._heap, (expires, peer.id))
        if expires < self._timer_at:
            self._arm(expires)

    def discard(self, peer: Peer) -> None:
        """``peer`` left: forget it (its heap entry is dropped later, cheaply)."""
        if self._peers.pop(peer.id, None) is None:
            return
        if len(self._heap) > 2 * len(self._peers) + COMPACT_ABOVE:
            live = self._peers
            self._heap = [entry for entry in self._heap if entry[1] in live]
            heapq.heapify(self._heap)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = float("inf")

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
            peer = self._peers.pop(peer_id, None)
            if peer is not None:
                peer.close(CLOSE_TOKEN_REFUSED, EXPIRED)
        if heap:
            self._arm(heap[0][0])
