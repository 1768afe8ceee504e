"""The tracing family: our server alone, with OpenTelemetry tracing off (no OTLP endpoint:
the API's no-op tracer) and on (``OTEL_EXPORTER_OTLP_ENDPOINT`` at a local sink,
``bench/otlp_sink.py``, in a process of its own), on the pair scenario: nothing is traced
per keystroke, so the hot path should not move. The settings take turns (off, on, off,
on, ...) so both see the same drift of the machine; the report gives on / off. Scales are
the transport family's (``TransportPlan.pair``, ``runs``)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from bench.procs import BENCH, free_port, stop_process, wait_listening
from bench.servers import OURS, Ours, Server
from bench.stats import pool_runs
from bench.traffic import pair_window

if TYPE_CHECKING:
    from bench.scenarios import Bench

Body = Callable[..., None]
SETTINGS = ("off", "on")
# Off: no endpoint at all, whatever the bench's own environment says.
EXPORT_WAIT = 7.0  # seconds: more than one export schedule
OFF_ENV = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}


def server_name(setting: str) -> str:
    return f"{OURS} (tracing={setting})"


def run_tracing(bench: Bench) -> None:
    plan = bench.plan.transport
    scenario = f"pair: {plan.pair} rooms × 2 writers × 5/s"
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.otlp_sink", str(port)], cwd=BENCH.parent)
    try:
        wait_listening(port, sink)
        url = f"http://127.0.0.1:{port}"
        done: dict[str, list[dict[str, Any]]] = {setting: [] for setting in SETTINGS}
        for run in range(plan.runs):
            for setting in SETTINGS:
                label = f"tracing-pair-{plan.pair}-{setting}"
                label += f"-run{run + 1}" if plan.runs > 1 else ""
                env = {"OTEL_EXPORTER_OTLP_ENDPOINT": url} if setting == "on" else OFF_ENV
                server = Ours(label, bench.data_dir("tracing-"), env=env,
                              name=server_name(setting))  # fmt: skip
                bench.guarded("tracing", label, server, _checked(pair_window, setting, url),
                              bench.plan.duration, plan.pair, done[setting])  # fmt: skip
        for setting, parts in done.items():
            if not parts:
                continue
            bench.current = server_name(setting)
            suffix = f" ({len(parts)} runs pooled)" if len(parts) > 1 else ""
            bench.record({"family": "tracing", "kind": "pair", "tracing": setting,
                          "scenario": scenario + suffix, "scale": plan.pair,
                          **pool_runs(parts)})  # fmt: skip
    finally:
        stop_process(sink)


def exports(sink: str) -> int:
    """Export requests the sink has taken so far."""
    count: int = httpx.get(sink + "/stats", timeout=5).json()["exports"]
    return count


def _checked(body: Body, setting: str, sink: str) -> Body:
    """``body``, then a check that the server exported (on) or did not (off): a traced
    run that exported nothing would be reported as tracing's cost."""

    def run(server: Server, label: str, *args: Any) -> None:
        before = exports(sink)
        body(server, label, *args)
        # The batch processor exports every 5 s (OTEL_BSP_SCHEDULE_DELAY's default).
        deadline = time.monotonic() + (EXPORT_WAIT if setting == "on" else 0.0)
        while exports(sink) == before and time.monotonic() < deadline:
            time.sleep(0.2)
        after = exports(sink)
        if (after > before) != (setting == "on"):
            raise RuntimeError(f"tracing={setting}: the sink took {after - before} exports")

    return run
