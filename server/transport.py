"""Which websocket transport uvicorn runs: the server's own (``server.uvicorn_fast``) or
stock uvicorn websockets, chosen once at start by ``CODEMENTOR_WS_FAST_PATH``.

The own transport is faster and holds less per idle connection, but it is built on
uvicorn's and websockets' internals, which any upgrade may change. So it is imported and
probed here, on a fake socket (``uvicorn_fast.self_test``), before it serves anyone: in
``auto`` a probe that fails is one warning and the stock transport; in ``on`` it is a
refusal to start; ``off`` does not import it at all. The endpoint (``server.websocket``)
works with either: it uses the transport's extensions when they are offered.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from typing import Any

from server.logs import get_logger
from server.settings import Settings, SettingsError
from server.websocket import ConnectionLimit

log = get_logger("codementor.transport")


class Incompatible(Exception):
    """The fast transport does not behave as written against the installed versions."""


@dataclass(frozen=True)
class Transport:
    """uvicorn's ``ws`` and ``http`` options (and a connection bound for stock ones)."""

    fast: bool
    options: dict[str, Any]
    reason: str  # why this one


def stock(settings: Settings, reason: str) -> Transport:
    """uvicorn's own protocols. Without the fast transport's guarded HTTP protocols there
    is no handshake deadline; ``limit_concurrency`` (documented uvicorn API: past it, new
    requests and upgrades get 503) keeps a bound on connections instead."""
    limit = settings.max_connections
    return Transport(
        fast=False,
        options={
            "ws": "websockets-sansio",
            "http": "auto",
            "limit_concurrency": limit + ConnectionLimit.HEADROOM if limit else None,
        },
        reason=reason,
    )


def choose(settings: Settings) -> Transport:
    """The transport ``settings.ws_fast_path`` asks for; ``SettingsError`` when it is
    ``on`` and the fast transport does not fit the installed libraries."""
    mode = settings.ws_fast_path
    if mode == "off":
        return stock(settings, "CODEMENTOR_WS_FAST_PATH=off")
    try:
        uvicorn_fast = importlib.import_module("server.uvicorn_fast")
        asyncio.run(uvicorn_fast.self_test())
    except Exception as exc:  # an ImportError or AttributeError on import is a misfit too
        reason = str(exc) if isinstance(exc, Incompatible) else f"{type(exc).__name__}: {exc}"
        versions = _versions()
        if mode == "on":
            raise SettingsError(
                f"CODEMENTOR_WS_FAST_PATH=on, but the fast websocket transport does not fit "
                f"the installed {versions}: {reason}. Install the versions in "
                "requirements.lock, or set CODEMENTOR_WS_FAST_PATH=auto or off."
            ) from exc
        log.warning(
            "ws_fast_path_unavailable",
            reason=reason,
            versions=versions,
            serving="stock uvicorn websockets (slower, more memory per connection, "
            "no handshake deadline)",
            hint="install the versions in requirements.lock, or set "
            "CODEMENTOR_WS_FAST_PATH=off to silence this",
        )
        return stock(settings, f"probe failed: {reason}")
    return Transport(
        fast=True,
        options={"ws": uvicorn_fast.DirectWebSocketProtocol, "http": uvicorn_fast.http_protocol()},
        reason="probe passed" if mode == "auto" else "CODEMENTOR_WS_FAST_PATH=on, probe passed",
    )


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("uvicorn", "websockets"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)
