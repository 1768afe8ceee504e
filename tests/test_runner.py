"""The runner end to end: a real server (``codementor serve`` subprocess) running code on
the Judge0 double (a real HTTP server, ``tests/judge0_double.py``) through the real httpx
client, results watched from peers' documents over real websockets.

Covers every final status, non-UTF-8 and oversize output, who may run, one run per room
(409), the per-user rate limit (429), the global cap, Judge0's error answers (retried),
a slow Judge0, a dead one (the breaker opens, /readyz says degraded, then it closes), a
restart in the middle of a run (interrupted), and the OpenAPI document of the endpoints.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from pycrdt import Map

from crdt import schema
from runner import records
from server.settings import Settings, SettingsError
from tests.judge0_double import Judge0Double, Submission
from tests.serverproc import ROOT, ServerProcess
from tests.support import SECRET, eventually, plain, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

JUDGE0_TOKEN = "judge0-secret-token"
# What each test's server gets unless it says otherwise: small limits so the limit tests
# are quick (the double enforces them on the real Python subprocess).
BASE_ENV = {
    "CODEMENTOR_SECRET": SECRET,
    "CODEMENTOR_API_RATE_PER_MINUTE": "100000",
    "CODEMENTOR_JUDGE0_TOKEN": JUDGE0_TOKEN,
    "CODEMENTOR_RUNNER_CPU_TIME_SECONDS": "1",
    "CODEMENTOR_RUNNER_WALL_TIME_SECONDS": "2",
    "CODEMENTOR_RUNNER_MEMORY_MB": "64",
    "CODEMENTOR_RUNNER_RUNS_PER_MINUTE": "100000",
    "CODEMENTOR_RUNNER_DEADLINE_SECONDS": "30",
}
OBSERVED: list[tuple[str, str, int, bytes]] = []  # (method, template, status, body)


# -- plumbing ---------------------------------------------------------------------------


class Api:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server

    def create_room(self, mode: str = "pair", language: str = "python") -> str:
        response = httpx.post(
            self.server.http_url + "/api/rooms",
            json={"mode": mode, "language": language, "title": "runner"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        room: str = response.json()["room"]
        return room

    def run(self, room: str, token: str, stdin: str | None = None, **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {} if stdin is None else {"stdin": stdin}
        response = httpx.post(
            f"{self.server.http_url}/api/rooms/{room}/runs",
            json={**body, **extra},
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )
        OBSERVED.append(("post", "/api/rooms/{room}/runs", response.status_code, response.content))
        return response

    def get_run(self, room: str, run_id: str, token: str) -> httpx.Response:
        response = httpx.get(
            f"{self.server.http_url}/api/rooms/{room}/runs/{run_id}",
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )
        OBSERVED.append(
            ("get", "/api/rooms/{room}/runs/{run_id}", response.status_code, response.content)
        )
        return response

    def started(self, room: str, token: str, stdin: str | None = None) -> str:
        response = self.run(room, token, stdin)
        assert response.status_code == 202, response.text
        run_id: str = response.json()["run_id"]
        return run_id

    def language(self, room: str, language: str) -> None:
        response = httpx.patch(
            f"{self.server.http_url}/api/rooms/{room}",
            json={"language": language},
            headers={"authorization": f"Bearer {sign(room, 'owner')}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text

    def readyz(self) -> httpx.Response:
        return httpx.get(self.server.http_url + "/readyz", timeout=10)


class Peer:
    """A y-websocket peer watching the room's ``runs`` map; records every status it saw."""

    def __init__(self, client: YClient) -> None:
        self.client = client
        self.seen: dict[str, list[str]] = {}
        self._poller: asyncio.Task[None] | None = None

    @property
    def runs(self) -> Map[Any]:
        return schema.runs(self.client.doc)

    def run(self, run_id: str) -> dict[str, Any]:
        entry = self.runs.get(run_id)
        return records.as_json(entry) if entry is not None else {}

    def _look(self) -> None:
        for run_id, entry in self.runs.items():
            status = entry.get("status") if isinstance(entry, Map) else None
            history = self.seen.setdefault(str(run_id), [])
            if isinstance(status, str) and (not history or history[-1] != status):
                history.append(status)

    async def _poll(self) -> None:
        while True:
            self._look()
            await asyncio.sleep(0.002)

    def start(self) -> None:
        self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        await self.client.close()

    async def set_code(self, api: Api, room: str, code: str) -> None:
        text = self.client.text
        with self.client.doc.transaction():
            del text[0 : len(text)]
            text.insert(0, code)
        await eventually(lambda: snapshot(api, room) == code, timeout=10, interval=0.02)

    async def final(self, run_id: str, timeout: float = 20.0) -> dict[str, Any]:
        await eventually(
            lambda: self.run(run_id).get("status") in records.FINAL, timeout, interval=0.005
        )
        self._look()
        return self.run(run_id)


