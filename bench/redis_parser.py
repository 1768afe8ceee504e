"""redis-py with and without hiredis on the Redis broker's paths, side by side in one run.

usage: .venv/bin/python bench/redis_parser.py [--rooms 200] [--rounds 7] [--calls 200]

redis-py switches to hiredis by itself when the package is installed: its C reply parser
(``_AsyncHiredisParser``) and its C command packer. This script runs both arms in one
process against one real ``redis-server`` on loopback, taking turns round by round:

- ``python``: redis-py's own RESP parser and command packer (what runs without hiredis);
- ``hiredis``: what runs with hiredis installed.

It fills the streams the way ``rooms/redis_broker.py`` writes them (one stream per room,
one ``XADD {u: update, src: instance}`` per update, real one-keystroke Yjs updates) and
times the broker's calls: ``XREAD`` over every loaded room's stream (the live read: a few
new entries; a burst: many entries in every stream), ``XRANGE`` of one stream (a room
attaching) and a pipeline of ``XADD`` (the publisher). Each figure is this process's CPU
(the client side: packing, parsing, the event loop, the socket calls) per call and per
message, median over the rounds; the wall time per call includes redis-server's work.

Loopback only; the redis-server is started here and stopped by its handle; bounded in
count (rooms, entries, calls) and time (a deadline per call).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis.asyncio as aioredis  # noqa: E402
from pycrdt import Doc, Text  # noqa: E402
from redis._parsers import _AsyncHiredisParser, _AsyncRESP3Parser  # noqa: E402
from redis.asyncio.connection import Connection  # noqa: E402
from redis.utils import HIREDIS_AVAILABLE  # noqa: E402

from bench.procs import free_port, stop_process, wait_listening  # noqa: E402
from rooms.redis_broker import READ_COUNT, STREAM  # noqa: E402

ME = b"bench-a"
CALL_TIMEOUT = 10.0


class PythonPacker(Connection):
    """A connection that packs commands in Python, as redis-py does without hiredis."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._command_packer = None


ARMS: dict[str, dict[str, Any]] = {
    "python": {"parser_class": _AsyncRESP3Parser, "connection_class": PythonPacker},
    "hiredis": {"parser_class": _AsyncHiredisParser},
}


def keystrokes(n: int) -> list[bytes]:
    """``n`` one-character Yjs updates, as a typing editor sends them."""
    doc: Doc[Any] = Doc()
    doc["code"] = text = Text()
    updates = []
    for i in range(n):
        before = doc.get_state()
        text.insert(i, "x")
        updates.append(doc.get_update(before))
    return updates


async def fill(client: aioredis.Redis, rooms: int, per_room: int) -> dict[str, list[str]]:
    """``per_room`` updates in each room's stream; the entry ids of each stream."""
    updates = keystrokes(per_room)
    ids: dict[str, list[str]] = {}
    for r in range(rooms):
        key = STREAM.format(f"bench-{r}")
        async with client.pipeline(transaction=False) as pipe:
            for update in updates:
                pipe.xadd(key, {"u": update, "src": ME})
            ids[key] = [i.decode() for i in await pipe.execute()]
    return ids


def checked(client: aioredis.Redis, arm: str) -> int:
    """Refuse to measure an arm that is not what it claims (redis-py's internals move);
    the RESP version its connections speak."""
    pool: Any = client.connection_pool
    conn = pool.make_connection()
    parser = type(conn._parser).__name__
    packer = conn._command_packer
    want_hiredis = arm == "hiredis"
    if ("Hiredis" in parser) != want_hiredis or (packer is not None) != want_hiredis:
        raise SystemExit(f"arm {arm}: parser {parser}, packer {packer!r}")
    return int(conn.protocol)


async def timed(call: Callable[[], Awaitable[Any]], calls: int) -> tuple[float, float]:
    """(client CPU µs, wall µs) per call, over ``calls`` calls after one warm-up."""
    await asyncio.wait_for(call(), CALL_TIMEOUT)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        await asyncio.wait_for(call(), CALL_TIMEOUT)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return 1e6 * cpu / calls, 1e6 * wall / calls


