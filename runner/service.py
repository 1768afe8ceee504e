"""The runner: snapshot a room's code, run it on Judge0, write the run into the room.

``Runner.start_run`` takes the snapshot (the ``code`` text and the document's
state vector, in one synchronous step), writes the run as ``queued`` into the
``runs`` map and returns its id at once; a task then waits for a slot under the
global cap, submits, polls with backoff, and writes ``running`` and the final
status. Every write goes through ``Room.edit``, so peers see each change live
and it is stored like any edit.

Bounds: one run in flight per room; at most ``concurrency`` runs talking to
Judge0 and ``queue`` more waiting for a slot (beyond: ``RunnerBusy``); every
HTTP call has the client's timeout; failed calls are retried with jittered
exponential backoff until the run's ``deadline``, after which it ends
``unavailable``. A circuit breaker counts consecutive failures: when open,
runs end ``unavailable`` at once without calling Judge0, and a background
probe (``GET /languages``, which also refreshes the language cache) closes it
again once Judge0 answers.

Restarts: the registry calls ``on_room_loaded`` for every room it loads. Runs
still ``queued``/``running`` there that this process does not own end
``interrupted`` (``interrupt_stale_runs``). With several instances (Redis) a run
may belong to a live sibling, so such a run is interrupted only once its own
``deadline`` has passed (a timer is set for it). A clean shutdown marks its own
runs ``interrupted`` before the rooms are flushed.

Stop: ``cancel_run`` writes ``cancelled`` into the run's entry (the first final status
written wins: a late result never overwrites it) and, when this process runs it, ends
its task at once: no more polling. A Judge0 call in flight is not cancelled with it (the
client runs each call in its own task: cancelling httpx mid-call leaks pool connections);
it ends by itself within its timeout, and a submission it creates is still deleted. A
run another instance owns stops at that instance's next poll, which sees the entry
cancelled. The submission is then deleted from Judge0 where Judge0 allows it
(``_delete_submission``): Judge0 refuses to delete one still queued or processing, so
the delete is tried again after the wall-time limit, a few times; a refusal is logged
and counted, never shown to the room.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import structlog
from opentelemetry import trace
from pycrdt import Doc, Map

from crdt import paths, schema
from rooms.breaker import BreakerOpen, BreakerState, CircuitBreaker
from rooms.registry import RoomRegistry
from rooms.room import Room
from runner import languages, project, records
from runner.judge0 import (
    IN_QUEUE,
    PROCESSING,
    ErrorKind,
    Judge0Client,
    Judge0Error,
    Language,
    LanguageDetail,
    Submission,
    SubmissionRequest,
)
from runner.languages import UnsupportedLanguage
from runner.project import Project, ProjectRefused

log = structlog.get_logger("codementor.runner")
tracer = trace.get_tracer(__name__)

T = TypeVar("T")

# Judge0 CE 1.13.1's accepted ranges (integrations.md 1.4).
MAX_CPU_TIME = 15.0
MIN_WALL_TIME, MAX_WALL_TIME = 1.0, 20.0
MIN_MEMORY_KB, MAX_MEMORY_KB = 2048, 512000
DEADLINE_SLACK = 5.0  # past a run's deadline, its owner has certainly written its end


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    url: str
    token: str | None = None
    cpu_time: float = 5.0  # seconds
    wall_time: float = 10.0  # seconds
    memory_kb: int = 256 * 1024
    output_bytes: int = 64 * 1024  # each of stdout, stderr, compile_output
    concurrency: int = 4  # runs talking to Judge0 at once (all rooms)
    queue: int = 20  # runs waiting for a slot; beyond: RunnerBusy
    deadline: float = 60.0  # from the request to giving up (unavailable)
    http_timeout: float = 10.0  # every Judge0 call
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    languages_refresh: float = 600.0
    exclusive: bool = True  # no other server instance serves these rooms
    poll_first: float = 0.1  # first poll after the submission, then doubling...
    poll_max: float = 1.0  # ...up to this
    retry_first: float = 0.2  # first retry delay after a failed call, then doubling...
    retry_max: float = 5.0  # ...up to this
    runs_kept: int = 20  # finished runs kept in a room's document
    judge0_authz_token: str | None = None  # Judge0's AUTHZ_TOKEN: lets a stopped run be deleted
    judge0_authz_header: str = "X-Auth-User"
    delete_attempts: int = 3  # DELETEs of a stopped run's submission, wall_time + 1 s apart


class RunnerObserver:
    """Hooks for metrics; ``server.metrics`` implements them with Prometheus."""

    def run_finished(self, status: str) -> None: ...

    def run_queue_delay(self, seconds: float) -> None: ...

    def run_execution(self, seconds: float) -> None: ...

    def judge0_error(self, kind: str) -> None: ...

    def breaker_changed(self, state: str) -> None: ...

    def runs_in_flight(self, count: int) -> None: ...

    def judge0_delete(self, outcome: str) -> None:
        """A stopped run's submission: deleted, refused, not_found, failed or skipped."""


