"""bench/run.py pools repeated runs of a scenario into one row (the 100-reader rows, the
transport family): the pooled percentiles must be those of every delivery of every run,
not an average of the runs' percentiles, and the counts and CPU must add up. The
transport table then divides the pooled rows of the two settings."""

from __future__ import annotations

import random
from typing import Any

from bench.report import tracing_section, transport_section
from bench.stats import percentiles, pool_idle_runs, pool_runs, rates
from bench.transport import transports_taken


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


def idle_row(kib: float, cpu_s: float, connected: int = 500, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "connections": 500,
        "connected": connected,
        "kib_per_connection": kib,
        "server_cpu_s_connecting": cpu_s,
        "failures": {},
        "closes": {},
        "generator": [{"lag_p99_ms": 30.0, "cpu_percent": 85.0}],
        "saturated": True,
    }
    row.update(extra)
    return row


def test_idle_runs_pool_memory_as_a_mean_and_cpu_as_a_sum() -> None:
    pooled = pool_idle_runs(
        [idle_row(8.0, 0.3, closes={"1006": 1}), idle_row(9.0, 0.5, connected=499)]
    )
    assert pooled["kib_per_connection"] == 8.5
    assert pooled["kib_each"] == [8.0, 9.0]
    assert pooled["server_cpu_s_connecting"] == 0.8
    assert pooled["connected"] == 999
    assert pooled["closes"] == {"1006": 1}
    assert pooled["runs"] == 2


def transport_rows(saturated_off: bool) -> list[dict[str, Any]]:
    rows = []
    for setting, cpu_s, kib in (("off", 0.3, 12.0), ("auto", 0.2, 8.0)):
        delays = [2.0] * 990 + [6.0 if setting == "off" else 4.0] * 10
        pair = run_row(delays, cpu_s, 10.0, saturated=saturated_off and setting == "off")
        pair.update(rates(len(delays), 8.0, cpu_s, 10.0))
        common = {"family": "transport", "fast_path": setting, "server": setting}
        rows.append({**common, "kind": "pair", "scenario": "pair: 20 rooms", **pair})
        rows.append({**common, "kind": "idle", "scenario": "idle: 500", **idle_row(kib, cpu_s)})
    return rows


def table(lines: list[str]) -> dict[str, list[str]]:
    """Metric → the row's cells (scenario and metric columns included)."""
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines if "|" in line]
    return {row[1]: row for row in cells[2:]}


def test_transport_table_divides_off_by_auto() -> None:
    rows = table(transport_section(transport_rows(saturated_off=False)))
    cpu = rows["CPU µs per delivered update"]
    assert cpu[2:5] == ["300", "200", "1.50"]
    assert rows["p99 ms"][2:5] == ["6", "4", "1.50"]
    assert rows["KiB per idle connection"][2:5] == ["12", "8", "1.50"]  # saturated, still given
    assert rows["server CPU µs per connect"][2:5] == ["600", "400", "1.50"]


def test_transport_table_gives_no_delivery_ratio_when_a_generator_saturated() -> None:
    rows = table(transport_section(transport_rows(saturated_off=True)))
    assert rows["CPU µs per delivered update"][0].endswith("⚠")
    assert rows["CPU µs per delivered update"][4] == "n/q"
    assert rows["p99 ms"][4] == "n/q"


def test_the_transport_each_connection_took_is_read_from_metrics() -> None:
    page = (
        "# HELP codementor_ws_connections_total Websockets admitted, by transport\n"
        'codementor_ws_connections_total{transport="direct"} 3.0\n'
        'codementor_ws_connections_total{transport="asgi"} 1.0\n'
        'codementor_ws_connections_created{transport="asgi"} 1.7e9\n'
    )
    assert transports_taken(page) == {"direct": 3.0, "asgi": 1.0}


def test_tracing_table_divides_on_by_off() -> None:
    rows = []
    for setting, cpu_s in (("off", 0.2), ("on", 0.3)):
        delays = [2.0] * 990 + [4.0 if setting == "off" else 6.0] * 10
        pair = run_row(delays, cpu_s, 10.0, saturated=False)
        pair.update(rates(len(delays), 8.0, cpu_s, 10.0))
        rows.append({"family": "tracing", "kind": "pair", "tracing": setting,
                     "server": setting, "scenario": "pair: 20 rooms", **pair})  # fmt: skip
    table_rows = table(tracing_section(rows))
    assert table_rows["CPU µs per delivered update"][2:5] == ["200", "300", "1.50"]
    assert table_rows["p99 ms"][2:5] == ["4", "6", "1.50"]
    assert tracing_section(rows[:1]) == []  # one arm alone: no table
