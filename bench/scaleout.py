"""The scaleout family (``--only scaleout``, ours only): capacity across processes. For each
deployment (one process; ``--workers 2``; 2 and 3 instances with Redis behind HAProxy, with
room affinity and round robin), the largest broadcast class (readers of one writer at
10/s) and the most pair rooms (2 writers × 5/s) served with p99 < 100 ms and nothing lost,
found by stepping up a coarse ladder and then one bisection step. Reported as a scaling
factor (capacity / one process's), with the server's, Redis's and the proxy's CPU apart.

Node's server has no multi-process mode, so it is not run here."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from bench.plan import ScaleoutPlan
from bench.servers import Aux, Ours, Proxied, Server, Workers, redis_server
from bench.traffic import RoomLoad, broadcast_room, drive_traffic, pair_rooms

if TYPE_CHECKING:
    from bench.scenarios import Bench

P99_LIMIT_MS = 100.0
# A step's rooms are unloaded a second after its clients leave, and the next step waits for
# that: with Redis, every loaded room's stream is named in each XREAD, so rooms left from
# the step before (30 s by default) would make the next one cost more than it does.
ENV = {"CODEMENTOR_IDLE_UNLOAD_SECONDS": "1"}
UNLOAD_WAIT_S = 20.0
Row = dict[str, Any]


@dataclass(frozen=True)
class Deployment:
    """How ours runs: ``kind`` single, workers or proxy; ``n`` processes."""

    key: str
    kind: str
    n: int
    affinity: bool = False

    @property
    def title(self) -> str:
        if self.kind == "single":
            return "1 process"
        if self.kind == "workers":
            return f"--workers {self.n} (kernel spreads connections: no affinity)"
        how = "room affinity (balance uri)" if self.affinity else "round robin"
        return f"{self.n} instances + HAProxy, {how}"


DEPLOYMENTS = {
    d.key: d
    for d in (
        Deployment("single", "single", 1),
        Deployment("workers2", "workers", 2),
        Deployment("affinity2", "proxy", 2, affinity=True),
        Deployment("roundrobin2", "proxy", 2),
        Deployment("affinity3", "proxy", 3, affinity=True),
        Deployment("roundrobin3", "proxy", 3),
    )
}
KINDS = ("broadcast", "pair")


@contextmanager
def deployed(bench: Bench, dep: Deployment, label: str) -> Iterator[tuple[Server, list[Aux]]]:
    """The deployment running (its Redis too): ours, and the helpers measured beside it."""
    data = bench.data_dir("scaleout-")
    if dep.kind == "single":
        yield Ours(label, data, env=ENV), []
        return
    with redis_server(bench.data_dir("redis-")) as (url, redis):
        server: Ours = (
            Workers(label, data, dep.n, url, ENV)
            if dep.kind == "workers"
            else Proxied(label, data, dep.n, url, dep.affinity, ENV)
        )
        yield server, [Aux("redis", redis)]


def helpers(server: Server, aux: list[Aux]) -> list[Server]:
    """The processes measured beside ours in a window: Redis, and the proxy once started."""
    extra: list[Server] = list(aux)
    if isinstance(server, Proxied) and server.proxy is not None:
        extra.append(Aux("haproxy", server.proxy))
    return extra


def gen_procs(kind: str, n: int) -> int:
    """Generator processes: readers and pair writers split in two past the scale where one
    process saturated in the other families (bench/README, "Generator saturation")."""
    return 2 if (kind == "broadcast" and n >= 1000) or (kind == "pair" and n >= 300) else 1


def step(
    server: Server, extra: list[Server], kind: str, n: int, plan: ScaleoutPlan, label: str
) -> Row:
    """One traffic window at scale ``n``: the row, with CPU split by process group."""
    waited = wait_unloaded(server)
    before = admitted(server)
    loads: list[RoomLoad] = (
        broadcast_room(server, n) if kind == "broadcast" else pair_rooms(server, n)
    )
    row = drive_traffic(
        [server, *extra],
        loads,
        label=label,
        rate=10 if kind == "broadcast" else 5,
        duration=plan.window_s,
        procs=gen_procs(kind, n),
        drain_s=plan.drain_s,
    )
    after = admitted(server)
    each = row["cpu_percent_each"]
    ours = len(server.pids)
    elapsed = row["elapsed_s"]
    groups = {"ours": each[:ours]}
    at = ours
    for aux in extra:
        groups[aux.name] = each[at : at + len(aux.pids)]
        at += len(aux.pids)
    cpu = {name: sum(values) for name, values in groups.items()}
    delivered = row["delivered"]

    def us(percent: float) -> float | None:
        return round(1e4 * percent * elapsed / delivered, 1) if delivered else None

    gen_cpu = sum(g["cpu_percent"] for g in row["generator"])
    passed = (
        row["p99"] is not None
        and row["p99"] < P99_LIMIT_MS
        and row["lost"] == 0
        and row["connected"] == row["clients"]
    )
    return {
        **row,
        "n": n,
        "passed": passed,
        "cpu_percent_ours": round(cpu["ours"], 1),
        "cpu_percent_redis": round(cpu.get("redis", 0.0), 1) if "redis" in cpu else None,
        "cpu_percent_proxy": round(cpu["haproxy"], 1) if "haproxy" in cpu else None,
        "cpu_us_per_update_ours": us(cpu["ours"]),
        "cpu_us_per_update_all": us(sum(cpu.values())),
        "generator_cpu_percent": round(gen_cpu, 1),
        "connections_each": [b - a for a, b in zip(before, after, strict=True)] or None,
        "unload_wait_s": waited,
    }


def metric(port: int, name: str) -> float:
    """The sum of a metric's samples on our server at ``port`` (``/metrics``)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{"))
    )


