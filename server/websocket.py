"""``WS /ws/{room}``: one websocket connection as a room peer.

One task per connection: it reads frames and hands them to the room. Frames to the
peer are written directly by the transport when it offers that (``server.wire``'s
extensions, from ``server.uvicorn_fast``); otherwise (stock uvicorn, hypercorn), and
whenever a direct write is refused, they go through the peer's bounded outbox, drained
by a sender task that exists only while there is such work (``_Sender``). Every
protocol error is mapped to a close code here and nowhere else.

An idle connection is what capacity multiplies (``bench/conn_memory.py``):
the endpoint is a plain ASGI app (no Starlette session wrapper), and what only the
admission needs does not outlive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from starlette.datastructures import QueryParams
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from crdt.protocol import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_SERVICE_RESTART,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNSUPPORTED_DATA,
    ProtocolError,
)
from rooms.access import ROTATED, LinksRotated
from rooms.peer import Peer
from rooms.registry import DELETED_REASON, RoomDeleted, RoomLoadError, RoomRegistry
from rooms.room import Room
from server import implicit_rooms
from server.auth import CLOSE_UNAUTHENTICATED, Authenticator, AuthError
from server.errors import ApiError
from server.logs import bind, get_logger
from server.metrics import Metrics
from server.names import valid_room_name
from server.origins import origin_and_host, origin_for_log
from server.quotas import Quotas
from server.wire import DIRECT_EXTENSION, RECEIVE_EXTENSION

log = get_logger("codementor.ws")
tracer = trace.get_tracer(__name__)

SEND_CLOSE_TIMEOUT = 5.0
CLOSE_UNKNOWN_ROOM = 4404


class WebSocketEndpoint:
    """The endpoint as a plain ASGI app. Starlette treats a class instance as one and
    adds no wrapper of its own (a function endpoint gets a session wrapper, a second
    exception wrapper, a second ``WebSocket`` and their coroutine frames, held for as
    long as the connection lives). Exceptions take the same way out: through the
    app's ``ExceptionMiddleware``."""

    __name__ = "websocket_endpoint"  # the route's name, as when this was a function

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain call that returns the connection's coroutine: no frame of its own.
        return _connection(scope, receive, send)


websocket_endpoint = WebSocketEndpoint()


async def _connection(scope: Scope, receive: Receive, send: Send) -> None:
    """One connection: admitted (accepted, authenticated, joined), then its frames read
    until it ends. What only the admission needs (Starlette's ``WebSocket``, the token,
    its claims, the query) goes with ``_admit``'s frame; an idle connection keeps this
    frame and little else."""
    admitted = await _traced_admit(scope, receive, send)
    if admitted is None:
        return
    peer, room, sender = admitted
    app_state = scope["app"].state
    set_receiver = (scope.get("extensions") or {}).get(RECEIVE_EXTENSION)
    # Nothing reads the scope after the admission (uvicorn reads it only before the
    # accept): an open connection need not keep its headers, query (the token),
    # extensions and state (~0.9 KiB).
    scope.clear()
    registry: RoomRegistry = app_state.registry
    metrics: Metrics = app_state.metrics
    limit: ConnectionLimit = app_state.connection_limit
    reader = _Reader(peer, room, metrics, app_state.settings.max_frame_bytes)
    metrics.connections.inc()
    limit.open += 1
    try:
        while not peer.closed:
            # Binary frames go straight from the transport to the room once the transport
            # takes a receiver (``server.wire``): no task switch per frame. It takes one only
            # while nothing waits in its queue, so frames queued before are read here first.
            if set_receiver is not None and set_receiver(reader.frame):
                set_receiver = None
            # The ASGI receive itself: after the accept, Starlette's ``WebSocket.receive``
            # adds only a state check, and one more coroutine frame per connection.
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            frame = message.get("bytes")
            if frame is None:
                reader.reject(
                    ProtocolError(CLOSE_UNSUPPORTED_DATA, "text frames are not supported")
                )
            else:
                reader.frame(frame)
    finally:
        registry.leave(room, peer)
        peer.close(CLOSE_NORMAL)
        metrics.connections.dec()
        limit.open -= 1
        await sender.finish()


