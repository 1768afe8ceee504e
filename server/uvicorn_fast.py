"""The one module that touches uvicorn's and websockets' internals: the server's own
websocket transport, and the probe that says whether it fits the installed versions.

Nothing here is public API of either library (uvicorn's protocol classes and their
attributes, websockets' parser generators), so an upgrade can change any of it. That is
why ``self_test`` exists: ``server.transport`` runs it at start, on a fake socket through
the same HTTP upgrade a client makes, and serves with stock uvicorn websockets when
anything differs (``CODEMENTOR_WS_FAST_PATH``). The versions this was written against are
pinned in ``requirements.lock``.

What the transport adds to uvicorn's websockets-sansio protocol, and why:

- Direct writes. A room sends the same bytes to every peer. Through ASGI each send is a
  message dict, a state check in Starlette, an ``await`` on the writable event and a frame
  serialisation in websockets; here the frame is serialised once per broadcast
  (``server.wire.binary_frame``) and written to each socket. Offered to the app as the ASGI
  extension ``server.wire.DIRECT_EXTENSION``; it refuses whenever the plain path must be
  used instead (before the handshake, while closing, under backpressure).
- Direct reads (``server.wire.RECEIVE_EXTENSION``). A binary message goes to the app's
  receiver from ``data_received``: no queue, no task switch, no pause and resume of
  reading. A complete, final, masked binary frame is parsed here rather than by the
  websockets generator parser, which costs more than the room's own work on an update;
  that parser gets everything else (control frames, fragments, partial and oversize
  frames) at a frame boundary, where it behaves as if it had seen every frame.
- A smaller idle connection: attributes in slots; ``server.inbox`` stand-ins for the
  receive queue and the writable event; the parsed request, the response and the parked
  websockets parser let go once the 101 is out; keepalive pings from one
  ``server.ping_wheel.PingWheel`` per loop instead of a timer per connection. The
  savings are measured in bench/README.md ("Things tried").
- Half-open connections (``server.handshake``): both of uvicorn's HTTP protocols give a
  connection a deadline and a place in the connection count until its request is in,
  or, for a websocket, until the answer to its upgrade is out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Callable
from typing import Any

import h11
import uvicorn
from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from server.handshake import FULL_RESPONSE, STATE_KEY, HandshakeGuard
from server.inbox import Flag, Inbox
from server.ping_wheel import ping_wheel
from server.transport import Incompatible
from server.websocket import ConnectionLimit
from server.wire import DIRECT_EXTENSION, RECEIVE_EXTENSION, binary_frame

try:
    from websockets.speedups import apply_mask  # C, as websockets' own parser uses
except ImportError:  # pragma: no cover - websockets built without its C speedups
    from websockets.utils import apply_mask

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn without httptools: h11 only
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

# The parser generators whose state tells when the parser can be let go.
_AT_EOF = StreamReader.at_eof.__code__
_PARSE = Protocol.parse.__code__
_SERVER_PARSE = ServerProtocol.parse.__code__


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    # Every attribute uvicorn sets, as slots instead of an instance dict. One a later
    # uvicorn adds lands in the dict: the probe refuses that.
    __slots__ = (
        "app", "app_state", "asgi_version", "client", "close_sent", "close_timeout",
        "close_timer", "config", "conn", "connections", "curr_msg_data_type",
        "default_headers", "disconnected", "frames", "handshake_complete",
        "handshake_initiated", "initial_response", "last_ping_rtt", "logger", "loop",
        "pending_ping_payload", "ping_interval", "ping_sent_at", "ping_timeout", "ping_timer",
        "pong_timer", "queue", "read_paused", "request", "response", "root_path", "scheme",
        "scope", "server", "tasks", "transport", "writable", "receiver", "ping_slot", "guard",
        "held",
    )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Not ``Inbox[ASGIReceiveEvent]()``: calling a subscripted generic costs a few
        # microseconds (typing sets ``__orig_class__``, which slots refuse), on every connect.
        self.queue: Inbox[ASGIReceiveEvent] = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()
        self.receiver: Callable[[bytes], None] | None = None
        self.ping_slot: int | None = None  # where this connection's next ping waits
        # Until the answer to the upgrade is out: the deadline and the place in the
        # connection count the HTTP protocol handed over.
        self.guard: HandshakeGuard | None = None
        # The 101, held back until the first frame after it, to go out in the same write
        # (``_accept``), or until the end of this turn of the loop.
        self.held: bytes | None = None

    def adopt_guard(self, guard: HandshakeGuard) -> None:
        self.guard = guard

    def _release_guard(self) -> None:
        guard = self.guard
        if guard is not None:
            self.guard = None
            guard.release()

    def connection_lost(self, exc: Exception | None) -> None:
        self.held = None
        self._release_guard()
        super().connection_lost(exc)

    def _write_held(self) -> None:
        """Write the held 101 now: before anything else is written, and at the end of
        the loop turn that accepted the connection (``_accept``'s ``call_soon``)."""
        held = self.held
        if held is not None:
            self.held = None
            if not self.transport.is_closing():
                self.transport.write(held)

    def send_keepalive_ping(self) -> None:
        self._write_held()
        super().send_keepalive_ping()

    def shutdown(self) -> None:
        self._write_held()
        super().shutdown()

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
        ``data_received``, instead of queueing it for the app's ``receive``. Text
        messages and the disconnect still go through ``receive``. Refused (False) while
        messages wait in the queue, so that order is kept: the app reads those first
        and asks again. ``receiver`` must not raise."""
        if not self.queue.empty():
            return False
        self.receiver = receiver
        return True

    def data_received(self, data: bytes) -> None:
        if self.held is not None:
            self._write_held()  # what the client sent is answered after the 101
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
        """Let go of the websockets parser where it holds nothing: waiting for the next
        frame of an open connection with an empty buffer, no fragmented message under
        way, no extension and no per-frame debug logging. ``data_received`` makes a new
        one when needed."""
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
        ``receiver`` without the websockets parser; return what is left from the first
        byte that is anything else (a partial frame, a control frame, a fragment, an
        oversize one), for the parser, which is at a frame boundary."""
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
        if self.held is not None:
            self._write_held()
        if message["type"] == "websocket.accept" and self._plain_accept(message):
            self._accept()
        else:
            await super().send(message)
        if self.guard is not None and self.handshake_complete:
            self._release_guard()  # answered: accepted, refused (403) or an HTTP response
        if message["type"] == "websocket.accept" and self.handshake_complete:
            self._forget_handshake()

    def _plain_accept(self, message: ASGISendEvent) -> bool:
        """An accept ``_accept`` answers as uvicorn would: the upgrade checked and
        answerable now, no headers or subprotocol from the app. Anything else is
        uvicorn's."""
        return (
            not self.handshake_complete
            and self.initial_response is None
            and not self.disconnected
            and self.writable.is_set()
            and not message.get("headers")
            and not message.get("subprotocol")
            and getattr(self, "response", None) is not None
            and self.response.status_code == 101
            and self.conn.state is State.CONNECTING
            and not self.transport.is_closing()
        )

    def _accept(self) -> None:
        """uvicorn's answer to an accept, the same bytes and log lines, made cheaper: the
        101 is written from websockets' response headers (less ``Date``) and uvicorn's
        default headers without rebuilding the ``Headers``, and is held back so that
        the first frame (the room's SyncStep1, sent in the same turn) goes out in the
        same write: one send on the socket per connect less (bench/README.md,
        "Connecting: our time against Node's")."""
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info(
                '%s - "WebSocket %s" [accepted]',
                get_client_addr(self.scope),
                get_path_with_query_string(self.scope),
            )
        lines = [b"HTTP/1.1 101 Switching Protocols\r\n"]
        for name, value in self.response.headers.raw_items():
            if name.lower() != "date":  # uvicorn's default headers bring their own
                lines.append(f"{name}: {value}\r\n".encode("iso-8859-1"))
        for header, content in self.default_headers:
            lines += (header.lower(), b": ", content, b"\r\n")
        lines.append(b"\r\n")
        self.handshake_complete = True
        conn = self.conn
        conn.state = State.OPEN  # what ``ServerProtocol.send_response`` does for a 101
        if conn.logger.isEnabledFor(logging.INFO):
            conn.logger.info("connection open")
        self.held = b"".join(lines)
        self.loop.call_soon(self._write_held)
        self.start_keepalive()

    def _forget_handshake(self) -> None:
        """The request and the response are no longer needed once the 101 went out:
        drop uvicorn's references, and park the websockets parser, which keeps the
        request too. It is at a frame boundary then, since a client sends no frame
        before the 101; if it is not, it stays."""
        for name in ("request", "response"):
            if hasattr(self, name):
                delattr(self, name)
        self._park_parser()

    async def receive(self) -> ASGIReceiveEvent:
        """uvicorn's, with ``Inbox.get`` inlined: an idle connection waits here, and one
        coroutine frame less is one less per connection."""
        queue: Inbox[ASGIReceiveEvent] = self.queue
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
        held = self.held
        if held is not None:
            self.held = None
            self.transport.write(held + binary_frame(payload))
        else:
            self.transport.write(binary_frame(payload))
        return True


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


# --- The probe ---------------------------------------------------------------------


class _ProbeSocket(asyncio.Transport):
    """A socket that records what is written to it, for the probe."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.writes: list[bytes] = []
        self._protocol: asyncio.BaseProtocol | None = None
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            if self._protocol is not None:
                asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A short, final, masked client frame (RFC 6455 §5.2)."""
    key = os.urandom(4)
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + key + apply_mask(payload, key)


PROBE_SECONDS = 5.0


async def self_test() -> None:
    """Drive one websocket through the guarded HTTP protocol and the transport on a fake
    socket, as a client would: upgrade, a direct write, a direct read, a ping, a close.
    Raise ``Incompatible`` saying what differs from what the transport was written for,
    including the quiet failures (a frame that took the slow path, a parser not let go,
    an attribute outside the slots) that would otherwise only cost speed and memory."""
    try:
        await asyncio.wait_for(_Probe().run(), PROBE_SECONDS)
    except Incompatible:
        raise
    except TimeoutError as exc:
        raise Incompatible(f"the probe did not finish within {PROBE_SECONDS} s") from exc
    except Exception as exc:
        raise Incompatible(f"{type(exc).__name__}: {exc}") from exc


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise Incompatible(what)


class _Probe:
    """One connection on a ``_ProbeSocket``, with an app that uses both extensions."""

    def __init__(self) -> None:
        self.sock = _ProbeSocket()
        self.limit = ConnectionLimit(limit=10)
        self.received: list[bytes] = []
        self.accepted = asyncio.Event()
        self.offered: dict[str, bool] = {}

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        extensions = scope.get("extensions", {})
        write, set_receiver = extensions.get(DIRECT_EXTENSION), extensions.get(RECEIVE_EXTENSION)
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        self.offered["receiver"] = set_receiver is not None and set_receiver(self.received.append)
        self.offered["write"] = write is not None and write(b"probe-out")
        self.accepted.set()
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async def run(self) -> None:
        config = uvicorn.Config(
            self.app, ws=DirectWebSocketProtocol, http=http_protocol(), lifespan="off",
            interface="asgi3", proxy_headers=False,
            log_config=None, ws_ping_interval=20.0, ws_ping_timeout=20.0,
            ws_max_size=1 << 20, ws_per_message_deflate=False,
        )  # fmt: skip
        config.load()
        http = http_protocol()(
            config=config,  # type: ignore[call-arg]
            server_state=ServerState(),
            app_state={STATE_KEY: self.limit},
        )
        self.sock.set_protocol(http)
        http.connection_made(self.sock)
        try:
            await self.drive()
        finally:
            # A failed check leaves the app waiting: closing the socket reports the
            # connection lost (as a real transport does, on the next loop turn), which
            # ends it.
            self.sock.close()
            tasks: set[asyncio.Task[None]] = getattr(self.sock.get_protocol(), "tasks", set())
            if tasks:
                await asyncio.wait(tasks, timeout=1.0)

    async def drive(self) -> None:
        sock, limit = self.sock, self.limit
        _check(limit.half_open == 1, "the HTTP protocol did not count a new connection")
        sock.get_protocol().data_received(  # type: ignore[attr-defined]
            b"GET /ws/probe HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await self.accepted.wait()
        ws = sock.get_protocol()
        _check(isinstance(ws, DirectWebSocketProtocol), "the upgrade did not reach the transport")
        assert isinstance(ws, DirectWebSocketProtocol)
        _check(bytes(sock.written).startswith(b"HTTP/1.1 101"), "no 101 answer to the upgrade")
        _check(limit.half_open == 0, "the handshake deadline was not released at the 101")
        _check(self.offered.get("receiver") is True, "the direct receive was not offered")
        _check(self.offered.get("write") is True, "the direct write was not offered")
        _check(sock.written.endswith(binary_frame(b"probe-out")), "the direct write differs")
        first = sock.writes[0] if len(sock.writes) == 1 else b""
        _check(
            first.endswith(b"\r\n\r\n" + binary_frame(b"probe-out")),
            "the 101 and the first frame did not go out in one write",
        )
        _check(ws.conn.parser is None, "the websockets parser was not let go after the 101")
        _check(ws.ping_slot is not None, "keepalive pings are not on the ping wheel")
        _check(not vars(ws), f"attributes outside the slots: {sorted(vars(ws))}")
        _check(not hasattr(ws, "request"), "the parsed request is still held")

        ws.data_received(_client_frame(0x2, b"probe-in"))
        _check(self.received == [b"probe-in"], "a binary frame did not reach the receiver")
        _check(ws.conn.parser is None, "a binary frame went through the websockets parser")

        before = len(sock.written)
        ws.data_received(_client_frame(0x9, b"ping"))
        _check(sock.written[before:] == b"\x8a\x04ping", "a ping was not answered")
        _check(ws.conn.parser is None, "the parser was not let go again after a ping")

        ws.data_received(_client_frame(0x8, struct.pack("!H", 1000)))
        await asyncio.gather(*ws.tasks)
        _check(ws.ping_slot is None, "the closed connection stayed on the ping wheel")
