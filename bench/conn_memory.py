"""Memory per idle websocket connection, and where its bytes go.

usage: .venv/bin/python bench/conn_memory.py [-n 2000] [--server ours|inprocess|node]
                                             [--tracemalloc] [--set KEY=VALUE ...]

Connects N y-websocket clients (bench/loadgen.mjs in idle mode: SyncStep1, answer the
server's Step1 with Step2, synced on the server's Step2, then idle) over N/10 pair rooms,
with editor tokens (the server runs with CODEMENTOR_SECRET, as in production), and prints
(RSS after - RSS before) / N. "before" is read after the rooms were created and a warm-up
room of 10 connections joined (first-use costs: imports, caches), "after" once the RSS
stopped moving (polled, with a deadline). Same load as bench/run.py's capacity family.

  --server ours       `python -m server serve` in a child process (what production runs)
  --server inprocess  the same `server.cli.serve` in a thread of this process, so gc and
                      tracemalloc can look inside; `--set` overrides uvicorn.Config options
                      for an experiment (--set ws_ping_interval=none --set loop=asyncio)
  --server node       @y/websocket-server 0.1.1, the reference
  --tracemalloc       (implies inprocess) traces allocations made while the N clients
                      connected and prints the live ones by site, per connection: by the
                      allocating line, by the first frame outside the standard library
                      (who asked: uvicorn, starlette, ours), and the new gc-tracked
                      objects by type. tracemalloc sees Python's allocators only; the
                      RSS it does not explain is native (libuv, pycrdt, malloc slack)

Loopback only; bounded in count (N <= 10,000) and time (generator and settle deadlines);
only processes this script started are stopped, by their handle.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import resource
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.generator import Generator  # noqa: E402
from bench.procs import free_port, memory_mib  # noqa: E402
from bench.servers import NodeServer, Ours, Server, create_room  # noqa: E402
from rooms.roles import Role  # noqa: E402

MAX_CONNECTIONS = 10_000
PER_ROOM = 10
IN_FLIGHT = 25  # handshakes in flight, as in the capacity family (bench/capacity.py)
STDLIB = sysconfig.get_paths()["stdlib"]


class InProcess(Server):
    """``server.cli.serve`` (same settings, same uvicorn options) in a thread of this
    process. ``overrides`` replace uvicorn.Config options for an experiment."""

    name = "codementor (in-process)"
    tag = "inproc"

    def __init__(self, label: str, data_dir: Path, overrides: dict[str, Any]) -> None:
        super().__init__(label)
        self.data_dir = data_dir
        self.overrides = overrides
        self.uvicorn: Any = None
        self.thread: threading.Thread | None = None
        self.http: httpx.Client | None = None

    @property
    def pids(self) -> list[int]:
        return [os.getpid()]

    def start(self) -> None:
        import uvicorn

        from server import cli
        from server.settings import from_env

        os.environ.update(
            CODEMENTOR_SECRET=self.secret,
            CODEMENTOR_LOG_LEVEL="warning",
            CODEMENTOR_API_RATE_PER_MINUTE="100000000",
        )
        port = free_port()
        self.ports = [port]
        captured: list[uvicorn.Server] = []
        overrides = self.overrides

        class CapturedServer(uvicorn.Server):
            def __init__(self, config: uvicorn.Config) -> None:
                super().__init__(config)
                captured.append(self)

        def config(app: Any, **options: Any) -> uvicorn.Config:
            return uvicorn.Config(app, **{**options, **overrides})

        # cli.serve builds its uvicorn.Server from the module attribute: swap it for one
        # that hands us the server (to stop it) and applies the overrides.
        cli.uvicorn = SimpleNamespace(Server=CapturedServer, Config=config)  # type: ignore[attr-defined,assignment]
        settings = from_env(port=port, data_dir=self.data_dir)
        self.thread = threading.Thread(target=cli.serve, args=(settings,), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not captured and time.monotonic() < deadline:
            time.sleep(0.05)
        self.uvicorn = captured[0] if captured else None
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("in-process server not ready after 30 s")
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        if self.uvicorn is not None:
            self.uvicorn.should_exit = True
        if self.thread is not None:
            self.thread.join(30)

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def url(self, room: str, token: str, instance: int = 0) -> str:
        return f"ws://127.0.0.1:{self.ports[0]}/ws/{room}?token={token}"

    def create_room(self, mode: str) -> tuple[str, str]:
        assert self.http is not None
        return create_room(self.http, mode)


def connect(server: Server, rooms: list[str], workdir: Path, label: str) -> Generator:
    """One idle-mode generator holding PER_ROOM editors in each room, connected and synced."""
    urls = [
        server.url(room, server.token(room, Role.EDITOR, f"idle-{i}"))
        for room in rooms
        for i in range(PER_ROOM)
    ]
    config = {
        "mode": "idle", "proc": 0, "out": str(workdir / label), "concurrency": IN_FLIGHT,
        "rooms": [{"all_writers": [], "writers": [], "readers": urls}], "max_s": 600,
    }  # fmt: skip
    return Generator("loadgen.mjs", config, workdir, f"conn-memory-{label}")


def settle(
    pid: int, timeout: float, quiet: float = 1.5, slack_kib: float = 64
) -> tuple[float, float]:
    """Poll the RSS until it moved less than ``slack_kib`` over ``quiet`` seconds (or the
    deadline passed). Returns (RSS MiB, seconds waited)."""
    start = time.monotonic()
    samples: collections.deque[tuple[float, float]] = collections.deque()
    while True:
        now = time.monotonic()
        rss, _ = memory_mib(pid)
        samples.append((now, rss))
        while samples and now - samples[0][0] > quiet:
            samples.popleft()
        spread = (max(r for _, r in samples) - min(r for _, r in samples)) * 1024
        if now - start >= quiet and spread < slack_kib:
            return rss, now - start
        if now - start > timeout:
            return rss, now - start
        time.sleep(0.2)


def origin(frames: list[tracemalloc.Frame]) -> str:
    """The innermost frame outside the standard library: who asked for the memory."""
    for frame in frames:
        if not frame.filename.startswith(STDLIB) or "site-packages" in frame.filename:
            return f"{short(frame.filename)}:{frame.lineno}"
    return f"{short(frames[0].filename)}:{frames[0].lineno}"


# Who holds the memory, by the file of the first frame outside the standard library
# (first match wins). Allocations with no frame but the loop's are uvloop's own objects.
LAYERS = (
    ("uvicorn/protocols/websockets/", "uvicorn ws protocol: object, receive queue, scope, ping"),
    ("websockets/", "websockets sans-I/O: protocol state, parser, handshake request/response"),
    ("uvicorn/middleware/", "ASGI chain: coroutine frames, WebSocket objects, closures"),
    ("starlette/", "ASGI chain: coroutine frames, WebSocket objects, closures"),
    ("server/logs.py", "ASGI chain: coroutine frames, WebSocket objects, closures"),
    ("structlog/", "log context (structlog contextvars)"),
    ("jwt/", "auth: token claims kept (Identity strings)"),
    ("server/auth.py", "auth: token claims kept (Identity strings)"),
    ("server/websocket.py", "ours: endpoint coroutine frame, Peer, sender"),
    ("rooms/", "ours: endpoint coroutine frame, Peer, sender"),
    ("server/uvicorn_fast.py", "ours: endpoint coroutine frame, Peer, sender"),
    ("uvicorn/protocols/http/", "event loop: uvloop transport, Task, timers, addresses"),
    ("uvicorn/protocols/utils.py", "event loop: uvloop transport, Task, timers, addresses"),
    ("uvicorn/_compat.py", "event loop: uvloop transport, Task, timers, addresses"),
)


def layer(site: str) -> str:
    for prefix, name in LAYERS:
        if site.startswith(prefix):
            return name
    return "other: " + site


def short(path: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/", STDLIB + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def report_traces(snapshot: tracemalloc.Snapshot, n: int, top: int) -> float:
    """Print the live allocations by site; returns the traced KiB per connection."""
    snapshot = snapshot.filter_traces(
        [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, str(BENCH / "*")),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        ]
    )
    total = sum(t.size for t in snapshot.traces)
    print(f"\ntraced: {total / 1024 / n:.2f} KiB/conn in {len(snapshot.traces)} blocks")
    by_line: collections.Counter[str] = collections.Counter()
    by_origin: collections.Counter[str] = collections.Counter()
    by_layer: collections.Counter[str] = collections.Counter()
    blocks_origin: collections.Counter[str] = collections.Counter()
    chains: collections.Counter[str] = collections.Counter()
    for trace in snapshot.traces:
        tb = list(reversed(trace.traceback))  # innermost first (the API gives oldest first)
        by_line[f"{short(tb[0].filename)}:{tb[0].lineno}"] += trace.size
        who = origin(tb)
        by_origin[who] += trace.size
        blocks_origin[who] += 1
        by_layer[layer(who)] += trace.size
        chains[" < ".join(f"{short(f.filename)}:{f.lineno}" for f in tb[:4])] += trace.size
    print("\nby layer, bytes/conn:")
    for name, size in by_layer.most_common(12):
        print(f"  {size / n:8.0f}  {name}")
    print(f"\nby first frame outside the standard library (top {top}), bytes/conn, blocks/conn:")
    for site, size in by_origin.most_common(top):
        print(f"  {size / n:8.0f}  {blocks_origin[site] / n:6.2f}  {site}")
    print(f"\nby allocating line (top {top}), bytes/conn:")
    for site, size in by_line.most_common(top):
        print(f"  {size / n:8.0f}  {site}")
    print("\nby innermost 4 frames (top 15), bytes/conn:")
    for chain, size in chains.most_common(15):
        print(f"  {size / n:8.0f}  {chain}")
    return total / 1024 / n


def object_census() -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        counts[f"{kind.__module__}.{kind.__qualname__}"] += 1
    return counts


def parse_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--connections", type=int, default=2000)
    parser.add_argument("--server", choices=("ours", "inprocess", "node"), default="ours")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--frames", type=int, default=25, help="traceback depth (tracemalloc)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", type=Path, help="also save the tracemalloc snapshot here")
    parser.add_argument("--load", type=Path, help="only report a saved snapshot (of -n clients)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds at most")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="uvicorn.Config option (inprocess only), e.g. ws_ping_interval=none",
    )  # fmt: skip
    parser.add_argument(
        "--env", action="append", default=[], metavar="CODEMENTOR_X=VALUE",
        help="extra server environment (ours and inprocess)",
    )  # fmt: skip
    args = parser.parse_args()
    n = args.connections
    if not PER_ROOM <= n <= MAX_CONNECTIONS or n % PER_ROOM:
        parser.error(f"--connections: a multiple of {PER_ROOM} up to {MAX_CONNECTIONS}")
    if args.load:
        report_traces(tracemalloc.Snapshot.load(str(args.load)), n, args.top)
        return 0
    if args.tracemalloc:
        args.server = "inprocess"
    overrides = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    if overrides and args.server != "inprocess":
        parser.error("--set needs --server inprocess")
    env = dict(e.split("=", 1) for e in args.env)
    # Each connection is a file descriptor here and in the generator (which inherits this).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    workdir = Path(tempfile.mkdtemp(prefix="conn-memory-"))
    data_dir = workdir / "data"
    data_dir.mkdir()
    server: Server
    if args.server == "ours":
        server = Ours("conn-memory", data_dir, env=env)
    elif args.server == "node":
        server = NodeServer("conn-memory")
    else:
        os.environ.update(env)
        server = InProcess("conn-memory", data_dir, overrides)
    gens: list[Generator] = []
    try:
        server.start()
        pid = server.pids[0]
        warm = [server.create_room("pair")[0]]
        rooms = [server.create_room("pair")[0] for _ in range(n // PER_ROOM)]
        gens.append(connect(server, warm, workdir, "warmup"))
        warmed = gens[-1].expect("ready", 60)
        if warmed["connected"] != PER_ROOM:
            raise RuntimeError(f"warm-up: {warmed}")
        rss0, _ = settle(pid, args.settle)
        census0: collections.Counter[str] | None = None
        if args.server == "inprocess":
            gc.collect()
            census0 = object_census()
            rss0, _ = memory_mib(pid)
        if args.tracemalloc:
            tracemalloc.start(args.frames)
        started = time.monotonic()
        gens.append(connect(server, rooms, workdir, "main"))
        ready = gens[-1].expect("ready", 580)
        connect_s = time.monotonic() - started
        if args.server == "inprocess":
            gc.collect()
        rss1, waited = settle(pid, args.settle)
        connected = ready["connected"]
        snapshot = tracemalloc.take_snapshot() if args.tracemalloc else None
        tracemalloc.stop()
        if not server.alive():
            raise RuntimeError("the server died")
        per_conn = 1024 * (rss1 - rss0) / max(1, connected)
        print(f"server: {server.name}  {' '.join(args.set + args.env)}".rstrip())
        print(
            f"connections: {connected}/{n} over {len(rooms)} rooms "
            f"(failures {ready['failures'] or 'none'}, closes {ready['closes'] or 'none'})"
        )
        print(
            f"connect: {connect_s:.1f} s wall, p50 {ready['connect_ms']['p50']} ms, "
            f"p99 {ready['connect_ms']['p99']} ms (generator lag p99 "
            f"{ready['generator']['lag_p99_ms']} ms, cpu {ready['generator']['cpu_percent']} %)"
        )
        print(
            f"RSS: {rss0:.1f} -> {rss1:.1f} MiB (settled in {waited:.1f} s): "
            f"{per_conn:.2f} KiB/conn"
        )
        if snapshot is not None:
            if args.dump:
                snapshot.dump(str(args.dump))
            traced = report_traces(snapshot, connected, args.top)
            print(f"\nnot traced (native; tracemalloc's own overhead inflates RSS here): "
                  f"{per_conn - traced:.2f} KiB/conn")  # fmt: skip
        if census0 is not None:
            gc.collect()
            new = object_census()
            new.subtract(census0)
            print(f"\nnew gc-tracked objects per connection (top {args.top}):")
            for kind, count in new.most_common(args.top):
                if count / connected >= 0.05:
                    print(f"  {count / connected:6.2f}  {kind}")
    finally:
        for g in gens:
            g.close()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
