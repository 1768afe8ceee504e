"""Dev mode's rooms made by opening them: a tokenless join to a room that does not
exist yet makes it a pair room, whether the join is the websocket or the page's
``POST /join`` that comes first (a 404 there would be a console error on every new
scratch room). Never with an admin token: then rooms are made only through the API.
Never a room deleted lately (``RoomRegistry.deleted``, per process and across instances
through the deletion notice): an old tokenless link answers "unknown room" instead."""

from __future__ import annotations

import time
from collections.abc import Callable

from rooms.registry import RoomLoadError, RoomRegistry
from rooms.roles import Mode
from rooms.store import RoomInfo
from server.errors import ApiError


def implicit(anonymous: bool, token: str | None, admin_token: str | None) -> bool:
    """Whether a join with ``token`` may make the room it names."""
    return anonymous and not token and not admin_token


async def room_exists(
    registry: RoomRegistry,
    name: str,
    *,
    implicit: bool,
    before_create: Callable[[], None] | None = None,
) -> bool:
    """Whether ``name`` exists, after making it when ``implicit``. Raises RoomLoadError
    when the store cannot say. ``before_create`` runs just before a room is made and may
    raise to refuse it (``server.quotas``: rooms per address)."""
    if name in registry.rooms:
        return True  # loaded, so it exists: no store round trip per connection
    if name in registry.deleted:
        return False  # deleted lately: an old link does not bring it back empty
    try:
        if await registry.room_info(name) is not None:
            return True
        if not implicit:
            return False
        if before_create is not None:
            before_create()
        now = time.time()
        await registry.create_room(RoomInfo(name, Mode.PAIR.value, "python", name, now, now))
        return True
    except (RoomLoadError, ApiError):
        raise
    except Exception as exc:
        raise RoomLoadError(f"room {name!r}: store unavailable") from exc
