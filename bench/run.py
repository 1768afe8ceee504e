"""Side-by-side benchmark: our server against @y/websocket-server 0.1.1, same load, same machine.

usage: .venv/bin/python bench/run.py [--quick] [--only FAMILY[,FAMILY...]] [--out NAME] [--pin]
  families: pair, broadcast, storm, capacity, cold, multi
  --quick   small scales and 4 s windows (a smoke run, about two minutes)
  --out     results file stem under bench/results (default: bench)
  --pin     the server under test on the last CPU, generators and this driver on the others
            (off by default: on 2 cores it leaves the generators one core; see bench/README.md)

Writes bench/results/<out>.md and <out>.json; server and generator logs go to
bench/results/logs/. Every scenario starts a fresh server (ours, then the Node one), drives
it with bench/loadgen.mjs or bench/coldload.mjs (real Yjs documents, raw y-websocket frames)
and stops it. Loopback only; every load is bounded in count (updates, connections, rooms)
and in time (generator and driver deadlines). See bench/README.md for what each scenario
measures and how generator saturation is detected.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from rooms.roles import Role  # noqa: E402
from server.auth import issue_token  # noqa: E402

RESULTS = BENCH / "results"
LOGS = RESULTS / "logs" / "bench"  # per --out name, see main()
LOCK = Path(tempfile.gettempdir()) / "codementor-bench.lock"
CLK_TCK = os.sysconf("SC_CLK_TCK")
OURS = "codementor"
NODE = "@y/websocket-server"
LAG_LIMIT_MS = 20.0  # generator event-loop lag p99 above this: saturated
CPU_LIMIT = 80.0  # generator CPU above this % of one core: saturated
LATE_LIMIT_MS = 20.0  # writers' keystrokes later than this (p99) behind schedule: saturated
NOISY_LIMIT = 30.0  # other processes' CPU above this % of one core during a window: noisy
QUIET_LIMIT = 20.0  # before a scenario, wait for the machine to be this idle (% of a core)
QUIET_BUDGET = 30.0  # seconds of such waiting per run at most
QUIET_EACH = 5.0  # ... and per scenario
CAPACITY_IN_FLIGHT = 25  # handshakes in flight per generator process (capacity)
TOKEN_TTL = 3600


# -- processes and /proc ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (every core, every process) so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


def wait_quiet(max_wait: float, limit: float = QUIET_LIMIT) -> tuple[float, float]:
    """Wait (at most ``max_wait`` s) until the machine is nearly idle: other work on this
    machine (other users' test runs, say) competes with both the server and the generator.
    Returns (seconds waited, busy % of one core in the last half second)."""
    start = time.monotonic()
    while True:
        busy0 = machine_busy()
        time.sleep(0.5)
        busy = 100 * (machine_busy() - busy0) / 0.5
        waited = time.monotonic() - start
        if busy < limit or waited >= max_wait:
            return waited, busy


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB: resident now and the peak since the process started."""
    rss = hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return rss, hwm


@dataclass(frozen=True)
class CpuSplit:
    """``--pin``: which CPUs the server under test may run on, and which the load may.

    Unpinned, the kernel wakes a process that a loopback write made readable on the
    writer's CPU, so a fan-out and the generator reading it take turns on one core while
    the other idles (bench/README.md, "Things tried"). Pinning gives each its own."""

    server: frozenset[int]
    load: frozenset[int]

    def describe(self) -> str:
        return (
            f"pinned: servers on CPU {', '.join(map(str, sorted(self.server)))}, generators "
            f"and driver on CPU {', '.join(map(str, sorted(self.load)))}"
        )


def split_cpus(cpus: set[int]) -> CpuSplit:
    """The last CPU for the server (both servers run one event loop), the rest for the load."""
    if len(cpus) < 2:
        raise SystemExit(f"--pin needs at least 2 CPUs to split, this process may use {len(cpus)}")
    ordered = sorted(cpus)
    return CpuSplit(server=frozenset(ordered[-1:]), load=frozenset(ordered[:-1]))


PIN: CpuSplit | None = None  # set by main() from --pin


def on_cpus(role: Literal["server", "load"]) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins a child to the server's or the load's CPUs (None: unpinned)."""
    if PIN is None:
        return None
    cpus = PIN.server if role == "server" else PIN.load
    return lambda: os.sched_setaffinity(0, cpus)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30) -> dict[str, Any]:
    """SIGTERM, then SIGKILL after ``timeout``; how long it took and how it ended."""
    if proc.poll() is not None:
        return {"exit": proc.returncode, "stop_s": 0.0, "note": "had already exited"}
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return {"exit": proc.returncode, "stop_s": round(time.monotonic() - start, 2),
                "note": f"did not exit within {timeout} s of SIGTERM; killed"}  # fmt: skip
    return {"exit": proc.returncode, "stop_s": round(time.monotonic() - start, 2)}


def log_path(name: str) -> Path:
    LOGS.mkdir(parents=True, exist_ok=True)
    return LOGS / name.replace("/", "_").replace("@", "").replace(" ", "_")


# -- the servers ------------------------------------------------------------------------


class Server:
    """One server under test. ``pids`` are measured; ``url`` builds a client's URL."""

    name = ""
    tag = ""  # in file names

    def __init__(self, label: str) -> None:
        self.label = label
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.secret = secrets.token_hex(32)
        self.stops: list[dict[str, Any]] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def start(self) -> None:
        raise NotImplementedError

    def url(self, room: str, token: str, instance: int = 0) -> str:
        raise NotImplementedError

    def create_room(self, mode: str) -> tuple[str, str]:
        """A new room of ``mode``: its name and an owner token."""
        raise NotImplementedError

    def token(self, room: str, role: Role, name: str) -> str:
        return issue_token(self.secret, room=room, role=role, name=name, ttl=TOKEN_TTL)

    def stop(self) -> None:
        for proc in self.procs:
            self.stops.append(stop_process(proc))
        self.procs = []

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def memory(self) -> tuple[float, float]:
        rss = hwm = 0.0
        for pid in self.pids:
            r, h = memory_mib(pid)
            rss, hwm = rss + r, hwm + h
        return rss, hwm

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)


