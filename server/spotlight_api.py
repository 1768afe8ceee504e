"""The spotlight: a teacher shows one student's code to the class.

The class's staff (its owner and editors) pick a student room of one of the class's
exercises; its files go into the class room's ``spotlight:current`` (``rooms.classroom``)
and stay fresh while the student types (``rooms.class_grid``), read-only for the class
(only the server writes ``class``), until a ``DELETE``. Two doors to it: from the class
(``/api/rooms/{room}/spotlight``, a class staff token) and from the grid
(``/api/exercises/{id}/spotlight``, the grid's exercise-room token, which only staff get).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rooms import classroom
from rooms.class_grid import ClassGrid, student_room_parts
from rooms.history import Who
from server.api import Api, ApiError, Strict, _body
from server.exercises_api import ExercisesApi


class SpotlightRequest(Strict):
    room: str = Field(min_length=1, max_length=200, description="a student's exercise room")


class SpotlightShown(Strict):
    room: str  # the student room on stage
    name: str  # the student's name
    entry: str
    files: dict[str, str]
    cut: bool  # files past the size limit were left out
    ts: float
    started_at: float


class SpotlightApi:
    def __init__(
        self, api: Api, exercises: ExercisesApi, grid_of: Callable[[], ClassGrid | None]
    ) -> None:
        self.api = api
        self.exercises = exercises
        self._grid_of = grid_of

    def routes(self) -> list[Route]:
        h = self.api._handler
        return [
            Route("/api/rooms/{room}/spotlight", h(self.show), methods=["POST"]),
            Route("/api/rooms/{room}/spotlight", h(self.end), methods=["DELETE"]),
            Route("/api/exercises/{id}/spotlight", h(self.show_from_grid), methods=["POST"]),
            Route("/api/exercises/{id}/spotlight", h(self.end_from_grid), methods=["DELETE"]),
        ]

    @property
    def grid(self) -> ClassGrid:
        grid = self._grid_of()
        if grid is None:  # pragma: no cover - the app makes one before serving
            raise ApiError(503, "the server is starting")
        return grid

    async def _class_staff(self, request: Request) -> tuple[str, Who]:
        name, _, identity = await self.api._room(request)
        if not identity.role.on_stage:
            raise ApiError(403, "only the class's owner and editors may use the spotlight")
        return name, Who(identity.user_id, identity.name, identity.role.value)

    async def _grid_staff(self, request: Request) -> tuple[str, str, Who]:
        """(exercise id, class room, who) for a staff token of the path's exercise."""
        exercise, caller = await self.exercises._exercise(request)
        if not caller.staff:
            raise ApiError(403, "only the class's owner and editors may use the spotlight")
        identity = caller.identity
        return (
            exercise.id,
            exercise.class_room,
            Who(identity.user_id, identity.name, identity.role.value),
        )

    async def show(self, request: Request) -> Response:
        """Show a student room of one of this class's exercises to the whole class."""
        class_room, who = await self._class_staff(request)
        target = (await _body(request, SpotlightRequest)).room
        return await self._show(class_room, target, None, who)

    async def show_from_grid(self, request: Request) -> Response:
        """The same, from the exercise's grid: a student room of this exercise."""
        exercise_id, class_room, who = await self._grid_staff(request)
        target = (await _body(request, SpotlightRequest)).room
        return await self._show(class_room, target, exercise_id, who)

    async def end(self, request: Request) -> Response:
        """End the class's spotlight (404 when none is on)."""
        class_room, who = await self._class_staff(request)
        return await self._end(class_room, who)

    async def end_from_grid(self, request: Request) -> Response:
        """End the spotlight of the exercise's class (404 when none is on)."""
        _, class_room, who = await self._grid_staff(request)
        return await self._end(class_room, who)

    async def _show(
        self, class_room: str, target: str, exercise_id: str | None, who: Who
    ) -> Response:
        parts = student_room_parts(target)
        if parts is None or (exercise_id is not None and parts[0] != exercise_id):
            raise ApiError(422, "room: not a student room of this class's exercises")
        exercise_room = await self.api.registry.loaded(classroom.exercise_room(parts[0]))
        definition = classroom.get(exercise_room.doc, classroom.EXERCISE, parts[0])
        student = classroom.get(exercise_room.doc, classroom.STUDENT, parts[1])
        if definition is None or definition.get("class_room") != class_room or student is None:
            raise ApiError(404, "room: no such student room in this class's exercises")
        name = str(student.get("name") or "a student")
        entry = await self.grid.show(class_room, target, name, who)
        return JSONResponse(SpotlightShown(**entry).model_dump())

    async def _end(self, class_room: str, who: Who) -> Response:
        if not await self.grid.end(class_room, who):
            raise ApiError(404, "no spotlight is on in this room")
        return Response(status_code=204)
