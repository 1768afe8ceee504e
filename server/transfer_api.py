"""REST export and import of whole rooms: ``GET /api/rooms/{room}/export`` (the room's
owner) and ``POST /api/rooms/import`` (whoever may create rooms)."""

from __future__ import annotations

import asyncio
import hmac
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rooms import room_file
from rooms.roles import Mode, Role
from server import room_transfer
from server.api import Api, RoomCreated, _bearer, _require, client_address
from server.auth import issue_token
from server.errors import ApiError
from server.logs import get_logger

log = get_logger("codementor.transfer")


class TransferApi:
    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> list[Route]:
        h = self.api._handler
        return [
            Route("/api/rooms/import", h(self.import_room), methods=["POST"]),
            Route("/api/rooms/{room}/export", h(self.export_room), methods=["GET"]),
        ]

    async def export_room(self, request: Request) -> Response:
        """Owner only: the room as a ``.cmroom`` file (settings, document with its records,
        history). A loaded room is flushed first and its live document exported, so what
        peers sent a moment ago is in."""
        name, _, identity = await self.api._room(request)
        _require(identity, Role.OWNER)
        registry = self.api.registry
        document = None
        room = registry.rooms.get(name)
        if room is not None:
            await room.writer.flush()
            document = room.doc.get_update()
        try:
            contents = await registry.worker.run(
                room_transfer.collect, registry.worker.store, name, document
            )
        except room_transfer.TransferError as exc:
            raise ApiError(exc.status, str(exc)) from exc
        # Compressing is CPU work: off the event loop and off the store's thread.
        data = await asyncio.to_thread(room_file.write, contents)
        log.info("room_exported", room=name, by=identity.user_id, bytes=len(data))
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        filename = f"{name}-{stamp}{room_file.SUFFIX}"  # room names need no quoting
        return Response(
            data,
            media_type=room_file.MEDIA_TYPE,
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
            },
        )

    async def import_room(self, request: Request) -> Response:
        """Create a room from a ``.cmroom`` file (the body), under ``?as=NAME`` or the
        file's own name; the same credential as creating a room (the admin token when one
        is configured). Answers the new room's owner token and links, as creating does."""
        self._check_creator(request)
        as_name = request.query_params.get("as")
        data = await self._read_body(request)
        try:  # inflating and checking every update is CPU work: off the event loop
            room = await asyncio.to_thread(room_transfer.read_file, data, as_name)
        except room_file.RoomFileError as exc:
            raise ApiError(400, str(exc)) from exc
        except room_transfer.TransferError as exc:
            raise ApiError(exc.status, str(exc), [{"field": "as", "message": str(exc)}]) from exc
        name = room.info.name
        if "." in name:
            # Class rooms' staff, exercise and student rooms: names only the server makes
            # (rooms.classroom), never one a caller may take. The operator's CLI may.
            message = f"room names with a '.' are the server's own: import {name!r} with ?as"
            raise ApiError(422, message, [{"field": "as", "message": message}])
        registry = self.api.registry
        if name in registry.rooms:  # loaded but never stored: taken all the same
            raise ApiError(409, str(room_transfer.NameTaken(name)))
        try:
            await registry.worker.run(room_transfer.import_room, registry.worker.store, room)
        except room_transfer.TransferError as exc:
            raise ApiError(exc.status, str(exc)) from exc
        log.info("room_imported", room=name, rows=len(room.history), bytes=len(data))
        owner_token = issue_token(
            self.api.auth.secret,
            room=name,
            role=Role.OWNER,
            name="owner",
            user_id=None,
            ttl=self.api.settings.token_ttl_seconds,
            personal=True,
        )
        created = RoomCreated(
            room=name,
            owner_token=owner_token,
            links=self.api._links(request, name, Mode(room.info.mode), owner_token),
        )
        return JSONResponse(created.model_dump(), status_code=201)

    def _check_creator(self, request: Request) -> None:
        """As ``POST /api/rooms``: the admin token when one is configured, else anyone
        within the rooms-per-address quota (``server.quotas``)."""
        admin = self.api.settings.admin_token
        if not admin:
            self.api.quotas.check_address(client_address(request))
            return
        given = _bearer(request)
        if not given:
            raise ApiError(401, "missing admin token")
        if not hmac.compare_digest(given.encode(), admin.encode()):
            raise ApiError(403, "wrong admin token")

    async def _read_body(self, request: Request) -> bytes:
        """The body, refused with 413 as soon as it passes ``max_import_bytes``."""
        limit = self.api.settings.max_import_bytes
        too_large = ApiError(
            413, f"room file larger than {limit} bytes (CODEMENTOR_MAX_IMPORT_BYTES)"
        )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        if not size:
            raise ApiError(400, "no room file in the request body")
        return b"".join(chunks)
