"""Pair rooms across two instances without sockets to the clients: our code's CPU per
delivered update, one instance against two sharing a store and a real redis-server.

``bench/hotpath.py``'s harness (the real protocol class and app, transports that count
what they are asked to write, frames fed to ``data_received`` in 10 ms ticks), with
``--instances 2``: two apps in this process, one data directory, one ``redis-server``
started here, each room's first writer on instance A and its second on B, so every
update crosses Redis once, as in ``make bench``'s multi pair row. ``--instances 1``: the
same rooms and writers on one app without Redis, the single-instance row. ``--affinity``
(with 2 instances): both writers of a room on one instance, as a proxy with room affinity
places them, so nothing crosses and what is left is the cost of Redis and a shared store.

    .venv/bin/python -m bench.cross_hotpath --instances 2 --rooms 200 --seconds 8

Prints CPU microseconds per delivered update: this process's (every thread of both
apps: the event loop, the store thread, redis-py) and redis-server's, apart. The process
CPU does not count time spent waiting for a core, so it moves less than ``make bench``'s
rows when other work shares the machine; ``make bench`` stays the measure that counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from bench.hotpath import CountingTransport, handshake, keystrokes
from bench.procs import cpu_seconds, free_port, stop_process, wait_listening
from rooms import redis_broker
from server import logs
from server.app import WebSocketFastPath, create_app
from server.settings import from_env
from server.uvicorn_fast import DirectWebSocketProtocol


@contextlib.asynccontextmanager
async def app_running(environ: dict[str, str]) -> AsyncIterator[uvicorn.Config]:
    """One app through its lifespan (startup, then shutdown on leaving)."""
    app = WebSocketFastPath(create_app(from_env(environ)))
    config = uvicorn.Config(
        app, ws=DirectWebSocketProtocol, ws_per_message_deflate=False, log_level="warning"
    )
    config.load()
    messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    messages.put_nowait({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def receive() -> dict[str, str]:
        return await messages.get()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"].startswith("lifespan.") and message["type"].endswith("failed"):
            raise RuntimeError(message.get("message", "lifespan failed"))

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), 30)
    try:
        yield config
    finally:
        messages.put_nowait({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 30)


async def run(
    instances: int,
    rooms: int,
    seconds: float,
    rate: float,
    data: str,
    redis: tuple[str, int],
    affinity: bool = False,
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    url, redis_pid = redis
    base = {k: v for k, v in os.environ.items() if not k.startswith("CODEMENTOR_")}
    base.update(CODEMENTOR_DATA_DIR=data, CODEMENTOR_LOG_LEVEL="warning")
    environs = [dict(base)]
    if instances == 2:
        environs = [
            dict(base, CODEMENTOR_REDIS_URL=url, CODEMENTOR_INSTANCE_ID=f"hot-{name}")
            for name in "ab"
        ]
    async with contextlib.AsyncExitStack() as stack:
        configs = [await stack.enter_async_context(app_running(env)) for env in environs]
        state = ServerState()
        count = int(seconds * rate) + 1
        writers: list[tuple[DirectWebSocketProtocol, list[bytes]]] = []
        transports: list[CountingTransport] = []
        for side in (0, 1):  # every room's first writer first: it makes the room
            for r in range(rooms):
                # Crossing: a room's writers on A and B. Affinity: both on one instance.
                config = configs[(r if affinity else side) % len(configs)]
                transport = CountingTransport()
                proto = DirectWebSocketProtocol(
                    config=config, server_state=state, app_state={}, _loop=loop
                )
                proto.connection_made(transport)  # type: ignore[arg-type]
                proto.data_received(handshake(f"cross-{r}"))
                transports.append(transport)
                writers.append((proto, keystrokes(1000 + 2 * r + side, count)))
            for _ in range(1000):
                await asyncio.sleep(0.01)
                # The held 101 leaves with the first frame: one write is a joined peer.
                if all(t.writes >= 1 for t in transports):
                    break
            else:
                waiting = sum(t.writes < 1 for t in transports)
                raise RuntimeError(f"{waiting} of {len(transports)} connections did not join")
        await asyncio.sleep(1.0)  # the rooms attached on both instances
        tick = 0.01
        period = max(1, round(1 / (rate * tick)))
        buckets: list[list[int]] = [[] for _ in range(period)]
        for i in range(len(writers)):
            buckets[random.randrange(period)].append(i)
        sent_by = [0] * len(writers)
        writes0 = sum(t.writes for t in transports)
        cpu0, redis0, wall0 = time.process_time(), cpu_seconds(redis_pid), time.monotonic()
        fed = 0
        for t in range(round(seconds / tick)):
            for i in buckets[t % period]:
                proto, frames = writers[i]
                proto.data_received(frames[sent_by[i]])
                sent_by[i] += 1
            fed += len(buckets[t % period])
            await asyncio.sleep(tick)
        for _ in range(3000):  # up to 30 s for the last deliveries
            if sum(t.writes for t in transports) - writes0 >= fed:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # the last flush
        cpu = time.process_time() - cpu0
        redis_cpu = cpu_seconds(redis_pid) - redis0
        wall = time.monotonic() - wall0
        delivered = sum(t.writes for t in transports) - writes0
        for proto, _ in writers:
            proto.connection_lost(None)
    return {
        "updates": fed,
        "delivered": delivered,
        "cpu_us_per_update": 1e6 * cpu / max(delivered, 1),
        "redis_us_per_update": 1e6 * redis_cpu / max(delivered, 1),
        "cpu_percent": 100 * cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, choices=(1, 2), default=2)
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=5.0, help="updates per writer per second")
    parser.add_argument("--commandstats", action="store_true", help="print Redis's afterwards")
    parser.add_argument(
        "--affinity",
        action="store_true",
        help="with 2 instances, both writers of a room on one instance (nothing crosses)",
    )
    parser.add_argument(
        "--coalesce-ms", type=float, help="experiment: the broker's COALESCE_SECONDS, in ms"
    )
    args = parser.parse_args()
    if args.coalesce_ms is not None:
        redis_broker.COALESCE_SECONDS = args.coalesce_ms / 1000
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    logs.configure("WARNING", "text")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        redis = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_listening(port, redis)
            data = str(Path(tmp) / "data")
            url = f"redis://127.0.0.1:{port}/0"
            try:
                import uvloop

                runner = uvloop.run
            except ImportError:
                runner = asyncio.run  # type: ignore[assignment]
            args_ = (args.instances, args.rooms, args.seconds, args.rate, data, (url, redis.pid))
            result = runner(run(*args_, affinity=args.affinity))
            if args.commandstats:  # calls and server time per Redis command
                stats = subprocess.run(
                    ["redis-cli", "-p", str(port), "info", "commandstats"],
                    capture_output=True, text=True, timeout=10,
                )  # fmt: skip
                print(stats.stdout.strip())
        finally:
            stop_process(redis)
    for key, value in result.items():
        print(f"{key:>22}: {value:,.1f}")
    if result["delivered"] < result["updates"]:
        # Starved (other work took the cores): the updates left are not in the CPU count.
        print("INCOMPLETE: not every update was delivered within 30 s; not a result")


if __name__ == "__main__":
    main()