def snapshot(api: Api, room: str) -> str:
    response = httpx.get(
        f"{api.server.http_url}/api/rooms/{room}/snapshot",
        headers={"authorization": f"Bearer {sign(room, 'viewer')}"},
        timeout=10,
    )
    return response.text


@asynccontextmanager
async def peer(api: Api, room: str, role: str = "owner", name: str = "Ada") -> AsyncIterator[Peer]:
    client = YClient(api.server.ws_url(room))
    await client.connect(f"token={sign(room, role, sub='u-' + name.lower(), name=name)}")
    await client.wait_synced()
    watcher = Peer(client)
    watcher.start()
    try:
        yield watcher
    finally:
        await watcher.stop()


def latest(double: Judge0Double) -> Submission:
    return max(double.submissions.values(), key=lambda sub: sub.created_at)


def judge0_double() -> Judge0Double:
    return Judge0Double(auth_token=JUDGE0_TOKEN).start()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Judge0Double]]:
    """One double and one server for the tests that leave both as they found them."""
    double = judge0_double()
    env = {**BASE_ENV, "CODEMENTOR_JUDGE0_URL": double.url}
    try:
        with ServerProcess(tmp_path_factory.mktemp("runner"), env) as proc:
            yield Api(proc), double
    finally:
        double.stop()


@pytest.fixture
def env(shared: tuple[Api, Judge0Double]) -> Iterator[tuple[Api, Judge0Double]]:
    api, double = shared
    yield api, double
    double.queue_delay = double.processing_delay = double.response_delay = 0.0
    double.hang = False
    double._injections.clear()


@pytest.fixture
def double() -> Iterator[Judge0Double]:
    fake = judge0_double()
    yield fake
    fake.stop()


@pytest.fixture
def start_server(
    server_factory: Callable[..., ServerProcess], double: Judge0Double
) -> Callable[..., Api]:
    def start(data_dir: Path | None = None, **env: str) -> Api:
        settings = {**BASE_ENV, "CODEMENTOR_JUDGE0_URL": double.url, **env}
        return Api(server_factory(data_dir, **settings))

    return start


# -- results through the document -----------------------------------------------------


async def test_two_peers_see_the_run_progress_and_its_result(
    env: tuple[Api, Judge0Double],
) -> None:
    api, double = env
    room = api.create_room()
    owner_token = sign(room, "owner")
    async with peer(api, room, "owner", "Ada") as ada, peer(api, room, "editor", "Bob") as bob:
        await ada.set_code(api, room, "name = input()\nprint(f'hello {name[::-1]}')\n")
        await eventually(lambda: "hello" in str(bob.client.text))
        state_before = ada.client.doc.get_state()
        double.queue_delay = double.processing_delay = 0.4  # long enough to see each state
        run_id = api.started(room, owner_token, stdin="ydob")
        # Edits after the request are not part of the run.
        ada.client.text += "raise SystemExit('not part of the run')\n"
        results = [await ada.final(run_id), await bob.final(run_id)]
    for watcher, result in zip((ada, bob), results, strict=True):
        assert watcher.seen[run_id] == ["queued", "running", "accepted"]
        assert result["stdout"] == "hello body\n"
        assert result == results[0]  # the same record in every document
    run = results[0]
    assert run["id"] == run_id and run["by"] == "Ada" and run["by_id"] == "u-ada"
    assert run["language"] == "python" and run["stdin"] == "ydob"
    assert run["stderr"] == "" and run["compile_output"] == "" and not run["stdout_cut"]
    assert run["exit_code"] == 0.0 and run["judge0_status"] == "Accepted"
    assert isinstance(run["time"], float) and isinstance(run["memory"], float)
    assert run["ts"] <= run["started_at"] <= run["finished_at"] <= time.time()
    # The document state it ran against: the state vector at the snapshot.
    assert base64.b64decode(run["state"]) == state_before
    assert b"not part of the run" not in latest(double).source_code
    # Only JSON primitives: any Yjs client can read the record.
    assert all(isinstance(v, str | float | bool) for v in run.values())
    # The REST view is the same record.
    response = api.get_run(room, run_id, sign(room, "viewer", sub="u-v", name="V"))
    assert response.status_code == 200 and response.json() == run


