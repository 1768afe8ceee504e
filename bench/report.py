"""The results page: a header saying how the run went, one table per family, then the
failures and anomalies. Ratios are ours / Node (transport: off / auto; history: on / off;
tracing: on / off)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench import procs
from bench.capacity import CAPACITY_IN_FLIGHT
from bench.history import history_section
from bench.mixed import IN_FLIGHT
from bench.plan import Plan
from bench.procs import QUIET_EACH, ROOT
from bench.scaleout import scaleout_section
from bench.servers import OURS
from bench.service_targets import targets_section
from bench.stats import CPU_LIMIT, LAG_LIMIT_MS, LATE_LIMIT_MS
from bench.workspace import workspace_section

if TYPE_CHECKING:
    from bench.scenarios import Bench

NOISY_LIMIT = 30.0  # other processes' CPU above this % of one core during a window: noisy
Row = dict[str, Any]


def report(bench: Bench, elapsed: float, plan: Plan) -> str:
    rows = bench.rows
    ok = [r for r in rows if "error" not in r]
    sections: list[Callable[[list[Row]], list[str]]] = [
        delivery_section,
        storm_section,
        capacity_section,
        cold_section,
        multi_section,
        transport_section,
        tracing_section,
        workspace_section,
        history_section,
        targets_section,
        mixed_section,
        scaleout_section,
    ]
    lines = header(elapsed, plan) + run_notes(bench)
    for section in sections:
        lines += section(ok)
    lines += failures_section(bench)
    return "\n".join(lines) + "\n"


# -- cells --


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value)


def ratio(ours: Any, node: Any) -> str:
    if ours is None or node is None or not node:
        return "–"
    return f"{float(ours) / float(node):.2f}"


def generator_note(stats: list[dict[str, Any]]) -> str:
    """Each generator process's event-loop lag p99 ms / CPU %."""
    return " ".join(f"{s['lag_p99_ms']:g}/{s['cpu_percent']:g}" for s in stats)


def gen_cell(row: Row) -> str:
    cell = generator_note(row.get("generator", []))
    if row.get("send_late_p99_ms") is not None:
        cell += f" · late {row['send_late_p99_ms']:g}"
    return f"**SATURATED** {cell}" if row.get("saturated") else cell


def partner(row: Row, rows: list[Row]) -> Row | None:
    """The other server's row of the same scenario."""
    for other in rows:
        if (
            other is not row
            and other["family"] == row["family"]
            and other.get("scale") == row.get("scale")
            and other["server"] != row["server"]
            and "error" not in other
        ):
            return other
    return None


# -- sections --


def header(elapsed: float, plan: Plan) -> list[str]:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "server", "rooms", "crdt"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()  # fmt: skip
    return [
        "# Benchmark: codementor vs @y/websocket-server 0.1.1",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores, git {head}"
        + (" (server code modified in the working tree)" if dirty else "")
        + f"; took {elapsed / 60:.1f} min. Loopback; one fresh server per scenario.",
        f"Traffic windows: {plan.duration:g} s (awareness storm {plan.storm_duration:g} s), "
        "then up to 10 s to drain. Scales were chosen to fit `make bench` in 10 minutes: "
        "pair up to 500 rooms, broadcast up to 2,000 readers, capacity up to 10,000 "
        f"connections, cold load {plan.cold_rooms} rooms.",
        *[f"{n}" for n in plan.notes],
        procs.PIN.describe() + " (`--pin`)."
        if procs.PIN is not None
        else "Not pinned: the kernel places the servers and the generators.",
        "",
        "Generator column: event-loop lag p99 ms / CPU % of one core, per generator process "
        "over the traffic window, then how late the writers' keystrokes went out (p99 ms "
        f"behind schedule); **SATURATED** (lag p99 > {LAG_LIMIT_MS:g} ms, CPU > "
        f"{CPU_LIMIT:g} % or late > {LATE_LIMIT_MS:g} ms) rows measure the generator, not "
        "the server: they are never quoted "
        "and get no ratio (⚠). High lag at low generator CPU means the generator was starved "
        "of CPU by other processes. Other CPU %: busy CPU of the whole machine during the "
        "window less the server's and the generators' (other users' work, kernel); † marks "
        f"rows above {NOISY_LIMIT:g} % — quoted, but noisy. Ratios: ours / Node, below 1 is "
        "better for us.",
        "",
    ]