class _Reader:
    """Hands a peer's frames to its room, wherever they come from: the transport's
    direct receive (called in ``data_received``, outside this connection's task) or the
    read loop. Bad input closes the peer with its code; it never raises."""

    __slots__ = ("peer", "room", "metrics", "max_frame_bytes", "context")

    def __init__(self, peer: Peer, room: Room, metrics: Metrics, max_frame_bytes: int) -> None:
        self.peer = peer
        self.room = room
        self.metrics = metrics
        self.max_frame_bytes = max_frame_bytes
        # The connection's log ids (request, room, peer), for lines written from the
        # transport's callback, which runs in no task of ours.
        self.context = contextvars.copy_context()

    def frame(self, frame: bytes) -> None:
        peer = self.peer
        if peer.closed:
            return
        received_at = time.perf_counter()
        try:
            if len(frame) > self.max_frame_bytes:
                raise ProtocolError(CLOSE_MESSAGE_TOO_BIG, "frame too large")
            self.room.receive(peer, frame, received_at)
        except ProtocolError as exc:
            self.reject(exc)
        except Exception:
            # A bug, not bad input: end this connection only, never the room or the process.
            self.metrics.frame_rejected("internal_error")
            self.context.run(log.exception, "peer_failed")
            peer.close(CLOSE_INTERNAL_ERROR, "internal error")

    def reject(self, exc: ProtocolError) -> None:
        self.metrics.frame_rejected(_reason_label(exc))
        self.context.run(log.info, "frame_rejected", reason=exc.reason, detail=exc.detail or None)
        self.peer.close(exc.code, exc.reason)


async def _traced_admit(
    scope: Scope, receive: Receive, send: Send
) -> tuple[Peer, Room, _Sender] | None:
    """The admission under one span (the room's load a child of it), closed before the
    frames flow: a connection's lifetime and its frames are not traced, and its span
    leaves with this frame rather than stay with an idle connection."""
    room = (scope.get("path_params") or {}).get("room", "")
    with tracer.start_as_current_span(
        "ws.admit", kind=SpanKind.SERVER, attributes={"codementor.room": room}
    ) as span:
        admitted = await _admit(WebSocket(scope, receive=receive, send=send), send)
        span.set_attribute("codementor.ws.admitted", admitted is not None)
        return admitted


async def _admit(websocket: WebSocket, send: Send) -> tuple[Peer, Room, _Sender] | None:
    """Accept, authenticate and join; None if the connection was refused (and closed).
    ``send`` is the ASGI send, for what outlives the admission."""
    app_state = websocket.app.state
    registry: RoomRegistry = app_state.registry
    metrics: Metrics = app_state.metrics
    name = websocket.path_params["room"]
    origin, host = origin_and_host(websocket.scope["headers"])
    if not app_state.origins.allows(origin, host):
        # A page of another site (any page the user visits can try): HTTP 403 before the
        # upgrade, so it never gets a socket; it may retry, and is refused again.
        metrics.auth_refused.labels("403").inc()
        log.info("ws_refused", reason="origin not allowed", origin=origin_for_log(origin))
        await websocket.close(CLOSE_POLICY_VIOLATION, "origin not allowed")
        return None
    if not valid_room_name(name):
        metrics.frame_rejected("bad_room_name")
        # Before accept: the client gets HTTP 403 instead of an upgrade.
        await websocket.close(CLOSE_POLICY_VIOLATION, "invalid room name")
        return None
    bind(room=name)
    auth: Authenticator = app_state.auth
    # Not ``websocket.query_params``: that caches the parsed query on the connection.
    query = QueryParams(websocket.scope["query_string"])
    token = query.get("token")
    # Refusals happen after accept, as close codes: y-websocket treats 4400-4499 as
    # final and stops reconnecting, where a refused upgrade would be retried forever.
    await websocket.accept()
    if registry.draining:
        # Only a handshake already under way gets here: the listener is closed.
        await websocket.close(CLOSE_SERVICE_RESTART, "server shutting down")
        return None
    limit: ConnectionLimit = app_state.connection_limit
    if limit.full:
        # Load shedding: 1013 is not final, so y-websocket retries with backoff (through
        # a load balancer, likely on another replica; /readyz says "full" meanwhile).
        metrics.connections_shed.inc()
        log.info("ws_shed", open=limit.open, half_open=limit.half_open, limit=limit.limit)
        await websocket.close(CLOSE_TRY_AGAIN_LATER, "server full: try again later")
        return None
    try:
        identity = auth.identify(token, name)
    except AuthError as exc:
        metrics.auth_refused.labels(str(exc.status)).inc()
        log.info("ws_refused", room=name, reason=exc.message)
        await websocket.close(exc.close_code, exc.message)
        return None
    peer = Peer(
        limits=app_state.queue_limits,  # one object shared by every peer
        wants_receipts=query.get("receipts") == "1",
        role=identity.role,
        user_id=identity.user_id,
        name=identity.name,
        issued_at=identity.issued_at,
        personal=identity.personal,
    )
    bind(peer=peer.conn_id, user=identity.user_id)
    # With an admin token, rooms are made only through the REST API.
    makes_room = implicit_rooms.implicit(auth.anonymous, token, app_state.settings.admin_token)
    try:
        quotas: Quotas = app_state.quotas
        address = websocket.client.host if websocket.client else "unknown"
        made = implicit_rooms.room_exists(
            registry,
            name,
            implicit=makes_room,
            before_create=lambda: quotas.check_address(address),
        )
        if not await made:
            await websocket.close(CLOSE_UNKNOWN_ROOM, "unknown room")
            return None
        # Wired before joining: the join itself sends the first frames.
        sender = _Sender(send, peer)
        peer.on_close = sender.interrupt
        peer.on_queue = sender.wake
        extensions = websocket.scope.get("extensions") or {}
        peer.direct = extensions.get(DIRECT_EXTENSION)
        direct = peer.direct is not None and RECEIVE_EXTENSION in extensions
        metrics.connections_by_transport.labels("direct" if direct else "asgi").inc()
        room = await registry.join(name, peer, identity.expires)
    except LinksRotated:
        metrics.auth_refused.labels("401").inc()
        log.info("ws_refused", room=name, reason=ROTATED)
        await websocket.close(CLOSE_UNAUTHENTICATED, ROTATED)
        return None
    except ApiError as exc:  # a quota: 1013 is not final, the client retries with backoff
        await websocket.close(CLOSE_TRY_AGAIN_LATER, exc.message[:120])
        return None
    except RoomDeleted:
        await websocket.close(CLOSE_UNKNOWN_ROOM, DELETED_REASON)
        return None
    except RoomLoadError:
        await websocket.close(CLOSE_INTERNAL_ERROR, "room could not be loaded; retry later")
        return None
    return peer, room, sender


