"""The history family (``--only history``, ours only): what recording every update as
history costs.

1. CPU: the pair scenario against our server with history on (the default) and off
   (``CODEMENTOR_HISTORY_DAYS=0``), the settings taking turns (on, off, on, off, ...) so
   both see the same drift of the shared machine; CPU per delivered update, on / off.
2. Store: the store thread's CPU per update, history on and off, in this process; and
   an hour of synthetic typing written through the real store code
   (``bench/history_store.py``): history rows, update bytes, file growth.
3. Seek: the playback index of that hour built and seeked (``rooms.playback``).
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.history_store import HOUR, record_hour, seek_latency, store_cpu, typing_hour
from bench.servers import OURS, Ours, Server
from bench.stats import pool_runs
from bench.traffic import drive_traffic, pair_rooms
from rooms.history import HistorySettings

if TYPE_CHECKING:
    from bench.scenarios import Bench

SETTING = "CODEMENTOR_HISTORY_DAYS"
ARMS = {"on": None, "off": "0"}  # on: the default retention
SQLITE_FILE = "codementor.sqlite3"
Row = dict[str, Any]
PER_HOUR = ("updates", "entries", "rows", "parts", "history_update_bytes", "parts_bytes",
            "history_table_bytes", "updates_table_bytes", "file_growth",
            "file_growth_vacuumed")  # fmt: skip


def server_name(arm: str) -> str:
    return f"{OURS} (history {arm})"


def run_history(bench: Bench) -> None:
    plan = bench.plan.history
    for rooms, procs in plan.pair:
        scenario = f"pair: {rooms} rooms × 2 writers × 5/s"
        done: dict[str, list[Row]] = {arm: [] for arm in ARMS}
        for run in range(plan.runs):
            # the first arm alternates too: on, off | off, on | on, off ...
            order = list(ARMS) if run % 2 == 0 else list(reversed(ARMS))
            for arm in order:
                label = f"history-pair-{rooms}-{arm}-run{run + 1}"
                env = {SETTING: value} if (value := ARMS[arm]) is not None else {}
                server = Ours(label, bench.data_dir("history-"), env=env, name=server_name(arm))
                bench.guarded("history", label, server, _pair, arm, rooms, procs,
                              bench.plan.duration, done[arm])  # fmt: skip
        for arm, parts in done.items():
            if not parts:
                continue
            bench.current = server_name(arm)
            pooled = pool_runs(parts)
            bench.record({"family": "history", "kind": "cpu", "history": arm,
                          "scenario": f"{scenario} ({len(parts)} runs pooled)", "scale": rooms,
                          **pooled,
                          "cpu_us_each": [p["cpu_us_per_update"] for p in parts],
                          "other_cpu_each": [p.get("other_cpu_percent") for p in parts],
                          "history_rows_each": [p["_history_rows"] for p in parts]})  # fmt: skip
    bench.current = OURS
    _store_cpu(bench)
    _store(bench)


def _store_cpu(bench: Bench) -> None:
    """The store thread's share of the cost, in this process: off, on, on, off, ..."""
    plan = bench.plan.history
    each: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for run in range(plan.runs):
        for arm in list(ARMS) if run % 2 else list(reversed(ARMS)):
            settings = HistorySettings() if arm == "on" else None
            each[arm].append(store_cpu(plan.store_rooms, plan.store_s, settings))
    on, off = each["on"], each["off"]
    bench.record({"family": "history", "kind": "store_cpu", "rooms": plan.store_rooms,
                  "typed_s": plan.store_s,
                  "scenario": f"store path: {plan.store_rooms} pair rooms, 2 typing at once",
                  "on": on, "off": off,
                  "ratio_each": [round(a["append_us"] / b["append_us"], 2)
                                 for a, b in zip(on, off, strict=True)]})  # fmt: skip