class RunRefused(Exception):
    """A run request the runner turns down; ``status`` is the HTTP status to answer."""

    status = 400

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class RunConflict(RunRefused):
    status = 409


class RunnerBusy(RunRefused):
    status = 503


class RunNotFound(RunRefused):
    status = 404


class RunInvalid(RunRefused):
    """Nothing Judge0 could run; ``field`` names what is wrong (``code``, ``meta.language``)."""

    status = 422

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(slots=True)
class _Run:
    id: str
    room: str
    code: str
    language: str
    stdin: str
    requested: float  # monotonic
    deadline: float  # monotonic
    task: asyncio.Task[None] | None = None
    started: float | None = None  # monotonic: first seen executing (or finished)
    last_error: str = ""
    last_status: int = 0  # Judge0's status id when last polled
    finished: bool = field(default=False)
    token: str | None = None  # Judge0's submission token, once submitted
    cancelled: bool = False
    project: Project | None = None  # several files: a Judge0 "Multi-file program"
    expected_output: str | None = None  # a check's test: Judge0 compares stdout with it


@dataclass(frozen=True, slots=True)
class Program:
    """A room's code as a run submits it (``Runner.program``)."""

    files: dict[str, str]
    entry: str
    code: str  # the entry file's text
    language: str
    project: Project | None  # several files: the multi-file plan
    state: str  # base64 Yjs state vector the snapshot was taken at


class _StoppedElsewhere(Exception):
    """Another instance wrote ``cancelled`` into this run's entry."""


