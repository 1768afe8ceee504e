"""Which browser pages may talk to this server: the ``Origin`` check.

A browser sends ``Origin`` with every websocket upgrade and every cross-site POST, and
any page can make one: without a check, a page the developer visits opens an anonymous
editor socket to a dev server on 127.0.0.1. Allowed: the server itself (an origin whose
host and port are the ``Host`` the request came to), ``CODEMENTOR_PUBLIC_URL`` and
``CODEMENTOR_ALLOWED_ORIGINS``. A request without ``Origin`` is not from a page (curl, a
Yjs client in Node, the tests) and is allowed.

In dev mode "the server itself" is accepted only under a loopback host name
(``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1``): DNS rebinding makes a foreign
page same-origin with a server that answers any ``Host``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.logs import get_logger
from server.settings import SettingsError, is_loopback

log = get_logger("codementor.origins")

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
MAX_ORIGIN = 2048

Origin = tuple[str, str, int]  # scheme, host (lower case, IPv6 without brackets), port


def parse_origin(text: str) -> Origin | None:
    """``scheme://host[:port]`` as a browser sends it; None for ``null`` or anything else
    (a path, user info, another scheme)."""
    if len(text) > MAX_ORIGIN:
        return None
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def parse_host(text: str, scheme: str) -> tuple[str, int] | None:
    """A ``Host`` header as (host, port), the port defaulting to that of ``scheme``."""
    host = parse_origin(f"{scheme}://{text}")
    return None if host is None else (host[1], host[2])


def allowed_origins(setting: str | None) -> list[Origin]:
    """``CODEMENTOR_ALLOWED_ORIGINS``: comma-separated ``scheme://host[:port]``."""
    origins = []
    for item in (setting or "").split(","):
        if not item.strip():
            continue
        origin = parse_origin(item)
        if origin is None:
            raise SettingsError(
                f"CODEMENTOR_ALLOWED_ORIGINS: {item.strip()!r} is not an origin "
                "(scheme://host[:port], http or https, no path)"
            )
        origins.append(origin)
    return origins


def _loopback_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost") or is_loopback(host)


class OriginPolicy:
    def __init__(
        self, allowed: Iterable[Origin], public_url: str | None, loopback_only: bool
    ) -> None:
        self._allowed = set(allowed)
        if public_url:
            public = urlsplit(public_url)
            origin = parse_origin(f"{public.scheme}://{public.netloc}")
            if origin is not None:
                self._allowed.add(origin)
        self._loopback_only = loopback_only  # dev mode: see the module docstring

    def allows(self, origin: bytes | None, host: bytes | None) -> bool:
        """May a request with these ``Origin`` and ``Host`` headers (raw) go on?"""
        if origin is None:
            return True
        parsed = parse_origin(origin.decode("latin-1"))
        if parsed is None:
            return False  # "null" (a sandboxed frame, a file:) or garbage
        if parsed in self._allowed:
            return True
        if host is None:
            return False
        served = parse_host(host.decode("latin-1"), parsed[0])
        if served is None or served != parsed[1:]:
            return False
        return not self._loopback_only or _loopback_name(served[0])


def origin_and_host(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes | None, bytes | None]:
    """The raw ``Origin`` and ``Host`` of an ASGI header list (names are lower case)."""
    origin = host = None
    for name, value in headers:
        if name == b"origin":
            origin = value
        elif name == b"host":
            host = value
    return origin, host


class OriginCheck:
    """Refuses state-changing REST requests (anything but GET, HEAD and OPTIONS) from a
    page of a foreign origin with 403. Reads need no check: without CORS headers a
    foreign page cannot read the answer. Websockets are checked by their endpoint."""

    SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, app: ASGIApp, policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in self.SAFE:
            origin, host = origin_and_host(scope["headers"])
            if not self.policy.allows(origin, host):
                log.info("origin_refused", origin=origin_for_log(origin), path=scope["path"])
                answer = JSONResponse({"error": "origin not allowed"}, status_code=403)
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


def origin_for_log(origin: bytes | None) -> str:
    """An origin for the log: short, and never a way to forge log fields."""
    return (origin or b"").decode("latin-1")[:200]