class Ours(Server):
    name = OURS
    tag = "ours"

    def __init__(
        self,
        label: str,
        data_dir: Path,
        instances: int = 1,
        redis_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(label)
        self.data_dir = data_dir
        self.instances = instances
        self.redis_url = redis_url
        self.env = env or {}
        self.http: httpx.Client | None = None

    def start(self) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("CODEMENTOR_")}
        base.update(
            CODEMENTOR_SECRET=self.secret,
            CODEMENTOR_LOG_LEVEL="warning",
            CODEMENTOR_API_RATE_PER_MINUTE="100000000",
            **self.env,
        )
        if self.redis_url:
            base["CODEMENTOR_REDIS_URL"] = self.redis_url
        if not self.ports:
            self.ports = [free_port() for _ in range(self.instances)]
        for i, port in enumerate(self.ports):
            env = dict(base)
            if self.redis_url:
                env["CODEMENTOR_INSTANCE_ID"] = f"bench-{'ab'[i]}"
            log = open(log_path(f"{self.label}-ours-{i}.log"), "ab")  # noqa: SIM115
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "server",
                        "serve",
                        "--port",
                        str(port),
                        "--data-dir",
                        str(self.data_dir),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=on_cpus("server"),
                )  # fmt: skip
            )
            log.close()
        for port, proc in zip(self.ports, self.procs, strict=True):
            wait_listening(port, proc)
            deadline = time.monotonic() + 30
            while httpx.get(f"http://127.0.0.1:{port}/readyz").status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"our server on {port} not ready after 30 s")
                time.sleep(0.1)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.ports[0]}", timeout=30)

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None
        super().stop()

    def url(self, room: str, token: str, instance: int = 0) -> str:
        return f"ws://127.0.0.1:{self.ports[instance]}/ws/{room}?token={token}"

    def create_room(self, mode: str) -> tuple[str, str]:
        assert self.http is not None
        body = {"mode": mode, "language": "python", "title": "bench"}
        response = self.http.post("/api/rooms", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/rooms: {response.status_code} {response.text[:200]}")
        created = response.json()
        return str(created["room"]), str(created["owner_token"])


class NodeServer(Server):
    name = NODE
    tag = "node"

    def __init__(self, label: str, persistence_dir: Path | None = None) -> None:
        super().__init__(label)
        self.persistence_dir = persistence_dir
        self._rooms = 0

    def start(self) -> None:
        if not self.ports:
            self.ports = [free_port()]
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.ports[0])}
        if self.persistence_dir is not None:
            env["YPERSISTENCE"] = str(self.persistence_dir)
        log = open(log_path(f"{self.label}-node.log"), "ab")  # noqa: SIM115
        self.procs = [
            subprocess.Popen(
                ["node", str(BENCH / "node_modules/@y/websocket-server/src/server.js")],
                cwd=BENCH,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=on_cpus("server"),
            )  # fmt: skip
        ]
        log.close()
        wait_listening(self.ports[0], self.procs[0])

    def url(self, room: str, token: str, instance: int = 0) -> str:
        # The Node server takes the room from the path and ignores the query.
        return f"ws://127.0.0.1:{self.ports[0]}/{room}?token={token}"

    def create_room(self, mode: str) -> tuple[str, str]:
        self._rooms += 1
        name = f"bench-{self._rooms}"
        return name, self.token(name, Role.OWNER, "owner")


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- generator processes ----------------------------------------------------------------


class Generator:
    """One Node generator process: config in a file, JSON lines on stdout, commands on stdin.

    ``--no-memory-reducer``: V8 shrinks the heap of a process that looks idle with a
    mark-compact about 8 s in. Driving our server (no cursor relay to the readers) the
    generator allocates little and got one in every storm window, at the same moment,
    stalling it 6-13 ms on the same update; driving Node it never did (bench/README.md,
    "Things tried"). The instrument must not pause according to the traffic it measures."""

    def __init__(self, script: str, config: dict[str, Any], workdir: Path, label: str) -> None:
        path = workdir / f"{label}.json"
        path.write_text(json.dumps(config))
        self.log = log_path(f"{label}.gen.log")
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                ["node", "--no-memory-reducer", str(BENCH / script), str(path)],
                cwd=BENCH, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                text=True, preexec_fn=on_cpus("load"),
            )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"generator: no {event!r} within {timeout:.0f} s")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                tail = self.log.read_text()[-2000:]
                raise RuntimeError(f"generator exited waiting for {event!r}: {tail}")
            try:
                message: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            if message.get("event") == event:
                return message
            if message.get("event") == "error":
                raise RuntimeError(f"generator: {message}")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("exit")
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)


def saturated(stats: dict[str, Any]) -> bool:
    return bool(stats["lag_p99_ms"] > LAG_LIMIT_MS or stats["cpu_percent"] > CPU_LIMIT)


def generator_note(stats: list[dict[str, Any]]) -> str:
    return " ".join(f"{s['lag_p99_ms']:g}/{s['cpu_percent']:g}" for s in stats)


def percentiles(values: list[float]) -> dict[str, float | None]:
    values.sort()
    n = len(values)

    def at(p: float) -> float | None:
        return round(values[min(n - 1, int(p * n))], 2) if n else None

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)}


def rates(delivered: int, window: float, cpu: float, elapsed: float) -> dict[str, Any]:
    """A row's throughput and CPU figures, computed the same way for one run and for
    pooled runs (``pool_runs``), so the two stay comparable."""
    return {
        "delivered_per_s": round(delivered / window, 1),
        "window_s": round(window, 2),
        "cpu_percent": round(100 * cpu / elapsed, 1),
        "cpu_us_per_update": round(1e6 * cpu / delivered, 1) if delivered else None,
        "cpu_s": round(cpu, 4),
        "elapsed_s": round(elapsed, 3),
    }


# -- scenarios --------------------------------------------------------------------------


@dataclass
class RoomLoad:
    """Who is in one room: writers (global index, URL) and readers (URLs)."""

    writers: list[tuple[int, str]] = field(default_factory=list)
    readers: list[str] = field(default_factory=list)


