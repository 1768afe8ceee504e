"""``WS /ws/{room}``: one websocket connection as a room peer.

Two tasks per connection: this handler reads frames and hands them to the
room; ``_send_loop`` drains the peer's bounded outbox into the socket. Every
protocol error is mapped to a close code here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time

from starlette.websockets import WebSocket, WebSocketDisconnect

from crdt.protocol import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_UNSUPPORTED_DATA,
    ProtocolError,
)
from rooms.peer import Peer
from rooms.registry import RoomLoadError, RoomRegistry
from server.metrics import Metrics
from server.settings import Settings

log = logging.getLogger("codementor.ws")

ROOM_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
SEND_CLOSE_TIMEOUT = 5.0


def valid_room_name(name: str) -> bool:
    return ROOM_NAME.fullmatch(name) is not None


async def websocket_endpoint(websocket: WebSocket) -> None:
    app_state = websocket.app.state
    settings: Settings = app_state.settings
    registry: RoomRegistry = app_state.registry
    metrics: Metrics = app_state.metrics
    name = websocket.path_params["room"]
    if not valid_room_name(name):
        metrics.frame_rejected("bad_room_name")
        # Before accept: the client gets HTTP 403 instead of an upgrade.
        await websocket.close(CLOSE_POLICY_VIOLATION, "invalid room name")
        return
    await websocket.accept()
    peer = Peer(
        limits=settings.queue_limits(),
        wants_receipts=websocket.query_params.get("receipts") == "1",
    )
    try:
        room = await registry.join(name, peer)
    except RoomLoadError:
        await websocket.close(CLOSE_INTERNAL_ERROR, "room could not be loaded; retry later")
        return
    metrics.connections.inc()
    sender = asyncio.create_task(_send_loop(websocket, peer, metrics), name=f"send:{peer.id}")

    def interrupt_sender() -> None:
        # A send blocked on a slow socket must not hold up the close.
        sender.cancel()

    peer.on_close = interrupt_sender
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect" or peer.closed:
                break
            received_at = time.perf_counter()
            frame = message.get("bytes")
            if frame is None:
                raise ProtocolError(CLOSE_UNSUPPORTED_DATA, "text frames are not supported")
            if len(frame) > settings.max_frame_bytes:
                raise ProtocolError(CLOSE_MESSAGE_TOO_BIG, "frame too large")
            room.receive(peer, frame, received_at)
    except ProtocolError as exc:
        metrics.frame_rejected(_reason_label(exc))
        log.info("frame_rejected room=%s peer=%d reason=%s", name, peer.id, exc.reason)
        peer.close(exc.code, exc.reason)
    except WebSocketDisconnect:
        pass
    except Exception:
        # A bug, not bad input: end this connection only, never the room or the process.
        metrics.frame_rejected("internal_error")
        log.exception("peer_failed room=%s peer=%d", name, peer.id)
        peer.close(CLOSE_INTERNAL_ERROR, "internal error")
    finally:
        registry.leave(room, peer)
        peer.close(CLOSE_NORMAL)
        metrics.connections.dec()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sender, SEND_CLOSE_TIMEOUT)


async def _send_loop(websocket: WebSocket, peer: Peer, metrics: Metrics) -> None:
    """Drain the outbox; when the peer is closed, close the socket with its code."""
    try:
        while (frame := await peer.next_frame()) is not None:
            await websocket.send_bytes(frame)
            metrics.frame_sent(frame)
    except asyncio.CancelledError:
        if not peer.closed:
            raise
    except Exception:
        # The socket is gone; the reader sees the disconnect and leaves the room.
        peer.close(CLOSE_NORMAL)
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            websocket.close(peer.close_code or CLOSE_NORMAL, peer.close_reason),
            SEND_CLOSE_TIMEOUT,
        )


def _reason_label(exc: ProtocolError) -> str:
    if exc.code == CLOSE_MESSAGE_TOO_BIG:
        return "too_big"
    if exc.code == CLOSE_UNSUPPORTED_DATA:
        return "unsupported"
    return "malformed"