def _pair(
    server: Server,
    label: str,
    arm: str,
    rooms: int,
    procs: int,
    duration: float,
    parts: list[Row],
) -> None:
    loads = pair_rooms(server, rooms)
    row = drive_traffic([server], loads, label=label, rate=5, duration=duration, procs=procs)
    assert isinstance(server, Ours)
    rows = history_rows(server.data_dir / SQLITE_FILE)
    # The arm must be what it says: rows recorded with history on, none with it off.
    if (arm == "on") != (rows > 0):
        raise RuntimeError(f"history {arm}: {rows} history rows in the store after the window")
    row["_history_rows"] = rows
    parts.append(row)


def history_rows(path: Path) -> int:
    """History rows in a running server's store (read-only; WAL lets it read alongside)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM history").fetchone()
    finally:
        db.close()
    return int(count)


def _store(bench: Bench) -> None:
    """Bytes of an hour's history for one and two typists, and seeks in the two-typist
    hour; each case in a fresh file."""
    plan = bench.plan.history
    seconds = plan.typing_s
    scale = HOUR / seconds  # the numbers are given per hour
    default = HistorySettings()
    cases = [
        ("1 typist", 1, None, default),
        ("2 typists at once", 2, None, default),
        ("2 typists taking 60 s turns", 2, 60.0, default),
        ("2 typists at once, coalesce_seconds=0", 2, None,
         HistorySettings(coalesce_seconds=0)),
        ("2 typists at once, history off (the document log alone)", 2, None, None),
    ]  # fmt: skip
    seek_file: Path | None = None
    for name, typists, turn_s, settings in cases:
        try:
            keys = typing_hour(typists, seconds, turn_s)
            path = Path(tempfile.mkdtemp(dir=bench.tmp, prefix="history-store-")) / SQLITE_FILE
            row = record_hour(keys, path, settings)
        except Exception as exc:  # reported, the other cases still run
            bench.anomalies.append(f"history store {name}: {type(exc).__name__}: {exc}")
            continue
        per_hour = {key: round(row[key] * scale) for key in PER_HOUR}
        bench.record({"family": "history", "kind": "store", "scenario": name,
                      "typed_s": seconds, "pastes": sum(k.chars > 1 for k in keys),
                      **row, "per_hour": per_hour})  # fmt: skip
        if name == "2 typists at once":
            seek_file = path
    if seek_file is None:
        return
    try:
        for run in range(plan.seek_runs):
            row = seek_latency(seek_file, plan.seeks, seed=20 + run)
            bench.record({"family": "history", "kind": "seek", "run": run + 1,
                          "scenario": "seek in 2 typists' hour", **row})  # fmt: skip
    except Exception as exc:
        bench.anomalies.append(f"history seek: {type(exc).__name__}: {exc}")


# -- the results page --


def _ratio(a: Any, b: Any) -> str:
    return f"{a / b:.2f}" if a is not None and b else "–"


def history_section(rows: list[Row]) -> list[str]:
    """The history family's tables: CPU on / off, bytes per hour, seek latency."""
    mine = [r for r in rows if r["family"] == "history"]
    if not mine:
        return []
    lines = ["", "## History: recording on / off, bytes per hour, seeks (ours only)"]
    cpu = [r for r in mine if r["kind"] == "cpu"]
    if cpu:
        lines += [
            "",
            "Pair rooms against our server with history on (default) and off "
            f"(`{SETTING}=0`), the settings taking turns, one fresh server each; runs pooled. "
            "Per-run ratios pair the k-th run of each setting (neighbours in time).",
            "",
            "| scenario | metric | on | off | on / off | per-run on / off | generator |",
            "|---|---|---|---|---|---|---|",
        ]
        for scale in sorted({r["scale"] for r in cpu}):
            arms = {r["history"]: r for r in cpu if r["scale"] == scale}
            on, off = arms.get("on"), arms.get("off")
            if on is None or off is None:
                continue
            sat = bool(on["saturated"] or off["saturated"])
            pairs = zip(on["cpu_us_each"], off["cpu_us_each"], strict=False)
            each = [_ratio(a, b) for a, b in pairs]
            gens = f"on: {_gen(on)}; off: {_gen(off)}"
            lines += [
                f"| {on['scenario']}{' ⚠' if sat else ''} | CPU µs per delivered update | "
                f"{on['cpu_us_per_update']} | {off['cpu_us_per_update']} | "
                f"{_ratio(on['cpu_us_per_update'], off['cpu_us_per_update'])} | "
                f"{', '.join(each)} | {gens} |",
                f"| | p50 / p99 ms | {on['p50']} / {on['p99']} | {off['p50']} / {off['p99']} | "
                f"{_ratio(on['p50'], off['p50'])} / {_ratio(on['p99'], off['p99'])} | "
                f"p99 each: on {on.get('p99_each')}, off {off.get('p99_each')} | |",
                f"| | other CPU % per run | {on['other_cpu_each']} | {off['other_cpu_each']} "
                f"| | history rows each: {on['history_rows_each']} | |",
            ]
    for r in (r for r in mine if r["kind"] == "store_cpu"):
        lines += [
            "",
            f"The store thread alone, in the driver's process ({r['rooms']} pair rooms, two "
            f"people typing at once, {r['typed_s']:g} s of synthetic keystrokes per run, each "
            "room's 100 ms window coalesced, then one `append_many` of every room, which "
            "extends a room's last row while it is within the window; process CPU µs per "
            "update, entries built included, each run):",
            "",
            "| history | append_many µs per update, each run |",
            "|---|---|",
            *[f"| {arm} | {', '.join(str(x['append_us']) for x in r[arm])} |" for arm in ARMS],
            f"| on / off | {', '.join(map(str, r['ratio_each']))} |",
        ]  # fmt: skip
    store = [r for r in mine if r["kind"] == "store"]
    if store:
        typed = store[0]["typed_s"]
        lines += [
            "",
            f"An hour of typing through the real store code ({typed:g} s of synthetic "
            "keystrokes at 5/s per typist, 8 % deletes, a 1,200-character paste every 3 "
            "minutes; each 100 ms flush window coalesced, then `append_many`, which extends "
            "the room's last row while it is within the window), per hour:",
            "",
            "| case | updates | entries written | history rows | parts | update bytes in "
            "history | `parts` bytes | history tables + indexes | document log table | "
            "file growth | growth after VACUUM | write s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in store:
            h = r["per_hour"]
            lines.append(
                f"| {r['scenario']} | {h['updates']:,} | {h['entries']:,} | {h['rows']:,} | "
                f"{h['parts']:,} | "
                f"{h['history_update_bytes']:,} | {h['parts_bytes']:,} | "
                f"{h['history_table_bytes']:,} | "
                f"{h['updates_table_bytes']:,} | {h['file_growth']:,} | "
                f"{h['file_growth_vacuumed']:,} | {r['write_s']} |"
            )
    seeks = [r for r in mine if r["kind"] == "seek"]
    if seeks:
        lines += [
            "",
            "Seeks in the two-typist hour (`rooms.playback.Playback`: index built from "
            "`store.history`, then the first, last and random moments):",
            "",
            "| run | rows | parts | read s | build s (read included) | index MiB | seeks | "
            "at_json p50 / p95 / max ms | authorship_at p50 / p95 / max ms | first, last ms |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in seeks:
            a, w = r["at"], r["authorship"]
            lines.append(
                f"| {r['run']} | {r['rows']:,} | {r['parts']:,} | {r['read_s']} | {r['build_s']} | "
                f"{r['index_mib']} | {r['seeks']} | "
                f"{a['p50']} / {a['p95']} / {a['max']} | {w['p50']} / {w['p95']} / {w['max']} | "
                f"{r['first_last_ms']} |"
            )
    return lines


def _gen(row: Row) -> str:
    from bench.report import gen_cell  # noqa: PLC0415 - report imports this module

    return gen_cell(row)
