"""The workspace family: a room of 100 files totalling 1 MB (the entry file in ``code``, 99
more in the ``files`` Map; crdt/schema.py) against a room of one 1 MB file in ``code``, on
one server of ours in one run, the two kinds taking turns at every step. Measured: cold load
from the store (after a restart) to a fresh client's full sync, sync to a fresh client of a
room in memory (time and bytes), and an editor typing inside one existing file (server CPU
per delivered update, delay to a second client). The report gives workspace / single."""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.cold import wait_idle
from bench.generator import Generator
from bench.servers import Ours, Server
from bench.stats import LATE_LIMIT_MS, percentiles, saturated
from rooms.roles import Role

if TYPE_CHECKING:
    from bench.scenarios import Bench

KINDS = ("workspace", "single")
Room = dict[str, str]


def cpu_ns(pid: int) -> int:
    """CPU time of every live thread of ``pid`` in ns (``/proc/<pid>/task/*/schedstat``).
    ``/proc/<pid>/stat`` counts 10 ms ticks, too coarse for a window of ~0.2 s of work."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
    return total


def turns(items: list[Room]) -> list[Room]:
    """Rooms in pairs (one of each kind), the kind going first alternating pair by pair, so
    neither kind always joins right after a restart or always second."""
    by_kind = {k: [r for r in items if r["kind"] == k] for k in KINDS}
    out: list[Room] = []
    for i, pair in enumerate(zip(*by_kind.values(), strict=True)):
        out += list(pair) if i % 2 == 0 else list(reversed(pair))
    return out


def abba(windows: int) -> list[str]:
    """The kinds' typing windows: workspace, single, single, workspace, ... (``windows``
    each), so a drift of the machine over the run falls on both alike."""
    order: list[str] = []
    for i in range(windows):
        order += list(KINDS) if i % 2 == 0 else list(reversed(KINDS))
    return order


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def run_workspace(bench: Bench) -> None:
    """One server, both kinds of room; a row per kind."""
    out: dict[str, Any] = {}
    server = Ours("workspace", bench.data_dir("workspace-"))
    bench.guarded("workspace", "workspace", server, _measure, bench, out)
    for kind in KINDS:
        if kind in out:
            bench.record(out[kind])


def _restart(server: Server) -> None:
    """Stop (ours flushes every pending update) and start again on the same data: every
    room is then loaded from the store by its next join."""
    wait_idle(server, 30)
    stops = server.stops[:]
    server.stop()
    server.stops = stops + server.stops
    server.start()


def _measure(server: Server, label: str, bench: Bench, out: dict[str, Any]) -> None:
    plan = bench.plan.workspace
    workdir = Path(tempfile.mkdtemp(prefix="bench-workspace-"))
    config = {"edits": plan.edits, "files": plan.files, "max_s": 900}
    gen = Generator("workspace.mjs", config, workdir, f"{label}-gen")
    try:
        _drive(server, gen, bench, out)
    finally:
        gen.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _drive(server: Server, gen: Generator, bench: Bench, out: dict[str, Any]) -> None:
    plan = bench.plan.workspace
    built = gen.expect("built", 120)
    rooms: list[Room] = []
    for i in range(plan.rooms):
        for kind in KINDS:
            name = server.create_room("pair")[0]
            rooms.append({"kind": kind, "key": f"{kind}-{i}", "name": name})

    def urls(role: Role, who: str) -> list[Room]:
        return [{**r, "url": server.url(r["name"], server.token(r["name"], role, who))}
                for r in turns(rooms)]  # fmt: skip

    def call(op: str, event: str, timeout: float, **args: Any) -> dict[str, Any]:
        gen.send(json.dumps({"op": op, **args}))
        return gen.expect(event, timeout)

    seeded = call("seed", "seeded", 600, rooms=urls(Role.EDITOR, "seeder"))
    _restart(server)
    joins: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    failures: dict[str, dict[str, int]] = {}
    generators: list[dict[str, Any]] = []

    def join(phase: str, hold: bool) -> None:
        joined = call("join", "joined", 900, rooms=urls(Role.VIEWER, "reader"), hold=hold)
        joins[phase] += joined["results"]
        generators.append(joined["generator"])
        for key, n in joined["failures"].items():
            failures.setdefault(phase, {})[key] = failures.get(phase, {}).get(key, 0) + n

    join("cold", hold=True)  # these stay as the rooms' readers (and keep them loaded)
    for _ in range(plan.warm_passes):
        join("warm", hold=False)
    writers = call("writers", "writers", 300, rooms=urls(Role.EDITOR, "writer"))
    windows: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    pid = server.pids[0]
    # The first keystroke into a room just loaded costs more than the rest (the room builds
    # what its update checks need on first use): one second of typing per kind first, kept
    # apart as "first keystrokes", so the windows measure typing as it goes on.
    # Waits for every first keystroke (up to 60 s), so none is left for the windows.
    first: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        first[kind] = call("type", "typed", 120, kind=kind, rate=plan.rate, duration_s=1,
                           drain_s=60)  # fmt: skip
    for kind in abba(plan.windows):
        wait_idle(server, 10)  # what one window left (the store's flush) is not the next's
        cpu0, t0 = cpu_ns(pid), time.monotonic()
        typed = call("type", "typed", plan.window_s + 60, kind=kind, rate=plan.rate,
                     duration_s=plan.window_s)  # fmt: skip
        typed["server_cpu_s"] = (cpu_ns(pid) - cpu0) / 1e9
        typed["elapsed_s"] = time.monotonic() - t0
        windows[kind].append(typed)
    call("release", "released", 60)
    _restart(server)
    join("cold", hold=False)  # now with what was typed, loaded from the store again
    for kind in KINDS:
        out[kind] = _row(kind, built, seeded, joins, windows[kind], writers, failures,
                         generators)  # fmt: skip
        warmup = first[kind]
        out[kind]["first_keystrokes_max_ms"] = max(warmup["delays"], default=None)
        out[kind]["first_keystrokes_lost"] = warmup["sent"] - warmup["delivered"]


def _row(
    kind: str,
    built: dict[str, Any],
    seeded: dict[str, Any],
    joins: dict[str, list[dict[str, Any]]],
    windows: list[dict[str, Any]],
    writers: dict[str, Any],
    failures: dict[str, dict[str, int]],
    generators: list[dict[str, Any]],
) -> dict[str, Any]:
    """One kind's numbers: medians of its joins, keystroke windows pooled."""

    def of(phase: str, field: str) -> list[float]:
        return [j[field] for j in joins[phase] if j["kind"] == kind]

    delays = [d for w in windows for d in w["delays"]]
    delivered = sum(w["delivered"] for w in windows)
    sent = sum(w["sent"] for w in windows)
    cpu = sum(w["server_cpu_s"] for w in windows)
    gen_sat = any(saturated(w["generator"]) or w["late_p99_ms"] > LATE_LIMIT_MS for w in windows)
    doc = built[kind]
    keys: Callable[[str], dict[str, Any]] = lambda phase: {  # noqa: E731
        f"{phase}_sync_ms": median(of(phase, "sync_ms")),
        f"{phase}_sync_ms_max": max(of(phase, "sync_ms"), default=None),
        f"{phase}_received_ms": median(of(phase, "received_ms")),
        f"{phase}_bytes": median(of(phase, "bytes")),
        f"{phase}_joins": len(of(phase, "sync_ms")),
    }
    return {
        "family": "workspace",
        "kind": kind,
        "scenario": f"{kind}: {doc['files']} file(s), {doc['text_bytes']:,} characters",
        "files": doc["files"],
        "doc_text_bytes": doc["text_bytes"],
        "doc_update_bytes": doc["update_bytes"],
        "seed_s": round(seeded["wall_ms"] / 1000, 2),
        "seed_failures": seeded["failures"],
        **keys("cold"),
        **keys("warm"),
        "join_failures": failures,
        "writer_failures": writers["failures"],
        "sent": sent,
        "delivered": delivered,
        "lost": sent - delivered,
        "expected": sent,
        **percentiles(delays),
        "cpu_us_per_update": round(1e6 * cpu / delivered, 1) if delivered else None,
        "cpu_us_each": [
            round(1e6 * w["server_cpu_s"] / w["delivered"], 1) if w["delivered"] else None
            for w in windows
        ],
        "p99_each": [percentiles(list(w["delays"]))["p99"] for w in windows],
        "typing_generator": [w["generator"] for w in windows],
        "typing_late_p99_ms": [w["late_p99_ms"] for w in windows],
        "join_generator": generators,
        "saturated": gen_sat,
    }