class Runner:
    def __init__(
        self,
        settings: RunnerSettings,
        registry: RoomRegistry,
        observer: RunnerObserver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.observer = observer or RunnerObserver()
        self.id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.client = Judge0Client(
            settings.url,
            settings.token,
            timeout=settings.http_timeout,
            max_connections=settings.concurrency + 2,
            transport=transport,
            authz_token=settings.judge0_authz_token,
            authz_header=settings.judge0_authz_header,
        )
        self._wake = asyncio.Event()
        self.breaker = CircuitBreaker(
            "Judge0",
            settings.breaker_failures,
            settings.breaker_cooldown,
            on_change=self._breaker_changed,
        )
        self._languages: list[Language] = []
        self._details: dict[int, LanguageDetail] = {}  # GET /languages/{id}, for toolchains
        self._languages_at = float("-inf")
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._active: dict[str, _Run] = {}
        self._by_room: dict[str, str] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}  # room -> recheck of foreign runs
        self._monitor: asyncio.Task[None] | None = None
        self._deletes: set[asyncio.Task[None]] = set()  # stopped runs' submissions
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Start the background task that loads languages and probes a broken Judge0.
        Never waits for Judge0: a server starts even while Judge0 is down."""
        self._monitor = asyncio.create_task(self._watch(), name="runner-monitor")

    async def close(self) -> None:
        """Stop: runs in flight end ``interrupted`` (written before the rooms flush)."""
        self._closing = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        runs = list(self._active.values())
        tasks = [run.task for run in runs if run.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in list(self._deletes):
            task.cancel()
        await asyncio.gather(*self._deletes, return_exceptions=True)
        for run in runs:
            if not run.finished:
                await self._finish(
                    run,
                    {
                        "status": records.INTERRUPTED,
                        "message": "the server shut down during the run; run it again",
                    },
                )
        await self.client.close()

    # -- state for /readyz and /api/config ---------------------------------------

    @property
    def degraded(self) -> bool:
        return self.breaker.state is not BreakerState.CLOSED

    def health(self) -> dict[str, Any]:
        return {
            "breaker": self.breaker.state.value,
            "consecutive_failures": self.breaker.failures,
            "last_error": self.breaker.last_error or None,
            "retry_in": round(self.breaker.retry_in(), 1),
            "languages": len(self._languages),
            "in_flight": len(self._active),
        }

    def active_run(self, room: str) -> str | None:
        return self._by_room.get(room)

    def cancel_run(self, room: Room, run_id: str, *, by_id: str, by_name: str) -> dict[str, Any]:
        """Stop a run: ``cancelled`` for everyone, no more polling, the submission deleted
        from Judge0 where it allows. Synchronous, so nothing changes between the check
        and the write. Raises ``RunNotFound`` or ``RunConflict`` (it already ended)."""
        record = mark_cancelled(room, run_id, by_id=by_id, by_name=by_name)
        run = self._active.get(run_id)
        if run is not None and not run.finished:
            self._stopped(run)
            if run.task is not None:
                run.task.cancel()
        return record

    def _stopped(self, run: _Run) -> None:
        """A cancelled run of this process: forget it and delete its submission."""
        run.cancelled = True
        run.finished = True
        self._active.pop(run.id, None)
        if self._by_room.get(run.room) == run.id:
            del self._by_room[run.room]
        self.observer.runs_in_flight(len(self._active))
        self.observer.run_finished(records.CANCELLED)
        log.info("run_cancelled", room=run.room, run=run.id, submitted=run.token is not None)
        if run.token is not None:
            self._delete_later(run, run.token)

    def _submitted(self, run: _Run, token: str) -> None:
        """Judge0 took the run's submission (called even after the run stopped waiting)."""
        run.token = token
        if run.cancelled:  # stopped while the submission was on its way: delete it too
            self._delete_later(run, token)

    def _delete_later(self, run: _Run, token: str) -> None:
        if self._closing:
            return
        task = asyncio.create_task(self._delete_submission(token), name=f"delete:{run.id}")
        self._deletes.add(task)
        task.add_done_callback(self._deletes.discard)

    async def _delete_submission(self, token: str) -> None:
        """Ask Judge0 to delete a stopped run's submission (its code and outputs). Judge0
        refuses while it is queued or processing: tried again after the wall-time limit,
        ``delete_attempts`` times in all. Every outcome is logged and counted; none is
        the room's business."""
        if not self.client.can_delete:
            self.observer.judge0_delete("skipped")
            log.info("judge0_delete_skipped", token=token, reason="no Judge0 authorization token")
            return
        for attempt in range(1, self.settings.delete_attempts + 1):
            if self.breaker.state is BreakerState.OPEN:
                self.observer.judge0_delete("skipped")
                log.info("judge0_delete_skipped", token=token, reason="breaker open")
                return
            try:
                await self.client.delete(token)
            except Judge0Error as exc:
                last = attempt == self.settings.delete_attempts
                if exc.kind is ErrorKind.STILL_RUNNING and not last:
                    log.info("judge0_delete_later", token=token, attempt=attempt)
                    await asyncio.sleep(self.settings.wall_time + 1.0)
                    continue
                outcome = {
                    ErrorKind.REFUSED: "refused",
                    ErrorKind.STILL_RUNNING: "refused",
                    ErrorKind.NOT_FOUND: "not_found",
                }.get(exc.kind, "failed")
                self.observer.judge0_delete(outcome)
                log.info("judge0_delete_refused", token=token, outcome=outcome, error=exc.message)
                return
            self.observer.judge0_delete("deleted")
            log.info("judge0_deleted", token=token)
            return

    # -- requests ----------------------------------------------------------------

    async def start_run(
        self,
        room_name: str,
        *,
        by_id: str,
        by_name: str,
        stdin: str = "",
        default_language: str = "",
        entry: str | None = None,
    ) -> str:
        """Snapshot the room's workspace and start a run from ``entry`` (a file of the
        workspace; default ``meta.entry``); returns its id at once. One file runs as
        that language's submission, several as a Judge0 multi-file program. Raises
        ``RunRefused`` (409 one already runs, 503 too many, 422 nothing to run)."""
        self._admit(room_name)
        room = await self.registry.loaded(room_name)
        self._admit(room_name)  # again: another request may have started one meanwhile
        self._no_foreign_run(room)
        program = self.program(room, entry, default_language)
        files, entry_path, language, plan = (
            program.files,
            program.entry,
            program.language,
            program.project,
        )
        state, code = program.state, program.code
        now_mono, now = time.monotonic(), time.time()
        run = _Run(
            id=secrets.token_urlsafe(8),
            room=room_name,
            code=code,
            language=language,
            stdin=stdin,
            requested=now_mono,
            deadline=now_mono + self.settings.deadline,
            project=plan,
        )
        stdin_text, stdin_cut = records.cut_text(stdin.encode("utf-8"), self.settings.output_bytes)
        record: dict[str, Any] = {
            "id": run.id,
            "status": records.QUEUED,
            "language": language,
            "by": by_name,
            "by_id": by_id,
            "ts": now,
            "state": state,
            "code_bytes": float(sum(len(text.encode("utf-8")) for text in files.values())),
            "entry": entry_path,
            "file_count": float(len(files)),
            "paths": "\n".join(sorted(files)),
            "stdin": stdin_text,
            "stdin_cut": stdin_cut,
            "runner": self.id,
            "deadline": now + self.settings.deadline + DEADLINE_SLACK,
            "message": "",
        }
        kept = self.settings.runs_kept

        def add(doc: Doc[Any]) -> None:
            runs = schema.runs(doc)
            _prune(runs, keep=kept - 1)
            runs[run.id] = Map(record)

        room.edit(add, origin="runner")
        self._active[run.id] = run
        self._by_room[room_name] = run.id
        self.observer.runs_in_flight(len(self._active))
        run.task = asyncio.create_task(self._execute(run), name=f"run:{room_name}:{run.id}")
        return run.id

    def program(self, room: Room, entry: str | None, default_language: str) -> Program:
        """What a run of ``room`` would submit, snapshotted in one synchronous step: the
        files, the entry file (``entry``, default ``meta.entry``), the language and, for
        several files, the multi-file plan. Raises ``RunInvalid`` (422) when there is
        nothing Judge0 could run. Shared by runs and checks (``runner.checks``)."""
        meta_language = schema.meta(room.doc).get("language")
        language = meta_language if isinstance(meta_language, str) else default_language
        if not languages.known(language):
            raise RunInvalid(
                f"the runner does not support {language!r} "
                f"(supported: {', '.join(languages.SUPPORTED)})",
                "meta.language",
            )
        # The snapshot: every file and the state vector in one synchronous step.
        files = schema.workspace(room.doc)
        state = base64.b64encode(room.doc.get_state()).decode("ascii")
        entry_path = schema.entry_path(room.doc)
        explicit = entry is not None or isinstance(schema.meta(room.doc).get(schema.ENTRY), str)
        if entry is not None:
            try:
                entry_path = paths.normalize(entry)
            except paths.PathError as exc:
                raise RunInvalid(f"the entry {exc}", "entry") from exc
            if entry_path not in files:
                missing = f"the entry {entry_path!r} is not a file of the workspace"
                raise RunInvalid(missing, "entry")
        plan: Project | None = None
        if len(files) > 1:
            try:
                plan = project.plan(files, entry_path, project.language_of(entry_path, language))
            except ProjectRefused as exc:
                raise RunInvalid(exc.message, exc.field) from exc
            language = plan.language
        elif explicit:
            language = project.language_of(entry_path, language)
        if self._languages:
            try:
                languages.resolve(language, self._languages)
                if plan is not None:
                    project.multi_file_language(self._languages)
            except UnsupportedLanguage as exc:
                field = "entry" if plan is not None else "meta.language"
                raise RunInvalid(exc.reason, field) from exc
        code = files[entry_path]
        if not code.strip():
            raise RunInvalid("there is no code to run", "code")
        return Program(files, entry_path, code, language, plan, state)

    def _admit(self, room_name: str) -> None:
        if self._closing:
            raise RunnerBusy("the server is shutting down", retry_after=5.0)
        existing = self._by_room.get(room_name)
        if existing is not None:
            raise RunConflict(f"a run is already in progress in this room ({existing})")
        if len(self._active) >= self.settings.concurrency + self.settings.queue:
            raise RunnerBusy("the runner is busy: too many runs in progress", retry_after=5.0)

    def _no_foreign_run(self, room: Room) -> None:
        """A run another instance owns, still within its deadline, also counts."""
        now = time.time()
        for run_id, entry in _in_flight(room.doc):
            if entry.get("runner") != self.id and _number(entry.get("deadline")) > now:
                raise RunConflict(f"a run is already in progress in this room ({run_id})")

    # -- one run -----------------------------------------------------------------

    async def _execute(self, run: _Run) -> None:
        """The run's task. Created in the context of the request that started the run,
        its span joins that request's trace; each Judge0 call is a child span."""
        attributes = {"codementor.room": run.room, "codementor.run.id": run.id,
                      "codementor.run.language": run.language}  # fmt: skip
        with tracer.start_as_current_span("runner.job", attributes=attributes) as span:
            try:
                fields = await self.judged(run)
            except _StoppedElsewhere:
                span.set_attribute("codementor.run.status", records.CANCELLED)
                self._stopped(run)
                return
            except asyncio.CancelledError:
                if run.cancelled:  # Stop: cancel_run wrote the end and cleaned up
                    span.set_attribute("codementor.run.status", records.CANCELLED)
                    return
                raise  # shutting down: close() writes "interrupted"
            except Exception:  # a bug must still end the run
                log.exception("run_failed", room=run.room, run=run.id)
                fields = {
                    "status": records.INTERNAL_ERROR,
                    "message": "the runner failed unexpectedly",
                }
            span.set_attribute("codementor.run.status", str(fields["status"]))
            await self._finish(run, fields)

    async def judged(self, run: _Run) -> dict[str, Any]:
        """Run ``run`` on Judge0 under the global slot cap, its deadline, the breaker and
        retries; its final fields, failures included (``unavailable``...). ``run.last_status``
        is Judge0's status id at the end (3 Accepted, 4 Wrong Answer, ...)."""
        try:
            async with asyncio.timeout(max(0.0, run.deadline - time.monotonic())):
                async with self._slots:
                    return await self._judge(run)
        except TimeoutError:
            reason = ""
            if run.last_error:  # the last call failed
                reason = f" (last problem: {run.last_error})"
            elif run.last_status == IN_QUEUE:
                reason = " (it was still in Judge0's queue: are Judge0's workers running?)"
            elif run.last_status == PROCESSING:
                reason = " (it was still running in Judge0)"
            return _unavailable(
                f"Judge0 did not finish the run within {self.settings.deadline:g} s{reason}"
            )
        except BreakerOpen as exc:
            return _unavailable(f"the runner is unavailable: {exc}")
        except UnsupportedLanguage as exc:
            return _unavailable(exc.reason)
        except Judge0Error as exc:
            return _refused(exc)

    async def _judge(self, run: _Run) -> dict[str, Any]:
        language = await self._language(run)
        source: str | None = run.code
        additional: str | None = None
        if run.project is not None:
            detail = self._details.get(language.id)
            if detail is None:
                language_id = language.id
                try:
                    detail = await self._call(lambda: self.client.language(language_id), run)
                except Judge0Error as exc:
                    if exc.kind is not ErrorKind.NOT_FOUND:
                        raise
                    raise UnsupportedLanguage(
                        language.name,
                        f"this Judge0 does not say how it runs {language.name} "
                        f"(GET /languages/{language_id} answered 404)",
                    ) from exc
                self._details[language.id] = detail
            compile_, run_script = project.scripts(run.project, detail)
            additional = project.archive(run.project, compile_, run_script)
            language, source = project.multi_file_language(self._languages), None
        request = SubmissionRequest(
            source_code=source,
            language_id=language.id,
            stdin=run.stdin,
            cpu_time_limit=self.settings.cpu_time,
            wall_time_limit=self.settings.wall_time,
            memory_limit_kb=self.settings.memory_kb,
            additional_files=additional,
            expected_output=run.expected_output,
        )
        token = await self._call(
            lambda: self.client.submit(request, submitted=lambda t: self._submitted(run, t)), run
        )
        delay = self.settings.poll_first
        while True:
            await asyncio.sleep(delay)
            if self._cancelled_in_doc(run):
                raise _StoppedElsewhere
            sub = await self._call(lambda: self.client.get(token), run)
            run.last_status = sub.status_id
            if sub.status_id >= PROCESSING and run.started is None:
                run.started = time.monotonic()
                self.observer.run_queue_delay(run.started - run.requested)
                if not sub.final:
                    await self._write(run, {"status": records.RUNNING, "started_at": time.time()})
            if sub.final:
                return self._result(sub)
            delay = min(delay * 2, self.settings.poll_max)

    def _result(self, sub: Submission) -> dict[str, Any]:
        status = records.final_status(sub, self.settings.memory_kb)
        fields = records.result_fields(
            sub, status, self.settings.output_bytes, self.settings.memory_kb
        )
        executed = sub.wall_time if sub.wall_time is not None else sub.time
        if executed is not None:
            self.observer.run_execution(executed)
        return fields

    async def _language(self, run: _Run) -> Language:
        if not self._languages:
            await self._refresh_languages(run)
        return languages.resolve(run.language, self._languages)

    async def _refresh_languages(self, run: _Run | None) -> None:
        found = await self._call(self.client.languages, run)
        if found:
            if found != self._languages:
                self._details.clear()  # ids may name other toolchains now
            self._languages = found
            self._languages_at = time.monotonic()

    async def _call(self, call: Callable[[], Awaitable[T]], run: _Run | None) -> T:
        """One Judge0 call through the breaker. For a run, retryable failures are retried
        with jittered exponential backoff (the run's deadline bounds them); without a run
        (the background probe) a failure is raised at once."""
        delay = self.settings.retry_first
        while True:
            probe = self.breaker.before_call()
            try:
                result = await call()
            except Judge0Error as exc:
                self.observer.judge0_error(exc.kind.value)
                if exc.kind.counts_as_failure:
                    self.breaker.failure(exc.kind.value)
                else:
                    self.breaker.success()  # it answered: busy, or refused our request
                if run is None or not exc.kind.retryable:
                    raise
                run.last_error = exc.message
                wait = random.uniform(delay / 2, delay)
                if exc.retry_after is not None:
                    wait = max(wait, min(exc.retry_after, self.settings.retry_max))
                log.info("judge0_retry", run=run.id, kind=exc.kind, wait=round(wait, 2))
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.settings.retry_max)
                continue
            except BaseException:
                if probe:
                    self.breaker.release_probe()
                raise
            self.breaker.success()
            if run is not None:
                run.last_error = ""
            return result

    def _cancelled_in_doc(self, run: _Run) -> bool:
        room = self.registry.rooms.get(run.room)
        entry = schema.runs(room.doc).get(run.id) if room is not None else None
        return isinstance(entry, Map) and entry.get("status") == records.CANCELLED

    async def _finish(self, run: _Run, fields: dict[str, Any]) -> None:
        run.finished = True
        fields = {**fields, "finished_at": time.time()}
        for name in records.OUTPUT_FIELDS:
            fields.setdefault(name, "")
        try:
            await self._write(run, fields)
        finally:
            self._active.pop(run.id, None)
            if self._by_room.get(run.room) == run.id:
                del self._by_room[run.room]
            self.observer.runs_in_flight(len(self._active))
            self.observer.run_finished(str(fields["status"]))
            log.info("run_finished", room=run.room, run=run.id, status=fields["status"])

    async def _write(self, run: _Run, fields: dict[str, Any]) -> None:
        """Write ``fields`` into the run's entry. The room is looked up each time: it may
        have been unloaded (nobody connected) and loaded again since the last write."""
        try:
            room = await self.registry.loaded(run.room)
        except Exception:
            log.exception("run_write_failed", room=run.room, run=run.id)
            return

        def change(doc: Doc[Any]) -> None:
            entry = schema.runs(doc).get(run.id)
            # An editor may have deleted it; someone may have stopped it (final): nothing to do.
            if isinstance(entry, Map) and entry.get("status") != records.CANCELLED:
                for key, value in fields.items():
                    entry[key] = value

        room.edit(change, origin="runner")

    # -- background: languages and the breaker's probe ----------------------------

    def _breaker_changed(self, state: BreakerState) -> None:
        self.observer.breaker_changed(state.value)
        if state is BreakerState.OPEN:
            log.warning(
                "runner_degraded",
                breaker="open",
                failures=self.breaker.failures,
                last_error=self.breaker.last_error,
            )
        else:
            log.info("runner_recovered", breaker=state.value)
        self._wake.set()

    async def _watch(self) -> None:
        backoff = self.settings.retry_first
        while True:
            self._wake.clear()
            state = self.breaker.state
            if state is BreakerState.OPEN:
                await self._sleep(max(0.05, self.breaker.retry_in()))
                continue
            stale = time.monotonic() - self._languages_at >= self.settings.languages_refresh
            if stale or not self._languages or state is BreakerState.HALF_OPEN:
                try:
                    await self._refresh_languages(None)
                except (Judge0Error, BreakerOpen) as exc:
                    log.info("judge0_languages_failed", error=str(exc))
                    await self._sleep(random.uniform(backoff / 2, backoff))
                    backoff = min(backoff * 2, max(self.settings.retry_max, 30.0))
                    continue
                backoff = self.settings.retry_first
            due = self._languages_at + self.settings.languages_refresh - time.monotonic()
            await self._sleep(max(0.05, due))

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake when the breaker changes state."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    # -- restarts -----------------------------------------------------------------

    def on_room_loaded(self, room: Room) -> None:
        """Registry hook: end runs in flight that nobody will finish."""
        waiting = interrupt_stale_runs(
            room, is_mine=self._active.__contains__, exclusive=self.settings.exclusive
        )
        if waiting is not None and not self._closing and room.name not in self._timers:
            self._timers[room.name] = asyncio.get_running_loop().call_later(
                max(0.0, waiting - time.time()) + 0.5, self._recheck, room.name
            )

    def _recheck(self, name: str) -> None:
        self._timers.pop(name, None)
        room = self.registry.rooms.get(name)
        if room is not None:
            self.on_room_loaded(room)


