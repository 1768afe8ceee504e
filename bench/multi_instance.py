"""Cross-instance delivery delay: a writer on instance A, readers on instance B, through
a real redis-server, next to the same-instance delay measured in the same run.

usage: python bench/multi_instance.py [--quick]
Writes bench/results/multi_instance.md and .json. Loopback only, bounded counts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench.latency import cpu_seconds, run_scenario, wait_listening  # noqa: E402
from tests.serverproc import free_port  # noqa: E402

SCENARIOS = [  # (name, readers, updates, rate per second, readers on the other instance)
    ("same instance, 1 reader", 1, 600, 20, False),
    ("across instances, 1 reader", 1, 600, 20, True),
    ("same instance, 100 readers", 100, 300, 10, False),
    ("across instances, 100 readers", 100, 300, 10, True),
]


def start_instance(port: int, data: str, redis_url: str, name: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEMENTOR_")}
    env.update(
        CODEMENTOR_LOG_LEVEL="warning",
        CODEMENTOR_REDIS_URL=redis_url,
        CODEMENTOR_INSTANCE_ID=name,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port), "--data-dir", data],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> None:
    quick = "--quick" in sys.argv
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        raise SystemExit("redis-server is not installed")
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as data:
        redis_port = free_port()
        redis_proc = subprocess.Popen(
            [redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", data],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        ports = [free_port(), free_port()]
        instances = []
        try:
            wait_listening(redis_port)
            url = f"redis://127.0.0.1:{redis_port}/0"
            instances = [start_instance(p, data, url, n) for p, n in zip(ports, "ab", strict=True)]
            for port in ports:
                wait_listening(port)
            a, b = (f"ws://127.0.0.1:{p}/ws" for p in ports)
            for i, (name, readers, updates, rate, across) in enumerate(SCENARIOS):
                if quick:
                    updates //= 5
                cpu0 = [cpu_seconds(p.pid) for p in instances]
                t0 = time.monotonic()
                row = run_scenario(a, f"multi-{i}", readers, updates, rate, b if across else a)
                elapsed = time.monotonic() - t0
                row.update(
                    scenario=name,
                    cpu_percent_a=round(
                        100 * (cpu_seconds(instances[0].pid) - cpu0[0]) / elapsed, 1
                    ),
                    cpu_percent_b=round(
                        100 * (cpu_seconds(instances[1].pid) - cpu0[1]) / elapsed, 1
                    ),
                )
                results.append(row)
                print(json.dumps(row), flush=True)
        finally:
            for proc in [*instances, redis_proc]:
                proc.terminate()
                proc.wait(15)
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "multi_instance.json").write_text(json.dumps(results, indent=2))
    lines = [
        "| scenario | p50 ms | p95 ms | p99 ms | max ms | lost | CPU % A | CPU % B |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['scenario']} | {r['p50']} | {r['p95']} | {r['p99']} | {r['max']} | "
            f"{r['lost']} | {r['cpu_percent_a']} | {r['cpu_percent_b']} |"
        )
    (out / "multi_instance.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