# -- the report's table --

Row = dict[str, Any]
METRICS: list[tuple[str, str]] = [
    ("load from the store: connect → whole doc, median ms", "cold_sync_ms"),
    ("load from the store: connect → last frame, median ms", "cold_received_ms"),
    ("load from the store: slowest join, ms", "cold_sync_ms_max"),
    ("sync to a fresh client (in memory): median ms", "warm_sync_ms"),
    ("sync to a fresh client: bytes received", "warm_bytes"),
    ("keystrokes: server CPU µs per delivered update", "cpu_us_per_update"),
    ("keystrokes: delay p50 ms", "p50"),
    ("keystrokes: delay p99 ms", "p99"),
    ("first keystrokes after the load: slowest delay ms", "first_keystrokes_max_ms"),
]


def workspace_section(rows: list[Row]) -> list[str]:
    by_kind = {r["kind"]: r for r in rows if r["family"] == "workspace"}
    w, s = by_kind.get("workspace"), by_kind.get("single")
    if w is None or s is None:
        return []
    sat = (
        " (generator saturated while typing: keystroke rows not quoted ⚠)"
        if (w["saturated"] or s["saturated"])
        else ""
    )
    lines = [
        "",
        "## Workspace: 100 files against one file of the same size (ours only)",
        "",
        f"workspace: {w['files']} files, {w['doc_text_bytes']:,} characters "
        f"({w['doc_update_bytes']:,} B update); single: {s['doc_text_bytes']:,} characters "
        f"({s['doc_update_bytes']:,} B update). Joins: {w['cold_joins']} cold and "
        f"{w['warm_joins']} warm per kind; keystrokes: {w['delivered']} / {s['delivered']} "
        f"delivered, per-window CPU µs/update workspace {w['cpu_us_each']}, single "
        f"{s['cpu_us_each']}{sat}.",
        "",
        "| metric | workspace | single | workspace / single |",
        "|---|---|---|---|",
    ]
    for label, key in METRICS:
        quoted = not (key in ("cpu_us_per_update", "p50", "p99") and sat)
        cell = ratio_cell(w.get(key), s.get(key)) if quoted else "n/q"
        lines.append(f"| {label} | {w.get(key)} | {s.get(key)} | {cell} |")
    return lines


def ratio_cell(a: Any, b: Any) -> str:
    if a is None or b is None or not b:
        return "–"
    return f"{float(a) / float(b):.2f}"
