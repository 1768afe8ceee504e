"""uvicorn's websockets-sansio protocol with three additions: writing a binary frame
straight to the socket, reading one straight to the room, and a smaller idle
connection.

Direct writes. A room sends the same bytes to every peer. Through ASGI, each of
those sends is a message dict, a state check in Starlette, an ``await`` on
uvicorn's writable event and a frame serialisation in ``websockets``; profiling
a 300-reader room put that path at ~40 % of the server's CPU. Here the frame is
serialised once per broadcast and written to each socket directly. The direct
write is offered to the app as the ASGI extension ``codementor.direct``; it
refuses (returns False) whenever the plain path must be used instead: before the
handshake, once a close is under way, or while the socket is applying
backpressure, in which case the peer's bounded queue and its sender task take over.

Direct reads. Once the app installs a receiver (``codementor.receive``), a binary
message goes to it from ``data_received``: no queue, no task switch, no pause and
resume of reading. A complete, final, masked binary frame is even parsed here
(header, length, unmasking in ``websockets``' C helper) rather than by the
``websockets`` generator parser, which costs more than the room's own work on an
update; that parser gets everything else (control frames, fragments, partial and
oversize frames) at a frame boundary, where it behaves exactly as if it had seen
every frame.

Idle memory (issue 6; ``bench/conn_memory.py``, KiB per idle connection). An open
connection keeps this object for its whole life: its attributes live in slots
rather than an instance dict that outgrew key sharing (-1.3); the receive queue
and the writable flag are small stand-ins for ``asyncio.Queue`` (three deques and
an ``Event``, -3.0) and ``asyncio.Event`` (a deque, -0.8), with the same behaviour
for the calls uvicorn makes; ``receive`` awaits the queue's future itself (one
coroutine frame less); once the 101 is out, the parsed request and the response
are let go (-2.1) and so is the ``websockets`` parser, which kept the request as a
local (-2.7) and is made again only when bytes arrive that the direct read does
not take (-0.45); and keepalive pings come from one ``PingWheel`` per loop rather
than a timer per connection (-0.65).

Until its answer to the upgrade is out, a connection carries the deadline and the
place in the connection count that ``server.handshake`` gave it (``guard``, a slot);
both are let go in ``send`` once the handshake is complete, so an open websocket
keeps neither.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

if TYPE_CHECKING:
    from server.handshake import HandshakeGuard

try:
    from websockets.speedups import apply_mask  # C, as websockets' own parser uses
except ImportError:  # pragma: no cover - websockets built without its C speedups
    from websockets.utils import apply_mask

_AT_EOF = StreamReader.at_eof.__code__
_PARSE = Protocol.parse.__code__
_SERVER_PARSE = ServerProtocol.parse.__code__

_log = logging.getLogger("codementor.ws")

DIRECT_EXTENSION = "codementor.direct"
RECEIVE_EXTENSION = "codementor.receive"

_last_payload: bytes | None = None
_last_frame = b""


def binary_frame(payload: bytes) -> bytes:
    """An unmasked, final, binary websocket frame (RFC 6455 §5.2; server to client).
    The last one is remembered, so a broadcast serialises its frame once."""
    global _last_payload, _last_frame
    if payload is _last_payload:
        return _last_frame
    size = len(payload)
    if size < 126:
        header = bytes((0x82, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x82, 126, size)
    else:
        header = struct.pack("!BBQ", 0x82, 127, size)
    _last_payload, _last_frame = payload, header + payload
    return _last_frame


class Inbox:
    """The part of ``asyncio.Queue`` uvicorn's protocol uses (``put_nowait``, ``empty``;
    ``DirectWebSocketProtocol.receive`` stands in for ``get``), unbounded, with the same
    wake-up rules, without its three deques and its ``Event``: uvicorn pauses reading
    after each message, so this holds an item or two, and the app is its only reader."""

    __slots__ = ("_items", "_getters")

    def __init__(self) -> None:
        self._items: list[ASGIReceiveEvent] = []
        self._getters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: ASGIReceiveEvent) -> None:
        self._items.append(item)
        self._wake_next()

    def get_nowait(self) -> ASGIReceiveEvent:
        return self._items.pop(0)

    def getter(self) -> asyncio.Future[None]:
        """A future the next ``put_nowait`` completes, for the protocol's ``receive`` to
        await directly (no ``get`` coroutine: one frame less per idle connection). A
        reader that stops waiting for it (cancelled) calls ``abandon``."""
        getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._getters is None:
            self._getters = []
        self._getters.append(getter)
        return getter

    def abandon(self, getter: asyncio.Future[None]) -> None:
        getter.cancel()
        if self._getters is not None and getter in self._getters:
            self._getters.remove(getter)
        if self._items and not getter.cancelled():
            self._wake_next()  # it was woken, then cancelled: pass the item on, as asyncio.Queue

    def _wake_next(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return


class Flag:
    """``asyncio.Event`` (``is_set``, ``set``, ``clear``, ``wait``) whose waiter list is
    made only when someone waits: uvicorn's writable flag, which is almost always set."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            waiters, self._waiters = self._waiters, None
            for waiter in waiters or ():
                if not waiter.done():
                    waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)


