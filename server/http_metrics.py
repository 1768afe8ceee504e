"""Duration of every REST request under ``/api``, by route template, method and status class.

The labels come from small fixed sets, never from the request itself: the route's
template (``/api/rooms/{room}``, not the room's name), one of the HTTP methods the API
serves, and ``2xx``...``5xx``. Websockets never pass here (``server.app.WebSocketFastPath``
takes them before Starlette, and this middleware only looks at ``http`` scopes), so no
cost lands on the document's hot path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from prometheus_client import Histogram
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX = "/api/"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # a path no route serves (404): one series for all of them


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The path template of the route that serves ``scope`` (any method), or ``unmatched``."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", UNMATCHED))
        if match is Match.PARTIAL and partial is None:
            partial = route  # the path matches, the method does not (405)
    return str(getattr(partial, "path", UNMATCHED)) if partial is not None else UNMATCHED


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class HttpMetrics:
    """ASGI middleware: observes each ``/api`` request's duration once its response ends.

    ``routes`` is called per request (the router's list, complete once the app is built).
    An exception that escapes with no response started is counted as ``5xx``.
    """

    def __init__(
        self, app: ASGIApp, histogram: Histogram, routes: Callable[[], Sequence[BaseRoute]]
    ) -> None:
        self.app = app
        self.histogram = histogram
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = route_template(self.routes(), scope)
            self.histogram.labels(route, method, status_class(status)).observe(
                time.perf_counter() - started
            )
