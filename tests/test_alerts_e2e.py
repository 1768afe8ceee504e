"""Debian's real Prometheus evaluates the real rule files against a live server, and an alert
fires when something breaks.

A real ``redis-server`` and a real server using it; Prometheus scrapes the server every
second and evaluates every second. The rule files are the ones in docker/prometheus/rules,
copied with one change, said here: every ``for:`` is cut to 2 s, so the test waits seconds
rather than minutes (promtool's unit tests, tests/test_alert_rules.py, hold the real
durations). Before anything breaks, the Redis alert is not firing; then Redis is stopped
(by the PID this test started) and Prometheus's /api/v1/alerts must show
CodementorRedisDisconnected firing, and CodementorNotReady with it (/readyz fails without
Redis), before a deadline.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docker" / "prometheus" / "rules"
SHORT_FOR = "2s"
DEADLINE_SECONDS = 60.0

pytestmark = pytest.mark.slow


class PrometheusProcess:
    """Debian's ``prometheus`` on a free port, its storage and config in ``workdir``."""

    def __init__(self, workdir: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is missing: apt-get install prometheus (.ci/system-packages)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        rules = workdir / "rules"
        rules.mkdir(parents=True)
        for source in RULES.glob("*.yml"):
            text = re.sub(
                r"^(\s+)for: \S+$", rf"\g<1>for: {SHORT_FOR}", source.read_text(), flags=re.M
            )
            (rules / source.name).write_text(text)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules/*.yml"],
            "scrape_configs": [
                {"job_name": "codementor", "static_configs": [{"targets": [target]}]}
            ],
        }
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"

    def start(self, timeout: float = 30.0) -> PrometheusProcess:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={self.config}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(self.url + "/api/v1/" + path, params=params, timeout=5)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def alerts(self) -> dict[str, str]:
        """Alert name -> state (pending, firing) of every active alert."""
        return {a["labels"]["alertname"]: a["state"] for a in self.api("alerts")["alerts"]}

    def value(self, query: str) -> float | None:
        result = self.api("query", query=query)["result"]
        return float(result[0]["value"][1]) if result else None


def wait_for(what: str, check: Callable[[], bool], prometheus: PrometheusProcess) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} within {DEADLINE_SECONDS} s; alerts: {prometheus.alerts()}")


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Callable[[str], PrometheusProcess]]:
    started: list[PrometheusProcess] = []

    def start(target: str) -> PrometheusProcess:
        proc = PrometheusProcess(tmp_path / "prometheus", target)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


def test_stopping_redis_fires_the_redis_alert(
    server_factory: Callable[..., ServerProcess],
    redis_server: RedisProcess,
    prometheus_for: Callable[[str], PrometheusProcess],
) -> None:
    server = server_factory(CODEMENTOR_REDIS_URL=redis_server.url)
    prometheus = prometheus_for(f"127.0.0.1:{server.port}")

    # Healthy: scraped, Redis connected, the server ready, and no Redis alert, pending or firing.
    wait_for(
        "Prometheus scraped a connected, ready server",
        lambda: prometheus.value("min(codementor_redis_connected * codementor_ready * up)") == 1,
        prometheus,
    )
    time.sleep(3)  # longer than for: 2s, at 1 s evaluations: a firing alert would show now
    alerts = prometheus.alerts()
    assert "CodementorRedisDisconnected" not in alerts, alerts
    assert "CodementorNotReady" not in alerts, alerts
    groups = prometheus.api("rules")["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"CodementorRedisDisconnected", "instance:codementor_connections:ratio_limit"} <= loaded

    redis_server.stop()  # the redis-server this test's fixture started, by its PID

    wait_for(
        "CodementorRedisDisconnected and CodementorNotReady firing",
        lambda: (
            {name for name, state in prometheus.alerts().items() if state == "firing"}
            >= {"CodementorRedisDisconnected", "CodementorNotReady"}
        ),
        prometheus,
    )
    (alert,) = [
        a for a in prometheus.api("alerts")["alerts"]
        if a["labels"]["alertname"] == "CodementorRedisDisconnected"
    ]  # fmt: skip
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["instance"] == f"127.0.0.1:{server.port}"
    assert f"127.0.0.1:{server.port} has lost Redis" == alert["annotations"]["summary"]
