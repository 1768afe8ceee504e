"""Repro (issue 22, found by the targets family): runs started and cancelled at once, many
times, leave the runner's Judge0 calls timing out until its breaker opens.

usage: .venv/bin/python bench/cancel_repro.py [PAIRS]      (default 100)

A real server on the Judge0 double; one room's runs are held 3 s by the double and each is
cancelled right after its 202; then 3 plain runs in another room. Printed: how those end
and the server's ``codementor_judge0_errors_total``. Cause (found, fixed): a stop's
``Task.cancel()`` landing while httpcore closed a Judge0 response left that request in
the pool for good (httpcore#1115), and the runner's pool has ``concurrency + 2`` slots;
Judge0 calls now run in their own task (``runner/judge0.py``), and
``tests/test_run_cancel_loop.py`` holds the loop.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.runner_delay import JUDGE0_TOKEN, SECRET, TimedJudge0, token  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402

HELD = "print(1)  # BENCH-HOLD\n"
INSTANT = "print(1)  # BENCH-INSTANT\n"


async def room_with(http: httpx.AsyncClient, code: str) -> tuple[str, dict[str, str]]:
    room = (await http.post("/api/rooms", json={"mode": "pair"})).json()["room"]
    headers = {"authorization": f"Bearer {token(room)}"}
    entry = (await http.get(f"/api/rooms/{room}/files", headers=headers)).json()[0]["path"]
    await http.put(f"/api/rooms/{room}/files/{entry}", content=code.encode(), headers=headers)
    return room, headers


async def main(pairs: int) -> None:
    env = {
        "CODEMENTOR_SECRET": SECRET,
        "CODEMENTOR_LOG_LEVEL": "warning",
        "CODEMENTOR_API_RATE_PER_MINUTE": "1000000",
        "CODEMENTOR_RUNNER_RUNS_PER_MINUTE": "1000000",
        "CODEMENTOR_JUDGE0_TOKEN": JUDGE0_TOKEN,
    }
    with TimedJudge0(auth_token=JUDGE0_TOKEN) as double, tempfile.TemporaryDirectory() as data:
        double.script("BENCH-INSTANT", status_id=3, stdout="ok\n")
        double.script("BENCH-HOLD", status_id=3, delay=3, stdout="slow\n")
        server = ServerProcess(Path(data), {**env, "CODEMENTOR_JUDGE0_URL": double.url}).start()
        try:
            async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
                held, held_h = await room_with(http, HELD)
                plain, plain_h = await room_with(http, INSTANT)
                for _ in range(pairs):
                    run = await http.post(f"/api/rooms/{held}/runs", json={}, headers=held_h)
                    run_id = run.json()["run_id"]
                    await http.post(f"/api/rooms/{held}/runs/{run_id}/cancel", headers=held_h)
                for _ in range(3):
                    started = time.perf_counter()
                    run = await http.post(f"/api/rooms/{plain}/runs", json={}, headers=plain_h)
                    path = f"/api/rooms/{plain}/runs/{run.json()['run_id']}"
                    entry = (await http.get(path, headers=plain_h)).json()
                    while entry["status"] in ("queued", "running"):  # noqa: ASYNC110 - polls REST
                        await asyncio.sleep(0.05)
                        entry = (await http.get(path, headers=plain_h)).json()
                    elapsed = time.perf_counter() - started
                    print(f"after {pairs} cancels: {entry['status']} in {elapsed:.2f} s")
                page = (await http.get("/metrics")).text
                errors = [
                    line
                    for line in page.splitlines()
                    if line.startswith("codementor_judge0_errors_total") and " 0.0" not in line
                ]
                print("judge0 errors:", errors or "none")
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
