"""Runs started and stopped at once, over and over, must not take the runner away.

Issue 22: one user starting a run and stopping it right after its 202, a few hundred
times, left every later run on the instance ``unavailable``. A stop cancelled the run's
task while httpx was closing a Judge0 response; the cancellation escaped httpcore's
close (its anyio shield does not stop asyncio's ``Task.cancel``), so the pool never
released that request's connection (httpcore#1115, httpx#3782). Once every pooled
connection had leaked this way, each Judge0 call waited for the pool until its timeout
and the circuit breaker opened. The runner now never cancels a Judge0 call: a stopped
run stops waiting for it, and the call ends on its own (``runner/judge0.py``).

A real server process on the Judge0 double, with one Judge0 slot (a pool of three
connections) so that three leaks break it: the old code broke on every try.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.judge0_double import Judge0Double
from tests.serverproc import ServerProcess
from tests.support import sign
from tests.test_runner import BASE_ENV, JUDGE0_TOKEN

pytestmark = pytest.mark.anyio

CYCLES = 300  # start + stop pairs
HELD = "print('held')  # CANCEL-LOOP-HOLD\n"


@pytest.fixture
def judge0() -> Iterator[Judge0Double]:
    double = Judge0Double(auth_token=JUDGE0_TOKEN).start()
    double.script("CANCEL-LOOP-HOLD", status_id=3, delay=3.0, stdout="held\n")
    yield double
    double.stop()


async def room_with(http: httpx.AsyncClient, code: str) -> tuple[str, dict[str, str]]:
    """A new room whose entry file holds ``code``, and its owner's headers."""
    created = await http.post("/api/rooms", json={"mode": "pair", "language": "python"})
    assert created.status_code == 201, created.text
    room: str = created.json()["room"]
    headers = {"authorization": f"Bearer {sign(room, 'owner', personal=True)}"}
    files = await http.get(f"/api/rooms/{room}/files", headers=headers)
    entry = files.json()[0]["path"]
    put = await http.put(f"/api/rooms/{room}/files/{entry}", content=code, headers=headers)
    assert put.status_code in (200, 201, 204), put.text
    return room, headers


async def final_run(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> dict[str, str]:
    """Poll a run's REST view until it ends (the server's own deadline bounds it)."""
    give_up = time.monotonic() + 60
    while True:
        entry: dict[str, str] = (await http.get(path, headers=headers)).json()
        if entry["status"] not in ("queued", "running") or time.monotonic() > give_up:
            return entry
        await asyncio.sleep(0.05)


async def test_a_loop_of_started_and_stopped_runs_leaves_the_runner_working(
    server_factory: Callable[..., ServerProcess], judge0: Judge0Double
) -> None:
    env = {
        **BASE_ENV,
        "CODEMENTOR_JUDGE0_URL": judge0.url,
        "CODEMENTOR_RUNNER_CONCURRENCY": "1",  # a pool of 3 Judge0 connections
        "CODEMENTOR_RUNNER_HTTP_TIMEOUT_SECONDS": "2",  # a full pool fails fast
        "CODEMENTOR_RUNNER_DEADLINE_SECONDS": "10",
        "CODEMENTOR_LOG_LEVEL": "warning",
    }
    server = server_factory(None, **env)
    rng = random.Random(22)
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        held, held_headers = await room_with(http, HELD)
        plain, plain_headers = await room_with(http, "print('after the storm')\n")
        stopped = 0
        for _ in range(CYCLES):
            started = await http.post(f"/api/rooms/{held}/runs", json={}, headers=held_headers)
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            # Land the stop at varied points of the run's first Judge0 calls.
            await asyncio.sleep(rng.uniform(0, 0.003))
            stop = await http.post(f"/api/rooms/{held}/runs/{run_id}/cancel", headers=held_headers)
            assert stop.status_code in (200, 409), stop.text  # 409: it had already ended
            stopped += stop.status_code == 200
        assert stopped > CYCLES // 2
        # The instance still runs code, for this room and any other.
        for _ in range(2):
            started = await http.post(f"/api/rooms/{plain}/runs", json={}, headers=plain_headers)
            assert started.status_code == 202, started.text
            path = f"/api/rooms/{plain}/runs/{started.json()['run_id']}"
            run = await final_run(http, path, plain_headers)
            assert run["status"] == "accepted", run
            assert run["stdout"] == "after the storm\n"
        health = (await http.get("/readyz")).json()
        assert "open" not in str(health), health
