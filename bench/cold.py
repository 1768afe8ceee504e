"""The cold-load scenario: a 1 MB document seeded into every room, then joined warm (room in
memory) and cold (after a server restart, loaded from the store)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generator import Generator
from bench.servers import Server
from rooms.roles import Role


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
    """Seed ``rooms`` rooms with the document, time warm joins on ``warm_sample`` of them,
    restart the server and time a cold join of every room."""
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
