"""Side-by-side benchmark: our server against @y/websocket-server 0.1.1, same load, same machine.

usage: .venv/bin/python bench/run.py [--quick] [--only FAMILY[,FAMILY...]] [--out NAME] [--pin]
  families: pair, broadcast, storm, capacity, cold, multi, mixed (10,000 people on one
            process: classes and pair rooms at once) (the default: all of these), and
            transport (ours only, CODEMENTOR_WS_FAST_PATH off against auto; only when named),
            workspace (ours only, 100 files against one file of the same 1 MB; only when named),
            history (ours only: CPU with history on against off, bytes per hour of typing,
            playback seeks; only when named), targets (ours only: the seed's service targets
            under 5,000 live sockets, bench/service_targets.py; only when named),
            scaleout (ours only: capacity of 1 process, --workers 2, 2 and 3 instances with
            Redis behind HAProxy; only when named), tracing (ours only: the pair scenario
            with OpenTelemetry tracing on, exporting to bench/otlp_sink.py, against off;
            only when named)
  --quick   small scales and 4 s windows (a smoke run, about two minutes)
  --out     results file stem under bench/results (default: bench)
  --pin     the server under test on the last CPU, generators and this driver on the others
            (off by default: on 2 cores it leaves the generators one core; see bench/README.md)

Writes bench/results/<out>.md and <out>.json, and <out>-<family>.png charts (charts.py);
server and generator logs go to bench/results/logs/. Every scenario starts a fresh server
(ours, then the Node one), drives it with bench/loadgen.mjs or bench/coldload.mjs (real Yjs
documents, raw y-websocket frames) and stops it. Loopback only; every load is bounded in
count (updates, connections, rooms) and in time (generator and driver deadlines). See
bench/README.md for what each scenario measures and how generator saturation is detected.

The parts: procs.py (processes, /proc, pinning), servers.py and generator.py (the children),
traffic.py, capacity.py, cold.py, transport.py, mixed.py and history.py with
history_store.py (the scenarios), stats.py (percentiles,
rates, pooling, saturation), plan.py (scales), scenarios.py (the families in order),
report.py (the results page).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import charts, procs  # noqa: E402
from bench.plan import FULL, QUICK  # noqa: E402
from bench.procs import BENCH, LOCK, RESULTS  # noqa: E402
from bench.report import report  # noqa: E402
from bench.scenarios import FAMILIES, Bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    parser.add_argument("--out", default="bench")
    parser.add_argument("--pin", action="store_true")
    args = parser.parse_args()
    only = {f for f in args.only.split(",") if f}
    if only - set(FAMILIES):
        parser.error(f"--only: unknown {', '.join(sorted(only - set(FAMILIES)))}")
    procs.raise_fd_limit()
    if args.pin:
        split = procs.split_cpus(os.sched_getaffinity(0))
        procs.pin(split)
        os.sched_setaffinity(0, split.load)
    if not (BENCH / "node_modules/@y/websocket-server").exists():
        raise SystemExit("bench/node_modules missing: npm ci --prefix bench")
    plan = QUICK if args.quick else FULL
    procs.use_logs(args.out)
    lock = open(LOCK, "w")  # noqa: SIM115 - held until the process exits
    shared = not procs.lock_machine(lock, 120)
    start = time.monotonic()
    bench = Bench(plan, only)
    if shared:
        bench.anomalies.append(
            "another bench run held the machine-wide lock for 2 minutes; ran anyway, so the "
            "two runs competed for CPU"
        )
    bench.run()
    elapsed = time.monotonic() - start
    RESULTS.mkdir(exist_ok=True)
    text = report(bench, elapsed, plan)
    (RESULTS / f"{args.out}.json").write_text(
        json.dumps(
            {
                "elapsed_s": round(elapsed, 1),
                "rows": bench.rows,
                "anomalies": bench.anomalies,
                "stops": bench.stops,
            },
            indent=1,
        )  # fmt: skip
    )
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)
    for chart in charts.draw(bench.rows, RESULTS, args.out):  # after the numbers are safe
        print(f"chart: {chart.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
