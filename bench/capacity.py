"""The capacity scenario: idle connections opened as fast as both sides allow, then the
server's memory per connection read with the generators idle."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generator import Generator
from bench.procs import machine_busy
from bench.servers import Server
from bench.stats import add_counts, saturated
from bench.traffic import RoomLoad, split
from rooms.roles import Role

CAPACITY_IN_FLIGHT = 25  # handshakes in flight per generator process


def capacity(server: Server, conns: int, procs: int, label: str) -> dict[str, Any]:
    """Open ``conns`` idle editors, 10 per pair room, over ``procs`` generator processes."""
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
    busy0, started = machine_busy(), time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cap-"))
    gens: list[Generator] = []
    try:
        for p, part in enumerate(split(rooms, procs)):
            config = {"mode": "idle", "proc": p, "out": str(workdir / f"gen-{p}"), "rooms": part,
                      "concurrency": CAPACITY_IN_FLIGHT, "max_s": 300}  # fmt: skip
            gens.append(Generator("loadgen.mjs", config, workdir, f"{label}-{server.tag}-gen{p}"))
        readies = [g.expect("ready", 280) for g in gens]
        cpu = server.cpu() - cpu0
        busy, interval = machine_busy() - busy0, time.monotonic() - started
        time.sleep(2)  # let the server settle (flushes, room loads) before reading RSS
        rss, hwm = server.memory()
    finally:
        for g in gens:
            g.close()
        shutil.rmtree(workdir, ignore_errors=True)
    connected = sum(r["connected"] for r in readies)
    p99 = max(r["connect_ms"]["p99"] or 0 for r in readies)
    p50 = max(r["connect_ms"]["p50"] or 0 for r in readies)
    gen_stats = [r["generator"] for r in readies]
    gen_cpu = sum(g["cpu_percent"] * g["wall_ms"] / 1e5 for g in gen_stats)
    other = round(100 * max(0.0, busy - cpu - gen_cpu) / interval, 1)
    return {
        "connections": conns,
        "connected": connected,
        "failures": add_counts(r["failures"] for r in readies),
        "closes": add_counts(r["closes"] for r in readies),
        "connect_wall_s": round(max(r["connect_wall_ms"] for r in readies) / 1000, 2),
        "connect_p50_ms": p50,
        "connect_p99_ms": p99,
        "server_cpu_s_connecting": round(cpu, 2),
        # Our side of a connect: what the event loop (one core) spends per connection.
        "server_cpu_us_per_connect": round(1e6 * cpu / connected) if connected else None,
        # The machine's busy CPU from the generators' start to the last connect, less the
        # server's and the generators' connect phases: other people's work, as in the
        # traffic families (% of one core), plus the generators' own start-up.
        "other_cpu_percent": other,
        "rss_before_mib": round(rss0, 1),
        "rss_mib": round(rss, 1),
        "peak_rss_mib": round(hwm, 1),
        "kib_per_connection": round(1024 * (rss - rss0) / connected, 1) if connected else None,
        "generator": gen_stats,
        "saturated": any(saturated(s) for s in gen_stats),
    }
