"""``/api/rooms/{room}/exercises`` and ``/api/exercises/{id}...``: exercises in personal rooms.

A class's staff (the class room's owner and editors) turn the class's workspace, or
given files, into an exercise. Each student who joins gets a room of their own,
``{id}.s.{person_key}``, seeded once from the starter files, where they are editor;
staff get owner tokens to any of them from ``/students``. Nobody else is ever handed
a token for a student's room, so a student cannot open another's (403 over REST, 4403
over the websocket: the token names its own room).

Who is asking comes from the token alone: a token of the class room (its staff, or a
student), of the exercise room (staff, the grid's viewer token), or of a student room.
The due-time lock: before the due time a student's token expires at it (the websocket
is closed with 4401 then, and the client rejoins); a join after it gets a viewer
token, and checks are refused (409). Staff may still check any student's room.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from pycrdt import Doc, Map, Text
from pydantic import BaseModel, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crdt import paths, schema
from rooms import classroom, exercises
from rooms.exercises import Exercise, ExerciseTest
from rooms.history import Who
from rooms.roles import Mode, Role
from rooms.store import RoomInfo
from rooms.workspace import WorkspaceError, check_files
from runner.checks import Checker, CheckTest
from runner.service import Runner, RunRefused
from server.api import LANGUAGE, MAX_BODY_BYTES, Api, ApiError, Strict, _body
from server.auth import AuthError, Identity, check_not_rotated, issue_token
from server.names import new_room_name, valid_room_name
from server.ratelimit import RateLimiter
from server.runs import refused

STAFF = (Role.OWNER, Role.EDITOR)
MAX_TESTS = 50
PERSONAL_REQUIRED = "join the class with your name first"

# -- bodies (the OpenAPI document is built from these) -----------------------------


class TestSpec(Strict):
    name: str | None = Field(default=None, max_length=100)
    stdin: str = Field(default="", max_length=MAX_BODY_BYTES)
    expected_output: str = Field(max_length=MAX_BODY_BYTES)
    hidden: bool = False


class CreateExercise(Strict):
    title: str = Field(max_length=200)
    files: dict[str, str] | None = Field(
        default=None, description="path -> text; default: the class room's workspace now"
    )
    entry: str | None = Field(default=None, max_length=1024)
    language: str | None = Field(default=None, pattern=LANGUAGE)
    tests: list[TestSpec] = Field(default_factory=list, max_length=MAX_TESTS)
    due_at: float | None = Field(default=None, description="unix seconds, in the future")
    lock_after_due: bool = True
    ai: Literal["off", "hints", "full"] | None = Field(
        default=None, description="default: the class's policy:ai"
    )

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value


class ExerciseCreated(BaseModel):
    id: str
    title: str
    room: str = Field(description="the exercise room ({id}.exercise): the grid's document")
    token: str = Field(description="viewer token for the exercise room, the caller's identity")
    grid_url: str
    due_at: float | None


class ExerciseTestView(BaseModel):
    name: str
    hidden: bool
    stdin: str | None = Field(default=None, description="absent for hidden tests (students)")
    expected_output: str | None = None


class ExerciseView(BaseModel):
    id: str
    title: str
    class_room: str
    created_by: str
    created_at: float
    language: str
    entry: str
    files: dict[str, str]
    tests: list[ExerciseTestView]
    due_at: float | None
    lock_after_due: bool
    ai: str
    staff: bool = Field(description="whether this is the staff view (hidden tests whole)")
    grid_url: str | None = Field(
        default=None, description="staff only: the grid's page with a new exercise-room token"
    )


class ExerciseJoined(BaseModel):
    room: str
    token: str = Field(description="editor (viewer once locked); expires at the due time")
    url: str
    role: Role
    expires_at: float


class StudentEntry(BaseModel):
    model_config = {"extra": "allow"}

    key: str
    user_id: str
    name: str
    room: str
    joined_at: float
    open_url: str = Field(description="an owner token for the caller to the student's room")


class CheckRequest(Strict):
    student: str | None = Field(
        default=None, max_length=64, description="staff: the student's key (from /students)"
    )


class TestResult(BaseModel):
    name: str
    hidden: bool
    passed: bool
    status: str | None = None
    stdin: str | None = None
    expected: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    compile_output: str | None = None
    message: str | None = None


class CheckRecord(BaseModel):
    model_config = {"extra": "allow"}

    id: str
    kind: Literal["check"]
    status: str
    passed: float
    total: float
    results: list[TestResult]
    by: str
    by_id: str
    ts: float


# -- who is asking ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    identity: Identity
    staff: bool  # class owner/editor, or an exercise-room token
    class_member: bool  # a token of the class room
    own_room: str | None  # the student room the token is for


class ExercisesApi:
    def __init__(self, api: Api, runner_of: Callable[[], Runner | None]) -> None:
        self.api = api
        self._runner_of = runner_of
        self._checker: Checker | None = None
        self.limiter = RateLimiter(api.settings.runner_runs_per_minute)

    def routes(self) -> list[Route]:
        h = self.api._handler
        return [
            Route("/api/rooms/{room}/exercises", h(self.create), methods=["POST"]),
            Route("/api/exercises/{id}", h(self.get), methods=["GET"]),
            Route("/api/exercises/{id}/join", h(self.join), methods=["POST"]),
            Route("/api/exercises/{id}/students", h(self.students), methods=["GET"]),
            Route("/api/exercises/{id}/check", h(self.check), methods=["POST"]),
            Route("/api/exercises/{id}/grades.csv", h(self.grades), methods=["GET"]),
        ]

    # -- plumbing --------------------------------------------------------------------

    def _token(self, room: str, role: Role, identity: Identity, lifetime: tuple[int, int]) -> str:
        return issue_token(
            self.api.auth.secret,
            room=room,
            role=role,
            name=identity.name,
            user_id=identity.user_id,
            ttl=0,
            personal=True,
            lifetime=lifetime,
        )

    def _lifetime(self) -> tuple[int, int]:
        now = int(time.time())
        return now, now + self.api.settings.token_ttl_seconds

    async def _exercise(self, request: Request) -> tuple[Exercise, Caller]:
        """The path's exercise and who asks: 401 bad token, 404 unknown id, 403 a token
        of no room of this exercise."""
        exercise_id = request.path_params["id"]
        identity = self.api._identity(request, None)
        if not valid_room_name(exercise_id) or "." in exercise_id:
            raise ApiError(404, "unknown exercise")
        registry = self.api.registry
        if await registry.room_info(classroom.exercise_room(exercise_id)) is None:
            raise ApiError(404, "unknown exercise")
        room = await registry.loaded(classroom.exercise_room(exercise_id))
        exercise = exercises.read(room.doc, exercise_id)
        if exercise is None:
            raise ApiError(404, "unknown exercise")
        token_room = identity.room
        if token_room == exercise.class_room:
            caller = Caller(identity, identity.role in STAFF, True, None)
        elif token_room == classroom.exercise_room(exercise_id):
            caller = Caller(identity, True, False, None)
        elif exercises.student_key_of(exercise_id, token_room) is not None:
            caller = Caller(identity, False, False, token_room)
        else:
            raise ApiError(403, "token is for another room")
        info = await registry.room_info(token_room)
        if info is None:
            raise ApiError(403, "token is for another room")
        try:
            check_not_rotated(identity, info.tokens_after)
        except AuthError as exc:
            raise ApiError(exc.status, exc.message) from exc
        return exercise, caller

    @staticmethod
    def _staff_only(caller: Caller) -> None:
        if not caller.staff:
            raise ApiError(403, "only the class's owner and editors may do this")

    # -- endpoints -------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        """Class staff: make an exercise from the class's workspace (or given files)."""
        name, info, identity = await self.api._room(request)
        if identity.role not in STAFF:
            raise ApiError(403, "only the class's owner and editors may create exercises")
        body = await _body(request, CreateExercise)
        class_room = await self.api.registry.loaded(name)
        now = time.time()
        if body.due_at is not None and (not math.isfinite(body.due_at) or body.due_at <= now):
            _invalid("due_at", "must be a time in the future (unix seconds)")
        if body.files is None:
            files = schema.workspace(class_room.doc)
            entry = body.entry or schema.entry_path(class_room.doc)
        else:
            files, entry = _normal_files(body.files, body.entry)
        if body.entry is not None:
            try:
                entry = paths.normalize(body.entry)
            except paths.PathError as exc:
                _invalid("entry", str(exc))
        if entry not in files:
            _invalid("entry", f"{entry!r} is not one of the files")
        try:
            sizes = [(path, len(text.encode("utf-8"))) for path, text in files.items()]
            check_files(entry, sizes, self.api.settings.workspace_limits(), raw_entry=False)
        except WorkspaceError as exc:
            _invalid("files", f"{exc.path}: {exc.rule}")
        meta_language = schema.meta(class_room.doc).get("language")
        language = body.language or (
            meta_language if isinstance(meta_language, str) else info.language
        )
        tests = [
            ExerciseTest(
                name=(test.name or "").strip() or f"test {i + 1}",
                stdin=test.stdin,
                expected_output=test.expected_output,
                hidden=test.hidden,
            )
            for i, test in enumerate(body.tests)
        ]
        who = Who(identity.user_id, identity.name, identity.role.value)
        for _ in range(5):
            exercise_id = new_room_name()
            room_name = classroom.exercise_room(exercise_id)
            room_info = RoomInfo(room_name, Mode.PAIR.value, language, body.title, now, now)
            if await self.api.registry.create_room(room_info):
                break
        else:  # pragma: no cover - 72 random bits colliding five times
            raise ApiError(500, "could not pick an exercise id")
        exercise = Exercise(
            id=exercise_id,
            title=body.title,
            class_room=name,
            created_by=identity.user_id,
            created_at=now,
            language=language,
            entry=entry,
            files=files,
            tests=tests,
            due_at=body.due_at,
            lock_after_due=body.lock_after_due,
            ai=body.ai or exercises.ai_policy(class_room.doc),
        )
        exercise_room = await self.api.registry.loaded(room_name)
        definition = exercise.as_json()
        exercise_room.edit(
            lambda doc: classroom.put(doc, classroom.EXERCISE, exercise_id, definition), who=who
        )
        listed = exercise.class_entry()
        class_room.edit(
            lambda doc: classroom.put(doc, classroom.EXERCISE, exercise_id, listed), who=who
        )
        token = self._token(room_name, Role.VIEWER, identity, self._lifetime())
        created = ExerciseCreated(
            id=exercise_id,
            title=exercise.title,
            room=room_name,
            token=token,
            grid_url=f"/x/{exercise_id}?token={token}",
            due_at=exercise.due_at,
        )
        return JSONResponse(created.model_dump(), status_code=201)

    async def get(self, request: Request) -> Response:
        """Any token of the class, the exercise room or one's own student room: the
        definition; hidden tests whole for staff only."""
        exercise, caller = await self._exercise(request)
        view = exercise.staff_view() if caller.staff else exercise.public_view()
        view.pop("rooms", None)
        view["staff"] = caller.staff
        if caller.staff:  # a way back to the grid from any browser, for staff
            grid = classroom.exercise_room(exercise.id)
            token = self._token(grid, Role.VIEWER, caller.identity, self._lifetime())
            view["grid_url"] = f"/x/{exercise.id}?token={token}"
        return JSONResponse(ExerciseView.model_validate(view).model_dump(exclude_none=True))

    async def join(self, request: Request) -> Response:
        """A class member (personal token): one's own room for the exercise, made and
        seeded from the starter files the first time, the same room after."""
        exercise, caller = await self._exercise(request)
        identity = caller.identity
        if not caller.class_member:
            raise ApiError(403, "join an exercise with a token of its class room")
        if not identity.personal:
            raise ApiError(403, PERSONAL_REQUIRED)
        registry = self.api.registry
        key = classroom.person_key(self.api.auth.secret, identity.user_id)
        name = classroom.student_room(exercise.id, key)
        now = time.time()
        info = RoomInfo(name, Mode.PAIR.value, exercise.language, exercise.title[:200], now, now)
        if await registry.create_room(info, code=exercise.files.get(exercise.entry, "")):
            await self._seed(exercise, name)
        exercise_room = await registry.loaded(classroom.exercise_room(exercise.id))
        if classroom.get(exercise_room.doc, classroom.STUDENT, key) is None:
            entry = exercises.join_entry(key, identity.user_id, identity.name, name, now)
            exercise_room.edit(
                lambda doc: classroom.put(doc, classroom.STUDENT, key, entry),
                who=Who(identity.user_id, identity.name, identity.role.value),
            )
        role, lifetime = Role.EDITOR, self._lifetime()
        if exercise.locked(now):
            role = Role.VIEWER
        elif exercise.lock_after_due and exercise.due_at is not None:
            lifetime = (int(now), math.ceil(exercise.due_at))  # 4401 at the due time
        token = self._token(name, role, identity, lifetime)
        joined = ExerciseJoined(
            room=name,
            token=token,
            url=f"/r/{name}?token={token}",
            role=role,
            expires_at=float(lifetime[1]),
        )
        return JSONResponse(joined.model_dump(mode="json"))

    async def _seed(self, exercise: Exercise, name: str) -> None:
        """A new student room: the starter's other files, its entry, the student view."""
        room = await self.api.registry.loaded(name)
        others = {p: t for p, t in exercise.files.items() if p != exercise.entry}
        view = exercise.student_entry()

        def seed(doc: Doc[Any]) -> None:
            schema.meta(doc)[schema.ENTRY] = exercise.entry
            for path, text in others.items():
                schema.files(doc)[path] = Text(text)
            classroom.put(doc, classroom.EXERCISE, exercise.id, view)

        room.edit(seed)

    async def students(self, request: Request) -> Response:
        """Staff: every student who joined, with an owner link to their room."""
        exercise, caller = await self._exercise(request)
        self._staff_only(caller)
        room = await self.api.registry.loaded(classroom.exercise_room(exercise.id))
        out: list[dict[str, Any]] = []
        lifetime = self._lifetime()
        for key, entry in sorted(
            exercises.students(room.doc).items(), key=lambda kv: kv[1].get("joined_at", 0)
        ):
            student_room = classroom.student_room(exercise.id, key)
            token = self._token(student_room, Role.OWNER, caller.identity, lifetime)
            row = {
                **entry,
                "key": key,
                "room": student_room,
                "open_url": f"/r/{student_room}?token={token}",
            }
            out.append(StudentEntry.model_validate(row).model_dump())
        return JSONResponse(out)

    async def check(self, request: Request) -> Response:
        """The student's own-room token, or staff with {student: key}: run the room's
        code against every test; the record (also in the room's ``runs``)."""
        exercise, caller = await self._exercise(request)
        body = await _body(request, CheckRequest)
        identity = caller.identity
        if caller.own_room is not None:
            if exercise.locked() and identity.role is not Role.OWNER:
                raise ApiError(409, "the exercise is past its due time: checks are closed")
            if identity.role not in STAFF:
                raise ApiError(403, "only the room's editors may check it")
            room_name = caller.own_room
            staff = identity.role is Role.OWNER  # a staff's open_url token
        elif caller.staff:
            if body.student is None:
                _invalid("student", "staff must name the student (a key from /students)")
            room_name = classroom.student_room(exercise.id, body.student)
            if (
                not valid_room_name(room_name)
                or await self.api.registry.room_info(room_name) is None
            ):
                raise ApiError(404, "no such student in this exercise")
            staff = True
        else:
            raise ApiError(403, "check from your own exercise room (POST .../join first)")
        if exercise.locked() and not staff:
            raise ApiError(409, "the exercise is past its due time: checks are closed")
        if not exercise.tests:
            raise ApiError(409, "this exercise has no tests")
        runner = self._runner_of()
        if runner is None:
            raise ApiError(503, "the runner is off: this server has no CODEMENTOR_JUDGE0_URL")
        if self._checker is None or self._checker.runner is not runner:
            self._checker = Checker(runner)
        if self._checker.busy(room_name):
            raise ApiError(409, "a check or run is already in progress in this room")
        self.limiter.enforce(f"check:{identity.user_id}", "too many checks: wait a moment")
        tests = [CheckTest(t.name, t.stdin, t.expected_output, t.hidden) for t in exercise.tests]
        info = await self.api.registry.room_info(room_name)
        try:
            record = await self._checker.check(
                room_name,
                tests,
                by_id=identity.user_id,
                by_name=identity.name,
                default_language=info.language if info else exercise.language,
            )
        except RunRefused as exc:
            raise refused(exc) from exc
        return JSONResponse(CheckRecord.model_validate(record).model_dump(mode="json"))

    async def grades(self, request: Request) -> Response:
        """Staff: one CSV row per student: tests passed at the last check, the last run's
        status, when they last checked, and the submission time (the last edit before
        the due time, or the last edit)."""
        exercise, caller = await self._exercise(request)
        self._staff_only(caller)
        registry = self.api.registry
        room = await registry.loaded(classroom.exercise_room(exercise.id))
        joined = sorted(
            exercises.students(room.doc).items(),
            key=lambda kv: (str(kv[1].get("name", "")).lower(), kv[0]),
        )
        rooms = {key: classroom.student_room(exercise.id, key) for key, _ in joined}
        # O(1) store round trips for the whole class: one flush of every loaded student
        # room (so their history holds their last edits), then one worker call reading
        # which rooms exist and each student's submission time.
        writers = [registry.rooms[n].writer for n in rooms.values() if n in registry.rooms]
        if writers:
            await registry.flusher.flush(writers)
        students = [(rooms[key], str(entry.get("user_id", ""))) for key, entry in joined]
        submitted = await registry.worker.run(
            exercises.submission_times, registry.worker.store, students, exercise.due_at
        )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(exercises.CSV_FIELDS)
        for key, entry in joined:
            name = rooms[key]
            if name not in submitted:
                continue
            # Loaded already for students online; a room nobody has open is loaded here.
            student_room = await registry.loaded(name)
            last_run, last_check = _last_runs(student_room.doc)
            row = (
                entry.get("name", ""),
                str(entry.get("user_id", "")),
                int(last_check.get("passed", 0)) if last_check else "",
                int(last_check.get("total", 0)) if last_check else len(exercise.tests),
                last_run.get("status", "") if last_run else "",
                exercises.iso(_number(last_check.get("ts"))) if last_check else "",
                exercises.iso(submitted[name]),
                name,
            )
            writer.writerow([exercises.csv_cell(cell) for cell in row])
        filename = f"grades-{exercise.id}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


def _last_runs(doc: Doc[Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The room's newest run (of any kind) and newest check."""
    last_run: dict[str, Any] | None = None
    last_check: dict[str, Any] | None = None
    for entry in schema.runs(doc).values():
        if not isinstance(entry, Map):
            continue
        record = {k: entry.get(k) for k in ("status", "ts", "kind", "passed", "total")}
        ts = _number(record["ts"])
        if last_run is None or ts > _number(last_run["ts"]):
            last_run = record
        if record["kind"] == "check" and (last_check is None or ts > _number(last_check["ts"])):
            last_check = record
    return last_run, last_check


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _normal_files(files: dict[str, str], entry: str | None) -> tuple[dict[str, str], str]:
    """The body's files with normal paths (422 naming the bad one); the entry defaults
    to the first file."""
    out: dict[str, str] = {}
    for path, text in files.items():
        try:
            normal = paths.normalize(path)
        except paths.PathError as exc:
            _invalid(f"files.{path}", str(exc))
        out[normal] = text
    if not out:
        _invalid("files", "must hold at least one file")
    return out, entry or next(iter(out))


def _invalid(field: str, message: str) -> NoReturn:
    raise ApiError(422, "invalid request", [{"field": field, "message": message}])
