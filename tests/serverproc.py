"""A real server in a subprocess: the tests talk to it only over loopback sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """``codementor serve`` on a free port, with its own data dir and log file."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = env or {}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def ws_url(self, room: str, query: str = "") -> str:
        return f"{self.ws_base}/{room}" + (f"?{query}" if query else "")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "server", "serve", "--port", str(self.port),
                "--data-dir", str(self.data_dir)]  # fmt: skip

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start and wait until /healthz answers. The deadline is generous: a cold
        start imports for seconds, and many more on a loaded machine (CI runs tests
        in parallel); a healthy start returns as soon as it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The transport under test (``make test`` runs some suites again with it off)
        # is the one setting taken from the environment of the test run.
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CODEMENTOR_") or k == "CODEMENTOR_WS_FAST_PATH"
        }
        env = {**inherited, "CODEMENTOR_LOG_LEVEL": "info", **self.env}
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            self.command(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(self.http_url + "/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"server did not start within {timeout}s: {self.log()}")

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop it, running or not: a server a test already stopped or killed still has
        its log file to close."""
        if self.proc is not None:
            self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        """The server's log as JSON objects (the server logs JSON when not on a terminal)."""
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def room_details(self, room: str, token: str) -> dict[str, Any]:
        """``GET /api/rooms/{room}`` as ``token``'s holder; it must answer 200."""
        response = httpx.get(
            f"{self.http_url}/api/rooms/{room}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        details: dict[str, Any] = response.json()
        return details

    def metrics(self) -> str:
        return httpx.get(self.http_url + "/metrics", timeout=5).text

    def metric(self, name: str) -> float:
        """The sum of every sample of ``name`` (all label sets)."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code

    def wait_exit(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
