"""The scenario families (pair, broadcast, storm, capacity, cold, multi, transport,
workspace, history, tracing) run one after another, each scenario against a fresh server:
ours, then the Node one (transport, workspace, history and tracing: ours only)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.capacity import capacity
from bench.cold import cold_load
from bench.history import run_history
from bench.mixed import run_mixed
from bench.plan import Plan
from bench.procs import (
    QUIET_BUDGET,
    QUIET_EACH,
    QUIET_LIMIT,
    free_port,
    on_cpus,
    stop_process,
    wait_listening,
    wait_quiet,
)
from bench.scaleout import run_scaleout
from bench.servers import NODE, NodeServer, Ours, Server, running
from bench.service_targets import run_targets
from bench.stats import pool_runs
from bench.tracing import run_tracing
from bench.traffic import broadcast_room, drive_traffic, pair_rooms
from bench.transport import run_transport
from bench.workspace import run_workspace

FAMILIES = (
    "pair", "broadcast", "storm", "capacity", "cold", "multi", "transport", "workspace", "history",
    "targets", "mixed", "scaleout", "tracing",
)  # fmt: skip
DEFAULT_FAMILIES = ("pair", "broadcast", "storm", "capacity", "cold", "multi", "mixed")


class Bench:
    """One run: the plan, the families asked for, and what they measured (``rows``) or
    noticed (``anomalies``, ``background``, ``skipped``, ``stops``) for the report."""

    def __init__(self, plan: Plan, only: set[str]) -> None:
        self.plan = plan
        self.only = only
        self.rows: list[dict[str, Any]] = []
        self.anomalies: list[str] = []
        self.current = ""
        self.quiet_waited = 0.0
        self.background: list[str] = []
        self.skipped: list[str] = []
        self.stops: list[dict[str, Any]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))

    def wanted(self, family: str) -> bool:
        return family in self.only if self.only else family in DEFAULT_FAMILIES

    def data_dir(self, prefix: str) -> Path:
        """A fresh data directory, removed with the run's temporary directory."""
        return Path(tempfile.mkdtemp(dir=self.tmp, prefix=prefix))

    def servers(self, label: str, **node: Any) -> Iterator[Server]:
        """Ours, then Node's, each new (``node``: the Node server's options)."""
        yield Ours(label, self.data_dir("ours-"))
        yield NodeServer(label, **node)

    def record(self, row: dict[str, Any]) -> None:
        """Keep a result row (without its ``_`` working fields) and print its gist."""
        row = {k: v for k, v in row.items() if not k.startswith("_")}
        row.setdefault("server", self.current)
        self.rows.append(row)
        brief = {k: row.get(k) for k in ("family", "scenario", "server", "p50", "p99", "lost",
                                         "cpu_percent", "peak_rss_mib", "saturated")}  # fmt: skip
        print(json.dumps(brief), flush=True)

    def check(self, server: Server, label: str) -> None:
        """After a scenario: did the server survive, and what did it log?"""
        if not server.alive():
            codes = [p.returncode for p in server.procs]
            self.anomalies.append(f"{label}: {server.name} exited during the run ({codes})")

    def guarded(
        self, family: str, label: str, server: Server, body: Callable[..., None], *args: Any
    ) -> None:
        """Run ``body(server, label-with-server-tag, *args)`` against a fresh ``server``."""
        waited, busy = wait_quiet(min(QUIET_EACH, max(0.0, QUIET_BUDGET - self.quiet_waited)))
        self.quiet_waited += waited
        if busy >= QUIET_LIMIT:
            self.background.append(f"{label} on {server.name}: started with the machine "
                                   f"{busy:.0f} % busy (of one core) with other work")  # fmt: skip
        start = time.monotonic()
        self.current = server.name
        try:
            with running(server):
                body(server, f"{label}-{server.tag}", *args)
                self.check(server, label)
        except Exception as exc:  # a failed scenario is reported, the others still run
            self.anomalies.append(f"{label} on {server.name}: {type(exc).__name__}: {exc}")
            self.rows.append({"family": family, "scenario": label, "server": server.name,
                              "error": f"{type(exc).__name__}: {exc}"})  # fmt: skip
            print(f"!! {label} on {server.name}: {exc}", flush=True)
        for stop in server.stops:
            self.stops.append({"scenario": label, "server": server.name, **stop})
            if (
                stop.get("note")
                or stop.get("exit") not in (0, -signal.SIGTERM)
                or stop["stop_s"] > 10
            ):
                self.anomalies.append(f"{label}: {server.name} stop: {stop}")
        print(f".. {label} on {server.name}: {time.monotonic() - start:.1f} s", flush=True)

    # -- families --

    def pair(self) -> None:
        for rooms, procs in self.plan.pair:
            label = f"pair-{rooms}"
            scenario = f"pair: {rooms} rooms × 2 writers × 5/s"
            for server in self.servers(label):
                self.guarded("pair", label, server, self._pair, scenario, rooms, procs)

    def _pair(self, server: Server, label: str, scenario: str, rooms: int, procs: int) -> None:
        loads = pair_rooms(server, rooms)
        row = drive_traffic(
            [server], loads, label=label, rate=5, duration=self.plan.duration, procs=procs
        )
        self.record({"family": "pair", "scenario": scenario, "scale": rooms, **row})

    def broadcast(self, storm: bool) -> None:
        family = "storm" if storm else "broadcast"
        for readers, procs, runs in self.plan.storm if storm else self.plan.broadcast:
            label = f"{family}-{readers}"
            what = "1 writer 10/s, readers set cursor every 5 s" if storm else "1 writer 10/s"
            scenario = f"{family}: {readers} readers, {what}"
            done: dict[str, list[dict[str, Any]]] = {}
            for run in range(runs):  # ours, Node, ours, Node, ...: both see the same drift
                tag = f"{label}-run{run + 1}" if runs > 1 else label
                for server in self.servers(tag):
                    if storm and server.name == NODE and readers > self.plan.storm_node_max:
                        if run == 0:
                            self.skipped.append(
                                f"{scenario} on {NODE}: not run. It relays every cursor to "
                                f"every connection: {readers} × {readers // 5} = "
                                f"{readers * readers // 5:,} awareness frames/s, far past what "
                                "the generator can read (at 500 readers it already reads 125 "
                                "frames/s per reader)."
                            )
                        continue
                    parts = done.setdefault(server.name, [])
                    self.guarded(family, tag, server, self._broadcast, scenario, readers,
                                 procs, parts)  # fmt: skip
            for name, parts in done.items():
                if parts:
                    self.current = name
                    suffix = f" ({len(parts)} runs pooled)" if len(parts) > 1 else ""
                    self.record({"family": family, "scenario": scenario + suffix,
                                 "scale": readers, **pool_runs(parts)})  # fmt: skip

    def _broadcast(
        self,
        server: Server,
        label: str,
        scenario: str,
        readers: int,
        procs: int,
        parts: list[dict[str, Any]],
    ) -> None:
        storm = scenario.startswith("storm")
        row = drive_traffic(
            [server],
            broadcast_room(server, readers),
            label=label,
            rate=10,
            duration=self.plan.storm_duration if storm else self.plan.duration,
            procs=procs,
            awareness_s=5 if storm else 0,
        )
        parts.append(row)

    def capacity(self) -> None:
        for conns, procs in self.plan.capacity:
            label = f"capacity-{conns}"
            scenario = f"capacity: {conns} idle connections, {conns // 10} rooms"
            for server in self.servers(label):
                self.guarded("capacity", label, server, self._capacity, scenario, conns, procs)

    def _capacity(self, server: Server, label: str, scenario: str, conns: int, procs: int) -> None:
        row = capacity(server, conns, procs, label)
        self.record({"family": "capacity", "scenario": scenario, "scale": conns, **row})

    def cold(self) -> None:
        scenario = f"cold load: {self.plan.cold_rooms} rooms × 1 MB doc of 20,000 edits"
        for server in self.servers("cold", persistence_dir=self.tmp / "leveldb"):
            self.guarded("cold", "cold", server, self._cold, scenario)

    def _cold(self, server: Server, label: str, scenario: str) -> None:
        plan = self.plan
        row = cold_load(server, plan.cold_rooms, plan.warm_sample, plan.cold_edits, label)
        self.record({"family": "cold", "scenario": scenario, **row})

    def multi(self) -> None:
        redis_binary = shutil.which("redis-server")
        if redis_binary is None:
            self.anomalies.append("multi: redis-server is not installed; skipped")
            return
        redis_port = free_port()
        redis_dir = self.data_dir("redis-")
        redis = subprocess.Popen(
            [redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(redis_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=on_cpus("server"),
        )  # fmt: skip
        try:
            wait_listening(redis_port, redis)
            url = f"redis://127.0.0.1:{redis_port}/0"
            n, r = self.plan.multi_broadcast, self.plan.multi_pair
            cases = [
                (f"multi-broadcast-{n}",
                 f"multi-instance broadcast: {n} readers split over 2 instances, writer on A",
                 "broadcast", n, 10.0, 2),
                (f"multi-pair-{r}",
                 f"multi-instance pair: {r} rooms, writer 1 on A, writer 2 on B",
                 "pair", r, 5.0, 1),
            ]  # fmt: skip
            for label, scenario, kind, scale, rate, procs in cases:
                data = self.data_dir("multi-")
                server = Ours(label, data, instances=2, redis_url=url)
                args = (scenario, kind, scale, rate, procs, redis.pid)
                self.guarded("multi", label, server, self._multi, *args)
        finally:
            stop_process(redis)

    def _multi(
        self,
        server: Server,
        label: str,
        scenario: str,
        kind: str,
        scale: int,
        rate: float,
        procs: int,
        redis_pid: int,
    ) -> None:
        loads = (
            broadcast_room(server, scale, instances=2)
            if kind == "broadcast"
            else pair_rooms(server, scale, instances=2)
        )
        row = drive_traffic(
            [server], loads, label=label, rate=rate, duration=self.plan.duration, procs=procs,
            watch=(redis_pid,),
        )  # fmt: skip
        # redis-server's CPU over the same window, apart from the instances' (A + B).
        redis_cpu = row["watched_cpu_s"]
        row["redis_cpu_percent"] = round(100 * redis_cpu / row["elapsed_s"], 1)
        row["redis_cpu_us_per_update"] = (
            round(1e6 * redis_cpu / row["delivered"], 1) if row["delivered"] else None
        )
        # kind: the single-instance family whose row of the same scale it compares with
        self.record({"family": "multi", "kind": kind, "scenario": scenario, "scale": scale, **row})

    def run(self) -> None:
        families: list[tuple[str, Callable[[], None]]] = [
            ("pair", self.pair),
            ("broadcast", lambda: self.broadcast(storm=False)),
            ("storm", lambda: self.broadcast(storm=True)),
            ("capacity", self.capacity),
            ("cold", self.cold),
            ("multi", self.multi),
            ("transport", lambda: run_transport(self)),
            ("workspace", lambda: run_workspace(self)),
            ("history", lambda: run_history(self)),
            ("targets", lambda: run_targets(self)),
            ("mixed", lambda: run_mixed(self)),
            ("scaleout", lambda: run_scaleout(self)),
            ("tracing", lambda: run_tracing(self)),
        ]
        for family, run in families:
            if self.wanted(family):
                run()
        shutil.rmtree(self.tmp, ignore_errors=True)
