"""The pair update path without sockets: how much CPU our own code costs per update.

The server's real protocol class (``server.uvicorn_fast.DirectWebSocketProtocol``) and the
real app (Starlette, lifespan, SQLite store, metrics) run in this process; each
connection gets a transport that only counts what it is asked to write. Writers'
frames are fed to ``data_received`` as the event loop would, in ticks of
``--rate`` updates per room per second, so the store's flusher and thread run as in
the server. What this leaves out is exactly what ``make bench`` adds: the socket
reads and writes and the event loop's polling (the kernel's share, the same for
any server).

    .venv/bin/python -m bench.hotpath --rooms 500 --seconds 5

Prints CPU microseconds per update (the process's, every thread) and the main
thread's share. For comparing changes to the hot path in seconds rather than
minutes; ``make bench`` stays the measure that counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from typing import Any

import uvicorn
from pycrdt import Doc, Text, TransactionEvent
from uvicorn.server import ServerState

from crdt import protocol
from server import logs
from server.app import WebSocketFastPath, create_app
from server.settings import from_env
from server.uvicorn_fast import DirectWebSocketProtocol


class CountingTransport:
    """Just enough of ``asyncio.Transport`` for uvicorn's protocol."""

    def __init__(self) -> None:
        self.writes = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes += 1

    def writelines(self, data: list[bytes]) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )


def masked_frame(payload: bytes) -> bytes:
    """A client's binary frame (RFC 6455: clients mask), mask key zero, so the masked
    payload is the payload."""
    size = len(payload)
    if size < 126:
        header = bytes((0x82, 0x80 | size))
    elif size < 1 << 16:
        header = bytes((0x82, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x82, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


def keystrokes(client_id: int, count: int) -> list[bytes]:
    """``count`` one-character inserts by one client, as Update frames."""
    doc: Doc[Any] = Doc(client_id=client_id)
    text = doc.get("code", type=Text)
    updates: list[bytes] = []

    def collect(event: TransactionEvent) -> None:
        updates.append(event.update)

    doc.observe(collect)
    for i in range(count):
        with doc.transaction():
            text.insert(len(text), "abcdefghij"[i % 10])
    return [masked_frame(protocol.update_frame(u)) for u in updates]


def handshake(room: str) -> bytes:
    return (
        f"GET /ws/{room} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def run(rooms: int, seconds: float, rate: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    app = WebSocketFastPath(create_app(from_env()))
    config = uvicorn.Config(app, ws=DirectWebSocketProtocol, ws_per_message_deflate=False)
    config.load()
    state = ServerState()
    startup: asyncio.Queue[Any] = asyncio.Queue()
    shutdown = asyncio.Event()

    async def receive() -> dict[str, str]:
        if startup.empty():
            await shutdown.wait()
            return {"type": "lifespan.shutdown"}
        return await startup.get()  # type: ignore[no-any-return]

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"] == "lifespan.startup.failed":
            raise RuntimeError(message.get("message", "startup failed"))

    started = asyncio.Event()
    startup.put_nowait({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    lifespan = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), 30)

    writers: list[tuple[DirectWebSocketProtocol, list[bytes]]] = []
    transports: list[CountingTransport] = []
    count = int(seconds * rate) + 1
    for r in range(rooms):
        for side in (0, 1):
            transport = CountingTransport()
            proto = DirectWebSocketProtocol(
                config=config, server_state=state, app_state={}, _loop=loop
            )
            proto.connection_made(transport)  # type: ignore[arg-type]
            proto.data_received(handshake(f"hot-{r}"))
            transports.append(transport)
            writers.append((proto, keystrokes(1000 + 2 * r + side, count)))
    # Let every connection finish its handshake and join (sync step 1 and 2 answered).
    for _ in range(200):
        await asyncio.sleep(0.01)
        if all(t.writes >= 2 for t in transports):
            break
    else:
        raise RuntimeError("connections did not join")

    # Each writer sends ``rate`` a second, at its own phase, in 10 ms ticks.
    tick = 0.01
    period = max(1, round(1 / (rate * tick)))
    buckets: list[list[int]] = [[] for _ in range(period)]
    for i in range(len(writers)):
        buckets[random.randrange(period)].append(i)
    sent_by = [0] * len(writers)
    writes0 = sum(t.writes for t in transports)
    cpu0, main0, wall0 = time.process_time(), time.thread_time(), time.monotonic()
    fed = 0
    in_frames = 0.0  # thread time inside data_received: the frame path itself
    for t in range(round(seconds / tick)):
        tick_start = time.thread_time()
        for i in buckets[t % period]:
            proto, frames = writers[i]
            proto.data_received(frames[sent_by[i]])
            sent_by[i] += 1
        in_frames += time.thread_time() - tick_start
        fed += len(buckets[t % period])
        await asyncio.sleep(tick)
    await asyncio.sleep(0.3)  # the last flush
    cpu = time.process_time() - cpu0
    main = time.thread_time() - main0
    wall = time.monotonic() - wall0
    delivered = sum(t.writes for t in transports) - writes0
    shutdown.set()
    for proto, _ in writers:
        proto.connection_lost(None)
    await asyncio.wait_for(lifespan, 30)
    return {
        "updates": fed,
        "delivered": delivered,
        "cpu_us_per_update": 1e6 * cpu / fed,
        "main_thread_us_per_update": 1e6 * main / fed,
        "frame_path_us_per_update": 1e6 * in_frames / fed,
        "cpu_percent": 100 * cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=5.0, help="updates per writer per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        os.environ.update(CODEMENTOR_DATA_DIR=data, CODEMENTOR_LOG_LEVEL="warning")
        logs.configure("WARNING", "text")
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = asyncio.run  # type: ignore[assignment]
        result = runner(run(args.rooms, args.seconds, args.rate))
    for key, value in result.items():
        print(f"{key:>28}: {value:,.1f}")


if __name__ == "__main__":
    main()
