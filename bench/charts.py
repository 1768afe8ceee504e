"""PNG charts of a run: p99 delay and server CPU against load, ours and Node's on one chart
per scenario family, drawn from the rows of bench.json (matplotlib, Agg: no display).

usage: .venv/bin/python bench/charts.py bench/results/bench.json [--out-dir DIR]
  redraws the charts of a saved run: DIR/<stem>-<family>.png (DIR: the json's folder).
``bench/run.py`` calls ``draw`` at the end of every run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

Row = dict[str, Any]
Value = Callable[[Row], "float | None"]

OURS_STYLE = {"color": "#1f77b4", "marker": "o", "linestyle": "-"}
NODE_STYLE = {"color": "#d62728", "marker": "s", "linestyle": "--"}
DPI = 110


@dataclass(frozen=True)
class Panel:
    """One y axis of a chart: what is plotted (one line per server and series) and how."""

    title: str
    ylabel: str
    series: tuple[tuple[str, Value], ...]  # (legend suffix, value of a row)
    log: bool = False
    target: float | None = None  # a horizontal line: the target the family is held to


@dataclass(frozen=True)
class Chart:
    family: str
    title: str
    xlabel: str
    panels: tuple[Panel, ...]


def _get(*keys: str) -> Value:
    """The value at ``keys`` in a row (nested dicts), None when missing."""

    def value(row: Row) -> float | None:
        at: Any = row
        for key in keys:
            if not isinstance(at, dict) or at.get(key) is None:
                return None
            at = at[key]
        return float(at)

    return value


DELAY = Panel("p99 delivery delay", "p99 delay (ms, log)", (("", _get("p99")),), log=True)
CPU = Panel("server CPU", "server CPU (% of one core)", (("", _get("cpu_percent")),))

CHARTS = (
    Chart("pair", "Pair rooms: 2 writers × 5 keystrokes/s each", "pair rooms", (DELAY, CPU)),
    Chart("broadcast", "Broadcast: 1 writer at 10/s", "readers", (DELAY, CPU)),
    Chart(
        "storm",
        "Awareness storm: broadcast + every reader's cursor every 5 s",
        "readers",
        (DELAY, CPU),
    ),  # fmt: skip
    Chart(
        "capacity",
        "Capacity: idle connections, 10 per room",
        "connections",
        (
            Panel(
                "connect time, per client",
                "connect p99 (ms, log)",
                (("", _get("connect_p99_ms")),),
                log=True,
            ),  # fmt: skip
            Panel("memory", "KiB per idle connection", (("", _get("kib_per_connection")),)),
        ),
    ),
    Chart(
        "mixed",
        "Mixed: classes + pair rooms on one process",
        "connections",
        (
            Panel(
                "p99 delay at everyone who should see it",
                "p99 delay (ms, log)",
                (("edits", _get("p99")), ("cursors", _get("cursor", "p99"))),
                log=True,
                target=100.0,
            ),
            CPU,
        ),  # fmt: skip
    ),
)


def servers(rows: list[Row]) -> list[str]:
    """Servers in the order they first appear (ours first in every run)."""
    seen: list[str] = []
    for row in rows:
        if row["server"] not in seen:
            seen.append(row["server"])
    return seen


def _plot_panel(ax: Axes, panel: Panel, rows: list[Row], names: list[str], xlabel: str) -> bool:
    """One line per server and series; saturated points hollow. False: nothing to plot."""
    drawn = False
    xs_all: list[float] = []
    for index, name in enumerate(names):
        mine = sorted((r for r in rows if r["server"] == name), key=lambda r: r["scale"])
        for suffix, value in panel.series:
            points: list[tuple[float, float, bool]] = []
            for r in mine:
                y = value(r)
                if y is not None:
                    points.append((float(r["scale"]), y, bool(r.get("saturated"))))
            if not points:
                continue
            style = dict(OURS_STYLE if index == 0 else NODE_STYLE)
            if suffix == "cursors":
                style["marker"] = "^"
                style["linestyle"] = ":" if index == 0 else "-."
            who = f"{'ours' if index == 0 else 'Node'} ({name})"
            label = f"{who}: {suffix}" if suffix else who
            xs = [x for x, _, _ in points]
            ys = [y for _, y, _ in points]
            ax.plot(xs, ys, label=label, color=style["color"], marker=style["marker"],
                    linestyle=style["linestyle"])  # fmt: skip
            hollow = [(x, y) for x, y, s in points if s]
            if hollow:
                ax.scatter([x for x, _ in hollow], [y for _, y in hollow], s=110,
                           facecolors="white", edgecolors=style["color"], zorder=3,
                           marker=style["marker"])  # fmt: skip
            xs_all += xs
            drawn = True
    if not drawn:
        return False
    if panel.target is not None:
        ax.axhline(panel.target, color="#2ca02c", linestyle="--", linewidth=1,
                   label=f"target {panel.target:g} ms")  # fmt: skip
    if panel.log:
        ax.set_yscale("log")
        ax.margins(y=0.15)
    else:
        ax.set_ylim(0, ax.get_ylim()[1] * 1.15)  # room above the top point for the legend
    if xs_all and max(xs_all) / max(min(xs_all), 1e-9) >= 10:
        ax.set_xscale("log")
        ax.set_xticks(sorted(set(xs_all)))  # the loads measured, as plain numbers
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel(xlabel + (" (log)" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel(panel.ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.7)
    return True


def draw(rows: list[Row], out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>-<family>.png`` in ``out_dir`` for every family that has rows; return
    the files written. Rows with an ``error`` are left out; saturated points are drawn
    hollow (measured, but the generator's limit, not the server's)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for chart in CHARTS:
        rows_of = [r for r in rows if r.get("family") == chart.family and "error" not in r
                   and r.get("scale") is not None]  # fmt: skip
        if not rows_of:
            continue
        names = servers(rows_of)
        fig, axes = plt.subplots(1, len(chart.panels), figsize=(5.2 * len(chart.panels), 4.2))
        try:
            drawn = [
                _plot_panel(ax, panel, rows_of, names, chart.xlabel)
                for ax, panel in zip(axes, chart.panels, strict=True)
            ]
            if not any(drawn):
                continue
            saturated = any(r.get("saturated") for r in rows_of)
            fig.suptitle(chart.title + ("\n(hollow: generator saturated, not quoted)"
                                        if saturated else ""), fontsize=11)  # fmt: skip
            fig.tight_layout()
            path = out_dir / f"{stem}-{chart.family}.png"
            fig.savefig(path, dpi=DPI)
            written.append(path)
        finally:
            plt.close(fig)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("json", type=Path, help="a run's bench.json")
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = json.loads(args.json.read_text())["rows"]
    for path in draw(rows, args.out_dir or args.json.parent, args.json.stem):
        print(path)


if __name__ == "__main__":
    main()
