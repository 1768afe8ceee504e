"""One timer for the keepalive pings of every connection on an event loop.

uvicorn arms a timer per connection (a ``TimerHandle``, a bound method and a libuv timer,
for as long as the connection lives); here a connection is an entry in the list of the
half second its next ping falls in. Pings go out up to ``TICK`` late, which changes
nothing for a 20 s interval. The pong deadline stays the transport's own timer: it exists
only while a ping is in flight.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Protocol

from server.logs import get_logger

log = get_logger("codementor.ws")


class Pinged(Protocol):
    """A connection on the wheel: where its next ping waits, and how to send it."""

    ping_slot: int | None

    def send_keepalive_ping(self) -> None: ...


class PingWheel:
    TICK = 0.5

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: dict[int, list[Pinged]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def schedule(self, connection: Pinged, delay: float) -> int:
        slot = math.ceil((self._loop.time() + delay) / self.TICK)
        self._slots.setdefault(slot, []).append(connection)
        if self._timer is None:
            self._timer = self._loop.call_later(self.TICK, self._tick)
        return slot

    def cancel(self, connection: Pinged, slot: int) -> None:
        entries = self._slots.get(slot)
        if entries is not None and connection in entries:
            entries.remove(connection)

    def _tick(self) -> None:
        now = math.floor(self._loop.time() / self.TICK)
        for slot in sorted(s for s in self._slots if s <= now):
            for connection in self._slots.pop(slot):
                if connection.ping_slot == slot:
                    connection.ping_slot = None
                    try:
                        connection.send_keepalive_ping()
                    except Exception:  # one broken connection must not stop the others' pings
                        log.exception("keepalive_ping_failed")
        self._timer = self._loop.call_later(self.TICK, self._tick) if self._slots else None


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PingWheel] = (
    weakref.WeakKeyDictionary()
)


def ping_wheel(loop: asyncio.AbstractEventLoop) -> PingWheel:
    """The wheel of ``loop``, made on first use."""
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = PingWheel(loop)
    return wheel
