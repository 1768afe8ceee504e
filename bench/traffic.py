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
    for message in [*readies, *dones]:
        for key, value in message.get("closes", {}).items():
            closes[key] = max(closes.get(key, 0), value)
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
        "failures": add_counts(r["failures"] for r in readies),
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
