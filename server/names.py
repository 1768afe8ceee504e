"""Room names: what is accepted, and how new ones are made."""

from __future__ import annotations

import re
import secrets

ROOM_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


def valid_room_name(name: str) -> bool:
    return ROOM_NAME.fullmatch(name) is not None


def new_room_name() -> str:
    """12 characters of URL-safe randomness (72 bits): unguessable, valid, and never
    starting with "-", which a command line (``codementor token --room``) would take
    for an option (one name in 64 did, and made a CI run fail)."""
    while True:
        name = secrets.token_urlsafe(9)
        if not name.startswith("-"):
            return name