async def test_every_final_status(env: tuple[Api, Judge0Double]) -> None:
    api, double = env
    room = api.create_room()
    token = sign(room, "owner")
    double.script("BROKEN_SANDBOX", status_id=13, message="No such file or directory @ rb_sysopen")
    double.script("int main(", status_id=6, compile_output="main.c:1:10: error: expected ')'")
    cases = [
        ("print(sum(map(int, input().split())))", "2 40", "accepted"),
        ("raise ValueError('boom')", "", "runtime_error"),
        ("while True:\n    pass", "", "time_limit"),
        ("blob = bytearray(512 * 1024 * 1024)", "", "memory_limit"),
        ("# BROKEN_SANDBOX\nprint(1)", "", "internal_error"),
    ]
    results: dict[str, dict[str, Any]] = {}
    async with peer(api, room) as watcher:
        for code, stdin, expected in cases:
            await watcher.set_code(api, room, code)
            run_id = api.started(room, token, stdin)
            results[expected] = await watcher.final(run_id)
            assert results[expected]["status"] == expected, results[expected]
        api.language(room, "c")
        await eventually(lambda: schema.meta(watcher.client.doc).get("language") == "c")
        await watcher.set_code(api, room, "int main( {\n  return 0;\n}\n")
        results["compile_error"] = await watcher.final(api.started(room, token))
    assert results["accepted"]["stdout"] == "42\n"
    runtime = results["runtime_error"]
    assert "ValueError: boom" in runtime["stderr"] and runtime["exit_code"] == 1.0
    assert runtime["message"] == "Exited with error status 1"
    assert results["time_limit"]["message"] == "Time limit exceeded"
    assert "MemoryError" in results["memory_limit"]["stderr"]
    assert "misconfigured" in results["internal_error"]["message"]
    assert "rb_sysopen" in results["internal_error"]["message"]
    compiled = results["compile_error"]
    assert compiled["compile_output"] == "main.c:1:10: error: expected ')'"
    assert compiled["language"] == "c"
    assert latest(double).language_id == 50
    # Judge0 got the configured limits.
    limits = next(iter(double.submissions.values())).limits
    assert (limits["cpu_time_limit"], limits["wall_time_limit"]) == (1.0, 2.0)
    assert limits["memory_limit"] == 64 * 1024
    metrics = api.server.metrics()
    for status in ("accepted", "runtime_error", "time_limit", "memory_limit", "compile_error"):
        assert f'codementor_runs_total{{status="{status}"}}' in metrics
    assert api.server.metric("codementor_run_execution_seconds_count") >= 5


async def test_output_that_is_not_utf8_or_too_long(env: tuple[Api, Judge0Double]) -> None:
    api, _ = env
    room = api.create_room()
    code = (
        "import sys\n"
        "sys.stdout.buffer.write(b'bad \\xff\\xfe bytes ' + b'o' * 100_000)\n"
        "sys.stderr.write('e' * 70_000)\n"
    )
    async with peer(api, room) as watcher:
        await watcher.set_code(api, room, code)
        run = await watcher.final(api.started(room, sign(room, "owner")))
    assert run["status"] == "accepted"
    assert run["stdout"].startswith("bad \ufffd\ufffd bytes ooo")
    assert len(run["stdout"].encode()) == 64 * 1024 and run["stdout_cut"] is True
    assert run["stderr"] == "e" * 64 * 1024 and run["stderr_cut"] is True
    assert run["compile_output_cut"] is False


