"""Stopping a run and letting reviewers run, end to end: a real server on the Judge0 double.

Stop (``POST /api/rooms/{room}/runs/{id}/cancel``): the run ends ``cancelled`` in every
peer's document, the runner stops polling at once, and the submission is deleted from
Judge0 as Judge0 CE 1.13.1 allows it (refused while queued or processing: tried again;
refused without ``ENABLE_SUBMISSION_DELETE`` or the authorization token: logged and
counted, never shown to the room). Who may stop (403), unknown runs (404), runs that
already ended (409). The room setting ``reviewers_run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest

from crdt import schema
from tests.judge0_double import Judge0Double
from tests.serverproc import ServerProcess
from tests.support import eventually, sign
from tests.test_runner import BASE_ENV, JUDGE0_TOKEN, Api, peer

pytestmark = pytest.mark.anyio

AUTHZ = "judge0-authz-token"


def cancel(api: Api, room: str, run_id: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{api.server.http_url}/api/rooms/{room}/runs/{run_id}/cancel",
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )


def metric(api: Api, name: str, label: str) -> float:
    text = httpx.get(api.server.http_url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and f'="{label}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def room_request(api: Api, room: str, token: str, patch: object = None) -> httpx.Response:
    """GET the room, or PATCH it with ``patch``."""
    url = f"{api.server.http_url}/api/rooms/{room}"
    headers = {"authorization": f"Bearer {token}"}
    if patch is None:
        return httpx.get(url, headers=headers, timeout=10)
    return httpx.patch(url, json=patch, headers=headers, timeout=10)


def polls(double: Judge0Double) -> int:
    return double.count("get")


@pytest.fixture
def judge0() -> Iterator[Judge0Double]:
    double = Judge0Double(auth_token=JUDGE0_TOKEN, authz_token=AUTHZ, delete_enabled=True).start()
    yield double
    double.stop()


@pytest.fixture
def serve(server_factory: Callable[..., ServerProcess], judge0: Judge0Double) -> Callable[..., Api]:
    def start(**env: str) -> Api:
        settings = {
            **BASE_ENV,
            "CODEMENTOR_JUDGE0_URL": judge0.url,
            "CODEMENTOR_JUDGE0_AUTHZ_TOKEN": AUTHZ,
            **env,
        }
        return Api(server_factory(None, **settings))

    return start


async def test_stop_while_running_ends_it_for_everyone_and_deletes_the_submission(
    serve: Callable[..., Api], judge0: Judge0Double
) -> None:
    api = serve()
    room = api.create_room()
    ada_token = sign(room, "owner", name="Ada", personal=True)
    async with peer(api, room, "owner", "Ada") as ada, peer(api, room, "viewer", "Vera") as vera:
        await ada.set_code(api, room, "while True:\n    pass\n")
        judge0.hold = True  # Judge0 keeps it Processing until released
        run_id = api.started(room, ada_token, stdin="42\n")
        await eventually(lambda: vera.run(run_id).get("status") == "running", timeout=10)
        token = next(iter(judge0.submissions))
        answer = cancel(api, room, run_id, ada_token)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "cancelled"
        assert answer.json()["cancelled_by"] == "Ada"
        for watcher in (ada, vera):
            run = await watcher.final(run_id)
            assert run["status"] == "cancelled"
            assert run["message"] == "stopped by Ada"
            assert run["by"] == "Ada" and run["stdin"] == "42\n"
            assert watcher.seen[run_id] == ["queued", "running", "cancelled"]
        # Polling stopped at once.
        seen = polls(judge0)
        await asyncio.sleep(1.5)
        assert polls(judge0) == seen
        # Judge0 refused the delete while Processing (400), and took it once finished.
        await eventually(lambda: judge0.count("delete", 400) >= 1, timeout=10)
        assert token in judge0.submissions
        judge0.hold = False
        await eventually(lambda: token in judge0.deleted, timeout=15)
        assert judge0.count("delete", 200) == 1
        # A late result never overwrites the stop.
        assert vera.run(run_id)["status"] == "cancelled"
        # A second stop: it already ended.
        again = cancel(api, room, run_id, ada_token)
        assert again.status_code == 409 and "already ended" in again.json()["error"]
        # The room can run again at once.
        judge0.processing_delay = 0.0
        await ada.set_code(api, room, "print('again')")
        second = api.started(room, ada_token)
        assert (await ada.final(second))["stdout"] == "again\n"
    assert metric(api, "codementor_runs_total", "cancelled") == 1.0
    assert metric(api, "codementor_judge0_deletes_total", "deleted") == 1.0


async def test_stop_while_queued_never_submits_to_judge0_again(
    serve: Callable[..., Api], judge0: Judge0Double
) -> None:
    api = serve()
    room = api.create_room()
    owner = sign(room, "owner", name="Ada", personal=True)
    async with peer(api, room, "editor", "Bob") as bob:
        await bob.set_code(api, room, "print('queued')")
        judge0.queue_delay = 30.0  # Judge0 keeps it In Queue
        run_id = api.started(room, owner)
        await eventually(lambda: polls(judge0) >= 1, timeout=10)
        assert bob.run(run_id)["status"] == "queued"
        answer = cancel(api, room, run_id, owner)
        assert answer.status_code == 200, answer.text
        assert (await bob.final(run_id))["status"] == "cancelled"
        assert bob.seen[run_id] == ["queued", "cancelled"]
        # In Queue: Judge0 says no, with its own sentence; counted, not shown.
        await eventually(lambda: judge0.count("delete", 400) >= 1, timeout=10)
        run = bob.run(run_id)
        assert "cannot be deleted" not in run["message"]
        assert run["message"] == "stopped by Ada"


async def test_who_may_stop_and_what(serve: Callable[..., Api], judge0: Judge0Double) -> None:
    api = serve()
    room = api.create_room("review")
    author = sign(room, "owner", name="Ada", personal=True)
    async with peer(api, room, "owner", "Ada") as watcher:
        await watcher.set_code(api, room, "print('review')")
        judge0.hold = True
        # Review rooms: reviewers may run (on by default) and stop their own run...
        rita = sign(room, "reviewer", name="Rita", personal=True)
        run_id = api.started(room, rita, stdin="x")
        await eventually(lambda: watcher.run(run_id).get("by") == "Rita")
        # ...but not somebody else's; viewers never; a join link's shared id is nobody's.
        other = sign(room, "reviewer", name="Max", personal=True)
        assert cancel(api, room, run_id, other).status_code == 403
        viewer = sign(room, "viewer", name="Vic", personal=True)
        assert cancel(api, room, run_id, viewer).status_code == 403
        shared = sign(room, "reviewer", name="Rita", sub="u-rita")  # not personal
        assert cancel(api, room, run_id, shared).status_code == 403
        assert cancel(api, room, "no-such-run", author).status_code == 404
        assert cancel(api, "no-such-room", run_id, author).status_code in (403, 404)
        assert cancel(api, room, run_id, sign(room, "owner") + "x").status_code == 401
        answer = cancel(api, room, run_id, rita)
        assert answer.status_code == 200, answer.text
        assert (await watcher.final(run_id))["cancelled_by"] == "Rita"
        judge0.hold = False
        # An owner stops anyone's run; an editor too.
        for stopper in (author, sign(room, "editor", name="Eve", personal=True)):
            judge0.hold = True
            run_id = api.started(room, rita)
            assert cancel(api, room, run_id, stopper).status_code == 200
            assert (await watcher.final(run_id))["status"] == "cancelled"
            judge0.hold = False
        # Finished runs cannot be stopped.
        done = api.started(room, author)
        assert (await watcher.final(done))["status"] == "accepted"
        assert cancel(api, room, done, author).status_code == 409


async def test_judge0_refusing_deletes_is_counted_not_shown(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """ENABLE_SUBMISSION_DELETE off (400 delete not allowed); and no authorization token
    configured here (the runner does not even try)."""
    with Judge0Double(auth_token=JUDGE0_TOKEN, authz_token=AUTHZ) as judge0:
        base = {**BASE_ENV, "CODEMENTOR_JUDGE0_URL": judge0.url}
        for env, outcome, calls in (
            ({"CODEMENTOR_JUDGE0_AUTHZ_TOKEN": AUTHZ}, "refused", 1),
            ({}, "skipped", 0),
        ):
            api = Api(server_factory(None, **{**base, **env}))
            room = api.create_room()
            owner = sign(room, "owner", personal=True)
            before = judge0.count("delete")
            async with peer(api, room) as watcher:
                await watcher.set_code(api, room, "print('x')")
                judge0.processing_delay = 0.6
                run_id = api.started(room, owner)
                await eventually(lambda w=watcher, r=run_id: w.run(r).get("status") == "running")
                assert cancel(api, room, run_id, owner).status_code == 200
                run = await watcher.final(run_id)
                assert run["status"] == "cancelled" and run["message"] == "stopped by Ada"
                await eventually(
                    lambda a=api, o=outcome: metric(a, "codementor_judge0_deletes_total", o) == 1,
                    timeout=15,
                )
            assert judge0.count("delete") - before == calls
            if calls:
                assert judge0.count("delete", 400) >= 1  # "delete not allowed"


async def test_reviewers_run_setting(serve: Callable[..., Api], judge0: Judge0Double) -> None:
    api = serve()
    for mode, default in (("review", True), ("pair", False), ("broadcast", False)):
        room = api.create_room(mode)
        owner = sign(room, "owner", personal=True)
        reviewer = sign(room, "reviewer", name="Rita", personal=True)
        details = room_request(api, room, owner).json()
        assert details["reviewers_run"] is default, mode
        async with peer(api, room) as watcher:
            await watcher.set_code(api, room, "print('r')")
            first = api.run(room, reviewer)
            assert first.status_code == (202 if default else 403), first.text
            if default:
                await watcher.final(first.json()["run_id"])
            # Only the owner changes it; it reaches meta and the REST view.
            flip = {"reviewers_run": not default}
            for other in (reviewer, sign(room, "editor", name="Ed", personal=True)):
                assert room_request(api, room, other, flip).status_code == 403
            bad = room_request(api, room, owner, {"reviewers_run": "yes"})
            assert bad.status_code == 422
            changed = room_request(api, room, owner, flip)
            assert changed.status_code == 200 and changed.json()["reviewers_run"] is not default
            await eventually(
                lambda w=watcher, d=default: (
                    schema.meta(w.client.doc).get("reviewers_run") is (not d)
                )
            )
            second = api.run(room, reviewer)
            assert second.status_code == (403 if default else 202), second.text
            if not default:
                await watcher.final(second.json()["run_id"])
                assert "Rita" == watcher.run(second.json()["run_id"])["by"]