def run_notes(bench: Bench) -> list[str]:
    """Scenarios not run, and those that started on a busy machine."""
    lines: list[str] = []
    if bench.skipped:
        lines += ["Not run:", *[f"- {b}" for b in bench.skipped], ""]
    if bench.background:
        lines += [
            f"Machine busy with other work when a scenario started (after waiting up to "
            f"{QUIET_EACH:g} s, "
            f"{bench.quiet_waited:.0f} s in all):",
            *[f"- {b}" for b in bench.background],
            "",
        ]
    return lines


def delivery_section(rows: list[Row]) -> list[str]:
    delivery = [r for r in rows if r["family"] in ("pair", "broadcast", "storm")]
    if not delivery:
        return []
    return [
        "## Delivery (pair, broadcast, awareness storm)",
        "",
        "| scenario | server | p50 ms | p95 ms | p99 ms | max ms | delivered upd/s | lost "
        "| CPU % | peak RSS MiB | CPU µs/upd | generator | other CPU % "
        "| ours/node p50 · p99 · CPU µs/upd · RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[delivery_line(r, rows) for r in delivery],
    ]


def delivery_line(r: Row, rows: list[Row]) -> str:
    other = partner(r, rows)
    ratios = "–"
    if r["server"] == OURS and other is not None:
        if r["saturated"] or other["saturated"]:
            ratios = "not quoted (generator saturated)"
        else:
            ratios = " · ".join(
                ratio(r[k], other[k]) for k in ("p50", "p99", "cpu_us_per_update", "peak_rss_mib")
            )
    scenario = r["scenario"]
    if r.get("p99_each"):
        scenario += "; p99 of each run " + " / ".join(fmt(v) for v in r["p99_each"])
    scenario += " ⚠" if r["saturated"] else ""
    if r.get("other_cpu_percent", 0) > NOISY_LIMIT:
        scenario += " †"
    return (
        f"| {scenario} | {r['server']} | {fmt(r['p50'])} | {fmt(r['p95'])} | {fmt(r['p99'])} | "
        f"{fmt(r['max'])} | {fmt(r['delivered_per_s'])} | {r['lost']} | {fmt(r['cpu_percent'])} | "
        f"{fmt(r['peak_rss_mib'])} | {fmt(r['cpu_us_per_update'])} | {gen_cell(r)} | "
        f"{fmt(r['other_cpu_percent'])} | {ratios} |"
    )


def storm_section(rows: list[Row]) -> list[str]:
    storm = [r for r in rows if r["family"] == "storm"]
    if not storm:
        return []
    lines = [
        "",
        "Awareness storm detail: the teacher's view of student cursors (send → "
        "teacher) and what each reader has to receive.",
        "",
        "| scenario | server | awareness → teacher p50 / p99 / max ms | awareness frames "
        "per reader per s | generator |",
        "|---|---|---|---|---|",
    ]
    for r in storm:
        aw = r.get("awareness_delay_ms") or {}
        lines.append(
            f"| {r['scenario']} | {r['server']} | {fmt(aw.get('p50'))} / "
            f"{fmt(aw.get('p99'))} / {fmt(aw.get('max'))} | "
            f"{fmt(r['awareness_frames_per_reader_s'])} | {gen_cell(r)} |"
        )
    return lines


