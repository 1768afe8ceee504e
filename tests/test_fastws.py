"""The transport's own frame path (``server.uvicorn_fast``): complete binary frames skip the
``websockets`` parser, everything else goes through it. Whatever way the bytes are cut
into TCP segments, and whatever control frames or fragments come between, the room
must see the same updates in the same order, and bad frames must close as before.

A raw socket client writes hand-made frames (random mask keys) in chosen chunks; a
y-websocket client in the same room checks what the room made of them.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text, TransactionEvent

from crdt import protocol
from server.ping_wheel import PingWheel
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

MAX_FRAME = 4096
_rooms = itertools.count()


@pytest.fixture(scope="module")
def small_frames_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"CODEMENTOR_MAX_FRAME_BYTES": str(MAX_FRAME)}
    with ServerProcess(tmp_path_factory.mktemp("fastws"), env) as proc:
        yield proc


def client_frame(payload: bytes, opcode: int = 0x2, fin: bool = True) -> bytes:
    """A client frame (RFC 6455 §5.2) with a random mask key."""
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        header = struct.pack("!BB", first, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, size)
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + masked


class RawClient:
    """A websocket client that writes exactly the bytes it is given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, server: ServerProcess, room: str) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ws/{room} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert response.startswith(b"HTTP/1.1 101"), response
        return cls(reader, writer)

    async def write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.writer.write(chunk)
            await self.writer.drain()
            await asyncio.sleep(0.002)  # separate segments, so the server reads them apart

    async def frames(self, timeout: float = 10.0) -> list[tuple[int, bytes]]:
        """Every frame the server sends until it closes the connection: (opcode, payload)."""
        out: list[tuple[int, bytes]] = []
        async with asyncio.timeout(timeout):
            while True:
                try:
                    head = await self.reader.readexactly(2)
                except asyncio.IncompleteReadError:
                    return out
                size = head[1] & 0x7F
                if size == 126:
                    (size,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif size == 127:
                    (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
                out.append((head[0] & 0x0F, await self.reader.readexactly(size)))
                if head[0] & 0x0F == 0x8:
                    return out

    def close(self) -> None:
        self.writer.close()


def keystrokes(texts: list[str]) -> tuple[list[bytes], str]:
    """One Update frame per insert, and the text they make."""
    doc: Doc[Any] = Doc()
    text = doc.get("code", type=Text)
    updates: list[bytes] = []

    def collect(event: TransactionEvent) -> None:
        updates.append(event.update)

    doc.observe(collect)
    for piece in texts:
        text += piece
    return [protocol.update_frame(u) for u in updates], str(text)


def close_code(frames: list[tuple[int, bytes]]) -> int | None:
    for opcode, payload in frames:
        if opcode == 0x8 and len(payload) >= 2:
            return int(struct.unpack("!H", payload[:2])[0])
    return None


# Inserts of 1, 130 (a 16-bit length) and 300 bytes, in an order hypothesis picks.
PIECES = ["a", "b", "c", "x" * 130, "y" * 300, "d", "e"]


async def _any_chunking(server: ServerProcess, order: list[int], cuts: list[int]) -> None:
    room = f"fast-{next(_rooms)}"
    frames, expected = keystrokes([PIECES[i] for i in order])
    stream = [client_frame(f) for f in frames]
    # A ping between two updates, and the last update split into two fragments.
    stream.insert(len(stream) // 2, client_frame(b"are you there", opcode=0x9))
    last = frames[-1]
    stream[-1:] = [
        client_frame(last[:3], opcode=0x2, fin=False),
        client_frame(last[3:], opcode=0x0, fin=True),
    ]
    data = b"".join(stream)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points) if b > a]
    async with YClient(server.ws_url(room)) as watcher:
        await watcher.wait_synced()
        raw = await RawClient.connect(server, room)
        try:
            await raw.write(chunks)
            await eventually(lambda: str(watcher.text) == expected)
            raw.writer.write(client_frame(struct.pack("!H", 1000), opcode=0x8))
            answered = await raw.frames()
        finally:
            raw.close()
    assert (0xA, b"are you there") in answered, "the ping in the middle was not answered"
    assert close_code(answered) == 1000


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    order=st.permutations(range(len(PIECES))),
    cuts=st.lists(st.integers(min_value=1, max_value=700), max_size=12),
)
def test_updates_arrive_whole_and_in_order_however_the_bytes_are_cut(
    small_frames_server: ServerProcess, order: list[int], cuts: list[int]
) -> None:
    asyncio.run(_any_chunking(small_frames_server, order, cuts))


