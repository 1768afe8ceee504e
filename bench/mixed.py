"""The mixed family (issue 22, item 1): 10,000 people on one server process at once.

8 broadcast classes of 1,000 students (every student renews its awareness every 15 s, as
y-protocols' Awareness does; the teacher types 5 keystrokes/s with a cursor move per
keystroke) and 1,000 pair rooms of 2 editors (a fifth of them typing 3 keystrokes/s each,
with a cursor per keystroke; the others idle, renewing their awareness). Measured: the delay
of what everyone should see, edits and cursors apart (teacher → every student, editor → the
other editor), loss, the server's CPU and memory, the connect time of everyone, and every
generator's saturation. Node's server runs the same load at ``node_share`` (its all-to-all
awareness relay is past what the generators can read at full scale), ours too for the ratio.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.generator import Generator
from bench.plan import MixedPlan
from bench.servers import NODE, Server
from bench.stats import join_times, percentiles
from bench.traffic import RoomLoad, run_window, split, traffic_row
from rooms.roles import Role

if TYPE_CHECKING:
    from bench.scenarios import Bench

DRAIN_S = 10.0
IN_FLIGHT = 50  # handshakes in flight per generator process


def class_rooms(server: Server, plan: MixedPlan, students: int) -> list[RoomLoad]:
    """``plan.classes`` broadcast rooms: the owner (writer g = class index) and viewers."""
    rooms = []
    for c in range(plan.classes):
        name, owner = server.create_room("broadcast")
        readers = [
            server.url(name, server.token(name, Role.VIEWER, f"student-{i}"))
            for i in range(students)
        ]
        rooms.append(RoomLoad(writers=[(c, server.url(name, owner))], readers=readers))
    return rooms


def pair_rooms(server: Server, count: int, active: int, first_g: int) -> list[RoomLoad]:
    """``count`` pair rooms (owner + editor); ``active`` of them, spread evenly, have both
    typing (writers from ``first_g`` on); the others' editors only hold the room open."""
    rooms = []
    g = first_g
    every = max(1, count // active) if active else 0
    typing = 0
    for i in range(count):
        name, owner = server.create_room("pair")
        urls = [server.url(name, owner), server.url(name, server.token(name, Role.EDITOR, "b"))]
        if every and i % every == 0 and typing < active:
            rooms.append(RoomLoad(writers=[(g, urls[0]), (g + 1, urls[1])]))
            g, typing = g + 2, typing + 1
        else:
            rooms.append(RoomLoad(readers=urls))
    return rooms


def drive_mixed(server: Server, plan: MixedPlan, share: float, label: str) -> dict[str, Any]:
    """One window of the mixed load at ``share`` of the plan's scale."""
    students = round(plan.students * share)
    classes = class_rooms(server, plan, students)
    pairs = pair_rooms(
        server, round(plan.pairs * share), round(plan.active_pairs * share), plan.classes
    )
    connections = sum(len(r.writers) + len(r.readers) for r in classes + pairs)
    rss0, _ = server.memory()
    workdir = Path(tempfile.mkdtemp(prefix="bench-mixed-"))
    groups = [
        ("class", split(classes, plan.class_procs), plan.teacher_rate),
        ("pair", split(pairs, plan.pair_procs), plan.pair_rate),
    ]
    gens: list[Generator] = []
    kinds: list[str] = []
    try:
        for kind, parts, rate in groups:
            for part in parts:
                p = len(gens)
                config = {
                    "mode": "traffic", "proc": p, "out": str(workdir / f"gen-{p}"),
                    "rooms": part, "rate": rate, "duration_s": plan.window_s,
                    "drain_s": DRAIN_S, "awareness_s": 0, "renew_s": plan.renew_s,
                    "cursor": True, "concurrency": IN_FLIGHT,
                    "max_s": 240 + plan.window_s + DRAIN_S,
                }  # fmt: skip
                gens.append(Generator("loadgen.mjs", config, workdir, f"{label}-gen{p}"))
                kinds.append(kind)
        window = run_window([server], gens, workdir, plan.window_s + DRAIN_S + 60)
        by_kind = {k: [d for d, kk in zip(window.dones, kinds, strict=True) if kk == k]
                   for k in ("class", "pair")}  # fmt: skip
        cursors = {k: join_times(workdir, d, "c", "cursor_received") for k, d in by_kind.items()}
        edits = {k: join_times(workdir, d) for k, d in by_kind.items()}
    finally:
        for g in gens:
            g.close()
        shutil.rmtree(workdir, ignore_errors=True)
    row = traffic_row(window, plan.window_s, sum(len(r.readers) for r in classes + pairs))
    row.pop("_delays", None)
    cursor_all = cursors["class"] + cursors["pair"]
    cursor_expected = sum(d["cursor_expected"] for d in window.dones)
    connected = row["connected"]
    # What reading costs the generators: their CPU over the window per frame they read
    # (edits, cursors, awareness), and the cores the offered load would take at that cost.
    gen_cpu = sum(g["cpu_percent"] * g["wall_ms"] / 1e5 for g in row["generator"])
    frames = row["delivered"] + len(cursor_all) + sum(d["awareness_frames"] for d in window.dones)
    offered = (row["expected"] + cursor_expected) / plan.window_s
    gen_us = 1e6 * gen_cpu / frames if frames else None
    return {
        **row,
        "connections": connections,
        "students": students * plan.classes,
        "pair_rooms": len(pairs),
        "edits": {k: percentiles(v) for k, v in edits.items()},
        "cursor": percentiles(cursor_all),
        "cursors": {k: percentiles(v) for k, v in cursors.items()},
        "cursor_expected": cursor_expected,
        "cursor_delivered": len(cursor_all),
        "cursor_lost": cursor_expected - len(cursor_all),
        "rss_before_mib": round(rss0, 1),
        "kib_per_connection": (
            round(1024 * (window.rss_connected - rss0) / connected, 1) if connected else None
        ),
        "connect_p50_ms": max(r["connect_ms"]["p50"] or 0 for r in window.readies),
        "connect_p99_ms": max(r["connect_ms"]["p99"] or 0 for r in window.readies),
        "kinds": kinds,
        "generator_cpu_s": round(gen_cpu, 2),
        "generator_us_per_frame": round(gen_us, 1) if gen_us is not None else None,
        "offered_per_s": round(offered),
        "generator_cores_needed": round(gen_us * offered / 1e6, 2) if gen_us else None,
    }


def run_mixed(bench: Bench) -> None:
    """Ours at full scale; then ours and Node at ``node_share`` (the ratio row)."""
    plan = bench.plan.mixed
    shares = [1.0] if plan.node_share >= 1 else [1.0, plan.node_share]
    if plan.node_share < 1:
        bench.skipped.append(f"mixed at full scale on {NODE}: not run. {plan.node_note}.")
    for share in shares:
        conns = round(plan.classes * (plan.students * share + 1) + 2 * plan.pairs * share)
        label = f"mixed-{conns}"
        scenario = (
            f"mixed: {plan.classes} classes × {round(plan.students * share)} students + "
            f"{round(plan.pairs * share)} pair rooms ({round(plan.active_pairs * share)} "
            f"typing) = {conns:,} connections"
        )
        for server in bench.servers(label):
            if server.name == NODE and share > plan.node_share:
                continue
            bench.guarded("mixed", label, server, _mixed, bench, scenario, share, conns)


def _mixed(
    server: Server, label: str, bench: Bench, scenario: str, share: float, conns: int
) -> None:
    row = drive_mixed(server, bench.plan.mixed, share, label)
    bench.record({"family": "mixed", "scenario": scenario, "scale": conns, **row})