def capacity_section(rows: list[Row]) -> list[str]:
    cap = [r for r in rows if r["family"] == "capacity"]
    if not cap:
        return []
    lines = [
        "",
        "## Capacity (idle connections, 10 per room)",
        "",
        f"Connections are opened {CAPACITY_IN_FLIGHT} at a time per generator process, as "
        "fast as both sides allow, so the connect columns depend on the generator: when it "
        "saturated (⚠) they are not quoted. RSS is read 2 s after the last connection, "
        "with the generator idle, so KiB per connection does not depend on it and its "
        "ratio is always given. Server CPU s: the server's CPU while connecting.",
        "",
        "| scenario | server | connected | connect all s | connect p50 / p99 ms | server CPU s "
        "| CPU µs per connect | RSS before → after MiB | KiB per conn | generator (connect phase) "
        "| other CPU % | ours/node KiB per conn · connect s · p50 · p99 · CPU per connect |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in cap:
        other = partner(r, rows)
        ratios = "–"
        if r["server"] == OURS and other:
            connect = "connect n/q"
            if not (r["saturated"] or other["saturated"]):
                connect = " · ".join(
                    ratio(r[k], other[k])
                    for k in ("connect_wall_s", "connect_p50_ms", "connect_p99_ms")
                )
            kib = ratio(r["kib_per_connection"], other["kib_per_connection"])
            cpu = ratio(r.get("server_cpu_us_per_connect"), other.get("server_cpu_us_per_connect"))
            ratios = f"{kib} · {connect} · {cpu}"
        scenario = r["scenario"] + (" ⚠" if r["saturated"] else "")
        lines.append(
            f"| {scenario} | {r['server']} | {r['connected']}/{r['connections']} | "
            f"{fmt(r['connect_wall_s'])} | {fmt(r['connect_p50_ms'])} / "
            f"{fmt(r['connect_p99_ms'])} | {fmt(r['server_cpu_s_connecting'])} | "
            f"{fmt(r.get('server_cpu_us_per_connect'))} | "
            f"{fmt(r['rss_before_mib'])} → {fmt(r['rss_mib'])} | "
            f"{fmt(r['kib_per_connection'])} | {gen_cell(r)} | "
            f"{fmt(r.get('other_cpu_percent'))} | {ratios} |"
        )
    return lines


def cold_section(rows: list[Row]) -> list[str]:
    cold = [r for r in rows if r["family"] == "cold"]
    if not cold:
        return []
    lines = [
        "",
        "## Cold load (1 MB document built from 20,000 edits)",
        "",
        "Time from a new peer's connect call until the last frame with content arrived "
        "(received) and until its Y.Doc holds the whole text (synced: received plus the "
        "client's own apply of about 1.5 MB). Seed: every room gets the document from a "
        "client that has it offline (its Step2), 4 rooms at a time. Warm: the room is in "
        f"memory (its seeding client still connected), timed on {cold[0]['warm_sample']} "
        "of the rooms. Cold: after a server restart the join loads the room from the "
        "store (ours: SQLite; Node: y-leveldb via YPERSISTENCE, the only way it can "
        "reload a room), every room. Rooms joined one at a time, so the generator is idle "
        "while the server works: its lag/CPU (warm, cold) is shown but does not flag the "
        "row. For Node, a p99 far above p50 is its leveldb flushing or compacting.",
        "",
        "| server | update bytes | seed all s | warm received p50 / p99 / max ms | warm synced "
        "p50 / p99 ms | cold received p50 / p99 / max ms | cold synced p50 / p99 ms | RSS "
        "empty → 100 rooms warm MiB | after restart → 100 cold MiB | MiB per cold room | "
        "generator | ours/node warm · cold received p50 · MiB/room |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in cold:
        other = partner(r, rows)
        ratios = "–"
        if r["server"] == OURS and other:
            ratios = (
                f"{ratio(r['warm_received_ms']['p50'], other['warm_received_ms']['p50'])} · "
                f"{ratio(r['cold_received_ms']['p50'], other['cold_received_ms']['p50'])} · "
                f"{ratio(r['mib_per_room_cold'], other['mib_per_room_cold'])}"
            )
        wr, w, cr, c = (r[k] for k in ("warm_received_ms", "warm_ms", "cold_received_ms",
                                       "cold_ms"))  # fmt: skip
        lines.append(
            f"| {r['server']} | {r['doc_update_bytes']} | {fmt(r['seed_s'])} | "
            f"{fmt(wr['p50'])} / {fmt(wr['p99'])} / {fmt(wr['max'])} | "
            f"{fmt(w['p50'])} / {fmt(w['p99'])} | "
            f"{fmt(cr['p50'])} / {fmt(cr['p99'])} / {fmt(cr['max'])} | "
            f"{fmt(c['p50'])} / {fmt(c['p99'])} | {fmt(r['rss_empty_mib'])} → "
            f"{fmt(r['rss_100_warm_mib'])} | {fmt(r['rss_after_restart_mib'])} → "
            f"{fmt(r['rss_100_cold_mib'])} | {fmt(r['mib_per_room_cold'])} | "
            f"{generator_note(r['generator'])} | {ratios} |"
        )
    return lines


def multi_section(rows: list[Row]) -> list[str]:
    multi = [r for r in rows if r["family"] == "multi"]
    if not multi:
        return []
    lines = [
        "",
        "## Multi-instance (2 of our processes + redis-server; Node has no equivalent)",
        "",
        "CPU µs/upd (A+B): both instances' CPU over the window per delivered update; "
        "redis-server's CPU over the same window is apart (redis µs/upd), not in it. "
        "× single: that ÷ the same run's single-instance row of the same load (ours: pair "
        "at the same rooms, broadcast at the same readers; – when this run has none).",
        "",
        "| scenario | p50 ms | p95 ms | p99 ms | max ms | delivered upd/s | lost | CPU % A + B "
        "| redis CPU % | peak RSS MiB (A+B) | CPU µs/upd (A+B) | single µs/upd | × single "
        "| redis µs/upd | generator | other CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in multi:
        single = single_row(r, rows)
        base = single["cpu_us_per_update"] if single else None
        lines.append(
            f"| {r['scenario']} | {fmt(r['p50'])} | {fmt(r['p95'])} | {fmt(r['p99'])} | "
            f"{fmt(r['max'])} | {fmt(r['delivered_per_s'])} | {r['lost']} | "
            f"{' + '.join(fmt(c) for c in r['cpu_percent_each'])} | "
            f"{fmt(r['redis_cpu_percent'])} | {fmt(r['peak_rss_mib'])} | "
            f"{fmt(r['cpu_us_per_update'])} | {fmt(base)} | "
            f"{ratio(r['cpu_us_per_update'], base)} | "
            f"{fmt(r.get('redis_cpu_us_per_update'))} | {gen_cell(r)} | "
            f"{fmt(r.get('other_cpu_percent'))} |"
        )
    return lines


def single_row(row: Row, rows: list[Row]) -> Row | None:
    """Our single-instance row with the multi row's load (same family kind and scale)."""
    for other in rows:
        if (
            other["family"] == row.get("kind")
            and other.get("scale") == row.get("scale")
            and other["server"] == OURS
        ):
            return other
    return None


# (metric, how to read it from a row, quoted even when the generator saturated?)
Metric = tuple[str, Callable[[Row], Any], bool]
DELIVERY_METRICS: list[Metric] = [
    ("CPU µs per delivered update", lambda r: r["cpu_us_per_update"], False),
    ("p50 ms", lambda r: r["p50"], False),
    ("p99 ms", lambda r: r["p99"], False),
]
TRANSPORT_METRICS: dict[str, list[Metric]] = {
    "pair": DELIVERY_METRICS,
    "broadcast": DELIVERY_METRICS,
    "idle": [
        ("KiB per idle connection", lambda r: r["kib_per_connection"], True),
        ("server CPU µs per connect", lambda r: connect_cpu_us(r), True),
    ],
}


def connect_cpu_us(row: Row) -> float | None:
    """The server's CPU while the idle connections opened, per connection."""
    connected: int = row["connected"]
    cpu_s: float = row["server_cpu_s_connecting"]
    return round(1e6 * cpu_s / connected, 1) if connected else None


def transport_section(rows: list[Row]) -> list[str]:
    transport = [r for r in rows if r["family"] == "transport"]
    if not transport:
        return []
    lines = [
        "",
        "## Transport: our websocket fast path off / auto (ours only)",
        "",
        "Our server under `CODEMENTOR_WS_FAST_PATH=off` (stock uvicorn websockets through "
        "plain ASGI) and `auto` (`server/uvicorn_fast.py` when its start-up probe passes), the "
        "settings taking turns, one fresh server each. Ratio off / auto: above 1 is what the "
        "fast path saves. Delivery rows whose generator saturated get no ratio (⚠); memory "
        "and CPU per connection are read with the generator idle and are always given.",
        "",
        "| scenario | metric | off | auto | off / auto | generator |",
        "|---|---|---|---|---|---|",
    ]
    for kind, metrics in TRANSPORT_METRICS.items():
        arms = {r["fast_path"]: r for r in transport if r["kind"] == kind}
        off, auto = arms.get("off"), arms.get("auto")
        if off is None or auto is None:
            continue
        lines += arm_rows((off, "off"), (auto, "auto"), metrics, ratio)
    return lines


def tracing_section(rows: list[Row]) -> list[str]:
    traced = [r for r in rows if r["family"] == "tracing"]
    arms = {r["tracing"]: r for r in traced}
    off, on = arms.get("off"), arms.get("on")
    if off is None or on is None:
        return []
    lines = [
        "",
        "## Tracing: OpenTelemetry on / off (ours only)",
        "",
        "Our server with no OTLP endpoint (the API's no-op tracer) and with "
        "`OTEL_EXPORTER_OTLP_ENDPOINT` at a local sink (`bench/otlp_sink.py`, its own "
        "process), the settings taking turns, one fresh server each. Ratio on / off: 1 is "
        "no cost; nothing is traced per keystroke. Rows whose generator saturated get no "
        "ratio (⚠).",
        "",
        "| scenario | metric | off | on | on / off | generator |",
        "|---|---|---|---|---|---|",
    ]
    return lines + arm_rows((off, "off"), (on, "on"), DELIVERY_METRICS, lambda a, b: ratio(b, a))


def arm_rows(
    first: tuple[Row, str],
    second: tuple[Row, str],
    metrics: list[Metric],
    compare: Callable[[Any, Any], str],
) -> list[str]:
    """One scenario's rows of a two-settings table: each metric under both settings and
    ``compare(first, second)``, not quoted ("n/q") when a generator saturated unless the
    metric is read with the generator idle (its ``always``)."""
    (a, a_name), (b, b_name) = first, second
    saturated = bool(a["saturated"] or b["saturated"])
    scenario = a["scenario"] + (" ⚠" if saturated else "")
    generators = f"{a_name}: {gen_cell(a)}; {b_name}: {gen_cell(b)}"
    lines: list[str] = []
    for i, (label, read, always) in enumerate(metrics):
        quoted = compare(read(a), read(b)) if always or not saturated else "n/q"
        lines.append(
            f"| {scenario if i == 0 else ''} | {label} | {fmt(read(a))} | "
            f"{fmt(read(b))} | {quoted} | {generators if i == 0 else ''} |"
        )
    return lines


def quad(p: dict[str, Any] | None) -> str:
    """p50 / p95 / p99 / max of a percentiles dict."""
    p = p or {}
    return " / ".join(fmt(p.get(k)) for k in ("p50", "p95", "p99", "max"))


def per_frame_us(row: Row) -> float | None:
    """Server CPU µs per delivered frame, edits and cursors together."""
    frames = row["delivered"] + row.get("cursor_delivered", 0)
    return round(1e6 * row["cpu_s"] / frames, 1) if frames else None


def mixed_section(rows: list[Row]) -> list[str]:
    mixed = [r for r in rows if r["family"] == "mixed"]
    if not mixed:
        return []
    lines = [
        "",
        "## Mixed: 10,000 people on one process",
        "",
        "Broadcast classes (teacher 5 keystrokes/s + a cursor per keystroke, every student "
        "renewing its awareness every 15 s) and pair rooms (a fifth typing 3/s + a cursor "
        "per keystroke) on one server at once. Edits: teacher → every student and editor → "
        "the other editor; cursors: the same people's cursor awareness. Target: p99 < 100 ms "
        "for both, nothing lost. KiB per connection: (RSS with everyone connected − RSS "
        "before) / connected. Connect: everyone (all generators at once, "
        f"{IN_FLIGHT} handshakes in flight per generator process), per-client p50 / p99 "
        "the worst generator's. CPU µs/frame: server CPU over the window per delivered edit "
        "or cursor.",
        "",
        "| scenario | server | edits p50 / p95 / p99 / max ms | cursors p50 / p95 / p99 / "
        "max ms | lost edits · cursors | CPU % | CPU µs/frame | peak RSS MiB | KiB per conn "
        "| connect all s · p50 / p99 ms | generator | other CPU % | ours/node edits p99 · "
        "cursors p99 · CPU µs/frame · peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in mixed:
        other = partner(r, rows)
        ratios = "–"
        if r["server"] == OURS and other is not None:
            if r["saturated"] or other["saturated"]:
                ratios = "not quoted (generator saturated)"
            else:
                ratios = " · ".join([
                    ratio(r["p99"], other["p99"]),
                    ratio(r["cursor"]["p99"], other["cursor"]["p99"]),
                    ratio(per_frame_us(r), per_frame_us(other)),
                    ratio(r["peak_rss_mib"], other["peak_rss_mib"]),
                ])  # fmt: skip
        scenario = r["scenario"] + (" ⚠" if r["saturated"] else "")
        if r.get("other_cpu_percent", 0) > NOISY_LIMIT:
            scenario += " †"
        lines.append(
            f"| {scenario} | {r['server']} | {quad(r)} | {quad(r['cursor'])} | "
            f"{r['lost']} · {r['cursor_lost']} | {fmt(r['cpu_percent'])} | "
            f"{fmt(per_frame_us(r))} | {fmt(r['peak_rss_mib'])} | "
            f"{fmt(r['kib_per_connection'])} | {fmt(r['connect_wall_s'])} · "
            f"{fmt(r['connect_p50_ms'])} / {fmt(r['connect_p99_ms'])} | {gen_cell(r)} | "
            f"{fmt(r['other_cpu_percent'])} | {ratios} |"
        )
    lines += [
        "",
        "Mixed detail: classes and pair rooms apart (p50 / p95 / p99 / max ms), students' "
        "renewals at the teacher, and each generator process (kind: lag p99 ms / CPU %).",
        "",
        "| scenario | server | class edits | class cursors | pair edits | pair cursors | "
        "renewal → teacher | connected | generators | generator µs per frame read · cores "
        "the offered edits and cursors need at that cost |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in mixed:
        gens = " ".join(
            f"{k}: {g['lag_p99_ms']:g}/{g['cpu_percent']:g}"
            for k, g in zip(r["kinds"], r["generator"], strict=True)
        )
        lines.append(
            f"| {r['scenario']} | {r['server']} | {quad(r['edits']['class'])} | "
            f"{quad(r['cursors']['class'])} | {quad(r['edits']['pair'])} | "
            f"{quad(r['cursors']['pair'])} | {quad(r.get('awareness_delay_ms'))} | "
            f"{r['connected']}/{r['connections']} | {gens} | "
            f"{fmt(r.get('generator_us_per_frame'))} · {fmt(r.get('generator_cores_needed'))} "
            f"({fmt(r.get('offered_per_s'))}/s) |"
        )
    return lines


def failures_section(bench: Bench) -> list[str]:
    errors = [r for r in bench.rows if "error" in r]
    issues = list(bench.anomalies)
    for r in bench.rows:
        if "error" in r:
            continue
        where = f"{r['scenario']} on {r['server']}"
        if r.get("failures"):
            issues.append(f"{where}: connect failures {r['failures']}")
        if r.get("closes"):
            issues.append(f"{where}: server closed connections (close code: count) {r['closes']}")
        if r.get("denied"):
            issues.append(f"{where}: {r['denied']} permission-denied")
        if r.get("lost"):
            issues.append(f"{where}: {r['lost']} of {r['expected']} updates not delivered "
                          "within the drain deadline")  # fmt: skip
        for key in ("seed_failures", "warm_failures", "cold_failures"):
            if r.get(key):
                issues.append(f"{where}: {key} {r[key]}")
    if not (issues or errors):
        return []
    return ["", "## Failures and anomalies", "", *[f"- {i}" for i in issues]]
