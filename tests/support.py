"""What every test module needs and none should write again: a signed token, a free
port, and a wait for a condition (polled, never a fixed sleep).

Tokens are signed by ``server.auth.issue_token``, the server's own signer, so a change
to the claims reaches the tests at once instead of drifting from a hand-built copy.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pycrdt import Map

from rooms.roles import Role
from server.auth import issue_token

T = TypeVar("T")

# The secret of servers started by tests that sign their own tokens (long enough for
# HS512 without a key-length warning).
SECRET = secrets.token_hex(32)


def sign(
    room: str,
    role: Role | str,
    *,
    name: str = "Ada",
    sub: str | None = None,
    ttl: int = 3600,
    personal: bool = False,
    iat: int | None = None,
    secret: str = SECRET,
) -> str:
    """A token for ``room`` as the server signs them. The user id defaults to one
    derived from ``name``, so two tokens with the same name are the same person;
    ``iat`` backdates it (its expiry is then ``iat + ttl``)."""
    lifetime = None if iat is None else (iat, iat + ttl)
    return issue_token(
        secret,
        room=room,
        role=Role(role),
        name=name,
        user_id=sub or f"u-{name.lower()}",
        ttl=ttl,
        personal=personal,
        lifetime=lifetime,
    )


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(
    check: Callable[..., Any],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.02,
) -> Any:
    """Poll ``check`` (plain or async) until it returns something truthy, and return
    that; fail after ``timeout`` seconds saying ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s; last value: {last!r}")
        await asyncio.sleep(interval)


def wait_until(
    check: Callable[[], T], timeout: float = 10.0, what: str = "condition", interval: float = 0.05
) -> T:
    """``eventually`` for code that has no event loop (browser tests, process start-up)."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s; last value: {last!r}")
        time.sleep(interval)


def plain(shared: Map[Any]) -> dict[str, Any]:
    """A shared map as a dict: pycrdt types ``Map.to_py`` as optional, a map is never
    None."""
    value = shared.to_py()
    assert value is not None
    return value
