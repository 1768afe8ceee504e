"""``/api/rooms/{room}/runs``: run the room's code on Judge0 (``runner``), read a run,
stop one.

The runner itself lives in ``runner/``; this module only wires it to HTTP: who may
run (owner and editor; in broadcast rooms the owner only; reviewers too when the room's
``reviewers_run`` setting is on), who may stop a run (the person who started it, and
owners and editors), the per-user run rate limit, and the answers. The result reaches
everyone through the document (the ``runs`` map); ``GET .../runs/{id}`` returns the
same record.

Stopping is ``POST .../runs/{id}/cancel``, not ``DELETE .../runs/{id}``: the run is not
removed (its record stays, ``cancelled``, with what it printed so far), and a second
stop of the same run is a 409, not the idempotent success a DELETE promises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from pycrdt import Map
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crdt import schema
from rooms.registry import RoomRegistry
from rooms.roles import Mode, Role
from rooms.room import Room
from runner import records
from runner.service import (
    RunInvalid,
    Runner,
    RunnerObserver,
    RunRefused,
    interrupt_stale_runs,
    mark_cancelled,
)
from server.api import MAX_BODY_BYTES, Api, ApiError, Strict, _body
from server.ratelimit import RateLimiter, retry_after_header
from server.settings import Settings

RunStatus = Literal[
    "queued", "running", "accepted", "compile_error", "runtime_error", "time_limit",
    "memory_limit", "internal_error", "unavailable", "interrupted", "cancelled", "wrong_answer",
]  # fmt: skip
assert set(RunStatus.__args__) == set(records.STATUSES)  # type: ignore[attr-defined]


class RunRequest(Strict):
    stdin: str | None = Field(default=None, max_length=MAX_BODY_BYTES)
    entry: str | None = Field(
        default=None,
        max_length=1024,
        description="the workspace file to run (a path of the workspace); default meta.entry",
    )


class RunAccepted(BaseModel):
    run_id: str


class RunRecord(BaseModel):
    """A run as stored in the document's ``runs`` map (``runner/records.py``). Numbers
    are floats (Yjs maps hold no integers); absent keys are not known yet."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: RunStatus
    ts: float
    language: str | None = None
    by: str | None = None
    by_id: str | None = None
    state: str | None = Field(default=None, description="base64 Yjs state vector it ran against")
    code_bytes: float | None = Field(default=None, description="every file's bytes, summed")
    entry: str | None = Field(default=None, description="the path of the file it ran")
    file_count: float | None = Field(default=None, description="files in the workspace it ran")
    paths: str | None = Field(
        default=None, description="the workspace's paths, sorted, one per line"
    )
    stdin: str | None = None
    stdin_cut: bool | None = None
    started_at: float | None = None
    finished_at: float | None = None
    stdout: str | None = None
    stdout_cut: bool | None = None
    stderr: str | None = None
    stderr_cut: bool | None = None
    compile_output: str | None = None
    compile_output_cut: bool | None = None
    message: str | None = None
    time: float | None = Field(default=None, description="CPU seconds")
    wall_time: float | None = None
    memory: float | None = Field(default=None, description="peak memory, KB")
    exit_code: float | None = None
    exit_signal: float | None = None
    judge0_status: str | None = None
    runner: str | None = None
    deadline: float | None = None
    cancelled_by: str | None = None
    cancelled_by_id: str | None = None


def open_runner(
    settings: Settings, registry: RoomRegistry, observer: RunnerObserver
) -> Runner | None:
    """The runner when a Judge0 URL is set. Either way, rooms loading after a restart get
    their runs left in flight marked ``interrupted`` (runner off: nobody will finish them)."""
    runner_settings = settings.runner_settings()
    runner = Runner(runner_settings, registry, observer) if runner_settings else None
    if runner is not None:
        registry.load_hooks.append(runner.on_room_loaded)
        # httpx logs every request at INFO: one line per poll. The runner logs what matters.
        httpx_log = logging.getLogger("httpx")
        if httpx_log.level == logging.NOTSET:
            httpx_log.setLevel(logging.WARNING)
    else:
        exclusive = not settings.redis_url

        def interrupt(room: Room) -> None:
            interrupt_stale_runs(room, is_mine=lambda _: False, exclusive=exclusive)

        registry.load_hooks.append(interrupt)
    return runner


def readiness(runner: Runner | None) -> tuple[str | None, dict[str, Any] | None]:
    """``/readyz``'s runner check: ``ok`` or ``degraded`` (the breaker is open), which
    never makes the whole server unready. None when the runner is off."""
    if runner is None:
        return None, None
    return ("degraded" if runner.degraded else "ok"), runner.health()


