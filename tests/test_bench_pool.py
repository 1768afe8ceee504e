"""bench/run.py pools repeated runs of a scenario into one row (the 100-reader rows):
the pooled percentiles must be those of every delivery of every run, not an average of
the runs' percentiles, and the counts and CPU must add up."""

from __future__ import annotations

import random
from typing import Any

from bench.stats import percentiles, pool_runs


def run_row(delays: list[float], cpu_s: float, elapsed_s: float, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        **percentiles(list(delays)),
        "_delays": list(delays),
        "expected": len(delays),
        "delivered": len(delays),
        "lost": 0,
        "window_s": 8.0,
        "cpu_s": cpu_s,
        "elapsed_s": elapsed_s,
        "cpu_percent": round(100 * cpu_s / elapsed_s, 1),
        "generator": [{"lag_p99_ms": 1.0, "cpu_percent": 5.0}],
        "generator_connect": [{}],
        "saturated": False,
        "other_cpu_percent": 1.0,
        "rss_connected_mib": 60.0,
        "rss_mib": 61.0,
        "peak_rss_mib": 62.0,
        "send_late_p99_ms": 1.0,
        "connect_wall_s": 0.2,
        "awareness_frames_per_reader_s": None,
        "connected": 101,
        "denied": 0,
        "failures": {},
        "closes": {},
        "awareness_delay_ms": None,
    }
    row.update(extra)
    return row


def test_pooled_percentiles_are_over_every_delivery() -> None:
    rng = random.Random(7)
    # One run with a stall (its p99 high), three without: the pooled p99 sits between.
    calm = [[rng.uniform(1, 3) for _ in range(1000)] for _ in range(3)]
    stalled = [rng.uniform(1, 3) for _ in range(970)] + [rng.uniform(8, 9) for _ in range(30)]
    runs = [run_row(d, 0.2, 10.0) for d in [stalled, *calm]]
    pooled = pool_runs(runs)
    everything = sorted(stalled + [d for run in calm for d in run])
    assert pooled["p99"] == round(everything[int(0.99 * len(everything))], 2)
    assert pooled["max"] == round(everything[-1], 2)
    assert pooled["p99_each"] == [r["p99"] for r in runs]
    assert runs[0]["p99"] > 8 > pooled["p99"]
    assert pooled["runs"] == 4


def test_pooled_counts_and_cpu_add_up() -> None:
    runs = [
        run_row([2.0] * 1000, 0.2, 10.0, peak_rss_mib=70.0, closes={"1006": 1}),
        run_row([2.0] * 990, 0.3, 10.0, lost=10, expected=1000, closes={"1006": 2}),
    ]
    pooled = pool_runs(runs)
    assert pooled["delivered"] == 1990
    assert pooled["lost"] == 10
    assert pooled["expected"] == 2000
    assert pooled["cpu_percent"] == 2.5  # 0.5 CPU s over 20 s
    assert pooled["cpu_us_per_update"] == round(1e6 * 0.5 / 1990, 1)
    assert pooled["peak_rss_mib"] == 70.0  # the worst run's
    assert pooled["closes"] == {"1006": 3}
    assert len(pooled["generator"]) == 2  # every run's generator stats, for saturation


def test_a_saturated_run_marks_the_pooled_row() -> None:
    runs = [run_row([2.0] * 100, 0.1, 10.0), run_row([2.0] * 100, 0.1, 10.0, saturated=True)]
    assert pool_runs(runs)["saturated"] is True


def test_one_run_is_left_as_it_is() -> None:
    row = run_row([1.0, 2.0, 3.0], 0.1, 10.0)
    assert pool_runs([row]) is row