def test_byte_by_byte(small_frames_server: ServerProcess) -> None:
    async def go() -> None:
        room = f"fast-{next(_rooms)}"
        frames, expected = keystrokes(["one", "two" * 50, "three"])
        data = b"".join(client_frame(f) for f in frames)
        async with YClient(small_frames_server.ws_url(room)) as watcher:
            await watcher.wait_synced()
            raw = await RawClient.connect(small_frames_server, room)
            try:
                for i in range(0, len(data), 7):
                    raw.writer.write(data[i : i + 7])
                    await raw.writer.drain()
                    await asyncio.sleep(0.001)
                await eventually(lambda: str(watcher.text) == expected)
            finally:
                raw.close()

    asyncio.run(go())


async def _closed_by(server: ServerProcess, bad: bytes, same_segment: bool) -> int | None:
    """Write a valid update and then ``bad``, in one segment (the connection may still
    be joining: the parser's path) or after the room applied the update (the
    transport's own path); return the close code. The valid update must stay."""
    room = f"fast-{next(_rooms)}"
    frames, _ = keystrokes(["kept"])
    async with YClient(server.ws_url(room)) as watcher:
        await watcher.wait_synced()
        raw = await RawClient.connect(server, room)
        try:
            if same_segment:
                raw.writer.write(client_frame(frames[0]) + bad)
            else:
                raw.writer.write(client_frame(frames[0]))
                await eventually(lambda: str(watcher.text) == "kept")
                raw.writer.write(bad)
            code = close_code(await raw.frames())
        finally:
            raw.close()
        await eventually(lambda: str(watcher.text) == "kept")
    return code


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        # Over CODEMENTOR_MAX_FRAME_BYTES with a 16-bit length: the transport's own path
        # must leave it to the parser, which closes with 1009.
        (lambda: client_frame(protocol.update_frame(b"\x00" * (MAX_FRAME + 10))), 1009),
        # Unmasked: a protocol error (1002), not an update.
        (lambda: b"\x82\x05" + protocol.update_frame(b"\x00\x00"), 1002),
        # Reserved bits set with no extension negotiated: 1002.
        (lambda: b"\xc2" + client_frame(protocol.update_frame(b"\x00\x00"))[1:], 1002),
        # A continuation with no message to continue: 1002.
        (lambda: client_frame(b"\x00", opcode=0x0), 1002),
    ],
    ids=["oversize-16-bit", "unmasked", "rsv1", "stray-continuation"],
)
@pytest.mark.parametrize("same_segment", [True, False], ids=["same-segment", "later"])
def test_bad_frames_after_a_good_one_close_as_before(
    small_frames_server: ServerProcess, make: Any, expected: int, same_segment: bool
) -> None:
    assert asyncio.run(_closed_by(small_frames_server, make(), same_segment)) == expected
    assert small_frames_server.alive()