class PingWheel:
    """One timer for the keepalive pings of every connection on an event loop. uvicorn
    arms a timer per connection (a ``TimerHandle``, a bound method and a libuv timer:
    ~0.6 KiB for as long as the connection lives); here a connection is an entry in
    the list of the half second its next ping falls in. Pings go out up to ``TICK``
    late, which changes nothing for a 20 s interval. The pong deadline stays uvicorn's
    own timer: it exists only while a ping is in flight."""

    TICK = 0.5

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: dict[int, list[DirectWebSocketProtocol]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def schedule(self, protocol: DirectWebSocketProtocol, delay: float) -> int:
        slot = math.ceil((self._loop.time() + delay) / self.TICK)
        self._slots.setdefault(slot, []).append(protocol)
        if self._timer is None:
            self._timer = self._loop.call_later(self.TICK, self._tick)
        return slot

    def cancel(self, protocol: DirectWebSocketProtocol, slot: int) -> None:
        entries = self._slots.get(slot)
        if entries is not None and protocol in entries:
            entries.remove(protocol)

    def _tick(self) -> None:
        now = math.floor(self._loop.time() / self.TICK)
        for slot in sorted(s for s in self._slots if s <= now):
            for protocol in self._slots.pop(slot):
                if protocol.ping_slot == slot:
                    protocol.ping_slot = None
                    try:
                        protocol.send_keepalive_ping()
                    except Exception:  # one broken connection must not stop the others' pings
                        _log.exception("keepalive ping failed")
        self._timer = self._loop.call_later(self.TICK, self._tick) if self._slots else None


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PingWheel] = (
    weakref.WeakKeyDictionary()
)


