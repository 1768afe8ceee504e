"""``/api/rooms/{room}/spotlight``: a teacher shows one student's code to the class.

The class's staff (its owner and editors) pick a student room of one of the class's
exercises; its files go into the class room's ``spotlight:current`` (``rooms.classroom``)
and stay fresh while the student types (``rooms.class_grid``), read-only for the class
(only the server writes ``class``), until a ``DELETE``.
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
    def __init__(self, api: Api, grid_of: Callable[[], ClassGrid | None]) -> None:
        self.api = api
        self._grid_of = grid_of

    def routes(self) -> list[Route]:
        h = self.api._handler
        path = "/api/rooms/{room}/spotlight"
        return [
            Route(path, h(self.show), methods=["POST"]),
            Route(path, h(self.end), methods=["DELETE"]),
        ]

    async def _staff(self, request: Request) -> tuple[str, Who, ClassGrid]:
        name, _, identity = await self.api._room(request)
        if not identity.role.on_stage:
            raise ApiError(403, "only the class's owner and editors may use the spotlight")
        grid = self._grid_of()
        if grid is None:  # pragma: no cover - the app makes one before serving
            raise ApiError(503, "the server is starting")
        return name, Who(identity.user_id, identity.name, identity.role.value), grid

    async def show(self, request: Request) -> Response:
        """Show a student room of one of this class's exercises to the whole class."""
        class_room, who, grid = await self._staff(request)
        target = (await _body(request, SpotlightRequest)).room
        parts = student_room_parts(target)
        if parts is None:
            raise ApiError(422, "room: not a student's exercise room")
        exercise_id, key = parts
        exercise_room = await self.api.registry.loaded(classroom.exercise_room(exercise_id))
        definition = classroom.get(exercise_room.doc, classroom.EXERCISE, exercise_id)
        if definition is None or definition.get("class_room") != class_room:
            raise ApiError(404, "room: no such student room in this class's exercises")
        student = classroom.get(exercise_room.doc, classroom.STUDENT, key)
        if student is None:
            raise ApiError(404, "room: no such student room in this class's exercises")
        name = str(student.get("name") or "a student")
        entry = await grid.show(class_room, target, name, who)
        return JSONResponse(SpotlightShown(**entry).model_dump())

    async def end(self, request: Request) -> Response:
        """End the class's spotlight (404 when none is on)."""
        class_room, who, grid = await self._staff(request)
        if not await grid.end(class_room, who):
            raise ApiError(404, "no spotlight is on in this room")
        return Response(status_code=204)