def wait_unloaded(server: Server) -> float:
    """Wait (at most ``UNLOAD_WAIT_S``) until no instance holds a room: the last step's
    rooms are gone. Seconds waited (None when they never went)."""
    start = time.monotonic()
    while any(metric(port, "codementor_rooms_loaded") for port in server.ports):
        if time.monotonic() - start > UNLOAD_WAIT_S:
            raise RuntimeError(f"rooms still loaded {UNLOAD_WAIT_S:g} s after the last step")
        time.sleep(0.25)
    return round(time.monotonic() - start, 2)


def admitted(server: Server) -> list[int]:
    """Websockets each separate instance has admitted so far (its
    ``codementor_ws_connections_total``): where the proxy sent the clients. Empty for one
    process and for ``--workers`` (whose metrics are merged across the workers)."""
    if not isinstance(server, Proxied):
        return []
    return [round(metric(port, "codementor_ws_connections_total")) for port in server.ports]


def search(
    ladder: list[int], first: int, measure: Callable[[int], Row], budget_s: float
) -> list[Row]:
    """From ``ladder[first]``: step up while steps pass, or down while they fail (p99 ≥
    100 ms, a loss, a client not connected), then one bisection step between the largest
    pass and the smallest failure. Starts no step but the first after ``budget_s``. Every
    step's row, in order."""
    start = time.monotonic()
    steps: list[Row] = []
    i = first
    direction = 0
    while 0 <= i < len(ladder) and (not steps or time.monotonic() - start <= budget_s):
        row = measure(ladder[i])
        steps.append(row)
        way = 1 if row["passed"] else -1
        if direction and way != direction:
            break  # crossed the limit
        direction = way
        i += way
    passed = max((s["n"] for s in steps if s["passed"]), default=0)
    failed = min((s["n"] for s in steps if not s["passed"]), default=0)
    mid = (passed + failed) // 2
    if failed and mid > passed and time.monotonic() - start <= budget_s:
        steps.append(measure(mid))  # also below the ladder's bottom (passed = 0)
    return steps