def ping_wheel(loop: asyncio.AbstractEventLoop) -> PingWheel:
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = PingWheel(loop)
    return wheel


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    # Every attribute uvicorn 0.54 sets: slots instead of an instance dict. One a later
    # uvicorn adds still works (it lands in the dict).
    __slots__ = (
        "app", "app_state", "asgi_version", "client", "close_sent", "close_timeout",
        "close_timer", "config", "conn", "connections", "curr_msg_data_type",
        "default_headers", "disconnected", "frames", "handshake_complete",
        "handshake_initiated", "initial_response", "last_ping_rtt", "logger", "loop",
        "pending_ping_payload", "ping_interval", "ping_sent_at", "ping_timeout", "ping_timer",
        "pong_timer", "queue", "read_paused", "request", "response", "root_path", "scheme",
        "scope", "server", "tasks", "transport", "writable", "receiver", "ping_slot", "guard",
    )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()
        self.receiver: Callable[[bytes], None] | None = None
        self.ping_slot: int | None = None  # where this connection's next ping waits
        # Until the answer to the upgrade is out (server.handshake): the deadline and the
        # place in the connection count the HTTP protocol handed over.
        self.guard: HandshakeGuard | None = None

    def adopt_guard(self, guard: HandshakeGuard) -> None:
        self.guard = guard

    def _release_guard(self) -> None:
        guard = self.guard
        if guard is not None:
            self.guard = None
            guard.release()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release_guard()
        super().connection_lost(exc)

    def schedule_ping(self) -> None:
        """uvicorn's delay, on the shared ``PingWheel`` instead of a timer of our own."""
        assert self.ping_interval is not None
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        wheel = ping_wheel(self.loop)
        if self.ping_slot is not None:
            wheel.cancel(self, self.ping_slot)
        self.ping_slot = wheel.schedule(self, delay)

    def stop_keepalive(self) -> None:
        if self.ping_slot is not None:
            ping_wheel(self.loop).cancel(self, self.ping_slot)
            self.ping_slot = None
        super().stop_keepalive()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            extensions = scope.setdefault("extensions", {})
            extensions[DIRECT_EXTENSION] = self.write_binary
            extensions[RECEIVE_EXTENSION] = self.set_receiver

    def set_receiver(self, receiver: Callable[[bytes], None]) -> bool:
        """From now on, hand each binary message to ``receiver`` as it is parsed, in
        ``data_received``, instead of queueing it for the app's ``receive``: no task
        switch, and no pause and resume of reading, per message. Text messages and the
        disconnect still go through ``receive``. Refused (False) while messages wait in
        the queue, so that order is kept: the app reads those first and asks again.
        ``receiver`` must not raise."""
        if not self.queue.empty():
            return False
        self.receiver = receiver
        return True

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn.parser is None:
            # The parser is parked (``_park_parser``): between two frames of an open
            # connection, nothing buffered.
            receiver = self.receiver
            if receiver is not None and not self.close_sent and conn.state is State.OPEN:
                data = self._deliver_binary_frames(data, receiver)
                if not data:
                    return
            conn.parser = Protocol.parse(conn)  # what ServerProtocol.parse runs once open
            next(conn.parser)
        super().data_received(data)
        self._park_parser()

    def _park_parser(self) -> None:
        """Let go of the ``websockets`` parser (two generator frames, ~0.45 KiB an idle
        connection) where it holds nothing: waiting for the next frame of an open
        connection with an empty buffer, no fragmented message under way, no extension
        and no per-frame debug logging. ``data_received`` makes a new one when needed."""
        conn = self.conn
        parser = conn.parser
        frames: Any = parser  # the frame loop, Protocol.parse
        if getattr(parser, "gi_code", None) is _SERVER_PARSE:
            # Right after the handshake: ServerProtocol.parse runs the frame loop and
            # keeps the parsed request as a local while it does.
            frames = getattr(parser, "gi_yieldfrom", None)
        if (
            getattr(frames, "gi_code", None) is _PARSE
            and getattr(getattr(frames, "gi_yieldfrom", None), "gi_code", None) is _AT_EOF
            and conn.state is State.OPEN
            and conn.current_size is None
            and not conn.reader.buffer
            and not conn.reader.eof
            and not conn.extensions
            and not conn.debug
        ):
            conn.parser = None  # type: ignore[assignment]
            parser.close()

    def _deliver_binary_frames(self, data: bytes, receiver: Callable[[bytes], None]) -> bytes:
        """Hand each complete, final, masked binary frame at the start of ``data`` to
        ``receiver`` without the ``websockets`` parser (its generators cost more than
        the rest of our frame path: bench/README, "Things tried"); return what is left
        from the first byte that is anything else (a partial frame, a control frame,
        a fragment, an oversize one), for the parser, which is at a frame boundary."""
        conn = self.conn
        limit = min(
            conn.max_message_size if conn.max_message_size is not None else 1 << 63,
            conn.max_fragment_size if conn.max_fragment_size is not None else 1 << 63,
        )
        end = len(data)
        pos = 0
        while end - pos >= 6 and data[pos] == 0x82 and data[pos + 1] & 0x80:
            length = data[pos + 1] & 0x7F
            head = pos + 2
            if length == 126:
                length = int.from_bytes(data[head : head + 2], "big")
                head += 2
            elif length == 127:
                break  # 64 KiB and more: rare, left to the parser
            stop = head + 4 + length
            if stop > end or length > limit:
                break
            pos = stop
            receiver(apply_mask(data[head + 4 : stop], data[head : head + 4]))
            if self.close_sent or conn.state is not State.OPEN:
                break
        return data[pos:] if pos else data

    def handle_parser_exception(self) -> None:
        """uvicorn drops the frames parsed before the bad one in the same read; they
        were valid and came first, so they reach the app before the disconnect."""
        self.handle_events()
        super().handle_parser_exception()

    def send_receive_event_to_app(self) -> None:
        receiver = self.receiver
        if receiver is None or self.curr_msg_data_type != "bytes" or self.close_sent:
            super().send_receive_event_to_app()
            return
        frames = self.frames
        self.frames = []
        receiver(frames[0] if len(frames) == 1 else b"".join(frames))

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if self.guard is not None and self.handshake_complete:
            self._release_guard()  # answered: accepted, refused (403) or an HTTP response
        if message["type"] == "websocket.accept" and self.handshake_complete:
            self._forget_handshake()

    def _forget_handshake(self) -> None:
        """The request and the response are no longer needed once the 101 went out:
        drop uvicorn's references, and park the ``websockets`` parser, which keeps the
        request too. It is at a frame boundary then, since a client sends no frame
        before the 101; if it is not, it stays."""
        for name in ("request", "response"):
            if hasattr(self, name):
                delattr(self, name)
        self._park_parser()

    async def receive(self) -> ASGIReceiveEvent:
        """uvicorn's, with ``Inbox.get`` inlined: an idle connection waits here, and one
        coroutine frame less is one less per connection."""
        queue: Inbox = self.queue  # type: ignore[assignment]
        while queue.empty():
            getter = queue.getter()
            try:
                await getter
            except BaseException:
                queue.abandon(getter)
                raise
        message = queue.get_nowait()
        if self.read_paused and queue.empty():
            self.read_paused = False
            self.transport.resume_reading()
        return message

    def write_binary(self, payload: bytes) -> bool:
        """Write one binary message now. False: not possible now, use the ASGI path."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or self.transport.is_closing()
            or self.conn.state is not State.OPEN
        ):
            return False
        self.transport.write(binary_frame(payload))
        return True
