"""``/api/rooms/{room}/ai``: ask the AI pair-programmer (``ai_assist``), cancel it,
apply or dismiss its suggestions, and undo its code changes.

The AI itself lives in ``ai_assist/``; this module wires it to HTTP. Who may ask follows
the room (pair: owners and editors; review: owner and reviewers; broadcast: the owner).
In a classroom the room's AI policy (``ai_assist.policy.ai_policy``) applies on top:
``off`` answers 403, ``hints`` gives answers without code changes.
The answer reaches everyone through the document (a chat entry that grows while Claude
types); the request answers 202 at once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ai_assist.service import AIObserver, AIRefused, AIService, may_apply, may_ask
from ai_assist.settings import WorkspaceLimits
from rooms.authorship import Author
from rooms.registry import RoomRegistry
from rooms.roles import Mode
from server.api import Api, ApiError, Strict, _body
from server.auth import Identity
from server.settings import Settings


class Selection(Strict):
    anchor: int = Field(ge=0, description="UTF-16 index (CodeMirror/Yjs)")
    head: int = Field(ge=0, description="UTF-16 index (CodeMirror/Yjs)")


class AskRequest(Strict):
    prompt: str = Field(min_length=1, max_length=8000)
    selection: Selection | None = None
    path: str | None = Field(
        default=None,
        max_length=1024,
        description="the file the question is about (the selection is in it); default: "
        "the file the asker has open (awareness `file`), else the entry file",
    )


class AskAccepted(BaseModel):
    request_id: str
    ahead: int = Field(description="requests of this room before this one")


class SuggestionAction(Strict):
    action: Literal["apply", "dismiss"]


class SuggestionResolved(BaseModel):
    status: Literal["applied", "dismissed"]


class ChangeUndone(BaseModel):
    undone: bool


def _author(identity: Identity) -> Author:
    return Author(identity.name, identity.user_id, identity.role.value)


def open_ai(settings: Settings, registry: RoomRegistry, observer: AIObserver) -> AIService | None:
    """The AI service when ANTHROPIC_API_KEY is set; None (feature off) otherwise."""
    ai_settings = settings.ai_settings()
    if ai_settings is None:
        return None
    ai_settings = dataclasses.replace(ai_settings, limits=workspace_limits(settings))
    service = AIService(ai_settings, registry, observer)
    registry.load_hooks.append(service.on_room_loaded)
    registry.leave_hooks.append(service.on_peer_left)
    for rooms_loaded_before in list(registry.rooms.values()):
        service.on_room_loaded(rooms_loaded_before)
    for name in ("anthropic", "httpx2"):  # request lines at INFO, one per call
        sdk_log = logging.getLogger(name)
        if sdk_log.level == logging.NOTSET:
            sdk_log.setLevel(logging.WARNING)
    return service


def workspace_limits(settings: Settings) -> WorkspaceLimits:
    """The workspace limits (CODEMENTOR_MAX_FILES, CODEMENTOR_MAX_FILE_BYTES,
    CODEMENTOR_MAX_WORKSPACE_BYTES) the AI's new files keep; their defaults where the
    settings do not name them."""
    default = WorkspaceLimits()
    return WorkspaceLimits(
        max_files=int(getattr(settings, "max_files", default.max_files)),
        max_file_bytes=int(getattr(settings, "max_file_bytes", default.max_file_bytes)),
        max_workspace_bytes=int(
            getattr(settings, "max_workspace_bytes", default.max_workspace_bytes)
        ),
    )


class AiApi:
    def __init__(self, api: Api, ai_of: Callable[[], AIService | None]):
        self.api = api
        self._ai_of = ai_of

    def routes(self) -> list[Route]:
        h = self.api._handler
        return [
            Route("/api/rooms/{room}/ai", h(self.ask), methods=["POST"]),
            Route("/api/rooms/{room}/ai", h(self.cancel), methods=["DELETE"]),
            Route(
                "/api/rooms/{room}/ai/suggestions/{entry_id}", h(self.suggestion), methods=["POST"]
            ),
            Route("/api/rooms/{room}/ai/changes/{entry_id}/undo", h(self.undo), methods=["POST"]),
        ]

    def _service(self) -> AIService:
        service = self._ai_of()
        if service is None:
            raise ApiError(503, "the AI is off: this server has no ANTHROPIC_API_KEY")
        return service

    async def ask(self, request: Request) -> Response:
        """Ask the AI; its answer streams into the room's chat."""
        name, info, identity = await self.api._room(request)
        mode = Mode(info.mode)
        if not may_ask(mode, identity.role):
            raise ApiError(403, f"your role may not ask the AI in a {mode.value} room")
        body = await _body(request, AskRequest)
        service = self._service()
        room = await self.api.registry.loaded(name)
        selection = (body.selection.anchor, body.selection.head) if body.selection else None
        try:
            request_id, ahead = service.ask(
                room,
                body.prompt,
                identity.name,
                selection,
                asker_id=identity.user_id,
                question_by=_author(identity),
                path=body.path,
                role=identity.role,
            )
        except AIRefused as exc:
            raise ApiError(exc.status, exc.message) from exc
        return JSONResponse(
            AskAccepted(request_id=request_id, ahead=ahead).model_dump(), status_code=202
        )

    async def cancel(self, request: Request) -> Response:
        """Stop the AI's current answer in this room (whoever may ask may stop it)."""
        name, info, identity = await self.api._room(request)
        if not may_ask(Mode(info.mode), identity.role):
            raise ApiError(403, "your role may not stop the AI here")
        service = self._service()
        room = await self.api.registry.loaded(name)
        return JSONResponse({"cancelled": service.cancel(room)})

    async def suggestion(self, request: Request) -> Response:
        """Apply (owners; editors outside broadcast rooms) or dismiss (whoever may ask)."""
        name, info, identity = await self.api._room(request)
        mode = Mode(info.mode)
        body = await _body(request, SuggestionAction)
        allowed = may_apply if body.action == "apply" else may_ask
        if not (allowed(mode, identity.role) or may_apply(mode, identity.role)):
            raise ApiError(403, f"your role may not {body.action} suggestions here")
        service = self._service()
        room = await self.api.registry.loaded(name)
        try:
            status = service.resolve_suggestion(
                room, request.path_params["entry_id"], body.action == "apply", _author(identity)
            )
        except AIRefused as exc:
            raise ApiError(exc.status, exc.message) from exc
        return JSONResponse({"status": status})

    async def undo(self, request: Request) -> Response:
        """Revert an AI code change (an AI edit, an applied suggestion) as one unit:
        whoever may edit the code. 404 unknown, 409 already undone or edited since."""
        name, _info, identity = await self.api._room(request)
        if not identity.role.writes_everything:
            raise ApiError(403, "only people who may edit the code may undo the AI's changes")
        service = self._service()
        room = await self.api.registry.loaded(name)
        try:
            service.undo_change(room, request.path_params["entry_id"], _author(identity))
        except AIRefused as exc:
            raise ApiError(exc.status, exc.message) from exc
        return JSONResponse(ChangeUndone(undone=True).model_dump())