def capacity_row(
    dep: Deployment, kind: str, steps: list[Row], ladder: list[int], error: str | None
) -> Row:
    """The search's result: the largest passing scale, bounded by the smallest failing
    one; whether either deciding step had a saturated generator. ``error``: the search
    stopped on an exception after these steps (the next step's scale is then unknown)."""
    ok = [s for s in steps if s["passed"]]
    bad = [s for s in steps if not s["passed"]]
    best = max(ok, key=lambda s: s["n"]) if ok else None
    worst = min(bad, key=lambda s: s["n"]) if bad else None
    deciding = [s for s in (best, worst) if s is not None]
    summary = {
        k: best[k] if best else None
        for k in (
            "p50", "p99", "delivered_per_s", "cpu_percent_ours", "cpu_percent_redis",
            "cpu_percent_proxy", "cpu_us_per_update_ours", "cpu_us_per_update_all",
            "generator_cpu_percent", "other_cpu_percent", "cpu_percent_each",
            "connections_each",
        )
    }  # fmt: skip
    return {
        "family": "scaleout",
        "scenario": f"{kind}: {dep.title}",
        "deployment": dep.key,
        "deployment_title": dep.title,
        "kind": kind,
        "processes": dep.n,
        "capacity": best["n"] if best else 0,
        "failed_at": worst["n"] if worst else None,
        "top_of_ladder": worst is None and best is not None and best["n"] >= max(ladder),
        "stopped_by": error,
        "fail_reason": fail_reason(worst) if worst else error,
        "fail_p99": worst["p99"] if worst else None,
        "saturated": any(s["saturated"] for s in deciding),
        "generator": [g for s in deciding for g in s["generator"]],
        "steps": [
            {
                k: s.get(k)
                for k in (
                    "n",
                    "passed",
                    "p99",
                    "lost",
                    "connected",
                    "clients",
                    "cpu_percent_ours",
                    "cpu_percent_redis",
                    "cpu_percent_proxy",
                    "cpu_us_per_update_ours",
                    "generator_cpu_percent",
                    "other_cpu_percent",
                    "saturated",
                    "cpu_percent_each",
                    "connections_each",
                    "generator",
                    "cpu_us_per_update_all",
                    "delivered_per_s",
                    "unload_wait_s",
                )
            }
            for s in steps
        ],  # fmt: skip
        **summary,
    }


def fail_reason(row: Row) -> str:
    if row["connected"] != row["clients"]:
        return f"{row['clients'] - row['connected']} not connected"
    if row["lost"]:
        return f"{row['lost']} lost"
    return f"p99 {row['p99']} ms"


def run_scaleout(bench: Bench) -> None:
    """Every deployment (or those named in ``BENCH_SCALEOUT``, comma-separated keys of
    ``DEPLOYMENTS``), both kinds; a fresh deployment for each search (its steps share it,
    each with new rooms and new clients)."""
    plan = bench.plan.scaleout
    ladders = {"broadcast": plan.broadcast, "pair": plan.pair}
    chosen = [k for k in os.environ.get("BENCH_SCALEOUT", "").split(",") if k]
    unknown = set(chosen) - set(DEPLOYMENTS)
    if unknown:
        raise SystemExit(f"BENCH_SCALEOUT: unknown {', '.join(sorted(unknown))}")
    for key in chosen or plan.deployments:
        dep = DEPLOYMENTS[key]
        for kind in KINDS:
            label = f"scaleout-{key}-{kind}"
            out: list[Row] = []
            errors = len(bench.anomalies)
            try:
                with deployed(bench, dep, label) as (server, aux):
                    bench.guarded("scaleout", label, server, _search, bench, dep, kind, aux, out)
            except Exception as exc:  # Redis would not start: reported, the next one runs
                bench.anomalies.append(f"{label}: {type(exc).__name__}: {exc}")
            error = next((a for a in bench.anomalies[errors:] if a.startswith(label)), None)
            if out:
                bench.record(capacity_row(dep, kind, out, ladders[kind], error))


def _search(
    server: Server,
    label: str,
    bench: Bench,
    dep: Deployment,
    kind: str,
    aux: list[Aux],
    out: list[Row],
) -> None:
    plan = bench.plan.scaleout
    extra = helpers(server, aux)
    ladder = plan.broadcast if kind == "broadcast" else plan.pair

    def measure(n: int) -> Row:
        row = step(server, extra, kind, n, plan, f"{label}-{n}")
        out.append(row)
        print(f"   {label} n={n}: p99 {row['p99']} lost {row['lost']} "
              f"{'pass' if row['passed'] else 'FAIL'}", flush=True)  # fmt: skip
        return row

    first = plan.broadcast_first if kind == "broadcast" else plan.pair_first
    search(ladder, first, measure, plan.budget_s)


# -- report --


