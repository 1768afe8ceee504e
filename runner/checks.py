"""A check: a room's code run against an exercise's tests on Judge0.

Each test is one Judge0 submission of the room's code with the test's ``stdin`` and
``expected_output``: Judge0 itself compares (3 Accepted when stdout matches, 4 Wrong
Answer when not; trailing whitespace ignored, as Judge0 CE does). Submissions go
through the runner (``Runner.judged``): its client and timeouts, its circuit breaker
and retries, its global cap of concurrent submissions, and the run deadline for the
whole check. The check is one record in the room's ``runs`` map, ``kind: "check"``:
``running`` while the tests run, then its final status with ``passed``/``total`` and
``results`` (a JSON list as text: runs entries hold primitives only). Hidden tests'
results carry their name and pass/fail, nothing the program printed: their input or
expected output could be read back from it.

One check per room at a time on this instance (``CheckConflict``); a plain run of the
room in flight conflicts too.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Map

from crdt import schema
from rooms.room import Room
from runner import records
from runner.service import (
    DEADLINE_SLACK,
    Program,
    RunConflict,
    Runner,
    RunnerBusy,
    _prune,
    _Run,
)

KIND = "check"
PASSED = "passed"
WRONG_ANSWER = records.WRONG_ANSWER  # ran fine, printed something else
JUDGE0_ACCEPTED, JUDGE0_WRONG_ANSWER = 3, 4
SHOWN_BYTES = 4096  # of a visible test's stdin/expected/stdout/stderr in the results


@dataclass(frozen=True, slots=True)
class CheckTest:
    name: str
    stdin: str
    expected_output: str
    hidden: bool


class Checker:
    """Runs checks through one ``Runner``; remembers which rooms have one in flight."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._rooms: set[str] = set()

    def busy(self, room_name: str) -> bool:
        return room_name in self._rooms or self.runner.active_run(room_name) is not None

    async def check(
        self,
        room_name: str,
        tests: list[CheckTest],
        *,
        by_id: str,
        by_name: str,
        default_language: str,
    ) -> dict[str, Any]:
        """Run every test against the room's code as it is now; the final record (also
        written into the room's ``runs``). Raises ``RunRefused``: 409 (a check or run in
        flight), 503 (shutting down, too busy), 422 (nothing to run)."""
        runner = self.runner
        if self.busy(room_name):
            raise RunConflict("a check or run is already in progress in this room")
        if len(runner._active) + len(self._rooms) >= (
            runner.settings.concurrency + runner.settings.queue
        ):
            raise RunnerBusy("the runner is busy: too many runs in progress", retry_after=5.0)
        self._rooms.add(room_name)
        try:
            room = await runner.registry.loaded(room_name)
            program = runner.program(room, None, default_language)
            return await self._check(room, program, tests, by_id=by_id, by_name=by_name)
        finally:
            self._rooms.discard(room_name)

    async def _check(
        self, room: Room, program: Program, tests: list[CheckTest], *, by_id: str, by_name: str
    ) -> dict[str, Any]:
        runner = self.runner
        now_mono, now = time.monotonic(), time.time()
        check_id = secrets.token_urlsafe(8)
        record: dict[str, Any] = {
            "id": check_id,
            "kind": KIND,
            "status": records.RUNNING,
            "language": program.language,
            "entry": program.entry,
            "state": program.state,
            "by": by_name,
            "by_id": by_id,
            "ts": now,
            "started_at": now,
            "passed": 0.0,
            "total": float(len(tests)),
            "results": "[]",
            "runner": runner.id,
            "deadline": now + runner.settings.deadline + DEADLINE_SLACK,
            "message": f"checking {len(tests)} tests",
        }
        kept = runner.settings.runs_kept

        def add(doc: Doc[Any]) -> None:
            runs = schema.runs(doc)
            _prune(runs, keep=kept - 1)
            runs[check_id] = Map(record)

        room.edit(add, origin="runner")
        deadline = now_mono + runner.settings.deadline
        try:
            outcomes = await asyncio.gather(
                *(self._one(room.name, program, test, i, deadline) for i, test in enumerate(tests))
            )
        except BaseException:
            self._write(room, check_id, {"status": records.INTERRUPTED, "message": "stopped"})
            raise
        passed = sum(1 for outcome in outcomes if outcome["passed"])
        final = _overall(outcomes)
        fields = {
            "status": final,
            "passed": float(passed),
            "results": json.dumps(outcomes, separators=(",", ":")),
            "finished_at": time.time(),
            "message": f"{passed}/{len(tests)} tests passed",
            "stdout": "",
            "stderr": "",
            "compile_output": _first(outcomes, "compile_output"),
        }
        self._write(room, check_id, fields)
        runner.observer.run_finished(final)
        out = {**record, **fields}
        out["results"] = outcomes
        return out

    async def _one(
        self, room_name: str, program: Program, test: CheckTest, index: int, deadline: float
    ) -> dict[str, Any]:
        run = _Run(
            id=f"check-{secrets.token_urlsafe(6)}-{index}",
            room=room_name,
            code=program.code,
            language=program.language,
            stdin=test.stdin,
            requested=time.monotonic(),
            deadline=deadline,
            project=program.project,
            expected_output=test.expected_output,
        )
        fields = await self.runner.judged(run)
        status = str(fields.get("status", records.INTERNAL_ERROR))
        if status == records.ACCEPTED:
            if run.last_status == JUDGE0_WRONG_ANSWER:
                status = WRONG_ANSWER
            elif run.last_status == JUDGE0_ACCEPTED:
                status = PASSED
        passed = status == PASSED
        if test.hidden:
            return {"name": test.name, "hidden": True, "passed": passed}
        return {
            "name": test.name,
            "hidden": False,
            "passed": passed,
            "status": status,
            "stdin": _shown(test.stdin),
            "expected": _shown(test.expected_output),
            "stdout": _shown(str(fields.get("stdout") or "")),
            "stderr": _shown(str(fields.get("stderr") or "")),
            "compile_output": _shown(str(fields.get("compile_output") or "")),
            "message": _shown(str(fields.get("message") or "")),
        }

    @staticmethod
    def _write(room: Room, check_id: str, fields: dict[str, Any]) -> None:
        def change(doc: Doc[Any]) -> None:
            entry = schema.runs(doc).get(check_id)
            if isinstance(entry, Map):
                for key, value in fields.items():
                    entry[key] = value

        room.edit(change, origin="runner")


def _overall(outcomes: list[dict[str, Any]]) -> str:
    """``accepted`` when every test passed, else the first problem that is not a wrong
    answer (it says more: the code did not compile, crashed), else ``wrong_answer``.
    Hidden tests count, without saying which failed."""
    if all(outcome["passed"] for outcome in outcomes):
        return records.ACCEPTED
    for outcome in outcomes:
        status = outcome.get("status")
        if status not in (None, PASSED, WRONG_ANSWER):
            return str(status)
    return WRONG_ANSWER


def _first(outcomes: list[dict[str, Any]], name: str) -> str:
    for outcome in outcomes:
        value = outcome.get(name)
        if value:
            return str(value)
    return ""


def _shown(text: str) -> str:
    return records.cut_text(text.encode("utf-8"), SHOWN_BYTES)[0]
