"""The ``targets`` family: the seed's service targets measured on our server while 5,000
sockets are live and a broadcast class is typing (ours only: Node has no REST API, no
store histograms, no AI and no runner).

    .venv/bin/python bench/service_targets.py [--quick] [--runs 3] [--mongo-url URL] [--out NAME]
    .venv/bin/python bench/run.py --only targets        # the same family, one run per plan

Load (the whole window): one broadcast class (the owner types 10 updates/s, ``readers``
viewers read) and idle readers 10 to a pair room, ``sockets`` in all, over 2 Node generator
processes (bench/loadgen.mjs). While it runs, the driver (one asyncio loop):

1. AI: ``asks`` questions one after another in a pair room, the Anthropic double
   (tests/anthropic_double.py, the real SSE stream through the real SDK) answering each at
   once: ms from ``POST /ai`` to the answer's first text in a websocket peer's document
   (bench/ai_delay.py). The model's time is not ours, so the double takes none.
2. Runs: ``runs`` runs one after another on the Judge0 double answering at once: request →
   submission at Judge0, and Judge0's final answer → the result in 3 peers' documents
   (bench/runner_delay.py). The wait between is the runner's first poll (100 ms by design).
3. REST: every operation of the served OpenAPI document plus /healthz, /readyz, /metrics
   and /api/openapi.json, with valid input (bench/targets_rest.py), ``calls`` times each
   one after another, then ``workers`` clients at once over the operations that may
   overlap. p50/p95/p99/max per operation and phase, client side (httpx, keep-alive).
4. Store: ``codementor_store_flush_seconds`` and ``codementor_store_load_seconds`` (and
   ``codementor_room_load_seconds``) read from /metrics before and after steps 1-3; the
   window's observations are the difference, their p95 interpolated in the bucket as
   Prometheus' ``histogram_quantile`` does, and the exact share at or under 100 ms.

Limits raised for the run (said in the report): REST rate, runs per minute, forks per
hour, AI tokens per hour. Class messages (10 a minute per person) are paced by a new
student per message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.ai_delay import AiWatcher, first_deltas  # noqa: E402
from bench.generator import Generator  # noqa: E402
from bench.plan import TargetsPlan  # noqa: E402
from bench.procs import cpu_seconds, machine_busy  # noqa: E402
from bench.runner_delay import TimedJudge0, Watcher, run_shares  # noqa: E402
from bench.servers import Ours, Server  # noqa: E402
from bench.stats import join_times, percentiles  # noqa: E402
from bench.targets_rest import Call, Rest, drive, operations  # noqa: E402
from bench.traffic import RoomLoad, Window, split, traffic_row  # noqa: E402
from rooms.roles import Role  # noqa: E402
from tests.anthropic_double import AnthropicDouble, Reply  # noqa: E402
from tests.test_ai import ai_entries  # noqa: E402

if TYPE_CHECKING:
    from bench.scenarios import Bench

JUDGE0_TOKEN = "bench-judge0-token"
HISTOGRAMS = (
    "codementor_store_flush_seconds",
    "codementor_store_load_seconds",
    "codementor_room_load_seconds",
)
MONGO_ENV = "BENCH_TARGETS_MONGO_URL"  # --mongo-url: the store under test (else SQLite)
RUNS_ENV = "BENCH_TARGETS_RUNS"  # --runs: repeats instead of the plan's
Row = dict[str, Any]


def server_env(judge0: str, anthropic: str) -> dict[str, str]:
    env = {
        "CODEMENTOR_JUDGE0_URL": judge0,
        "CODEMENTOR_JUDGE0_TOKEN": JUDGE0_TOKEN,
        "CODEMENTOR_RUNNER_RUNS_PER_MINUTE": "100000000",
        "CODEMENTOR_RUNNER_QUEUE": "200",
        "CODEMENTOR_FORKS_PER_USER_PER_HOUR": "100000000",
        "ANTHROPIC_API_KEY": "bench",
        "CODEMENTOR_AI_BASE_URL": anthropic,
        "CODEMENTOR_AI_ROOM_TOKENS_PER_HOUR": "1000000000",
        "CODEMENTOR_AI_GLOBAL_TOKENS_PER_HOUR": "1000000000",
    }
    if os.environ.get(MONGO_ENV):
        env["CODEMENTOR_MONGO_URL"] = os.environ[MONGO_ENV]
    return env


def run_targets(bench: Bench) -> None:
    plan = bench.plan.targets
    judge0 = TimedJudge0(auth_token=JUDGE0_TOKEN).start()
    anthropic = AnthropicDouble().start()
    try:
        judge0.script("BENCH-INSTANT", status_id=3, stdout="ok\n")
        # Held until cancelled (the cancel case), but not so long that held submissions
        # pile up in the double.
        judge0.script("BENCH-HOLD", status_id=3, delay=3, stdout="slow\n")
        store = "MongoDB" if os.environ.get(MONGO_ENV) else "SQLite"
        scenario = (
            f"targets: {plan.sockets:,} sockets, class of {plan.readers} typing 10/s, store {store}"
        )
        for run in range(int(os.environ.get(RUNS_ENV) or plan.repeats)):
            label = f"targets-run{run + 1}"
            env = server_env(judge0.url, anthropic.url)
            server = Ours(label, bench.data_dir("targets-"), env=env)
            bench.guarded(
                "targets",
                label,
                server,
                _targets,
                scenario,
                run + 1,
                plan,
                judge0,
                anthropic,
                bench.record,
            )
    finally:
        judge0.stop()
        anthropic.stop()


def _targets(
    server: Server,
    label: str,
    scenario: str,
    run: int,
    plan: TargetsPlan,
    judge0: TimedJudge0,
    anthropic: AnthropicDouble,
    record: Callable[[Row], None],
) -> None:
    assert isinstance(server, Ours)
    class_name, owner = server.create_room("broadcast")
    rooms = [
        RoomLoad(
            writers=[(0, server.url(class_name, owner))],
            readers=[
                server.url(class_name, server.token(class_name, Role.VIEWER, f"student-{i}"))
                for i in range(plan.readers)
            ],
        )
    ]
    idle = plan.sockets - plan.readers - 1
    for r in range((idle + 9) // 10):
        name, _ = server.create_room("pair")
        rooms.append(
            RoomLoad(
                readers=[
                    server.url(name, server.token(name, Role.EDITOR, f"idle-{i}"))
                    for i in range(min(10, idle - 10 * r))
                ]
            )
        )
    workdir = Path(tempfile.mkdtemp(prefix="bench-targets-"))
    gens: list[Generator] = []
    try:
        for p, part in enumerate(split(rooms, plan.procs)):
            config = {
                "mode": "traffic",
                "proc": p,
                "out": str(workdir / f"gen-{p}"),
                "rooms": part,
                "rate": 10,
                "duration_s": plan.window_s,
                "drain_s": 10,
                "awareness_s": 0,
                "concurrency": 50,
                "max_s": 300 + plan.window_s,
            }
            gens.append(Generator("loadgen.mjs", config, workdir, f"{label}-gen{p}"))
        readies = [g.expect("ready", 280) for g in gens]
        rss_connected, _ = server.memory()
        t0 = time.monotonic_ns() + 1_000_000_000
        for g in gens:
            g.send(f"go {t0}")
        time.sleep(max(0.0, (t0 - time.monotonic_ns()) / 1e9))
        cpu0, busy0 = [cpu_seconds(pid) for pid in server.pids], machine_busy()
        deadline = time.monotonic() + plan.window_s
        measured = asyncio.run(measure(server, judge0, anthropic, plan, deadline))
        measured["live_sockets_after"] = _gauge(
            measured.pop("_metrics_after"), "codementor_connections"
        )
        measured["driver_s"] = round(time.monotonic() - (deadline - plan.window_s), 1)
        dones = [g.expect("done", plan.window_s + 120) for g in gens]
        elapsed = (time.monotonic_ns() - t0) / 1e9
        cpu = [cpu_seconds(pid) - c for pid, c in zip(server.pids, cpu0, strict=True)]
        busy = machine_busy() - busy0
        rss, hwm = server.memory()
        window = Window(
            readies, dones, join_times(workdir, dones), cpu, busy, elapsed, rss_connected, rss, hwm
        )
    finally:
        for g in gens:
            g.close()
        shutil.rmtree(workdir, ignore_errors=True)
    traffic = traffic_row(window, plan.window_s, plan.readers)
    traffic.pop("_delays", None)
    row = {
        "family": "targets",
        "scenario": scenario,
        "run": run,
        "scale": plan.sockets,
        **traffic,
        **measured,
    }
    record(row)


async def measure(
    server: Ours,
    judge0: TimedJudge0,
    anthropic: AnthropicDouble,
    plan: TargetsPlan,
    deadline: float,
) -> Row:
    """AI, runs, REST, then the store histograms; all within the traffic window."""
    base = f"http://127.0.0.1:{server.ports[0]}"
    limits = httpx.Limits(max_connections=plan.workers + 4)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        before = (await http.get("/metrics")).text
        openapi = (await http.get("/api/openapi.json")).json()

        async def ai_reply(kind: str) -> str:
            """An AI suggestion (review room V) or applied edit (pair room U, AI edits
            on): the chat entry's id once the answer is done."""
            key = "V" if kind == "suggest" else "U"
            peer = peers[key]
            if kind == "suggest":
                tool = ("tool", "insert_text", {"line": 1, "text": "import os\n"})
            else:
                tool = (
                    "tool",
                    "replace_range",
                    {"start_line": 1, "end_line": 1, "new_text": "x = 3\n"},
                )
            anthropic.script(Reply([("text", "Here."), tool]))
            peer.expect()
            await rest.must(
                Call(
                    "POST",
                    f"/api/rooms/{rest.ids[key]}/ai",
                    rest.ids[f"{key}_owner"],
                    json={"prompt": "fix it"},
                    ok=(202,),
                )
            )
            await asyncio.wait_for(peer.done.wait(), 30)
            return str(ai_entries(peer)[-1].get("id"))

        async def ai_idle() -> None:
            await asyncio.wait_for(peers["P"].done.wait(), 30)
            peers["P"].expect()

        rest = Rest(http, server.secret, ai_reply, ai_idle)
        await rest.setup()
        ids = rest.ids
        ws = f"ws://127.0.0.1:{server.ports[0]}/ws"
        peers: dict[str, AiWatcher] = {}
        for key in ("P", "V", "U"):
            peers[key] = AiWatcher(f"{ws}/{ids[key]}")
            viewer = rest.token(ids[key], Role.VIEWER, f"Peer{key}")
            await peers[key].connect(f"token={viewer}")
            await peers[key].wait_synced()
        watchers = [Watcher(f"{ws}/{ids['W']}") for _ in range(3)]
        for n, watcher in enumerate(watchers):
            await watcher.connect(f"token={rest.token(ids['W'], Role.VIEWER, f'Watch{n}')}")
            await watcher.wait_synced()
        try:
            ai = await first_deltas(http, ids["P"], ids["P_owner"], peers["P"], plan.asks)
            runs = await run_shares(http, ids["W"], ids["W_owner"], watchers, judge0, plan.runs)
            started = time.monotonic()
            cases = rest.cases("u-peerp")
            await drive(rest, cases, plan.calls, plan.workers, deadline)
            rest_s = time.monotonic() - started
        finally:
            for client in [*peers.values(), *watchers]:
                await client.close()
        after = (await http.get("/metrics")).text
    served = operations(openapi)
    called = {c.op.split("?")[0] for c in cases}
    return {
        "rest": rest_table(rest, cases),
        "rest_s": round(rest_s, 1),
        "rest_cut_short": time.monotonic() > deadline,
        "not_called": [op for op in served if op not in called],
        "ai_ms": {k: percentiles(v) | {"mean": _mean(v)} for k, v in ai.items()},
        "run_ms": {k: percentiles(v) | {"mean": _mean(v)} for k, v in runs.items()},
        "store": {h: histogram_delta(before, after, h) for h in HISTOGRAMS},
        "store_kind": "mongo" if os.environ.get(MONGO_ENV) else "sqlite",
        "judge0_errors": _counts(before, after, "codementor_judge0_errors_total"),
        "breaker_opened": _counts(before, after, "codementor_runner_breaker_open"),
        "_metrics_after": after,
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def rest_table(rest: Rest, cases: list[Any]) -> list[Row]:
    """Per operation and phase: calls, errors (unexpected statuses), percentiles."""
    out = []
    for case in cases:
        for phase in ("sequential", "concurrent"):
            mine = [s for s in rest.samples if s.op == case.op and s.phase == phase]
            if not mine:
                continue
            bad: dict[str, int] = {}
            for s in mine:
                if not s.ok:
                    bad[str(s.status)] = bad.get(str(s.status), 0) + 1
            out.append(
                {
                    "op": case.op,
                    "phase": phase,
                    "n": len(mine),
                    "errors": bad,
                    **percentiles([s.ms for s in mine]),
                }
            )
    return out


def _samples(text: str, name: str) -> dict[str, float]:
    """Every sample of metric family ``name`` in a Prometheus text page: line → value."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _counts(before: str, after: str, name: str) -> dict[str, float]:
    """The samples of ``name`` that changed between two scrapes, by line."""
    b, a = _samples(before, name), _samples(after, name)
    return {k: v - b.get(k, 0.0) for k, v in a.items() if v != b.get(k, 0.0)}


def _gauge(text: str, name: str) -> float | None:
    return _samples(text, name).get(name)


def histogram_delta(before: str, after: str, name: str) -> Row:
    """The observations of histogram ``name`` between two scrapes: count, mean, share at
    or under 100 ms, p50/p95/p99 interpolated within buckets (``histogram_quantile``)."""
    b, a = _samples(before, name), _samples(after, name)
    buckets: list[tuple[float, float]] = []
    for key, value in a.items():
        if key.startswith(f"{name}_bucket"):
            le = key.split('le="')[1].split('"')[0]
            buckets.append((float(le), value - b.get(key, 0.0)))
    buckets.sort()
    count = a.get(f"{name}_count", 0.0) - b.get(f"{name}_count", 0.0)
    total = a.get(f"{name}_sum", 0.0) - b.get(f"{name}_sum", 0.0)

    def quantile(q: float) -> float | None:
        if count <= 0:
            return None
        rank, lower, below = q * count, 0.0, 0.0
        for le, cumulative in buckets:
            if cumulative >= rank:
                if le == float("inf"):
                    return round(lower * 1000, 3)
                share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
                return round((lower + (le - lower) * share) * 1000, 3)
            lower, below = le, cumulative
        return None

    under = next((c for le, c in buckets if le == 0.1), 0.0)
    return {
        "count": int(count),
        "mean_ms": round(1000 * total / count, 3) if count else None,
        "p50_ms": quantile(0.5),
        "p95_ms": quantile(0.95),
        "p99_ms": quantile(0.99),
        "share_under_100ms": round(under / count, 4) if count else None,
    }


# -- the report -----------------------------------------------------------------------


def _verdict(measured: float | None, target: float) -> str:
    if measured is None:
        return "not measured"
    return "met" if measured < target else "missed"


def targets_section(rows: list[Row]) -> list[str]:
    runs = [r for r in rows if r.get("family") == "targets"]
    if not runs:
        return []
    lines = ["", "## Service targets (ours only)", ""]
    lines += [
        f"Scenario: {runs[0]['scenario']}; {len(runs)} run(s). Each cell: the range "
        "over the runs (one number: one run).",
        "",
    ]
    lines += ["| target | measured | met? |", "|---|---|---|"]

    def span(values: list[float | None]) -> tuple[str, float | None]:
        got = [v for v in values if v is not None]
        if not got:
            return "–", None
        lo, hi = min(got), max(got)
        return (f"{lo:.1f}" if lo == hi else f"{lo:.1f}-{hi:.1f}"), hi

    def worst_rest(r: Row, skip: str = "") -> float | None:
        values = [e["p95"] for e in r["rest"] if e["p95"] is not None and e["op"] != skip]
        return max(values) if values else None

    text, worst = span([worst_rest(r) for r in runs])
    over = sorted({e["op"] for r in runs for e in r["rest"] if (e["p95"] or 0) >= 200})
    lines.append(
        f"| every REST operation p95 < 200 ms (worst operation) | {text} ms | "
        f"{_verdict(worst, 200)} |"
    )
    rotate = "POST /api/rooms/{room}/rotate"
    text, worst = span([worst_rest(r, rotate) for r in runs])
    lines.append(
        f"| every operation but rotate (which waits for the next whole second by design) "
        f"| {text} ms | {_verdict(worst, 200)} |"
    )
    for phase in ("sequential", "concurrent"):
        met = [
            f"{sum(1 for e in r['rest'] if e['phase'] == phase and (e['p95'] or 0) < 200)}"
            f"/{sum(1 for e in r['rest'] if e['phase'] == phase)}"
            for r in runs
        ]
        lines.append(f"| operations with p95 < 200 ms, {phase} (per run) | {', '.join(met)} | – |")
    for hist, what in (
        ("codementor_store_flush_seconds", "store flush"),
        ("codementor_store_load_seconds", "store load"),
        ("codementor_room_load_seconds", "room load (store + document)"),
    ):
        text, worst = span([r["store"][hist]["p95_ms"] for r in runs])
        counts = "/".join(str(r["store"][hist]["count"]) for r in runs)
        lines.append(
            f"| {what} p95 < 100 ms ({counts} in the window) | {text} ms | {_verdict(worst, 100)} |"
        )
    text, worst = span([r["ai_ms"]["first_delta"]["mean"] for r in runs])
    p95, _ = span([r["ai_ms"]["first_delta"]["p95"] for r in runs])
    lines.append(
        f"| AI, our share: POST /ai → first text at a peer, mean < 2 s (p95 {p95} "
        f"ms) | {text} ms | {_verdict(worst, 2000)} |"
    )
    for key, what in (
        ("submit", "run: request → submission at Judge0"),
        ("result_to_peers", "run: Judge0 result → every peer"),
        ("total", "run: request → result at every peer (first poll included)"),
    ):
        text, worst = span([r["run_ms"][key]["p95"] for r in runs])
        lines.append(
            f"| {what}, p95 (< 5 s for the whole run) | {text} ms | {_verdict(worst, 5000)} |"
        )
    worst_ops = []
    for r in runs:
        top = max(r["rest"], key=lambda e: e["p95"] or 0)
        worst_ops.append(f"run {r['run']}: `{top['op']}` ({top['phase']}) {top['p95']} ms")
    lines += ["", "Slowest operation at p95: " + "; ".join(worst_ops) + "."]
    trouble = [f"run {r['run']}: {r.get('judge0_errors')}" for r in runs if r.get("judge0_errors")]
    if trouble:
        lines += ["", "Judge0 errors seen by the runner: " + "; ".join(trouble) + "."]
    text, _ = span([r.get("live_sockets_after") for r in runs])
    other, _ = span([r.get("other_cpu_percent") for r in runs])
    cpu, _ = span([r.get("cpu_percent") for r in runs])
    p99, _ = span([r.get("p99") for r in runs])
    lines += [
        "",
        f"Live sockets at the end: {text}; the class's delivery p99 {p99} ms; server "
        f"CPU {cpu} %; other CPU {other} %; lost "
        f"{'/'.join(str(r.get('lost')) for r in runs)}; saturated "
        f"{'/'.join(str(r.get('saturated')) for r in runs)}.",
        "",
    ]
    lines += [
        "| operation | phase | calls | errors | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_op: dict[tuple[str, str], list[Row]] = {}
    for r in runs:
        for e in r["rest"]:
            by_op.setdefault((e["op"], e["phase"]), []).append(e)
    for (op, phase), entries in by_op.items():
        cells = [span([e[k] for e in entries])[0] for k in ("p50", "p95", "p99", "max")]
        errors = sum(sum(e["errors"].values()) for e in entries)
        calls = sum(e["n"] for e in entries)
        lines.append(f"| `{op}` | {phase} | {calls} | {errors} | " + " | ".join(cells) + " |")
    if over:
        lines += ["", "p95 ≥ 200 ms in some run: " + ", ".join(f"`{op}`" for op in over)]
    missing = sorted({op for r in runs for op in r.get("not_called", [])})
    if missing:
        lines += ["", "Not called: " + ", ".join(f"`{m}`" for m in missing)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=None, help="repeats (default: the plan's)")
    parser.add_argument("--mongo-url", default=None, help="measure the Mongo store at this URL")
    parser.add_argument("--out", default="targets")
    args = parser.parse_args()
    argv = [
        sys.executable,
        str(Path(__file__).with_name("run.py")),
        "--only",
        "targets",
        "--out",
        args.out,
    ] + (["--quick"] if args.quick else [])
    env = dict(os.environ)
    if args.mongo_url:
        env[MONGO_ENV] = args.mongo_url
    if args.runs:
        env[RUNS_ENV] = str(args.runs)
    os.execve(sys.executable, argv, env)


if __name__ == "__main__":
    main()
