"""The delay the runner adds over Judge0 itself.

usage: python bench/runner_delay.py [--runs 50] [--peers 3] [--json PATH]

A real server (``codementor serve`` subprocess) runs code on the Judge0 double
(``tests/judge0_double.py``) scripted to answer at once: the submission is final
the moment it is created, so Judge0 itself costs one HTTP round trip per call.
For each run, the clock starts just before ``POST /api/rooms/{room}/runs`` and
stops when the final result is in the document of every peer (y-websocket
clients on real websockets; checked right after each frame is applied).

As the baseline "Judge0 itself", the same client library calls the double
directly: ``POST /submissions`` then one ``GET /submissions/{token}``.
The difference is what the runner adds: the request, the snapshot, the
document writes and their fan-out, and above all the wait before the first
poll (``RunnerSettings.poll_first``), since a submission's result is only
known by polling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import jwt  # noqa: E402

from crdt import schema  # noqa: E402
from runner import records  # noqa: E402
from runner.judge0 import Judge0Client, SubmissionRequest  # noqa: E402
from runner.service import RunnerSettings  # noqa: E402
from tests.judge0_double import Judge0Double  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402
from tests.yclient import YClient  # noqa: E402

SECRET = "bench-secret-" + "0123456789abcdef" * 2
JUDGE0_TOKEN = "bench-judge0-token"
CODE = "print('ok')  # BENCH-INSTANT"


class Watcher(YClient):
    """A peer that notes when a run's final status reached its document."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.wanted: str | None = None
        self.done = asyncio.Event()
        self.done_at = 0.0

    async def _handle(self, frame: bytes) -> None:
        await super()._handle(frame)
        if self.wanted is not None and not self.done.is_set():
            entry = schema.runs(self.doc).get(self.wanted)
            if entry is not None and entry.get("status") in records.FINAL:
                self.done_at = time.perf_counter()
                self.done.set()

    def expect(self, run_id: str) -> None:
        self.wanted = run_id
        self.done = asyncio.Event()
        # The result may already be here (frames applied before the POST answered).
        entry = schema.runs(self.doc).get(run_id)
        if entry is not None and entry.get("status") in records.FINAL:
            self.done_at = time.perf_counter()
            self.done.set()