def split(rooms: list[RoomLoad], procs: int) -> list[list[dict[str, Any]]]:
    """Rooms for each generator: a room's writers in one process (room i in process i % n),
    its readers dealt round-robin over all processes."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(procs)]
    dealt = 0
    for i, room in enumerate(rooms):
        parts: list[dict[str, Any]] = [
            {"all_writers": [g for g, _ in room.writers], "writers": [], "readers": []}
            for _ in range(procs)
        ]
        for g, url in room.writers:
            parts[i % procs]["writers"].append({"g": g, "url": url})
        for url in room.readers:
            parts[dealt % procs]["readers"].append(url)
            dealt += 1
        for p, part in enumerate(parts):
            if part["writers"] or part["readers"]:
                out[p].append(part)
    return out


def drive_traffic(
    servers: list[Server],
    rooms: list[RoomLoad],
    *,
    label: str,
    rate: float,
    duration: float,
    procs: int,
    awareness_s: float = 0,
    drain_s: float = 10,
    concurrency: int = 50,
) -> dict[str, Any]:
    """Connect everyone, run the traffic window, join send and arrival times."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-gen-"))
    parts = split(rooms, procs)
    gens: list[Generator] = []
    try:
        for p, part in enumerate(parts):
            config = {
                "mode": "traffic", "proc": p, "out": str(workdir / f"gen-{p}"), "rooms": part,
                "rate": rate, "duration_s": duration, "drain_s": drain_s,
                "awareness_s": awareness_s, "concurrency": concurrency,
                "max_s": 240 + duration + drain_s,
            }  # fmt: skip
            gens.append(Generator("loadgen.mjs", config, workdir, f"{label}-gen{p}"))
        readies = [g.expect("ready", 240) for g in gens]
        rss_connected, _ = sum_memory(servers)
        t0 = time.monotonic_ns() + 1_000_000_000
        for g in gens:
            g.send(f"go {t0}")
        time.sleep(max(0.0, (t0 - time.monotonic_ns()) / 1e9))
        pids = [pid for s in servers for pid in s.pids]
        cpu0 = [cpu_seconds(pid) for pid in pids]
        busy0 = machine_busy()
        dones = [g.expect("done", duration + drain_s + 60) for g in gens]
        elapsed = (time.monotonic_ns() - t0) / 1e9
        cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
        busy = machine_busy() - busy0
        rss, hwm = sum_memory(servers)
        delays = join_times(workdir, dones)
    finally:
        for g in gens:
            g.close()
        shutil.rmtree(workdir, ignore_errors=True)
    expected = sum(d["expected"] for d in dones)
    delivered = len(delays)
    window = max(duration, max(d["last_arrival_ms"] for d in dones) / 1000)
    gen_stats = [d["generator"] for d in dones]
    connect_stats = [r["generator"] for r in readies]
    aw = next((d["awareness_delay_ms"] for d in dones if d["awareness_delay_ms"]["n"]), None)
    readers = sum(len(r.readers) for r in rooms)
    closes: dict[str, int] = {}
    failures: dict[str, int] = {}
    for message in [*readies, *dones]:
        for key, value in message.get("closes", {}).items():
            closes[key] = max(closes.get(key, 0), value)
    for r in readies:
        for key, value in r["failures"].items():
            failures[key] = failures.get(key, 0) + value
    total_cpu = sum(cpu)
    late = max(d["send_late_ms"]["p99"] or 0 for d in dones)  # writers behind schedule
    gen_cpu = sum(g["cpu_percent"] * g["wall_ms"] / 1e5 for g in gen_stats)
    return {
        "other_cpu_percent": round(100 * max(0.0, busy - total_cpu - gen_cpu) / elapsed, 1),
        **percentiles(delays),
        "expected": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        **rates(delivered, window, total_cpu, elapsed),
        "cpu_percent_each": [round(100 * c / elapsed, 1) for c in cpu],
        "rss_connected_mib": round(rss_connected, 1),
        "rss_mib": round(rss, 1),
        "peak_rss_mib": round(hwm, 1),
        "generator": gen_stats,
        "generator_connect": connect_stats,
        "saturated": any(saturated(s) for s in gen_stats) or late > LATE_LIMIT_MS,
        "send_late_p99_ms": late,
        "connect_wall_s": round(max(r["connect_wall_ms"] for r in readies) / 1000, 2),
        "connected": sum(r["connected"] for r in readies),
        "clients": sum(r["clients"] for r in readies),
        "failures": failures,
        "closes": closes,
        "denied": sum(d["denied"] for d in dones),
        "awareness_delay_ms": aw,
        "awareness_frames_per_reader_s": (
            round(sum(d["awareness_frames"] for d in dones) / readers / window, 1)
            if readers
            else None
        ),
        "_delays": delays,  # for pooling repeated runs (pool_runs); not written out
    }


def pool_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from repeated runs of the same scenario on the same server: delay
    percentiles over every delivery of every run, counts and CPU summed, the worst of
    the rest. Each run's own p99 is kept (``p99_each``) to show the spread."""
    if len(runs) == 1:
        return runs[0]
    delays = [d for r in runs for d in r["_delays"]]
    delivered = sum(r["delivered"] for r in runs)
    merged = {
        **runs[0],
        **percentiles(delays),
        "runs": len(runs),
        "p99_each": [r["p99"] for r in runs],
        "expected": sum(r["expected"] for r in runs),
        "delivered": delivered,
        "lost": sum(r["lost"] for r in runs),
        **rates(
            delivered,
            window=sum(r["window_s"] for r in runs),
            cpu=sum(r["cpu_s"] for r in runs),
            elapsed=sum(r["elapsed_s"] for r in runs),
        ),
        "cpu_percent_each": [r["cpu_percent"] for r in runs],
        "generator": [g for r in runs for g in r["generator"]],
        "generator_connect": [g for r in runs for g in r["generator_connect"]],
        "saturated": any(r["saturated"] for r in runs),
        "_delays": delays,
    }
    for key in (
        "other_cpu_percent",
        "rss_connected_mib",
        "rss_mib",
        "peak_rss_mib",
        "send_late_p99_ms",
        "connect_wall_s",
        "awareness_frames_per_reader_s",
    ):
        values = [r[key] for r in runs if r.get(key) is not None]
        merged[key] = max(values) if values else None
    merged["connected"] = min(r["connected"] for r in runs)
    merged["denied"] = sum(r["denied"] for r in runs)
    for key in ("failures", "closes"):
        total: dict[str, int] = {}
        for r in runs:
            for k, v in r[key].items():
                total[k] = total.get(k, 0) + v
        merged[key] = total
    # The generator reports a summary, not every awareness delay: the worst run's.
    summaries = [r["awareness_delay_ms"] for r in runs if r.get("awareness_delay_ms")]
    merged["awareness_delay_ms"] = max(summaries, key=lambda a: a["p99"] or 0, default=None)
    return merged


def sum_memory(servers: list[Server]) -> tuple[float, float]:
    rss = hwm = 0.0
    for s in servers:
        r, h = s.memory()
        rss, hwm = rss + r, hwm + h
    return rss, hwm