# -- who may run, and the bounds ----------------------------------------------------------


async def test_who_may_run_and_what(env: tuple[Api, Judge0Double]) -> None:
    api, _ = env
    room = api.create_room("pair")
    async with peer(api, room) as watcher:
        await watcher.set_code(api, room, "print('hi')")
        for role in ("viewer", "reviewer"):
            response = api.run(room, sign(room, role, sub=f"u-{role}"))
            assert response.status_code == 403, response.text
        assert api.run(room, sign(room, "owner", sub="u-other") + "x").status_code == 401
        assert api.run(room, sign("other-room", "owner")).status_code == 403
        assert api.run("no-such-room", sign("no-such-room", "owner")).status_code == 404
        editor = api.started(room, sign(room, "editor", sub="u-ed", name="Ed"))
        assert (await watcher.final(editor))["by"] == "Ed"
        bad = api.run(room, sign(room, "owner"), stdin=None, extra_field=1)
        assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "extra_field"
        assert api.run(room, sign(room, "owner"), stdin=5).status_code == 422  # type: ignore[arg-type]
        await watcher.set_code(api, room, "  \n")
        empty = api.run(room, sign(room, "owner"))
        assert empty.status_code == 422 and empty.json()["fields"][0]["field"] == "code"
        api.language(room, "cobol")
        unsupported = api.run(room, sign(room, "owner"))
        assert unsupported.status_code == 422
        assert "does not support 'cobol'" in unsupported.json()["error"]
        assert unsupported.json()["fields"][0]["field"] == "meta.language"
    missing = api.get_run(room, "no-such-run", sign(room, "viewer", sub="u-viewer"))
    assert missing.status_code == 404
    # Broadcast rooms: the owner only.
    classroom = api.create_room("broadcast")
    async with peer(api, classroom) as teacher:
        await teacher.set_code(api, classroom, "print('class')")
        assert api.run(classroom, sign(classroom, "editor", sub="u-ta")).status_code == 403
        assert api.run(classroom, sign(classroom, "viewer", sub="u-kid")).status_code == 403
        run_id = api.started(classroom, sign(classroom, "owner"))
        assert (await teacher.final(run_id))["stdout"] == "class\n"


async def test_a_second_run_while_one_is_in_flight_is_409(env: tuple[Api, Judge0Double]) -> None:
    api, double = env
    room = api.create_room()
    async with peer(api, room) as watcher:
        await watcher.set_code(api, room, "print('once')")
        double.processing_delay = 1.0
        first = api.started(room, sign(room, "owner"))
        for token in (sign(room, "owner"), sign(room, "editor", sub="u-bob", name="Bob")):
            again = api.run(room, token)
            assert again.status_code == 409, again.text
            assert first in again.json()["error"]
        other_room = api.create_room()  # other rooms are not held up
        async with peer(api, other_room) as other:
            await other.set_code(api, other_room, "print('elsewhere')")
            assert (await other.final(api.started(other_room, sign(other_room, "owner"))))[
                "status"
            ] == "accepted"
        assert (await watcher.final(first))["stdout"] == "once\n"
        double.processing_delay = 0.0
        second = api.started(room, sign(room, "owner"))
        assert (await watcher.final(second))["status"] == "accepted"
        assert len(watcher.seen) == 2


