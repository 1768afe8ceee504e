"""Run bench/latency.mjs against our server and @y/websocket-server, one after the other.

usage: python bench/latency.py [--quick]
Writes bench/results/latency.md and .json: delay percentiles, losses, server CPU
and peak RSS for each scenario, and our/Node ratios. Loopback only; each run is
bounded by its update count and a 10 s drain deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from tests.serverproc import free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SCENARIOS = [  # (name, readers, updates, rate per second)
    ("2 peers, 1 room", 1, 600, 20),
    ("1 writer, 200 readers", 200, 300, 10),
]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_listening(port: int, timeout: float = 15) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def start_ours(port: int, data: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEMENTOR_")}
    env["CODEMENTOR_LOG_LEVEL"] = "warning"
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port), "--data-dir", data],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return proc, f"ws://127.0.0.1:{port}/ws"


def start_node(port: int, data: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    proc = subprocess.Popen(
        ["node", str(BENCH / "node_modules/@y/websocket-server/src/server.js")],
        cwd=BENCH, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return proc, f"ws://127.0.0.1:{port}"


def run_scenario(
    base: str, room: str, readers: int, updates: int, rate: int, reader_base: str | None = None
) -> dict[str, float]:
    command = ["node", str(BENCH / "latency.mjs"), base, room, str(readers), str(updates)]
    command += [str(rate), reader_base or base]
    out = subprocess.run(
        command,
        capture_output=True, check=True, timeout=300, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    quick = "--quick" in sys.argv
    results: list[dict[str, object]] = []
    for server_name, start in (("codementor", start_ours), ("@y/websocket-server", start_node)):
        with tempfile.TemporaryDirectory() as data:
            port = free_port()
            proc, base = start(port, data)
            try:
                wait_listening(port)
                for i, (name, readers, updates, rate) in enumerate(SCENARIOS):
                    if quick:
                        updates = updates // 5
                    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
                    row = run_scenario(base, f"bench-{i}", readers, updates, rate)
                    cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
                    row.update(
                        server=server_name,
                        scenario=name,
                        cpu_percent=round(100 * cpu, 1),
                        peak_rss_mib=round(peak_rss_mib(proc.pid), 1),
                    )
                    results.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                proc.terminate()
                proc.wait(15)
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "latency.json").write_text(json.dumps(results, indent=2))
    lines = [
        "| scenario | server | p50 ms | p95 ms | p99 ms | max ms | lost | CPU % | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['scenario']} | {r['server']} | {r['p50']} | {r['p95']} | {r['p99']} | "
            f"{r['max']} | {r['lost']} | {r['cpu_percent']} | {r['peak_rss_mib']} |"
        )
    ours = {r["scenario"]: r for r in results if r["server"] == "codementor"}
    lines += [
        "",
        "| scenario | p50 ours/node | p99 ours/node | CPU ours/node |",
        "|---|---|---|---|",
    ]
    for r in results:
        if r["server"] == "codementor":
            continue
        o = ours[r["scenario"]]

        def ratio(key: str, o: dict[str, object] = o, r: dict[str, object] = r) -> str:
            a, b = o[key], r[key]
            return f"{float(a) / float(b):.2f}" if b else "n/a"  # type: ignore[arg-type]

        lines.append(
            f"| {r['scenario']} | {ratio('p50')} | {ratio('p99')} | {ratio('cpu_percent')} |"
        )
    (out_dir / "latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
