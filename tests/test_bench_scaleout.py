"""bench/scaleout.py: the capacity search steps up and down its ladder and bisects once
between the largest pass and the smallest failure; the capacity row and its table say what
the steps found; and the HAProxy that the proxied deployments use really keeps a room on one
instance with affinity (the token in the query does not count) and spreads it without."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.procs import free_port, stop_process, wait_listening
from bench.scaleout import DEPLOYMENTS, capacity_row, scaleout_section, search
from bench.servers import start_haproxy

LADDER = [25, 50, 100, 200, 300, 450, 600]


def fake_step(n: int, limit: int, saturated: bool = False) -> dict[str, Any]:
    ok = n <= limit
    return {
        "n": n,
        "passed": ok,
        "p99": 10.0 if ok else 150.0,
        "p50": 1.0,
        "lost": 0,
        "connected": 2 * n,
        "clients": 2 * n,
        "saturated": saturated,
        "generator": [{"lag_p99_ms": 3.0, "cpu_percent": 20.0}],
        "delivered_per_s": 10.0 * n,
        "cpu_percent_ours": 0.1 * n,
        "cpu_percent_redis": None,
        "cpu_percent_proxy": None,
        "cpu_us_per_update_ours": 100.0,
        "cpu_us_per_update_all": 100.0,
        "generator_cpu_percent": 20.0,
        "other_cpu_percent": 1.0,
        "cpu_percent_each": [0.1 * n],
        "connections_each": None,
    }


def searched(limit: int, first: int = 3, budget: float = 60) -> list[int]:
    seen: list[int] = []

    def measure(n: int) -> dict[str, Any]:
        seen.append(n)
        return fake_step(n, limit)

    search(LADDER, first, measure, budget)
    return seen


@pytest.mark.parametrize(
    ("limit", "steps"),
    [
        (10, [200, 100, 50, 25, 12]),  # below the ladder: its half
        (60, [200, 100, 50, 75]),
        (150, [200, 100, 150]),
        (250, [200, 300, 250]),
        (500, [200, 300, 450, 600, 525]),
        (700, [200, 300, 450, 600]),  # the top passed: no bisection
    ],
)
def test_search_walks_to_the_limit_and_bisects_once(limit: int, steps: list[int]) -> None:
    assert searched(limit) == steps


def test_search_starts_no_step_after_its_budget() -> None:
    assert searched(500, budget=-1) == [200]


def test_capacity_row_takes_the_largest_pass_and_the_smallest_failure() -> None:
    steps = [fake_step(n, 250) for n in (200, 300)] + [fake_step(250, 250)]
    row = capacity_row(DEPLOYMENTS["affinity2"], "pair", steps, LADDER, None)
    assert (row["capacity"], row["failed_at"], row["top_of_ladder"]) == (250, 300, False)
    assert row["fail_reason"] == "p99 150.0 ms"
    top = capacity_row(DEPLOYMENTS["single"], "pair", [fake_step(600, 700)], LADDER, None)
    assert (top["capacity"], top["failed_at"], top["top_of_ladder"]) == (600, None, True)


def test_a_saturated_deciding_step_marks_the_row() -> None:
    steps = [fake_step(200, 250), fake_step(300, 250, saturated=True)]
    assert capacity_row(DEPLOYMENTS["single"], "pair", steps, LADDER, None)["saturated"]
    steps = [fake_step(100, 250, saturated=True), fake_step(200, 250), fake_step(300, 250)]
    assert not capacity_row(DEPLOYMENTS["single"], "pair", steps, LADDER, None)["saturated"]


def test_the_table_gives_capacity_over_one_process() -> None:
    one = capacity_row(DEPLOYMENTS["single"], "pair", [fake_step(200, 250)], LADDER, None)
    steps = [fake_step(300, 350), fake_step(200, 350)]
    two = capacity_row(DEPLOYMENTS["affinity2"], "pair", steps, LADDER, None)
    rows = [{**one, "server": "codementor"}, {**two, "server": "codementor"}]
    text = "\n".join(scaleout_section(rows))
    assert "| pair | 2 instances + HAProxy, room affinity (balance uri) | 300 | – | 1.50 |" in text
    assert "| pair | 1 process | 200 | – | 1.00 |" in text
    # the scales one process ran too, each deployment's cost
    assert "| pair | 200 | 100 (100) | 100 (100) |" in text
    assert "| pair | 300 |" not in text


# -- the real proxy --

BACKEND = """
import http.server, sys
port = int(sys.argv[1])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(port).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


@pytest.fixture
def backends() -> Iterator[list[int]]:
    """Three HTTP servers that answer every GET with their own port."""
    ports = [free_port() for _ in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", BACKEND, str(p)]) for p in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_listening(port, proc)
        yield ports
    finally:
        for proc in procs:
            stop_process(proc)


def answers(port: int, paths: list[str]) -> list[int]:
    """Which backend answered each request (a new connection each, as a websocket is)."""
    out = []
    for path in paths:
        with httpx.Client(timeout=5) as client:
            out.append(int(client.get(f"http://127.0.0.1:{port}{path}").text))
    return out


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
@pytest.mark.parametrize("affinity", [True, False])
def test_haproxy_keeps_a_room_on_one_instance_only_with_affinity(
    backends: list[int], affinity: bool
) -> None:
    proxy, port = start_haproxy(f"test-{affinity}-{time.monotonic_ns()}", backends, affinity)
    try:
        rooms = [f"/ws/room-{r}?token=t{i}" for r in range(8) for i in range(3)]
        got = answers(port, rooms)
    finally:
        stop_process(proxy)
    by_room: dict[str, set[int]] = {}
    for path, backend in zip(rooms, got, strict=True):
        by_room.setdefault(path.split("?")[0], set()).add(backend)
    if affinity:  # every room on one instance, the rooms over more than one
        assert all(len(b) == 1 for b in by_room.values())
        assert len(set(got)) > 1
    else:  # one connection after the other over the three
        assert all(len(b) > 1 for b in by_room.values())
        assert got[:6] == [got[0], got[1], got[2]] * 2