async def test_runs_per_user_are_rate_limited(start_server: Callable[..., Api]) -> None:
    api = start_server(CODEMENTOR_RUNNER_RUNS_PER_MINUTE="2")
    room = api.create_room()
    ada = sign(room, "owner")
    async with peer(api, room) as watcher:
        await watcher.set_code(api, room, "print(1)")
        for _ in range(2):
            await watcher.final(api.started(room, ada))
        refused = api.run(room, ada)
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"].isdigit()
        assert 1 <= int(refused.headers["retry-after"]) <= 30
        # Another user has an allowance of their own.
        bob = sign(room, "editor", sub="u-bob", name="Bob")
        assert (await watcher.final(api.started(room, bob)))["by"] == "Bob"
        # The REST API's own limit is separate: reading still works.
        assert api.get_run(room, next(iter(watcher.seen)), ada).status_code == 200


async def test_global_cap_on_concurrent_runs(
    start_server: Callable[..., Api], double: Judge0Double
) -> None:
    api = start_server(CODEMENTOR_RUNNER_CONCURRENCY="1", CODEMENTOR_RUNNER_QUEUE="1")
    rooms = [api.create_room() for _ in range(3)]
    async with peer(api, rooms[0]) as a, peer(api, rooms[1]) as b, peer(api, rooms[2]) as c:
        for watcher, room in zip((a, b, c), rooms, strict=True):
            await watcher.set_code(api, room, f"print('{room}')")
        double.processing_delay = 1.0
        first = api.started(rooms[0], sign(rooms[0], "owner"))
        await eventually(lambda: a.run(first).get("status") == "running")
        second = api.started(rooms[1], sign(rooms[1], "owner"))
        busy = api.run(rooms[2], sign(rooms[2], "owner"))
        assert busy.status_code == 503 and busy.headers["retry-after"].isdigit()
        await asyncio.sleep(0.3)
        assert b.run(second)["status"] == "queued"  # waiting for the slot...
        assert double.count("submit") == 1  # ...without being sent to Judge0
        assert (await a.final(first))["status"] == "accepted"
        assert (await b.final(second))["stdout"] == f"{rooms[1]}\n"
        assert b.seen[second] == ["queued", "running", "accepted"]
    assert double.max_in_flight == 1


# -- Judge0 failing -----------------------------------------------------------------------


async def test_judge0_error_answers_are_retried(env: tuple[Api, Judge0Double]) -> None:
    api, double = env
    room = api.create_room()
    before = {
        kind: api.server.metric(f'codementor_judge0_errors_total{{kind="{kind}"}}')
        for kind in ("queue_full", "rate_limited", "server_error")
    }
    async with peer(api, room) as watcher:
        await watcher.set_code(api, room, "print('finally')")
        double.inject(503, "submit", times=2, body={"error": "queue is full"})
        double.inject(429, "submit", headers={"Retry-After": "1"})
        double.inject(500, "get", body={"error": "undefined method for nil"})
        started = time.monotonic()
        run = await watcher.final(api.started(room, sign(room, "owner")))
        assert run["status"] == "accepted" and run["stdout"] == "finally\n"
        assert time.monotonic() - started >= 1.0  # Retry-After was honoured
        # A refused submission (422) is not retried: Judge0 will refuse it again.
        double.inject(
            422, "submit", body={"memory_limit": ["must be less than or equal to 512000"]}
        )
        refused = await watcher.final(api.started(room, sign(room, "owner")))
    assert refused["status"] == "internal_error"
    assert "memory_limit: must be less than or equal to 512000" in refused["message"]
    assert double.calls.count(("POST", "submit", 201)) >= 1
    after = {k: api.server.metric(f'codementor_judge0_errors_total{{kind="{k}"}}') for k in before}
    assert after["queue_full"] - before["queue_full"] == 2
    assert after["rate_limited"] - before["rate_limited"] == 1
    assert after["server_error"] - before["server_error"] == 1
    assert api.readyz().json()["checks"]["runner"] == "ok"  # busy answers are not failures


async def test_wrong_judge0_token(start_server: Callable[..., Api], double: Judge0Double) -> None:
    api = start_server(
        CODEMENTOR_JUDGE0_TOKEN="not-the-token", CODEMENTOR_RUNNER_BREAKER_FAILURES="50"
    )
    room = api.create_room()
    async with peer(api, room) as watcher:
        await watcher.set_code(api, room, "print(1)")
        run = await watcher.final(api.started(room, sign(room, "owner")))
    assert run["status"] == "unavailable"
    assert "misconfigured" in run["message"] and "401" in run["message"]
    assert double.count("submit") == 0 and double.count("languages", 401) >= 1
    assert api.server.metric('codementor_judge0_errors_total{kind="auth"}') >= 1


