"""Half-open connections: a deadline for the request, and a place in the connection count.

uvicorn holds a socket for as long as its client takes to send a request (a head one
byte a minute, a body that never ends, an upgrade that never completes), and such a
socket counted toward nothing: a few thousand of them took every file descriptor.
Here each connection is half-open from its first byte (from its accept, for a new one)
until its request is complete, or, for a websocket, until the server answered the
upgrade; a half-open connection has ``CODEMENTOR_HANDSHAKE_TIMEOUT_SECONDS`` to get
there or is closed, and counts toward ``CODEMENTOR_MAX_CONNECTIONS`` with the open
websockets (``ConnectionLimit``). A connection accepted while the count is past the
limit and a small headroom is answered 503 and closed at once. Idle keep-alive
connections are not half-open: uvicorn closes them after five seconds.

The ``ConnectionLimit`` reaches the protocols through the lifespan state (uvicorn
gives every protocol the dict the app's lifespan yielded). This module is the guard
itself; the HTTP protocols that hold one (both of uvicorn's, httptools and h11) are part
of the fast transport, ``server.uvicorn_fast``: with ``CODEMENTOR_WS_FAST_PATH=off`` (or
when its probe fails) there is no per-connection deadline, and uvicorn's own
``limit_concurrency`` bounds the connection count instead (``server.transport``). Once
the 101 is out nothing here is left on the connection: an open websocket costs no timer.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.websocket import ConnectionLimit

STATE_KEY = "codementor.connection_limit"
FULL_BODY = b'{"error": "server full: try again later"}'
FULL_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 5\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
) % (len(FULL_BODY), FULL_BODY)


class HandshakeGuard:
    """One half-open connection: counted in ``limit.half_open`` and closed at the
    deadline unless ``release`` comes first (idempotent; ``connection_lost`` calls it)."""

    __slots__ = ("_limit", "_timer", "_transport")

    def __init__(self, limit: ConnectionLimit, transport: asyncio.BaseTransport, loop: Any) -> None:
        self._limit: ConnectionLimit | None = limit
        self._transport = transport
        limit.half_open += 1
        self._timer: asyncio.TimerHandle | None = loop.call_later(
            limit.handshake_timeout, self._expire
        )

    def release(self) -> None:
        limit = self._limit
        if limit is not None:
            self._limit = None
            limit.half_open -= 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        limit = self._limit
        if limit is None:
            return
        limit.timed_out()
        self.release()
        if not self._transport.is_closing():
            self._transport.close()
