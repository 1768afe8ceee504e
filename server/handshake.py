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
gives every protocol the dict the app's lifespan yielded). Both of uvicorn's HTTP
protocols are covered, httptools (what ``auto`` picks when it is installed, as with
``uvicorn[standard]``) and h11. Once the 101 is out nothing here is left on the
connection: an open websocket costs no timer.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.fastws import DirectWebSocketProtocol

if TYPE_CHECKING:
    from server.websocket import ConnectionLimit

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn without httptools: h11 only
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

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


class _Guarded:
    """What both HTTP protocols add; ``_between_requests`` and the moment a request is
    complete are theirs. Mixed in before the uvicorn class."""

    _guard: HandshakeGuard | None

    def _limit(self) -> ConnectionLimit | None:
        state: dict[str, Any] = self.app_state  # type: ignore[attr-defined]
        limit: ConnectionLimit | None = state.get(STATE_KEY)
        return limit

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._guard = None
        super().connection_made(transport)  # type: ignore[misc]
        limit = self._limit()
        if limit is None:
            return
        if not limit.admits_connection():
            limit.refused()
            transport.write(FULL_RESPONSE)  # type: ignore[attr-defined]
            transport.close()
            return
        self._guard = HandshakeGuard(limit, transport, self.loop)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self._release_guard()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._guard is None and self._between_requests():
            limit = self._limit()
            transport = self.transport  # type: ignore[attr-defined]
            if limit is not None and not transport.is_closing():
                # A keep-alive connection starts its next request: half-open again.
                self._guard = HandshakeGuard(limit, transport, self.loop)  # type: ignore[attr-defined]
        super().data_received(data)  # type: ignore[misc]

    def _between_requests(self) -> bool:
        raise NotImplementedError

    def _release_guard(self) -> None:
        guard = self._guard
        if guard is not None:
            self._guard = None
            guard.release()

    def _hand_guard_to_websocket(self) -> None:
        """The upgrade is under way: the websocket protocol now owns the connection and
        keeps it half-open until its answer to the upgrade is out."""
        guard, self._guard = self._guard, None
        if guard is None:
            return
        protocol = self.transport.get_protocol()  # type: ignore[attr-defined]
        if isinstance(protocol, DirectWebSocketProtocol) and not protocol.handshake_complete:
            protocol.adopt_guard(guard)
        else:
            guard.release()


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_Guarded, HttpToolsProtocol):
        def _between_requests(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def on_message_complete(self) -> None:
            super().on_message_complete()
            if not (self.parser.should_upgrade() and self._should_upgrade()):
                self._release_guard()  # head and body are in

        def handle_websocket_upgrade(self) -> None:
            super().handle_websocket_upgrade()
            self._hand_guard_to_websocket()


class GuardedH11Protocol(_Guarded, H11Protocol):
    def _between_requests(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            self._release_guard()  # head and body are in

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        super().handle_websocket_upgrade(event)
        self._hand_guard_to_websocket()


def http_protocol() -> type[asyncio.Protocol]:
    """The guarded version of what uvicorn's ``http="auto"`` would pick."""
    if HttpToolsProtocol is not None:
        return GuardedHttpToolsProtocol
    return GuardedH11Protocol