async def test_a_slow_judge0(start_server: Callable[..., Api], double: Judge0Double) -> None:
    api = start_server(
        CODEMENTOR_RUNNER_HTTP_TIMEOUT_SECONDS="0.5",
        CODEMENTOR_RUNNER_DEADLINE_SECONDS="4",
        CODEMENTOR_RUNNER_BREAKER_FAILURES="100",
    )
    room = api.create_room()
    token = sign(room, "owner")
    async with peer(api, room) as watcher:
        await watcher.set_code(api, room, "print('slowly')")
        # Slow but within every bound: each answer takes 0.2 s, the run 0.6 s.
        double.response_delay = 0.2
        double.queue_delay = double.processing_delay = 0.3
        slow = api.started(room, token)
        assert (await watcher.final(slow))["stdout"] == "slowly\n"
        assert watcher.seen[slow] == ["queued", "running", "accepted"]
        # Slower than the HTTP timeout for a while: the calls time out and are retried.
        double.response_delay = double.queue_delay = double.processing_delay = 0.0
        double.hang = True
        late = api.started(room, token)
        timeouts = 'codementor_judge0_errors_total{kind="timeout"}'
        await eventually(lambda: api.server.metric(timeouts) >= 2, interval=0.1)
        double.hang = False
        assert (await watcher.final(late))["stdout"] == "slowly\n"
        # Never answering: the run ends unavailable at its deadline.
        double.hang = True
        started = time.monotonic()
        lost = await watcher.final(api.started(room, token))
        elapsed = time.monotonic() - started
        double.hang = False
        # Answering, but never starting it (Judge0's workers are down): the same deadline.
        double.queue_delay = 60.0
        stuck = await watcher.final(api.started(room, token))
    assert lost["status"] == "unavailable"
    assert "within 4 s" in lost["message"] and "did not answer in time" in lost["message"]
    assert 3.5 <= elapsed <= 8
    assert stuck["status"] == "unavailable" and "still in Judge0's queue" in stuck["message"]
    assert api.readyz().status_code == 200


async def test_a_dead_judge0_opens_the_breaker_which_closes_again(
    start_server: Callable[..., Api], double: Judge0Double
) -> None:
    api = start_server(
        CODEMENTOR_RUNNER_BREAKER_FAILURES="3",
        CODEMENTOR_RUNNER_BREAKER_COOLDOWN_SECONDS="3",
        CODEMENTOR_RUNNER_HTTP_TIMEOUT_SECONDS="0.5",
    )
    room = api.create_room()
    token = sign(room, "owner")
    await eventually(lambda: api.readyz().json()["runner"]["languages"] > 0)
    async with peer(api, room) as watcher:
        await watcher.set_code(api, room, "print('back')")
        double.kill()
        dead = await watcher.final(api.started(room, token))
        assert dead["status"] == "unavailable"
        assert "could not run the code" in dead["message"]
        ready = api.readyz()
        assert ready.status_code == 200  # the server stays ready...
        body = ready.json()
        assert body["status"] == "ready" and body["checks"]["store"] == "ok"
        assert body["checks"]["runner"] == "degraded"  # ...the runner is degraded
        assert body["runner"]["breaker"] == "open" and body["runner"]["last_error"] == "connect"
        assert api.server.metric("codementor_runner_breaker_open") == 1
        # Judge0 is back, but the breaker is open: runs fail fast, Judge0 is left alone.
        double.revive()
        calls = len(double.calls)
        fast = time.monotonic()
        refused = await watcher.final(api.started(room, token))
        assert time.monotonic() - fast < 1.5
        assert refused["status"] == "unavailable"
        assert "failed 3 times in a row" in refused["message"]
        assert len(double.calls) == calls
        # After the cool-down the probe finds Judge0 and closes the breaker.
        await eventually(lambda: api.readyz().json()["checks"]["runner"] == "ok", timeout=10)
        assert double.calls[calls:][0] == ("GET", "languages", 200)
        assert api.server.metric("codementor_runner_breaker_open") == 0
        back = await watcher.final(api.started(room, token))
    assert back["status"] == "accepted" and back["stdout"] == "back\n"
    assert api.server.metric('codementor_judge0_errors_total{kind="connect"}') >= 3
    assert api.server.metric('codementor_runs_total{status="unavailable"}') == 2


