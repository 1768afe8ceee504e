"""Numbers from raw measurements: delay percentiles, throughput and CPU rates, repeated
runs pooled into one row, deliveries joined from the generators' files, and whether a
generator saturated (then its row measures the generator, not the server)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LAG_LIMIT_MS = 20.0  # generator event-loop lag p99 above this: saturated
CPU_LIMIT = 80.0  # generator CPU above this % of one core: saturated
LATE_LIMIT_MS = 20.0  # writers' keystrokes later than this (p99) behind schedule: saturated


def saturated(stats: dict[str, Any]) -> bool:
    """Did one generator process fall behind (its lag or CPU over the limits)?"""
    return bool(stats["lag_p99_ms"] > LAG_LIMIT_MS or stats["cpu_percent"] > CPU_LIMIT)


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max of ``values`` (sorted in place), in ms to 2 decimals."""
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
    merged["failures"] = add_counts(r["failures"] for r in runs)
    merged["closes"] = add_counts(r["closes"] for r in runs)
    # The generator reports a summary, not every awareness delay: the worst run's.
    summaries = [r["awareness_delay_ms"] for r in runs if r.get("awareness_delay_ms")]
    merged["awareness_delay_ms"] = max(summaries, key=lambda a: a["p99"] or 0, default=None)
    return merged


def join_times(
    workdir: Path, dones: list[dict[str, Any]], kind: str = "", count: str = "received"
) -> list[float]:
    """Delivery delays: each arrival's time minus its update's send time (same clock).
    ``kind`` "c", ``count`` "cursor_received": the writers' cursors (the mixed family)."""
    sent: dict[int, array[float]] = {}
    for d in dones:
        k = d["k"]
        times = array("d")
        times.frombytes((workdir / f"gen-{d['proc']}.{kind}sent.bin").read_bytes())
        for i, g in enumerate(d["sent_writers"]):
            sent[g] = times[i * k : (i + 1) * k]
    delays: list[float] = []
    for d in dones:
        raw = (workdir / f"gen-{d['proc']}.{kind}recv.bin").read_bytes()
        n = d[count]
        gs, clocks, at = array("I"), array("I"), array("d")
        gs.frombytes(raw[: 4 * n])
        clocks.frombytes(raw[4 * n : 8 * n])
        at.frombytes(raw[8 * n :])
        k = d["k"]
        for g, clock, t in zip(gs, clocks, at, strict=True):
            if clock < k and g in sent:
                delays.append(t - sent[g][clock])
    return delays


def pool_idle_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from repeated capacity runs: memory and CPU per connection averaged over
    the runs (each run's own kept in ``kib_each``), saturated if any run was."""
    if len(runs) == 1:
        return runs[0]
    kib = [r["kib_per_connection"] for r in runs if r["kib_per_connection"] is not None]
    return {
        **runs[0],
        "runs": len(runs),
        "kib_per_connection": round(sum(kib) / len(kib), 2) if kib else None,
        "kib_each": [r["kib_per_connection"] for r in runs],
        "server_cpu_s_connecting": round(sum(r["server_cpu_s_connecting"] for r in runs), 2),
        "connections": sum(r["connections"] for r in runs),
        "connected": sum(r["connected"] for r in runs),
        "failures": add_counts(r["failures"] for r in runs),
        "closes": add_counts(r["closes"] for r in runs),
        "generator": [g for r in runs for g in r["generator"]],
        "saturated": any(r["saturated"] for r in runs),
    }


def add_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Counts by key (close codes, failure kinds) added up."""
    total: dict[str, int] = {}
    for each in counts:
        for key, value in each.items():
            total[key] = total.get(key, 0) + value
    return total
