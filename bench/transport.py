"""The transport family: our server alone, with its websocket fast path off
(``CODEMENTOR_WS_FAST_PATH=off``: stock uvicorn websockets through plain ASGI) and on
(``auto``: ``server/fastws.py`` when its start-up probe passes), on the pair and broadcast
scenarios and on idle connections. The settings take turns (off, auto, off, auto, ...) so
both see the same drift of the machine; the report gives off / auto."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.capacity import capacity
from bench.servers import OURS, Ours, Server
from bench.stats import pool_idle_runs, pool_runs
from bench.traffic import broadcast_room, drive_traffic, pair_rooms

if TYPE_CHECKING:
    from bench.scenarios import Bench

SETTING = "CODEMENTOR_WS_FAST_PATH"
SETTINGS = ("off", "auto")


def server_name(setting: str) -> str:
    return f"{OURS} ({SETTING.removeprefix('CODEMENTOR_').lower()}={setting})"


def run_transport(bench: Bench) -> None:
    plan = bench.plan.transport
    duration = bench.plan.duration
    cases = [
        ("pair", plan.pair, f"pair: {plan.pair} rooms × 2 writers × 5/s", _pair),
        ("broadcast", plan.broadcast, f"broadcast: {plan.broadcast} readers, 1 writer 10/s",
         _broadcast),
        ("idle", plan.idle, f"idle: {plan.idle} connections, {plan.idle // 10} rooms", _idle),
    ]  # fmt: skip
    for kind, scale, scenario, body in cases:
        done: dict[str, list[dict[str, Any]]] = {setting: [] for setting in SETTINGS}
        for run in range(plan.runs):
            for setting in SETTINGS:
                label = f"transport-{kind}-{scale}-{setting}"
                label += f"-run{run + 1}" if plan.runs > 1 else ""
                server = Ours(label, bench.data_dir("transport-"), env={SETTING: setting},
                              name=server_name(setting))  # fmt: skip
                bench.guarded("transport", label, server, body, duration, scale, done[setting])
        for setting, parts in done.items():
            if not parts:
                continue
            bench.current = server_name(setting)
            suffix = f" ({len(parts)} runs pooled)" if len(parts) > 1 else ""
            pooled = pool_idle_runs(parts) if kind == "idle" else pool_runs(parts)
            bench.record({"family": "transport", "kind": kind, "fast_path": setting,
                          "scenario": scenario + suffix, "scale": scale, **pooled})  # fmt: skip


def _pair(
    server: Server, label: str, duration: float, rooms: int, parts: list[dict[str, Any]]
) -> None:
    loads = pair_rooms(server, rooms)
    parts.append(drive_traffic([server], loads, label=label, rate=5, duration=duration, procs=1))


def _broadcast(
    server: Server, label: str, duration: float, readers: int, parts: list[dict[str, Any]]
) -> None:
    loads = broadcast_room(server, readers)
    parts.append(drive_traffic([server], loads, label=label, rate=10, duration=duration, procs=1))


def _idle(
    server: Server, label: str, duration: float, conns: int, parts: list[dict[str, Any]]
) -> None:
    parts.append(capacity(server, conns, 1, label))