# -- restarts ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_a_restart_in_the_middle_of_a_run_ends_it_interrupted(
    start_server: Callable[..., Api], double: Judge0Double, tmp_path: Path, how: int
) -> None:
    data = tmp_path / "restart"
    api = start_server(data)
    room = api.create_room()
    token = sign(room, "owner")
    async with peer(api, room) as watcher:
        await watcher.set_code(api, room, "print('never seen')")
        double.processing_delay = 30.0
        run_id = api.started(room, token)
        await eventually(lambda: watcher.run(run_id).get("status") == "running")
        await asyncio.sleep(0.5)  # past the durability window: "running" is stored
        api.server.stop(how)
    after = start_server(data)
    response = after.get_run(room, run_id, token)  # loads the room
    assert response.status_code == 200
    run = response.json()
    assert run["status"] == "interrupted"
    expected = "restarted" if how == signal.SIGKILL else "shut down"
    assert expected in run["message"]
    async with peer(after, room) as watcher:
        assert watcher.run(run_id)["status"] == "interrupted"
        # The room runs again.
        double.processing_delay = 0.0
        assert (await watcher.final(after.started(room, token)))["stdout"] == "never seen\n"


def test_stale_runs_of_other_instances_wait_for_their_deadline() -> None:
    """Multi-instance mode: a run in flight in a loaded room may belong to a live sibling
    instance, so only one past its deadline is interrupted; alone, every one is."""
    from pycrdt import Doc

    from runner.service import interrupt_stale_runs

    class FakeRoom:
        name = "room"

        def __init__(self) -> None:
            self.doc: Doc[Any] = Doc()

        def edit(self, change: Callable[[Doc[Any]], None], origin: str = "") -> None:
            with self.doc.transaction():
                change(self.doc)

    now = time.time()

    def seeded() -> FakeRoom:
        room = FakeRoom()
        runs = schema.runs(room.doc)
        for run_id, status, deadline in (
            ("late", "running", now - 1),
            ("live", "queued", now + 60),
            ("mine", "running", now - 1),
            ("done", "accepted", now - 1),
        ):
            runs[run_id] = Map({"id": run_id, "status": status, "deadline": deadline})
        return room

    def statuses(room: FakeRoom) -> dict[str, str]:
        return {k: v["status"] for k, v in plain(schema.runs(room.doc)).items()}

    shared_room = seeded()
    pending = interrupt_stale_runs(
        shared_room,  # type: ignore[arg-type]
        is_mine=lambda run_id: run_id == "mine",
        exclusive=False,
    )
    assert pending == pytest.approx(now + 60)
    assert statuses(shared_room) == {
        "late": "interrupted", "live": "queued", "mine": "running", "done": "accepted",
    }  # fmt: skip
    alone = seeded()
    assert interrupt_stale_runs(alone, is_mine=lambda _: False, exclusive=True) is None  # type: ignore[arg-type]
    assert statuses(alone) == {
        "late": "interrupted", "live": "interrupted", "mine": "interrupted", "done": "accepted",
    }  # fmt: skip
    assert "restarted" in schema.runs(alone.doc)["live"]["message"]


def test_without_judge0_the_runner_is_off(
    server_factory: Callable[..., ServerProcess],
) -> None:
    api = Api(server_factory(CODEMENTOR_SECRET=SECRET))
    assert httpx.get(api.server.http_url + "/api/config").json()["runner"] is False
    room = api.create_room()
    off = api.run(room, sign(room, "owner"))
    assert off.status_code == 503 and "CODEMENTOR_JUDGE0_URL" in off.json()["error"]
    assert "runner" not in api.readyz().json()["checks"]