class RunsApi:
    def __init__(self, api: Api, settings: Settings, runner_of: Callable[[], Runner | None]):
        self.api = api
        self._runner_of = runner_of
        self.limiter = RateLimiter(settings.runner_runs_per_minute)

    def routes(self) -> list[Route]:
        h = self.api._handler
        return [
            Route("/api/rooms/{room}/runs", h(self.create_run), methods=["POST"]),
            Route("/api/rooms/{room}/runs/{run_id}", h(self.get_run), methods=["GET"]),
            Route("/api/rooms/{room}/runs/{run_id}/cancel", h(self.cancel_run), methods=["POST"]),
        ]

    async def create_run(self, request: Request) -> Response:
        """Owner and editor (broadcast rooms: the owner), and reviewers when the room lets
        them: run the room's code as it is now. Answers ``{run_id}`` at once; the run's
        progress is written into ``runs``."""
        name, info, identity = await self.api._room(request)
        broadcast = info.mode == Mode.BROADCAST.value
        allowed = {Role.OWNER} if broadcast else {Role.OWNER, Role.EDITOR}
        if info.reviewers_may_run:
            allowed.add(Role.REVIEWER)
        if identity.role not in allowed:
            who = "the owner" if broadcast else "owners and editors"
            if info.reviewers_may_run:
                who += " and reviewers"
            raise ApiError(403, f"only {who} may run this room's code")
        body = await _body(request, RunRequest)
        runner = self._runner_of()
        if runner is None:
            raise ApiError(503, "the runner is off: this server has no CODEMENTOR_JUDGE0_URL")
        active = runner.active_run(name)
        if active is not None:  # before the rate limit: a refused run costs no allowance
            raise ApiError(409, f"a run is already in progress in this room ({active})")
        self.limiter.enforce(f"run:{identity.user_id}", "too many runs: wait a moment")
        try:
            run_id = await runner.start_run(
                name,
                by_id=identity.user_id,
                by_name=identity.name,
                stdin=body.stdin or "",
                default_language=info.language,
                entry=body.entry,
            )
        except RunRefused as exc:
            raise refused(exc) from exc
        return JSONResponse(RunAccepted(run_id=run_id).model_dump(), status_code=202)

    async def get_run(self, request: Request) -> Response:
        """Any role: one run, as stored in the document."""
        name, _, _ = await self.api._room(request)
        room = await self.api.registry.loaded(name)
        entry = schema.runs(room.doc).get(request.path_params["run_id"])
        if not isinstance(entry, Map):
            raise ApiError(404, "unknown run")
        return JSONResponse(records.as_json(entry))

    async def cancel_run(self, request: Request) -> Response:
        """Stop a run still queued or running: the person who started it (the verified
        token id), owners and editors. It ends ``cancelled`` for everyone; answers the
        record. 403 anyone else, 404 an unknown run, 409 one that already ended."""
        name, _, identity = await self.api._room(request)
        room = await self.api.registry.loaded(name)
        run_id = request.path_params["run_id"]
        entry = schema.runs(room.doc).get(run_id)
        if not isinstance(entry, Map):
            raise ApiError(404, "unknown run")
        # A join link's id is everyone's who opened it: only a personal token is one person.
        started_it = identity.personal and entry.get("by_id") == identity.user_id
        if not started_it and identity.role not in (Role.OWNER, Role.EDITOR):
            raise ApiError(
                403, "only the person who started the run, owners and editors may stop it"
            )
        runner = self._runner_of()
        try:
            if runner is not None:
                record = runner.cancel_run(
                    room, run_id, by_id=identity.user_id, by_name=identity.name
                )
            else:  # nobody here runs it (another instance may): the document says stop
                record = mark_cancelled(room, run_id, by_id=identity.user_id, by_name=identity.name)
        except RunRefused as exc:
            raise ApiError(exc.status, exc.message) from exc
        return JSONResponse(record)


def refused(exc: RunRefused) -> ApiError:
    """The API's answer to a run (or a check) the runner refused: its status and message,
    ``Retry-After`` when it said when, the field when the request was invalid."""
    headers = None
    if exc.retry_after is not None:
        headers = {"Retry-After": retry_after_header(exc.retry_after)}
    fields = None
    if isinstance(exc, RunInvalid):
        fields = [{"field": exc.field, "message": exc.message}]
    return ApiError(exc.status, exc.message, fields, headers)
