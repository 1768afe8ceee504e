"""The transport family: our server alone, with its websocket fast path off
(``CODEMENTOR_WS_FAST_PATH=off``: stock uvicorn websockets through plain ASGI) and on
(``auto``: ``server/uvicorn_fast.py`` when its start-up probe passes), on the pair and broadcast
scenarios and on idle connections. The settings take turns (off, auto, off, auto, ...) so
both see the same drift of the machine; the report gives off / auto."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.capacity import capacity
from bench.servers import OURS, Ours, Server
from bench.stats import pool_idle_runs, pool_runs
from bench.traffic import broadcast_room, drive_traffic, pair_window

if TYPE_CHECKING:
    from bench.scenarios import Bench

Body = Callable[..., None]
SETTING = "CODEMENTOR_WS_FAST_PATH"
SETTINGS = ("off", "auto")


def server_name(setting: str) -> str:
    return f"{OURS} ({SETTING.removeprefix('CODEMENTOR_').lower()}={setting})"


def run_transport(bench: Bench) -> None:
    plan = bench.plan.transport
    duration = bench.plan.duration
    cases = [
        ("pair", plan.pair, f"pair: {plan.pair} rooms × 2 writers × 5/s", pair_window),
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
                bench.guarded("transport", label, server, _checked(body, setting), duration,
                              scale, done[setting])  # fmt: skip
        for setting, parts in done.items():
            if not parts:
                continue
            bench.current = server_name(setting)
            suffix = f" ({len(parts)} runs pooled)" if len(parts) > 1 else ""
            pooled = pool_idle_runs(parts) if kind == "idle" else pool_runs(parts)
            bench.record({"family": "transport", "kind": kind, "fast_path": setting,
                          "scenario": scenario + suffix, "scale": scale, **pooled})  # fmt: skip


def _checked(body: Body, setting: str) -> Body:
    """``body``, then a check that every connection took the transport ``setting`` asks
    for (``codementor_ws_connections_total{transport}``): a run of ``auto`` whose probe
    fell back would otherwise be reported as the fast path."""
    expected = "asgi" if setting == "off" else "direct"

    def run(server: Server, label: str, *args: Any) -> None:
        body(server, label, *args)
        assert isinstance(server, Ours) and server.http is not None
        taken = transports_taken(server.http.get("/metrics").text)
        if taken.get(expected, 0) == 0 or sum(taken.values()) != taken[expected]:
            raise RuntimeError(f"{SETTING}={setting}: connections by transport {taken}")

    return run


def transports_taken(metrics: str) -> dict[str, float]:
    """Websockets admitted by transport, from a ``/metrics`` page."""
    taken: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("codementor_ws_connections_total{"):
            kind = line.split('transport="', 1)[1].split('"', 1)[0]
            taken[kind] = taken.get(kind, 0.0) + float(line.rsplit(" ", 1)[1])
    return taken


def _broadcast(
    server: Server, label: str, duration: float, readers: int, parts: list[dict[str, Any]]
) -> None:
    loads = broadcast_room(server, readers)
    parts.append(drive_traffic([server], loads, label=label, rate=10, duration=duration, procs=1))


def _idle(
    server: Server, label: str, duration: float, conns: int, parts: list[dict[str, Any]]
) -> None:
    parts.append(capacity(server, conns, 1, label))