class ConnectionLimit:
    """Open websockets and half-open connections (``server.handshake``: a request or an
    upgrade not complete yet) of this process against ``CODEMENTOR_MAX_CONNECTIONS``
    (0: none). Past it newcomer websockets are shed (1013) and ``/readyz`` says full;
    past it and ``HEADROOM`` more, a new connection is answered 503 at once, so slow
    clients cannot take every file descriptor. The headroom keeps ``/readyz`` and
    ``/metrics`` answering while websockets fill the limit."""

    HEADROOM = 64

    def __init__(
        self,
        limit: int,
        handshake_timeout: float = 10.0,
        on_timeout: Callable[[], None] = lambda: None,
        on_refused: Callable[[], None] = lambda: None,
    ) -> None:
        self.limit = limit
        self.open = 0
        self.half_open = 0
        self.handshake_timeout = handshake_timeout
        self.timed_out = on_timeout  # a half-open connection reached its deadline
        self.refused = on_refused  # a new connection was answered 503 at once

    @property
    def full(self) -> bool:
        return 0 < self.limit <= self.open + self.half_open

    def admits_connection(self) -> bool:
        return self.limit == 0 or self.open + self.half_open < self.limit + self.HEADROOM


class _Sender:
    """Sends what had to wait in the peer's outbox (the direct write refused: the
    socket is applying backpressure, or the server has no direct path), and closes
    the socket with the peer's code once the peer is closed. Its task exists only
    while there is such work, so an idle connection costs no task."""

    def __init__(self, send: Send, peer: Peer) -> None:
        self._send = send  # the ASGI send: no Starlette ``WebSocket`` kept per connection
        self._peer = peer
        self._task: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._sending = False

    def wake(self) -> None:
        """Something was queued (``Peer.on_queue``)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=f"send:{self._peer.id}")

    def interrupt(self) -> None:
        """The peer was closed (``Peer.on_close``). A send blocked on a slow socket must
        not hold up the close."""
        if self._task is not None and self._sending:
            self._task.cancel()
        if self._closing is None:
            self._closing = asyncio.create_task(self._close(), name=f"close:{self._peer.id}")

    async def finish(self) -> None:
        tasks = {t for t in (self._task, self._closing) if t is not None}
        if tasks:
            await asyncio.wait(tasks, timeout=SEND_CLOSE_TIMEOUT)
        for task in tasks:
            if not task.done():
                task.cancel()

    async def _drain(self) -> None:
        peer = self._peer
        try:
            while not peer.closed and peer.outbox:
                frame = peer.outbox.popleft()
                peer.queued_bytes -= len(frame)
                # ``busy`` keeps direct writes from overtaking this frame.
                self._sending = peer.busy = True
                await self._send({"type": "websocket.send", "bytes": frame})
                self._sending = peer.busy = False
        except asyncio.CancelledError:
            if not peer.closed:
                raise
        except Exception:
            # The socket is gone; the reader sees the disconnect and leaves the room.
            peer.close(CLOSE_NORMAL)
        finally:
            self._sending = peer.busy = False

    async def _close(self) -> None:
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=SEND_CLOSE_TIMEOUT)
        peer = self._peer
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self._send(
                    {
                        "type": "websocket.close",
                        "code": peer.close_code or CLOSE_NORMAL,
                        "reason": peer.close_reason,
                    }
                ),
                SEND_CLOSE_TIMEOUT,
            )


def _reason_label(exc: ProtocolError) -> str:
    if exc.code == CLOSE_MESSAGE_TOO_BIG:
        return "too_big"
    if exc.code == CLOSE_UNSUPPORTED_DATA:
        return "unsupported"
    return "malformed"