class TimedJudge0(Judge0Double):
    """The Judge0 double noting when each call arrived and when its answer was made
    (``perf_counter``, the same clock as the bench driver it runs in)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrived: list[tuple[float, str]] = []  # (time, endpoint)
        self.answered: list[tuple[float, str, int]] = []  # (time, endpoint, status)

    async def _gate(self, request: Any, endpoint: str) -> Any:
        self.arrived.append((time.perf_counter(), endpoint))
        return await super()._gate(request, endpoint)

    def _record(self, request: Any, endpoint: str, response: Any) -> Any:
        self.answered.append((time.perf_counter(), endpoint, response.status_code))
        return super()._record(request, endpoint, response)


async def run_shares(
    http: httpx.AsyncClient, room: str, owner: str, watchers: list[Watcher],
    double: TimedJudge0, runs: int,
) -> dict[str, list[float]]:  # fmt: skip
    """``runs`` runs one after another (code the double answers at once), each split in
    ms: the request to the submission reaching Judge0 (``submit``), Judge0's answer with
    the final result to that result in every watcher's document (``result_to_peers``),
    the wait between (the runner's first poll, ``poll_wait``) and the whole (``total``)."""
    out: dict[str, list[float]] = {k: [] for k in
                                   ("submit", "poll_wait", "result_to_peers", "total")}  # fmt: skip
    headers = {"authorization": f"Bearer {owner}"}
    for _ in range(runs):
        submits = sum(1 for _, e in double.arrived if e == "submit")
        started = time.perf_counter()
        response = await http.post(f"/api/rooms/{room}/runs", json={}, headers=headers)
        if response.status_code != 202:
            raise RuntimeError(f"POST /runs: {response.status_code} {response.text[:200]}")
        run_id = response.json()["run_id"]
        for watcher in watchers:
            watcher.expect(run_id)
        await asyncio.wait_for(asyncio.gather(*(w.done.wait() for w in watchers)), 30)
        seen = max(w.done_at for w in watchers)
        submitted = [t for t, e in double.arrived if e == "submit"][submits]
        submit_answered = next(t for t, e, _ in double.answered if e == "submit" and t >= submitted)
        final = max(t for t, e, status in double.answered if e == "get" and t <= seen)
        out["submit"].append((submitted - started) * 1000)
        out["poll_wait"].append((final - submit_answered) * 1000)
        out["result_to_peers"].append((seen - final) * 1000)
        out["total"].append((seen - started) * 1000)
    return out


def token(room: str, role: str = "owner") -> str:
    now = int(time.time())
    claims = {"sub": "u-bench", "name": "bench", "room": room, "role": role, "iat": now,
              "exp": now + 3600}  # fmt: skip
    return jwt.encode(claims, SECRET, algorithm="HS256")


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2),
        "min_ms": round(ordered[0] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


async def judge0_itself(url: str, runs: int) -> list[float]:
    client = Judge0Client(url, JUDGE0_TOKEN, timeout=10)
    samples: list[float] = []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            sub_token = await client.submit(SubmissionRequest(CODE, language_id=71))
            result = await client.get(sub_token)
            assert result.final and result.stdout == b"ok\n", result
            samples.append(time.perf_counter() - started)
    finally:
        await client.close()
    return samples


async def through_runner(server: ServerProcess, runs: int, peers: int) -> dict[str, list[float]]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        created = await http.post("/api/rooms", json={"mode": "pair", "language": "python"})
        room = created.json()["room"]
        headers = {"authorization": f"Bearer {token(room)}"}
        watchers = [Watcher(server.ws_url(room)) for _ in range(peers)]
        for number, watcher in enumerate(watchers):
            await watcher.connect(f"token={token(room, 'owner' if number == 0 else 'viewer')}")
            await watcher.wait_synced()
        watchers[0].text += CODE
        snapshot = f"/api/rooms/{room}/snapshot"
        while (await http.get(snapshot, headers=headers)).text != CODE:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        total: list[float] = []
        answered: list[float] = []
        for _ in range(runs):
            started = time.perf_counter()
            response = await http.post(f"/api/rooms/{room}/runs", json={}, headers=headers)
            answered.append(time.perf_counter() - started)
            assert response.status_code == 202, response.text
            run_id = response.json()["run_id"]
            for watcher in watchers:
                watcher.expect(run_id)
            await asyncio.wait_for(asyncio.gather(*(w.done.wait() for w in watchers)), 30)
            total.append(max(w.done_at for w in watchers) - started)
            entry = schema.runs(watchers[-1].doc).get(run_id)
            assert entry is not None, run_id
            status = entry.get("status")
            assert status == "accepted", status
        for watcher in watchers:
            await watcher.close()
    return {"total": total, "answered": answered}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--peers", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    warmup = 5
    with Judge0Double(auth_token=JUDGE0_TOKEN) as double, tempfile.TemporaryDirectory() as data:
        double.script("BENCH-INSTANT", status_id=3, stdout="ok\n")
        server = ServerProcess(
            Path(data),
            {
                "CODEMENTOR_SECRET": SECRET,
                "CODEMENTOR_LOG_LEVEL": "warning",
                "CODEMENTOR_API_RATE_PER_MINUTE": "1000000",
                "CODEMENTOR_RUNNER_RUNS_PER_MINUTE": "1000000",
                "CODEMENTOR_JUDGE0_URL": double.url,
                "CODEMENTOR_JUDGE0_TOKEN": JUDGE0_TOKEN,
            },
        ).start()
        try:
            baseline = (await judge0_itself(double.url, args.runs + warmup))[warmup:]
            measured = await through_runner(server, args.runs + warmup, args.peers)
        finally:
            server.stop()
    total = measured["total"][warmup:]
    answered = measured["answered"][warmup:]
    results: dict[str, Any] = {
        "runs": args.runs,
        "peers": args.peers,
        "poll_first_ms": RunnerSettings(url="").poll_first * 1000,
        "post_to_every_peer": summary(total),
        "post_answered": summary(answered),
        "judge0_itself": summary(baseline),
        "added_by_runner_median_ms": round(
            (statistics.median(total) - statistics.median(baseline)) * 1000, 2
        ),
    }
    print(f"runs {args.runs}, peers {args.peers}, double answering at once")
    print(f"{'':34} {'median':>9} {'p95':>9} {'min':>9} {'max':>9}")
    for label, key in (
        ("POST -> final in every peer's doc", "post_to_every_peer"),
        ("POST -> 202 {run_id}", "post_answered"),
        ("Judge0 itself (submit + 1 GET)", "judge0_itself"),
    ):
        row = results[key]
        print(
            f"{label:34} {row['median_ms']:>7.1f}ms {row['p95_ms']:>7.1f}ms "
            f"{row['min_ms']:>7.1f}ms {row['max_ms']:>7.1f}ms"
        )
    print(
        f"added by the runner (median): {results['added_by_runner_median_ms']:.1f} ms "
        f"(of which the first poll waits {results['poll_first_ms']:.0f} ms)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
