"""A Node load generator process (bench/loadgen.mjs, bench/coldload.mjs): its config in a
file, JSON lines from its stdout, commands to its stdin."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench.procs import BENCH, log_path, on_cpus


class Generator:
    """One Node generator process: config in a file, JSON lines on stdout, commands on stdin.

    ``--no-memory-reducer``: V8 shrinks the heap of a process that looks idle with a
    mark-compact. Driving our server (no cursor relay to the readers) the generator
    allocated little and stalled on one in every storm window; driving Node it never did
    (bench/README.md, "Things tried"). The instrument must not pause according to the
    traffic it measures."""

    def __init__(self, script: str, config: dict[str, Any], workdir: Path, label: str) -> None:
        path = workdir / f"{label}.json"
        path.write_text(json.dumps(config))
        self.log = log_path(f"{label}.gen.log")
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                ["node", "--no-memory-reducer", str(BENCH / script), str(path)],
                cwd=BENCH, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                text=True, preexec_fn=on_cpus("load"),
            )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"generator: no {event!r} within {timeout:.0f} s")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                tail = self.log.read_text()[-2000:]
                raise RuntimeError(f"generator exited waiting for {event!r}: {tail}")
            try:
                message: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            if message.get("event") == event:
                return message
            if message.get("event") == "error":
                raise RuntimeError(f"generator: {message}")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("exit")
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