def interrupt_stale_runs(
    room: Room, *, is_mine: Callable[[str], bool], exclusive: bool
) -> float | None:
    """Mark the room's runs still ``queued``/``running`` that this process is not running
    as ``interrupted``. With ``exclusive`` False (other instances may own some), only
    runs past their deadline; returns the earliest deadline still pending, if any."""
    now = time.time()
    stale: list[str] = []
    pending: float | None = None
    for run_id, entry in _in_flight(room.doc):
        if is_mine(run_id):
            continue
        deadline = _number(entry.get("deadline"))
        if exclusive or deadline <= now:
            stale.append(run_id)
        else:
            pending = deadline if pending is None else min(pending, deadline)
    if stale:
        message = "the server restarted during the run; run it again"

        def interrupt(doc: Doc[Any]) -> None:
            runs = schema.runs(doc)
            for run_id in stale:
                entry = runs.get(run_id)
                if isinstance(entry, Map):
                    entry["status"] = records.INTERRUPTED
                    entry["message"] = message
                    entry["finished_at"] = now

        room.edit(interrupt, origin="runner")
        log.info("runs_interrupted", room=room.name, runs=stale)
    return pending


def mark_cancelled(room: Room, run_id: str, *, by_id: str, by_name: str) -> dict[str, Any]:
    """Write ``cancelled`` into a run still queued or running (whoever runs it: this
    process, another instance, or nobody any more); returns the record. Raises
    ``RunNotFound``, or ``RunConflict`` when it already ended."""
    entry = schema.runs(room.doc).get(run_id)
    if not isinstance(entry, Map):
        raise RunNotFound("unknown run")
    status = entry.get("status")
    if status not in records.IN_FLIGHT:
        raise RunConflict(f"the run already ended ({status})")
    now = time.time()

    def cancel(doc: Doc[Any]) -> None:
        target = schema.runs(doc).get(run_id)
        if isinstance(target, Map):
            target["status"] = records.CANCELLED
            target["message"] = f"stopped by {by_name}"
            target["cancelled_by"] = by_name
            target["cancelled_by_id"] = by_id
            target["finished_at"] = now
            for name in records.OUTPUT_FIELDS:
                if target.get(name) is None:
                    target[name] = ""

    room.edit(cancel, origin="runner")
    return records.as_json(schema.runs(room.doc).get(run_id))