def scaleout_section(rows: list[Row]) -> list[str]:
    mine = [r for r in rows if r["family"] == "scaleout"]
    if not mine:
        return []
    base = {r["kind"]: r for r in mine if r["deployment"] == "single"}
    lines = [
        "",
        "## Across processes: capacity (ours only; Node has no multi-process mode)",
        "",
        f"Capacity: the largest scale with p99 < {P99_LIMIT_MS:g} ms, nothing lost and every "
        "client connected (a coarse ladder, then one bisection step). Scaling: capacity / "
        "one process's. CPU at the capacity step: ours (all processes), redis, proxy, as % of "
        "one core; capacity per server core: capacity / those three CPU (in cores); CPU µs "
        "per delivered update: ours, and ours + redis + proxy. Generator: lag p99 ms / CPU % "
        "per process at the deciding steps (⚠: one of them saturated, so the limit found may "
        "be the generator's).",
        "",
        "| kind | deployment | capacity | failed at (why) | scaling | CPU % ours / redis / "
        "proxy | capacity per server core | CPU µs/upd ours (all) | generators CPU % | "
        "other CPU % | generator |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(mine, key=lambda r: (r["kind"], list(DEPLOYMENTS).index(r["deployment"]))):
        one = base.get(r["kind"])
        scaling = f"{r['capacity'] / one['capacity']:.2f}" if one and one["capacity"] else "–"
        capacity = f"≥ {r['capacity']}" if r["top_of_ladder"] else str(r["capacity"])
        failed = f"{r['failed_at']} ({r['fail_reason']})" if r["failed_at"] else "–"
        sat = " ⚠" if r["saturated"] else ""
        cpu = " / ".join(
            "–" if r[k] is None else f"{r[k]:g}"
            for k in ("cpu_percent_ours", "cpu_percent_redis", "cpu_percent_proxy")
        )
        per = "–" if r["cpu_us_per_update_ours"] is None else (
            f"{r['cpu_us_per_update_ours']:g} ({r['cpu_us_per_update_all']:g})"
        )  # fmt: skip
        gen = " ".join(f"{g['lag_p99_ms']:g}/{g['cpu_percent']:g}" for g in r["generator"])
        lines.append(
            f"| {r['kind']} | {r['deployment_title']} | {capacity}{sat} | {failed} | "
            f"{scaling} | {cpu} | {fmt(per_core(r))} | {per} | {fmt(r['generator_cpu_percent'])} | "
            f"{fmt(r['other_cpu_percent'])} | {gen} |"
        )
    lines += same_scale(mine)
    lines += ["", "Steps (n: p99 ms, pass/FAIL, ours CPU %):", ""]
    for r in mine:
        steps = ", ".join(
            f"{s['n']}: {s['p99']} {'ok' if s['passed'] else 'FAIL'} {s['cpu_percent_ours']}%"
            + (" ⚠" if s["saturated"] else "")
            for s in r["steps"]
        )
        lines.append(f"- {r['scenario']}: {steps}")
    return lines


def same_scale(rows: list[Row]) -> list[str]:
    """CPU µs per delivered update, ours (ours + Redis + proxy), of every deployment at the
    scales that one process and at least one other ran: what a delivery costs each way,
    whether or not the step passed (its p99 says less when the machine was busy)."""
    cost: dict[tuple[str, int], dict[str, str]] = {}
    for r in rows:
        for s in r["steps"]:
            if s.get("cpu_us_per_update_ours") is not None:
                cell = f"{s['cpu_us_per_update_ours']:g} ({s['cpu_us_per_update_all']:g})"
                cost.setdefault((r["kind"], s["n"]), {})[r["deployment"]] = cell
    shared = sorted(k for k, v in cost.items() if "single" in v and len(v) > 1)
    if not shared:
        return []
    keys = [k for k in DEPLOYMENTS if any(k in cost[s] for s in shared)]
    return [
        "",
        "CPU µs per delivered update at the same scale, ours (ours + Redis + proxy):",
        "",
        "| kind | n | " + " | ".join(DEPLOYMENTS[k].key for k in keys) + " |",
        "|---|---|" + "---|" * len(keys),
        *[
            f"| {kind} | {n} | " + " | ".join(cost[(kind, n)].get(k, "–") for k in keys) + " |"
            for kind, n in shared
        ],
    ]


def per_core(row: Row) -> float | None:
    """Capacity per core the server side kept busy at that step (ours + Redis + proxy):
    what each process delivers for its CPU, whatever the generators left it."""
    busy = sum(row[k] or 0 for k in ("cpu_percent_ours", "cpu_percent_redis", "cpu_percent_proxy"))
    return round(100 * row["capacity"] / busy) if row["capacity"] and busy else None


def fmt(value: Any) -> str:
    return "–" if value is None else f"{value:g}"
