"""bench/charts.py draws one PNG per scenario family from a run's bench.json, and the mixed
family's report table and cursor join work on its rows: checked on a small synthetic run,
so a broken chart or table fails ``make test`` rather than the end of a 10-minute bench."""

from __future__ import annotations

import json
from array import array
from pathlib import Path
from typing import Any

from bench import charts
from bench.report import mixed_section
from bench.stats import join_times

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OURS, NODE = "codementor", "@y/websocket-server"


def delivery(family: str, server: str, scale: int, p99: float, cpu: float) -> dict[str, Any]:
    return {"family": family, "scenario": f"{family}: {scale}", "server": server,
            "scale": scale, "p99": p99, "cpu_percent": cpu, "saturated": False}  # fmt: skip


def mixed(server: str, scale: int, p99: float, saturated: bool = False) -> dict[str, Any]:
    quad = {"p50": 1.0, "p95": 2.0, "p99": p99, "max": 3 * p99}
    return {
        **delivery("mixed", server, scale, p99, 40.0), **quad,
        "saturated": saturated, "cursor": dict(quad, p99=p99 * 1.1),
        "edits": {"class": quad, "pair": quad}, "cursors": {"class": quad, "pair": quad},
        "lost": 0, "cursor_lost": 0, "delivered": 1000, "cursor_delivered": 1000,
        "cpu_s": 2.0, "peak_rss_mib": 300.0, "kib_per_connection": 9.5,
        "connect_wall_s": 20.0, "connect_p50_ms": 50.0, "connect_p99_ms": 400.0,
        "generator": [{"lag_p99_ms": 3.0, "cpu_percent": 30.0}], "kinds": ["class"],
        "send_late_p99_ms": 1.0, "other_cpu_percent": 5.0, "connected": scale,
        "connections": scale, "awareness_delay_ms": quad,
    }  # fmt: skip


def synthetic_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for server in (OURS, NODE):
        for scale in (50, 200, 500):
            rows.append(delivery("pair", server, scale, scale / 10, scale / 5))
        for scale in (100, 500, 1000, 2000):
            rows.append(delivery("broadcast", server, scale, scale / 40, scale / 30))
        rows.append(delivery("storm", server, 100, 3.0, 10.0))
        for scale in (1000, 5000, 10000):
            rows.append({"family": "capacity", "server": server, "scale": scale,
                         "connect_p99_ms": scale / 20, "kib_per_connection": 8.0,
                         "saturated": scale == 10000})  # fmt: skip
        rows.append(mixed(server, 2502, 40.0))
    rows.append(mixed(OURS, 10008, 90.0, saturated=True))
    rows.append({"family": "storm", "scenario": "storm: 2000", "server": NODE,
                 "error": "TimeoutError: no 'ready'"})  # fmt: skip
    return rows


def test_charts_from_a_saved_run(tmp_path: Path) -> None:
    """The entry point redraws every family's chart from a bench.json: real PNG files."""
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps({"elapsed_s": 1.0, "rows": synthetic_rows(), "anomalies": []}))
    out = tmp_path / "charts"
    charts.main([str(saved), "--out-dir", str(out)])
    written = sorted(p.name for p in out.iterdir())
    assert written == [f"bench-{f}.png" for f in
                       sorted(("pair", "broadcast", "storm", "capacity", "mixed"))]  # fmt: skip
    for name in written:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 1000, name


def test_families_without_rows_get_no_chart(tmp_path: Path) -> None:
    rows = [r for r in synthetic_rows() if r["family"] == "pair"]
    rows.append({"family": "cold", "server": OURS, "scenario": "cold"})  # not charted
    paths = charts.draw(rows, tmp_path, "run")
    assert [p.name for p in paths] == ["run-pair.png"]
    assert (tmp_path / "run-pair.png").read_bytes()[:8] == PNG_MAGIC


def test_mixed_table_gives_ratios_only_where_both_ran_unsaturated() -> None:
    lines = mixed_section([r for r in synthetic_rows() if r["family"] == "mixed"])
    shared = [ln for ln in lines if "2502" in ln and ln.startswith("| mixed") and OURS in ln]
    full = [ln for ln in lines if "10008" in ln and ln.startswith("| mixed") and OURS in ln]
    # the 2,502 row: p99 40 / 40, cursors 44 / 44, CPU µs per frame 1000 / 1000, RSS
    assert "1.00 · 1.00 · 1.00 · 1.00 |" in shared[0]
    assert full[0].endswith("| – |") and "⚠" in full[0]  # Node did not run it; saturated


def test_cursor_arrivals_join_to_their_send_times(tmp_path: Path) -> None:
    """Cursor files (``c`` prefix) join like updates: arrival − send of that keystroke."""
    k = 3
    sent = array("d", [10.0, 20.0, 30.0, 11.0, 21.0, 31.0])  # writers 4 and 5, 3 keystrokes
    (tmp_path / "gen-0.csent.bin").write_bytes(sent.tobytes())
    gs, ks, at = array("I", [5, 4, 4]), array("I", [2, 0, 7]), array("d", [40.0, 12.5, 99.0])
    (tmp_path / "gen-1.crecv.bin").write_bytes(gs.tobytes() + ks.tobytes() + at.tobytes())
    (tmp_path / "gen-0.crecv.bin").write_bytes(b"")
    dones = [
        {"proc": 0, "k": k, "sent_writers": [4, 5], "cursor_received": 0},
        {"proc": 1, "k": k, "sent_writers": [], "cursor_received": 3},
    ]
    (tmp_path / "gen-1.csent.bin").write_bytes(b"")
    # keystroke 7 is beyond the window's 3: not a delivery of this window
    assert join_times(tmp_path, dones, "c", "cursor_received") == [9.0, 2.5]