def test_settings_refuse_limits_judge0_would_refuse() -> None:
    good = Settings(judge0_url="http://judge0:2358")
    good.validate()
    runner_settings = good.runner_settings()
    assert runner_settings is not None and runner_settings.memory_kb == 256 * 1024
    assert Settings().runner_settings() is None
    for bad in (
        {"judge0_url": "judge0:2358"},
        {"runner_cpu_time_seconds": 16.0},
        {"runner_wall_time_seconds": 0.5},
        {"runner_memory_mb": 1},
        {"runner_memory_mb": 501},
        {"runner_concurrency": 0},
        {"runner_deadline_seconds": 5.0},
    ):
        with pytest.raises(SettingsError):
            Settings(**{"judge0_url": "http://judge0:2358", **bad}).validate()  # type: ignore[arg-type]


def test_every_setting_is_a_row_of_the_readme_table() -> None:
    from server.settings import FIELDS, env_name

    readme = (ROOT / "README.md").read_text()
    for doc in FIELDS:
        flag = "(environment only)" if doc.secret else f"`--{doc.name.replace('_', '-')}`"
        assert f"| `{env_name(doc.name)}` | {flag} |" in readme, doc.name


def test_judge0_compose_file_pins_the_stack() -> None:
    compose = yaml.safe_load((ROOT / "docker/judge0/compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"judge0", "judge0-workers", "judge0-db", "judge0-redis"}
    images = {name: service["image"] for name, service in services.items()}
    assert images == {
        "judge0": "judge0/judge0:1.13.1",
        "judge0-workers": "judge0/judge0:1.13.1",
        "judge0-db": "postgres:16.2",
        "judge0-redis": "redis:7.2.4",
    }
    for name in ("judge0", "judge0-workers"):
        assert services[name]["privileged"] is True
        assert "./judge0.conf:/judge0.conf:ro" in services[name]["volumes"]
    assert services["judge0-workers"]["command"] == ["./scripts/workers"]
    assert services["judge0"]["ports"] == ["127.0.0.1:2358:2358"]
    assert "--requirepass" in services["judge0-redis"]["command"][-1]
    conf = dict(
        line.split("=", 1)
        for line in (ROOT / "docker/judge0/judge0.conf").read_text().splitlines()
        if line and not line.startswith("#")
    )
    # The secrets come from the environment (compose interpolation), never the file.
    for key in ("AUTHN_TOKEN", "REDIS_PASSWORD", "POSTGRES_PASSWORD"):
        assert key not in conf, key
        assert f"${{JUDGE0_{key}:?" in services["judge0"]["environment"][key], key
    assert conf["AUTHN_HEADER"] == "X-Auth-Token"
    assert conf["JUDGE0_TELEMETRY_ENABLE"] == "false"
    # The runner's defaults are within what this Judge0 accepts.
    defaults = Settings()
    assert defaults.runner_cpu_time_seconds <= float(conf["MAX_CPU_TIME_LIMIT"])
    assert defaults.runner_wall_time_seconds <= float(conf["MAX_WALL_TIME_LIMIT"])
    assert defaults.runner_memory_mb * 1024 <= int(conf["MAX_MEMORY_LIMIT"])


# -- the OpenAPI document (keep last) ----------------------------------------------------


def test_openapi_describes_the_run_answers(env: tuple[Api, Judge0Double]) -> None:
    api, _ = env
    document = httpx.get(api.server.http_url + "/api/openapi.json", timeout=10).json()
    seen: set[tuple[str, str, int]] = set()
    for method, template, status, body in OBSERVED:
        responses = document["paths"][template][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {template} answered {status}"
        schema_ = {
            **responses[str(status)]["content"]["application/json"]["schema"],
            "components": document["components"],
        }
        jsonschema.validate(json.loads(body), schema_)
        seen.add((method, template, status))
    statuses = {s for _, _, s in seen}
    assert {200, 202, 401, 403, 404, 409, 422, 429, 503} <= statuses