def join_times(workdir: Path, dones: list[dict[str, Any]]) -> list[float]:
    """Delivery delays: each arrival's time minus its update's send time (same clock)."""
    sent: dict[int, array[float]] = {}
    for d in dones:
        k = d["k"]
        times = array("d")
        times.frombytes((workdir / f"gen-{d['proc']}.sent.bin").read_bytes())
        for i, g in enumerate(d["sent_writers"]):
            sent[g] = times[i * k : (i + 1) * k]
    delays: list[float] = []
    for d in dones:
        raw = (workdir / f"gen-{d['proc']}.recv.bin").read_bytes()
        n = d["received"]
        gs, clocks, at = array("I"), array("I"), array("d")
        gs.frombytes(raw[: 4 * n])
        clocks.frombytes(raw[4 * n : 8 * n])
        at.frombytes(raw[8 * n :])
        k = d["k"]
        for g, clock, t in zip(gs, clocks, at, strict=True):
            if clock < k and g in sent:
                delays.append(t - sent[g][clock])
    return delays


def pair_rooms(server: Server, count: int, instances: int = 1) -> list[RoomLoad]:
    rooms = []
    for i in range(count):
        name, owner = server.create_room("pair")
        editor = server.token(name, Role.EDITOR, "pair-b")
        second = 1 if instances > 1 else 0
        rooms.append(
            RoomLoad(
                writers=[
                    (2 * i, server.url(name, owner)),
                    (2 * i + 1, server.url(name, editor, second)),
                ]
            )  # fmt: skip
        )
    return rooms


def broadcast_room(server: Server, readers: int, instances: int = 1) -> list[RoomLoad]:
    name, owner = server.create_room("broadcast")
    urls = [
        server.url(name, server.token(name, Role.VIEWER, f"student-{i}"), i % instances)
        for i in range(readers)
    ]
    return [RoomLoad(writers=[(0, server.url(name, owner))], readers=urls)]


# -- the plan ---------------------------------------------------------------------------


@dataclass
class Plan:
    duration: float
    pair: list[tuple[int, int]]  # (rooms, generator processes)
    broadcast: list[tuple[int, int, int]]  # (readers, generator processes, runs pooled)
    storm: list[tuple[int, int, int]]
    storm_node_max: int  # beyond this the Node server's all-to-all relay swamps any generator
    storm_duration: float
    capacity: list[tuple[int, int]]  # (connections, generator processes)
    cold_rooms: int
    warm_sample: int  # warm joins timed on this many of the rooms
    cold_edits: int
    multi_broadcast: int
    multi_pair: int
    notes: list[str]


FULL = Plan(
    duration=8,
    pair=[(50, 1), (200, 1), (500, 2)],
    # 100 readers: 4 interleaved runs per server, pooled (bench/README, "Repeated runs")
    broadcast=[(100, 1, 4), (500, 1, 1), (1000, 2, 1), (2000, 2, 1)],
    storm=[(100, 1, 4), (500, 2, 1), (2000, 2, 1)],
    storm_node_max=500,
    storm_duration=10,
    capacity=[(1000, 2), (5000, 2), (10000, 2)],
    cold_rooms=100,
    warm_sample=30,
    cold_edits=20000,
    multi_broadcast=1000,
    multi_pair=200,
    notes=[],
)

QUICK = Plan(
    duration=4,
    pair=[(20, 1)],
    broadcast=[(100, 1, 1)],
    storm=[(100, 1, 1)],
    storm_node_max=100,
    storm_duration=5,
    capacity=[(500, 1)],
    cold_rooms=10,
    warm_sample=10,
    cold_edits=20000,
    multi_broadcast=100,
    multi_pair=20,
    notes=["--quick: smoke scales, not results"],
)