def cases(
    client: aioredis.Redis, ids: dict[str, list[str]], live: int
) -> dict[str, tuple[int, Callable[[], Awaitable[Any]]]]:
    """Each case: (messages per call, the call). Positions are fixed, so every call
    returns the same entries."""
    keys = list(ids)
    # Live: every loaded room named, ``live`` of them with one new entry (as the broker's
    # reader sees a pair-room load between two of its 2 ms waits).
    live_positions: dict[Any, Any] = {k: ids[k][-1] for k in keys}
    for k in keys[:live]:
        live_positions[k] = ids[k][-2]
    burst_positions: dict[Any, Any] = {k: "0-0" for k in keys}
    per_room = len(ids[keys[0]])
    one = keys[0]
    updates = keystrokes(per_room)
    publish_key = STREAM.format("bench-publish")

    async def publish() -> None:
        async with client.pipeline(transaction=False) as pipe:
            for update in updates:
                pipe.xadd(publish_key, {"u": update, "src": ME}, maxlen=10_000)
            await pipe.execute()

    return {
        f"XREAD {len(keys)} streams, {live} new entries": (
            live,
            lambda: client.xread(live_positions, count=READ_COUNT),
        ),
        f"XREAD {len(keys)} streams × {per_room} entries": (
            len(keys) * per_room,
            lambda: client.xread(burst_positions, count=READ_COUNT),
        ),
        f"XRANGE 1 stream, {per_room} entries": (
            per_room,
            lambda: client.xrange(one, min="-", count=READ_COUNT),
        ),
        f"pipeline of {per_room} XADD": (per_room, publish),
    }


async def measure(port: int, args: argparse.Namespace) -> None:
    url = f"redis://127.0.0.1:{port}/0"
    clients = {arm: aioredis.Redis.from_url(url, **options) for arm, options in ARMS.items()}
    protocol = {checked(client, arm) for arm, client in clients.items()}
    ids = await fill(clients["hiredis"], args.rooms, args.entries)
    plans = {arm: cases(client, ids, args.live) for arm, client in clients.items()}
    names = list(plans["python"])
    cpu: dict[tuple[str, str], list[float]] = {(n, a): [] for n in names for a in clients}
    wall: dict[tuple[str, str], list[float]] = {(n, a): [] for n in names for a in clients}
    for round_ in range(args.rounds):
        order = list(clients) if round_ % 2 == 0 else list(reversed(clients))
        for name in names:
            for arm in order:
                messages, call = plans[arm][name]
                # Fewer calls for the big answers, so each case takes about as long.
                calls = max(10, min(args.calls, args.calls * 20 // messages))
                c, w = await timed(call, calls)
                cpu[name, arm].append(c)
                wall[name, arm].append(w)
    for client in clients.values():
        await client.aclose()
    print(
        f"redis-py {version('redis')} (RESP{'/'.join(map(str, sorted(protocol)))}), hiredis "
        f"{version('hiredis')}; {args.rooms} streams of {args.entries} entries, "
        f"{args.rounds} rounds of up to {args.calls} calls per arm; medians over the rounds\n"
    )
    print(
        "| call | messages | python CPU µs/call | hiredis CPU µs/call | python CPU µs/msg "
        "| hiredis CPU µs/msg | python / hiredis CPU | python / hiredis wall |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        messages = plans["python"][name][0]
        py, hi = statistics.median(cpu[name, "python"]), statistics.median(cpu[name, "hiredis"])
        pw = statistics.median(wall[name, "python"])
        hw = statistics.median(wall[name, "hiredis"])
        print(
            f"| {name} | {messages} | {py:.1f} | {hi:.1f} | {py / messages:.2f} | "
            f"{hi / messages:.2f} | {py / hi:.2f} | {pw / hw:.2f} |"
        )


def version(package: str) -> str:
    from importlib.metadata import version as installed

    return installed(package)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rooms", type=int, default=200, help="streams (loaded rooms)")
    parser.add_argument("--entries", type=int, default=10, help="entries per stream")
    parser.add_argument("--live", type=int, default=5, help="new entries in a live XREAD")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200, help="calls per arm per round")
    args = parser.parse_args()
    if not 1 <= args.rooms <= 2000 or not 2 <= args.entries <= READ_COUNT:
        parser.error("--rooms 1..2000, --entries 2..1000")
    args.live = min(args.live, args.rooms)
    if not HIREDIS_AVAILABLE:
        raise SystemExit("hiredis is not installed: .venv/bin/pip install hiredis")
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="redis-parser-"))
    redis = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_listening(port, redis)
        try:
            import uvloop  # what uvicorn runs the server on

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        except ImportError:
            runner = asyncio.Runner()
        with runner:
            runner.run(measure(port, args))
    finally:
        stop_process(redis)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
