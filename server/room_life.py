"""``DELETE /api/rooms/{room}``: a room deleted for good by its owner (or the admin).

What a deletion does is ``RoomRegistry.delete``'s: peers closed with 4404 ("room
deleted", final for y-websocket), pending updates dropped rather than flushed, the
store's rows removed in one transaction, the room's Redis keys removed and the other
instances told (they close their peers and drop the room too). Here: who may.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rooms.roles import Role
from server.api import Api, ApiError, _bearer, _require
from server.logs import get_logger
from server.names import valid_room_name

log = get_logger("codementor.rooms")


class RoomLifeApi:
    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> list[Route]:
        return [Route("/api/rooms/{room}", self.api._handler(self.delete_room), methods=["DELETE"])]

    async def delete_room(self, request: Request) -> Response:
        """Owner (or the admin token, when one is configured): delete the room, its
        document, history and records, everywhere. 204; 404 when there is no such room."""
        api = self.api
        admin = api.settings.admin_token
        given = _bearer(request)
        if admin and given and hmac.compare_digest(given.encode(), admin.encode()):
            name = request.path_params["room"]
            if not valid_room_name(name) or await api.registry.room_info(name) is None:
                raise ApiError(404, "unknown room")
            reason, by = "admin", "admin"
        else:
            name, _, identity = await api._room(request)
            _require(identity, Role.OWNER)
            reason, by = "owner", identity.user_id
        await api.registry.delete(name)
        api.metrics.rooms_deleted.labels(reason).inc()
        log.info("room_deleted", room=name, reason=reason, by=by)
        return Response(status_code=204)
