"""Processes and the machine, for the bench driver: ports, CPU and memory read from
``/proc``, waiting for a quiet machine, CPU pinning (``--pin``), stopping a child, log
files and the machine-wide bench lock."""

from __future__ import annotations

import fcntl
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LOCK = Path(tempfile.gettempdir()) / "codementor-bench.lock"
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_LIMIT = 20.0  # before a scenario, wait for the machine to be this idle (% of a core)
QUIET_BUDGET = 30.0  # seconds of such waiting per run at most
QUIET_EACH = 5.0  # ... and per scenario

LOGS = RESULTS / "logs" / "bench"  # per --out name: use_logs()
PIN: CpuSplit | None = None  # --pin: pin()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (every core, every process) so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


def wait_quiet(max_wait: float, limit: float = QUIET_LIMIT) -> tuple[float, float]:
    """Wait (at most ``max_wait`` s) until the machine is nearly idle: other work on this
    machine (other users' test runs, say) competes with both the server and the generator.
    Returns (seconds waited, busy % of one core in the last half second)."""
    start = time.monotonic()
    while True:
        busy0 = machine_busy()
        time.sleep(0.5)
        busy = 100 * (machine_busy() - busy0) / 0.5
        waited = time.monotonic() - start
        if busy < limit or waited >= max_wait:
            return waited, busy


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB: resident now and the peak since the process started."""
    rss = hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return rss, hwm


@dataclass(frozen=True)
class CpuSplit:
    """``--pin``: which CPUs the server under test may run on, and which the load may.

    Unpinned, the kernel wakes a process that a loopback write made readable on the
    writer's CPU, so a fan-out and the generator reading it take turns on one core while
    the other idles (bench/README.md, "Things tried"). Pinning gives each its own."""

    server: frozenset[int]
    load: frozenset[int]

    def describe(self) -> str:
        return (
            f"pinned: servers on CPU {', '.join(map(str, sorted(self.server)))}, generators "
            f"and driver on CPU {', '.join(map(str, sorted(self.load)))}"
        )


def split_cpus(cpus: set[int]) -> CpuSplit:
    """The last CPU for the server (both servers run one event loop), the rest for the load."""
    if len(cpus) < 2:
        raise SystemExit(f"--pin needs at least 2 CPUs to split, this process may use {len(cpus)}")
    ordered = sorted(cpus)
    return CpuSplit(server=frozenset(ordered[-1:]), load=frozenset(ordered[:-1]))


def pin(split: CpuSplit | None) -> None:
    """Pin the children started from now on (None: leave them to the kernel)."""
    global PIN
    PIN = split


def on_cpus(role: Literal["server", "load"]) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins a child to the server's or the load's CPUs (None: unpinned)."""
    if PIN is None:
        return None
    cpus = PIN.server if role == "server" else PIN.load
    return lambda: os.sched_setaffinity(0, cpus)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30) -> dict[str, Any]:
    """SIGTERM, then SIGKILL after ``timeout``; how long it took and how it ended."""
    if proc.poll() is not None:
        return {"exit": proc.returncode, "stop_s": 0.0, "note": "had already exited"}
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return {"exit": proc.returncode, "stop_s": round(time.monotonic() - start, 2),
                "note": f"did not exit within {timeout} s of SIGTERM; killed"}  # fmt: skip
    return {"exit": proc.returncode, "stop_s": round(time.monotonic() - start, 2)}


def use_logs(out: str) -> None:
    """Server and generator logs of this run go to ``results/logs/<out>``, emptied first."""
    global LOGS
    LOGS = RESULTS / "logs" / out
    shutil.rmtree(LOGS, ignore_errors=True)


def log_path(name: str) -> Path:
    LOGS.mkdir(parents=True, exist_ok=True)
    return LOGS / name.replace("/", "_").replace("@", "").replace(" ", "_")


def lock_machine(lock: IO[str], timeout: float) -> bool:
    """Take the machine-wide bench lock (two benchmark runs at once measure each other)."""
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            if not announced:
                print(f"waiting for another bench run ({LOCK})", flush=True)
                announced = True
            time.sleep(1)


def raise_fd_limit() -> None:
    """Every connection is a descriptor, here and in the generators (which inherit this)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