class Bench:
    def __init__(self, plan: Plan, only: set[str]) -> None:
        self.plan = plan
        self.only = only
        self.rows: list[dict[str, Any]] = []
        self.anomalies: list[str] = []
        self.current = ""
        self.quiet_waited = 0.0
        self.background: list[str] = []
        self.skipped: list[str] = []
        self.stops: list[dict[str, Any]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))

    def wanted(self, family: str) -> bool:
        return not self.only or family in self.only

    def servers(self, label: str, **node: Any) -> Iterator[Server]:
        data = Path(tempfile.mkdtemp(dir=self.tmp, prefix="ours-"))
        yield Ours(label, data)
        yield NodeServer(label, **node)

    def record(self, row: dict[str, Any]) -> None:
        row = {k: v for k, v in row.items() if not k.startswith("_")}
        row.setdefault("server", self.current)
        self.rows.append(row)
        brief = {k: row.get(k) for k in ("family", "scenario", "server", "p50", "p99", "lost",
                                         "cpu_percent", "peak_rss_mib", "saturated")}  # fmt: skip
        print(json.dumps(brief), flush=True)

    def check(self, server: Server, label: str) -> None:
        """After a scenario: did the server survive, and what did it log?"""
        if not server.alive():
            codes = [p.returncode for p in server.procs]
            self.anomalies.append(f"{label}: {server.name} exited during the run ({codes})")

    def guarded(
        self, family: str, label: str, server: Server, body: Callable[..., None], *args: Any
    ) -> None:
        """Run ``body(server, label-with-server-tag, *args)`` against a fresh ``server``."""
        waited, busy = wait_quiet(min(QUIET_EACH, max(0.0, QUIET_BUDGET - self.quiet_waited)))
        self.quiet_waited += waited
        if busy >= QUIET_LIMIT:
            self.background.append(f"{label} on {server.name}: started with the machine "
                                   f"{busy:.0f} % busy (of one core) with other work")  # fmt: skip
        start = time.monotonic()
        self.current = server.name
        try:
            with running(server):
                body(server, f"{label}-{server.tag}", *args)
                self.check(server, label)
        except Exception as exc:  # a failed scenario is reported, the others still run
            self.anomalies.append(f"{label} on {server.name}: {type(exc).__name__}: {exc}")
            self.rows.append({"family": family, "scenario": label, "server": server.name,
                              "error": f"{type(exc).__name__}: {exc}"})  # fmt: skip
            print(f"!! {label} on {server.name}: {exc}", flush=True)
        for stop in server.stops:
            self.stops.append({"scenario": label, "server": server.name, **stop})
            if (
                stop.get("note")
                or stop.get("exit") not in (0, -signal.SIGTERM)
                or stop["stop_s"] > 10
            ):
                self.anomalies.append(f"{label}: {server.name} stop: {stop}")
        print(f".. {label} on {server.name}: {time.monotonic() - start:.1f} s", flush=True)

    # -- families --

    def pair(self) -> None:
        for rooms, procs in self.plan.pair:
            label = f"pair-{rooms}"
            scenario = f"pair: {rooms} rooms × 2 writers × 5/s"
            for server in self.servers(label):
                self.guarded("pair", label, server, self._pair, scenario, rooms, procs)

    def _pair(self, server: Server, label: str, scenario: str, rooms: int, procs: int) -> None:
        loads = pair_rooms(server, rooms)
        row = drive_traffic(
            [server], loads, label=label, rate=5, duration=self.plan.duration, procs=procs
        )
        self.record({"family": "pair", "scenario": scenario, "scale": rooms, **row})

    def broadcast(self, storm: bool) -> None:
        family = "storm" if storm else "broadcast"
        for readers, procs, runs in self.plan.storm if storm else self.plan.broadcast:
            label = f"{family}-{readers}"
            what = "1 writer 10/s, readers set cursor every 5 s" if storm else "1 writer 10/s"
            scenario = f"{family}: {readers} readers, {what}"
            done: dict[str, list[dict[str, Any]]] = {}
            for run in range(runs):  # ours, Node, ours, Node, ...: both see the same drift
                tag = f"{label}-run{run + 1}" if runs > 1 else label
                for server in self.servers(tag):
                    if storm and server.name == NODE and readers > self.plan.storm_node_max:
                        if run == 0:
                            self.skipped.append(
                                f"{scenario} on {NODE}: not run. It relays every cursor to "
                                f"every connection: {readers} × {readers // 5} = "
                                f"{readers * readers // 5:,} awareness frames/s, far past what "
                                "the generator can read (at 500 readers it already reads 125 "
                                "frames/s per reader)."
                            )
                        continue
                    parts = done.setdefault(server.name, [])
                    self.guarded(family, tag, server, self._broadcast, scenario, readers,
                                 procs, parts)  # fmt: skip
            for name, parts in done.items():
                if parts:
                    self.current = name
                    suffix = f" ({len(parts)} runs pooled)" if len(parts) > 1 else ""
                    self.record({"family": family, "scenario": scenario + suffix,
                                 "scale": readers, **pool_runs(parts)})  # fmt: skip

    def _broadcast(
        self,
        server: Server,
        label: str,
        scenario: str,
        readers: int,
        procs: int,
        parts: list[dict[str, Any]],
    ) -> None:
        storm = scenario.startswith("storm")
        row = drive_traffic(
            [server],
            broadcast_room(server, readers),
            label=label,
            rate=10,
            duration=self.plan.storm_duration if storm else self.plan.duration,
            procs=procs,
            awareness_s=5 if storm else 0,
        )
        parts.append(row)

    def capacity(self) -> None:
        for conns, procs in self.plan.capacity:
            label = f"capacity-{conns}"
            scenario = f"capacity: {conns} idle connections, {conns // 10} rooms"
            for server in self.servers(label):
                self.guarded("capacity", label, server, self._capacity, scenario, conns, procs)

    def _capacity(self, server: Server, label: str, scenario: str, conns: int, procs: int) -> None:
        row = capacity(server, conns, procs, label)
        self.record({"family": "capacity", "scenario": scenario, "scale": conns, **row})

    def cold(self) -> None:
        scenario = f"cold load: {self.plan.cold_rooms} rooms × 1 MB doc of 20,000 edits"
        for server in self.servers("cold", persistence_dir=self.tmp / "leveldb"):
            self.guarded("cold", "cold", server, self._cold, scenario)

    def _cold(self, server: Server, label: str, scenario: str) -> None:
        plan = self.plan
        row = cold_load(server, plan.cold_rooms, plan.warm_sample, plan.cold_edits, label)
        self.record({"family": "cold", "scenario": scenario, **row})

    def multi(self) -> None:
        redis_binary = shutil.which("redis-server")
        if redis_binary is None:
            self.anomalies.append("multi: redis-server is not installed; skipped")
            return
        redis_port = free_port()
        redis_dir = Path(tempfile.mkdtemp(dir=self.tmp, prefix="redis-"))
        redis = subprocess.Popen(
            [redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(redis_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=on_cpus("server"),
        )  # fmt: skip
        try:
            wait_listening(redis_port, redis)
            url = f"redis://127.0.0.1:{redis_port}/0"
            n, r = self.plan.multi_broadcast, self.plan.multi_pair
            cases = [
                (f"multi-broadcast-{n}",
                 f"multi-instance broadcast: {n} readers split over 2 instances, writer on A",
                 "broadcast", n, 10.0, 2),
                (f"multi-pair-{r}",
                 f"multi-instance pair: {r} rooms, writer 1 on A, writer 2 on B",
                 "pair", r, 5.0, 1),
            ]  # fmt: skip
            for label, scenario, kind, scale, rate, procs in cases:
                data = Path(tempfile.mkdtemp(dir=self.tmp, prefix="multi-"))
                server = Ours(label, data, instances=2, redis_url=url)
                args = (scenario, kind, scale, rate, procs, redis.pid)
                self.guarded("multi", label, server, self._multi, *args)
        finally:
            stop_process(redis)

    def _multi(
        self,
        server: Server,
        label: str,
        scenario: str,
        kind: str,
        scale: int,
        rate: float,
        procs: int,
        redis_pid: int,
    ) -> None:
        loads = (
            broadcast_room(server, scale, instances=2)
            if kind == "broadcast"
            else pair_rooms(server, scale, instances=2)
        )
        cpu0, t0 = cpu_seconds(redis_pid), time.monotonic()
        row = drive_traffic(
            [server], loads, label=label, rate=rate, duration=self.plan.duration, procs=procs
        )
        redis_cpu = 100 * (cpu_seconds(redis_pid) - cpu0) / (time.monotonic() - t0)
        row["redis_cpu_percent"] = round(redis_cpu, 1)
        self.record({"family": "multi", "scenario": scenario, "scale": scale, **row})

    def run(self) -> None:
        families: list[tuple[str, Callable[[], None]]] = [
            ("pair", self.pair),
            ("broadcast", lambda: self.broadcast(storm=False)),
            ("storm", lambda: self.broadcast(storm=True)),
            ("capacity", self.capacity),
            ("cold", self.cold),
            ("multi", self.multi),
        ]
        for family, run in families:
            if self.wanted(family):
                run()
        shutil.rmtree(self.tmp, ignore_errors=True)


def capacity(server: Server, conns: int, procs: int, label: str) -> dict[str, Any]:
    rooms = []
    for _ in range(max(1, conns // 10)):
        name, _owner = server.create_room("pair")
        rooms.append(
            RoomLoad(
                readers=[
                    server.url(name, server.token(name, Role.EDITOR, f"idle-{i}"))
                    for i in range(10)
                ]
            )  # fmt: skip
        )
    rss0, _ = server.memory()
    cpu0 = server.cpu()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cap-"))
    gens: list[Generator] = []
    try:
        for p, part in enumerate(split(rooms, procs)):
            config = {"mode": "idle", "proc": p, "out": str(workdir / f"gen-{p}"), "rooms": part,
                      "concurrency": CAPACITY_IN_FLIGHT, "max_s": 300}  # fmt: skip
            gens.append(Generator("loadgen.mjs", config, workdir, f"{label}-{server.tag}-gen{p}"))
        readies = [g.expect("ready", 280) for g in gens]
        cpu = server.cpu() - cpu0
        time.sleep(2)  # let the server settle (flushes, room loads) before reading RSS
        rss, hwm = server.memory()
    finally:
        for g in gens:
            g.close()
        shutil.rmtree(workdir, ignore_errors=True)
    connected = sum(r["connected"] for r in readies)
    failures: dict[str, int] = {}
    closes: dict[str, int] = {}
    for r in readies:
        for key, value in r["failures"].items():
            failures[key] = failures.get(key, 0) + value
        for key, value in r["closes"].items():
            closes[key] = closes.get(key, 0) + value
    p99 = max(r["connect_ms"]["p99"] or 0 for r in readies)
    p50 = max(r["connect_ms"]["p50"] or 0 for r in readies)
    gen_stats = [r["generator"] for r in readies]
    return {
        "connections": conns,
        "connected": connected,
        "failures": failures,
        "closes": closes,
        "connect_wall_s": round(max(r["connect_wall_ms"] for r in readies) / 1000, 2),
        "connect_p50_ms": p50,
        "connect_p99_ms": p99,
        "server_cpu_s_connecting": round(cpu, 2),
        "rss_before_mib": round(rss0, 1),
        "rss_mib": round(rss, 1),
        "peak_rss_mib": round(hwm, 1),
        "kib_per_connection": round(1024 * (rss - rss0) / connected, 1) if connected else None,
        "generator": gen_stats,
        "saturated": any(saturated(s) for s in gen_stats),
    }


def wait_idle(server: Server, timeout: float) -> float:
    """Wait until the server used under 2 % of a core for a whole second; seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        cpu0 = server.cpu()
        time.sleep(1.0)
        if server.cpu() - cpu0 < 0.02:
            break
    return round(time.monotonic() - start, 1)


def cold_load(
    server: Server, rooms: int, warm_sample: int, edits: int, label: str
) -> dict[str, Any]:
    names = [server.create_room("pair")[0] for _ in range(rooms)]

    def urls(role: Role) -> list[str]:
        return [server.url(n, server.token(n, role, "peer")) for n in names]

    workdir = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    gen = Generator("coldload.mjs", {"edits": edits, "max_s": 400}, workdir,
                    f"{label}-{server.tag}-gen")  # fmt: skip
    out: dict[str, Any] = {}
    try:
        out["document"] = gen.expect("built", 60)
        rss0, _ = server.memory()
        gen.send(json.dumps({"op": "seed", "urls": urls(Role.EDITOR)}))
        out["seed"] = gen.expect("seeded", 240)
        gen.send(json.dumps({"op": "warm", "urls": urls(Role.VIEWER)[:warm_sample]}))
        out["warm"] = gen.expect("warm", 240)
        rss_warm, hwm_warm = server.memory()
        gen.send(json.dumps({"op": "drop"}))
        gen.expect("dropped", 30)
        # y-leveldb writes in the background and the Node server exits at once on SIGTERM:
        # wait until the server is idle (both servers, alike) before the restart.
        out["idle_wait_s"] = wait_idle(server, 60)
        server.stop()  # graceful: ours flushes its pending updates
        stops = server.stops[:]
        server.stops = []
        server.start()
        rss_cold0, _ = server.memory()
        gen.send(json.dumps({"op": "cold", "urls": urls(Role.VIEWER)}))
        out["cold"] = gen.expect("cold", 300)
        time.sleep(1)
        rss_cold, hwm_cold = server.memory()
        server.stops = stops
    finally:
        gen.close()
        shutil.rmtree(workdir, ignore_errors=True)
    # Joins are sequential and the generator works (applies the document) only after the
    # measured frame arrived, so its lag is reported but does not invalidate the row.
    gen_stats = [out["warm"]["generator"], out["cold"]["generator"]]
    return {
        "rooms": rooms,
        "warm_sample": warm_sample,
        "doc_text_bytes": out["document"]["text_bytes"],
        "doc_update_bytes": out["document"]["update_bytes"],
        "seed_s": round(out["seed"]["wall_ms"] / 1000, 2),
        "idle_wait_before_restart_s": out["idle_wait_s"],
        "seed_failures": out["seed"]["failures"],
        "warm_ms": out["warm"]["sync_ms"],
        "warm_received_ms": out["warm"]["received_ms"],
        "cold_received_ms": out["cold"]["received_ms"],
        "warm_failures": out["warm"]["failures"],
        "cold_ms": out["cold"]["sync_ms"],
        "cold_failures": out["cold"]["failures"],
        "rss_empty_mib": round(rss0, 1),
        "rss_100_warm_mib": round(rss_warm, 1),
        "rss_100_cold_mib": round(rss_cold, 1),
        "rss_after_restart_mib": round(rss_cold0, 1),
        "peak_rss_mib": round(max(hwm_warm, hwm_cold), 1),
        "mib_per_room_cold": round((rss_cold - rss_cold0) / rooms, 2),
        "generator": gen_stats,
        "saturated": False,
    }


# -- the report -------------------------------------------------------------------------


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value)


def ratio(ours: Any, node: Any) -> str:
    if ours is None or node is None or not node:
        return "–"
    return f"{float(ours) / float(node):.2f}"


def gen_cell(row: dict[str, Any]) -> str:
    cell = generator_note(row.get("generator", []))
    if row.get("send_late_p99_ms") is not None:
        cell += f" · late {row['send_late_p99_ms']:g}"
    return f"**SATURATED** {cell}" if row.get("saturated") else cell


def report(bench: Bench, elapsed: float, plan: Plan) -> str:
    rows = bench.rows
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "server", "rooms", "crdt"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()  # fmt: skip
    lines = [
        "# Benchmark: codementor vs @y/websocket-server 0.1.1",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores, git {head}"
        + (" (server code modified in the working tree)" if dirty else "")
        + f"; took {elapsed / 60:.1f} min. Loopback; one fresh server per scenario.",
        f"Traffic windows: {plan.duration:g} s (awareness storm {plan.storm_duration:g} s), "
        "then up to 10 s to drain. Scales were chosen to fit `make bench` in 10 minutes: "
        "pair up to 500 rooms, broadcast up to 2,000 readers, capacity up to 10,000 "
        f"connections, cold load {plan.cold_rooms} rooms.",
        *[f"{n}" for n in plan.notes],
        PIN.describe() + " (`--pin`)."
        if PIN is not None
        else "Not pinned: the kernel places the servers and the generators.",
        "",
        "Generator column: event-loop lag p99 ms / CPU % of one core, per generator process "
        "over the traffic window, then how late the writers' keystrokes went out (p99 ms "
        f"behind schedule); **SATURATED** (lag p99 > {LAG_LIMIT_MS:g} ms, CPU > "
        f"{CPU_LIMIT:g} % or late > {LATE_LIMIT_MS:g} ms) rows measure the generator, not "
        "the server: they are never quoted "
        "and get no ratio (⚠). High lag at low generator CPU means the generator was starved "
        "of CPU by other processes. Other CPU %: busy CPU of the whole machine during the "
        "window less the server's and the generators' (other users' work, kernel); † marks "
        f"rows above {NOISY_LIMIT:g} % — quoted, but noisy. Ratios: ours / Node, below 1 is "
        "better for us.",
        "",
    ]
    if bench.skipped:
        lines += ["Not run:", *[f"- {b}" for b in bench.skipped], ""]
    if bench.background:
        lines += [
            f"Machine busy with other work when a scenario started (after waiting up to "
            f"{QUIET_EACH:g} s, "
            f"{bench.quiet_waited:.0f} s in all):",
            *[f"- {b}" for b in bench.background],
            "",
        ]
    families = ("pair", "broadcast", "storm")
    delivery = [r for r in rows if r["family"] in families and "error" not in r]
    if delivery:
        lines += [
            "## Delivery (pair, broadcast, awareness storm)",
            "",
            "| scenario | server | p50 ms | p95 ms | p99 ms | max ms | delivered upd/s | lost "
            "| CPU % | peak RSS MiB | CPU µs/upd | generator | other CPU % "
            "| ours/node p50 · p99 · CPU µs/upd · RSS |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in delivery:
            lines.append(delivery_line(r, rows))
        storm = [r for r in delivery if r["family"] == "storm"]
        if storm:
            lines += [
                "",
                "Awareness storm detail: the teacher's view of student cursors (send → "
                "teacher) and what each reader has to receive.",
                "",
                "| scenario | server | awareness → teacher p50 / p99 / max ms | awareness frames "
                "per reader per s | generator |",
                "|---|---|---|---|---|",
            ]
            for r in storm:
                aw = r.get("awareness_delay_ms") or {}
                lines.append(
                    f"| {r['scenario']} | {r['server']} | {fmt(aw.get('p50'))} / "
                    f"{fmt(aw.get('p99'))} / {fmt(aw.get('max'))} | "
                    f"{fmt(r['awareness_frames_per_reader_s'])} | {gen_cell(r)} |"
                )
    cap = [r for r in rows if r["family"] == "capacity" and "error" not in r]
    if cap:
        lines += [
            "",
            "## Capacity (idle connections, 10 per room)",
            "",
            f"Connections are opened {CAPACITY_IN_FLIGHT} at a time per generator process, as "
            "fast as both sides allow, so the connect columns depend on the generator: when it "
            "saturated (⚠) they are not quoted. RSS is read 2 s after the last connection, "
            "with the generator idle, so KiB per connection does not depend on it and its "
            "ratio is always given. Server CPU s: the server's CPU while connecting.",
            "",
            "| scenario | server | connected | connect all s | connect p50 / p99 ms | server CPU s "
            "| RSS before → after MiB | KiB per conn | generator (connect phase) | ours/node KiB "
            "per conn · connect s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in cap:
            other = partner(r, rows)
            ratios = "–"
            if r["server"] == OURS and other:
                connect = "connect n/q"
                if not (r["saturated"] or other["saturated"]):
                    connect = ratio(r["connect_wall_s"], other["connect_wall_s"])
                kib = ratio(r["kib_per_connection"], other["kib_per_connection"])
                ratios = f"{kib} · {connect}"
            scenario = r["scenario"] + (" ⚠" if r["saturated"] else "")
            lines.append(
                f"| {scenario} | {r['server']} | {r['connected']}/{r['connections']} | "
                f"{fmt(r['connect_wall_s'])} | {fmt(r['connect_p50_ms'])} / "
                f"{fmt(r['connect_p99_ms'])} | {fmt(r['server_cpu_s_connecting'])} | "
                f"{fmt(r['rss_before_mib'])} → {fmt(r['rss_mib'])} | "
                f"{fmt(r['kib_per_connection'])} | {gen_cell(r)} | {ratios} |"
            )
    cold = [r for r in rows if r["family"] == "cold" and "error" not in r]
    if cold:
        lines += [
            "",
            "## Cold load (1 MB document built from 20,000 edits)",
            "",
            "Time from a new peer's connect call until the last frame with content arrived "
            "(received) and until its Y.Doc holds the whole text (synced: received plus the "
            "client's own apply of about 1.5 MB). Seed: every room gets the document from a "
            "client that has it offline (its Step2), 4 rooms at a time. Warm: the room is in "
            f"memory (its seeding client still connected), timed on {cold[0]['warm_sample']} "
            "of the rooms. Cold: after a server restart the join loads the room from the "
            "store (ours: SQLite; Node: y-leveldb via YPERSISTENCE, the only way it can "
            "reload a room), every room. Rooms joined one at a time, so the generator is idle "
            "while the server works: its lag/CPU (warm, cold) is shown but does not flag the "
            "row. For Node, a p99 far above p50 is its leveldb flushing or compacting.",
            "",
            "| server | update bytes | seed all s | warm received p50 / p99 / max ms | warm synced "
            "p50 / p99 ms | cold received p50 / p99 / max ms | cold synced p50 / p99 ms | RSS "
            "empty → 100 rooms warm MiB | after restart → 100 cold MiB | MiB per cold room | "
            "generator | ours/node warm · cold received p50 · MiB/room |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in cold:
            other = partner(r, rows)
            ratios = "–"
            if r["server"] == OURS and other:
                ratios = (
                    f"{ratio(r['warm_received_ms']['p50'], other['warm_received_ms']['p50'])} · "
                    f"{ratio(r['cold_received_ms']['p50'], other['cold_received_ms']['p50'])} · "
                    f"{ratio(r['mib_per_room_cold'], other['mib_per_room_cold'])}"
                )
            wr, w, cr, c = (r[k] for k in ("warm_received_ms", "warm_ms", "cold_received_ms",
                                           "cold_ms"))  # fmt: skip
            lines.append(
                f"| {r['server']} | {r['doc_update_bytes']} | {fmt(r['seed_s'])} | "
                f"{fmt(wr['p50'])} / {fmt(wr['p99'])} / {fmt(wr['max'])} | "
                f"{fmt(w['p50'])} / {fmt(w['p99'])} | "
                f"{fmt(cr['p50'])} / {fmt(cr['p99'])} / {fmt(cr['max'])} | "
                f"{fmt(c['p50'])} / {fmt(c['p99'])} | {fmt(r['rss_empty_mib'])} → "
                f"{fmt(r['rss_100_warm_mib'])} | {fmt(r['rss_after_restart_mib'])} → "
                f"{fmt(r['rss_100_cold_mib'])} | {fmt(r['mib_per_room_cold'])} | "
                f"{generator_note(r['generator'])} | {ratios} |"
            )
    multi = [r for r in rows if r["family"] == "multi" and "error" not in r]
    if multi:
        lines += [
            "",
            "## Multi-instance (2 of our processes + redis-server; Node has no equivalent)",
            "",
            "| scenario | p50 ms | p95 ms | p99 ms | max ms | delivered upd/s | lost | CPU % A + B "
            "| redis CPU % | peak RSS MiB (A+B) | CPU µs/upd (A+B) | generator |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in multi:
            lines.append(
                f"| {r['scenario']} | {fmt(r['p50'])} | {fmt(r['p95'])} | {fmt(r['p99'])} | "
                f"{fmt(r['max'])} | {fmt(r['delivered_per_s'])} | {r['lost']} | "
                f"{' + '.join(fmt(c) for c in r['cpu_percent_each'])} | "
                f"{fmt(r['redis_cpu_percent'])} | {fmt(r['peak_rss_mib'])} | "
                f"{fmt(r['cpu_us_per_update'])} | {gen_cell(r)} |"
            )
    errors = [r for r in rows if "error" in r]
    issues = list(bench.anomalies)
    for r in rows:
        if "error" in r:
            continue
        if r.get("failures"):
            issues.append(f"{r['scenario']} on {r['server']}: connect failures {r['failures']}")
        if r.get("closes"):
            issues.append(f"{r['scenario']} on {r['server']}: server closed connections "
                          f"(close code: count) {r['closes']}")  # fmt: skip
        if r.get("denied"):
            issues.append(f"{r['scenario']} on {r['server']}: {r['denied']} permission-denied")
        if r.get("lost"):
            issues.append(f"{r['scenario']} on {r['server']}: {r['lost']} of {r['expected']} "
                          "updates not delivered within the drain deadline")  # fmt: skip
        for key in ("seed_failures", "warm_failures", "cold_failures"):
            if r.get(key):
                issues.append(f"{r['scenario']} on {r['server']}: {key} {r[key]}")
    if issues or errors:
        lines += ["", "## Failures and anomalies", ""]
        lines += [f"- {i}" for i in issues]
    return "\n".join(lines) + "\n"


def partner(row: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    for other in rows:
        if (
            other is not row
            and other["family"] == row["family"]
            and other.get("scale") == row.get("scale")
            and other["server"] != row["server"]
            and "error" not in other
        ):
            return other
    return None


def delivery_line(r: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    other = partner(r, rows)
    ratios = "–"
    if r["server"] == OURS and other is not None:
        if r["saturated"] or other["saturated"]:
            ratios = "not quoted (generator saturated)"
        else:
            ratios = " · ".join(
                ratio(r[k], other[k]) for k in ("p50", "p99", "cpu_us_per_update", "peak_rss_mib")
            )
    scenario = r["scenario"]
    if r.get("p99_each"):
        scenario += "; p99 of each run " + " / ".join(fmt(v) for v in r["p99_each"])
    scenario += " ⚠" if r["saturated"] else ""
    if r.get("other_cpu_percent", 0) > NOISY_LIMIT:
        scenario += " †"
    return (
        f"| {scenario} | {r['server']} | {fmt(r['p50'])} | {fmt(r['p95'])} | {fmt(r['p99'])} | "
        f"{fmt(r['max'])} | {fmt(r['delivered_per_s'])} | {r['lost']} | {fmt(r['cpu_percent'])} | "
        f"{fmt(r['peak_rss_mib'])} | {fmt(r['cpu_us_per_update'])} | {gen_cell(r)} | "
        f"{fmt(r['other_cpu_percent'])} | {ratios} |"
    )


def lock_machine(lock: Any, timeout: float) -> bool:
    """Take the machine-wide bench lock (two benchmark runs at once measure each other)."""
    import fcntl

    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            if not announced:
                print(f"waiting for another bench run ({LOCK})", flush=True)
                announced = True
            time.sleep(1)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    parser.add_argument("--out", default="bench")
    parser.add_argument("--pin", action="store_true")
    args = parser.parse_args()
    raise_fd_limit()
    global PIN
    if args.pin:
        PIN = split_cpus(os.sched_getaffinity(0))
        os.sched_setaffinity(0, PIN.load)
    if not (BENCH / "node_modules/@y/websocket-server").exists():
        raise SystemExit("bench/node_modules missing: npm ci --prefix bench")
    plan = QUICK if args.quick else FULL
    only = {f for f in args.only.split(",") if f}
    global LOGS
    LOGS = RESULTS / "logs" / args.out
    shutil.rmtree(LOGS, ignore_errors=True)
    lock = open(LOCK, "w")  # noqa: SIM115 - held until the process exits
    shared = not lock_machine(lock, 120)
    start = time.monotonic()
    bench = Bench(plan, only)
    if shared:
        bench.anomalies.append(
            "another bench run held the machine-wide lock for 2 minutes; ran anyway, so the "
            "two runs competed for CPU"
        )
    bench.run()
    elapsed = time.monotonic() - start
    RESULTS.mkdir(exist_ok=True)
    text = report(bench, elapsed, plan)
    (RESULTS / f"{args.out}.json").write_text(
        json.dumps(
            {
                "elapsed_s": round(elapsed, 1),
                "rows": bench.rows,
                "anomalies": bench.anomalies,
                "stops": bench.stops,
            },
            indent=1,
        )  # fmt: skip
    )
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
