"""Traffic scenarios: who sits in which room, how the rooms are dealt to generator
processes, and one traffic window driven and measured (delivery delays, server CPU and
memory, generator saturation, other work on the machine)."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.generator import Generator
from bench.procs import cpu_seconds, machine_busy
from bench.servers import Server, sum_memory
from bench.stats import LATE_LIMIT_MS, add_counts, join_times, percentiles, rates, saturated
from rooms.roles import Role


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


@dataclass
class Window:
    """What one traffic window left: the generators' reports and the driver's readings."""

    readies: list[dict[str, Any]]  # each generator's "ready" (connect phase)
    dones: list[dict[str, Any]]  # each generator's "done" (traffic window)
    delays: list[float]  # every delivery's delay, ms
    cpu: list[float]  # each server process's CPU seconds over the window
    busy: float  # the whole machine's busy CPU seconds over the window
    elapsed: float  # seconds from T0 to the last generator's "done"
    rss_connected: float  # MiB, every client connected, before T0
    rss: float  # MiB after the window
    hwm: float  # peak MiB
    watched: float = 0.0  # CPU seconds of the ``watch`` processes (not servers) over the window


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
    watch: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Connect everyone, run the traffic window, join send and arrival times. ``watch``:
    helper processes (a redis-server) whose CPU over the same window is reported apart
    (``watched_cpu_s``), neither the server's nor other work."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-gen-"))
    gens: list[Generator] = []
    try:
        for p, part in enumerate(split(rooms, procs)):
            config = {
                "mode": "traffic", "proc": p, "out": str(workdir / f"gen-{p}"), "rooms": part,
                "rate": rate, "duration_s": duration, "drain_s": drain_s,
                "awareness_s": awareness_s, "concurrency": concurrency,
                "max_s": 240 + duration + drain_s,
            }  # fmt: skip
            gens.append(Generator("loadgen.mjs", config, workdir, f"{label}-gen{p}"))
        window = run_window(servers, gens, workdir, duration + drain_s + 60, watch)
    finally:
        for g in gens:
            g.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return traffic_row(window, duration, sum(len(r.readers) for r in rooms))


def run_window(
    servers: list[Server],
    gens: list[Generator],
    workdir: Path,
    timeout: float,
    watch: tuple[int, ...] = (),
) -> Window:
    """Wait for every client to connect, start all generators at one T0 a second ahead,
    read the servers' CPU and the machine's over the window, join the delays."""
    readies = [g.expect("ready", 240) for g in gens]
    rss_connected, _ = sum_memory(servers)
    t0 = time.monotonic_ns() + 1_000_000_000
    for g in gens:
        g.send(f"go {t0}")
    time.sleep(max(0.0, (t0 - time.monotonic_ns()) / 1e9))
    pids = [pid for s in servers for pid in s.pids]
    cpu0 = [cpu_seconds(pid) for pid in pids]
    watched0 = sum(cpu_seconds(pid) for pid in watch)
    busy0 = machine_busy()
    dones = [g.expect("done", timeout) for g in gens]
    elapsed = (time.monotonic_ns() - t0) / 1e9
    cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
    busy = machine_busy() - busy0
    watched = sum(cpu_seconds(pid) for pid in watch) - watched0
    rss, hwm = sum_memory(servers)
    return Window(
        readies=readies,
        dones=dones,
        delays=join_times(workdir, dones),
        cpu=cpu,
        busy=busy,
        elapsed=elapsed,
        rss_connected=rss_connected,
        rss=rss,
        hwm=hwm,
        watched=watched,
    )


def traffic_row(w: Window, duration: float, readers: int) -> dict[str, Any]:
    """A result row from one window: delays, rates, generator health, failures."""
    readies, dones, elapsed = w.readies, w.dones, w.elapsed
    expected = sum(d["expected"] for d in dones)
    delivered = len(w.delays)
    window = max(duration, max(d["last_arrival_ms"] for d in dones) / 1000)
    gen_stats = [d["generator"] for d in dones]
    aw = next((d["awareness_delay_ms"] for d in dones if d["awareness_delay_ms"]["n"]), None)
    closes: dict[str, int] = {}
    for message in [*readies, *dones]:
        for key, value in message.get("closes", {}).items():
            closes[key] = max(closes.get(key, 0), value)
    total_cpu = sum(w.cpu)
    late = max(d["send_late_ms"]["p99"] or 0 for d in dones)  # writers behind schedule
    gen_cpu = sum(g["cpu_percent"] * g["wall_ms"] / 1e5 for g in gen_stats)
    return {
        "other_cpu_percent": round(
            100 * max(0.0, w.busy - total_cpu - gen_cpu - w.watched) / elapsed, 1
        ),
        **percentiles(w.delays),
        "expected": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        **rates(delivered, window, total_cpu, elapsed),
        "cpu_percent_each": [round(100 * c / elapsed, 1) for c in w.cpu],
        "watched_cpu_s": round(w.watched, 4),
        "rss_connected_mib": round(w.rss_connected, 1),
        "rss_mib": round(w.rss, 1),
        "peak_rss_mib": round(w.hwm, 1),
        "generator": gen_stats,
        "generator_connect": [r["generator"] for r in readies],
        "saturated": any(saturated(s) for s in gen_stats) or late > LATE_LIMIT_MS,
        "send_late_p99_ms": late,
        "connect_wall_s": round(max(r["connect_wall_ms"] for r in readies) / 1000, 2),
        "connected": sum(r["connected"] for r in readies),
        "clients": sum(r["clients"] for r in readies),
        "failures": add_counts(r["failures"] for r in readies),
        "closes": closes,
        "denied": sum(d["denied"] for d in dones),
        "awareness_delay_ms": aw,
        "awareness_frames_per_reader_s": (
            round(sum(d["awareness_frames"] for d in dones) / readers / window, 1)
            if readers
            else None
        ),
        "_delays": w.delays,  # for pooling repeated runs (pool_runs); not written out
    }


def pair_rooms(server: Server, count: int, instances: int = 1) -> list[RoomLoad]:
    """``count`` pair rooms, two writers each (owner, editor; the editor on the second
    instance when there are two)."""
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


def pair_window(
    server: Server, label: str, duration: float, rooms: int, parts: list[dict[str, Any]]
) -> None:
    """One window of ``rooms`` fresh pair rooms typing at 5/s on one server, one generator
    process; its row appended to ``parts`` (the families that compare two settings)."""
    loads = pair_rooms(server, rooms)
    parts.append(drive_traffic([server], loads, label=label, rate=5, duration=duration, procs=1))


def broadcast_room(server: Server, readers: int, instances: int = 1) -> list[RoomLoad]:
    """One broadcast room: the owner writes, ``readers`` viewers read (dealt over the
    instances)."""
    name, owner = server.create_room("broadcast")
    urls = [
        server.url(name, server.token(name, Role.VIEWER, f"student-{i}"), i % instances)
        for i in range(readers)
    ]
    return [RoomLoad(writers=[(0, server.url(name, owner))], readers=urls)]