def _in_flight(doc: Doc[Any]) -> list[tuple[str, Map[Any]]]:
    """The runs still ``queued``/``running`` (their Maps: outputs are not copied)."""
    out: list[tuple[str, Map[Any]]] = []
    for run_id, entry in schema.runs(doc).items():
        if isinstance(entry, Map) and entry.get("status") in records.IN_FLIGHT:
            out.append((str(run_id), entry))
    return out


def _prune(runs: Map[Any], keep: int) -> None:
    """Delete the oldest finished runs so that at most ``keep`` finished ones remain."""
    finished: list[tuple[float, str]] = []
    for run_id, entry in runs.items():
        if not isinstance(entry, Map):
            continue
        if entry.get("status") in records.IN_FLIGHT:
            continue
        finished.append((_number(entry.get("ts")), str(run_id)))
    finished.sort()
    for _, run_id in finished[: max(0, len(finished) - keep)]:
        del runs[run_id]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _unavailable(reason: str) -> dict[str, Any]:
    return {"status": records.UNAVAILABLE, "message": f"could not run the code: {reason}"}


def _refused(exc: Judge0Error) -> dict[str, Any]:
    """A failure no retry can fix."""
    if exc.kind is ErrorKind.AUTH:
        return _unavailable(f"the runner is misconfigured: {exc.message}")
    if exc.kind is ErrorKind.NOT_FOUND:
        return {"status": records.INTERNAL_ERROR, "message": "Judge0 lost the submission"}
    return {"status": records.INTERNAL_ERROR, "message": exc.message}