def test_pings_close_a_client_that_stopped_answering(
    server_factory: Any,
) -> None:
    """One timer pings every connection (``PingWheel``): a client that answers stays; one
    whose kernel still takes our bytes but that never answers (a frozen tab) is closed
    with 1011 after the interval and the timeout."""
    server: ServerProcess = server_factory(
        CODEMENTOR_PING_SECONDS="1", CODEMENTOR_PING_TIMEOUT_SECONDS="1"
    )

    async def go() -> None:
        answering = await RawClient.connect(server, "pings")
        frozen = await RawClient.connect(server, "pings")
        pings = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + 4.5
        try:
            while (left := end - loop.time()) > 0:
                try:
                    head = await asyncio.wait_for(answering.reader.readexactly(2), left)
                except TimeoutError:
                    break
                payload = await answering.reader.readexactly(head[1] & 0x7F)
                assert head[0] & 0x0F != 0x8, "the answering client was closed"
                if head[0] & 0x0F == 0x9:
                    pings += 1
                    answering.writer.write(client_frame(payload, opcode=0xA))
            frames = await frozen.frames(timeout=5)
        finally:
            answering.close()
            frozen.close()
        # One a second, each up to a tick (0.5 s) late: a ping answered is followed by the next.
        assert pings >= 2, f"{pings} pings in 4.5 s"
        assert any(opcode == 0x9 for opcode, _ in frames)
        assert close_code(frames) == 1011

    asyncio.run(go())


class FakePinged:
    """What ``PingWheel`` needs of a connection: its slot and ``send_keepalive_ping``."""

    def __init__(self, fails: bool) -> None:
        self.ping_slot: int | None = None
        self.fails = fails
        self.pings = 0

    def send_keepalive_ping(self) -> None:
        self.pings += 1
        if self.fails:
            raise RuntimeError("this connection's ping failed")


def test_a_failing_ping_does_not_stop_the_others() -> None:
    async def go() -> tuple[FakePinged, FakePinged, FakePinged]:
        wheel = PingWheel(asyncio.get_running_loop())
        broken, fine, cancelled = FakePinged(True), FakePinged(False), FakePinged(False)
        for each in (broken, fine, cancelled):
            each.ping_slot = wheel.schedule(each, 0.0)
        assert cancelled.ping_slot is not None
        wheel.cancel(cancelled, cancelled.ping_slot)
        await eventually(lambda: fine.pings == 1, timeout=3.0)
        return broken, fine, cancelled

    with structlog.testing.capture_logs() as logs:
        broken, fine, cancelled = asyncio.run(go())
    assert (broken.pings, fine.pings, cancelled.pings) == (1, 1, 0)
    assert fine.ping_slot is None  # sent: the connection schedules its next one itself
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["keepalive_ping_failed"]


async def _upgrade(server: ServerProcess, room: str, key: str) -> tuple[list[bytes], bytes]:
    """The 101's lines (date's value left out) and the first frame after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            f"GET /ws/{room} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        first = await asyncio.wait_for(reader.readexactly(2), 10)
        payload = await asyncio.wait_for(reader.readexactly(first[1] & 0x7F), 10)
    finally:
        writer.close()
    lines = [line.split(b":")[0] if line.startswith(b"date:") else line
             for line in head.split(b"\r\n")]  # fmt: skip
    return lines, first + payload


def test_the_fast_101_is_uvicorns(tmp_path: Any) -> None:
    """The transport writes the 101 itself (held back to share a write with the first
    frame): the same status line and headers, in the same order, as stock uvicorn's,
    the room's SyncStep1 right after it, and uvicorn's access line still logged."""
    key = base64.b64encode(b"0123456789abcdef").decode()
    answers = []
    for setting in ("off", "on"):
        server = ServerProcess(tmp_path / setting, {"CODEMENTOR_WS_FAST_PATH": setting})
        server.start(timeout=60)  # two starts in one test: give a busy machine time
        try:
            answers.append(asyncio.run(_upgrade(server, f"hs-{setting}", key)))
            assert _logged(server, "[accepted]"), f"{setting}: no access line for the websocket"
        finally:
            server.stop()
    (stock_head, stock_first), (fast_head, fast_first) = answers
    assert fast_head == stock_head
    assert fast_head[0] == b"HTTP/1.1 101 Switching Protocols"
    for first in (stock_first, fast_first):  # a binary frame: the room's SyncStep1
        assert first[0] == 0x82 and first[2:4] == protocol.sync_step1(b"")[:2], first


def _logged(server: ServerProcess, text: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
