"""Logging: one JSON object per line (or readable text), for our events and uvicorn's.

Our modules log events with fields (``log.info("frame_rejected", room=..., peer=...)``)
through structlog; uvicorn and the libraries log through the standard library. Both
end in one handler whose formatter is structlog's, so every line has the same shape:
``timestamp``, ``level``, ``logger``, ``event``, then the fields, plus the ids bound to
the current task (``request_id`` for every request and websocket, ``room`` and ``peer``
on a websocket connection). Every string passes the redaction of ``server.redact``
(tokens ride in websocket query strings). Document contents are never logged.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import sys
from collections.abc import Awaitable, Mapping, MutableMapping
from typing import IO, Any

import structlog
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.redact import REDACTED, SECRET_KEYS, RedactFilter, redact, redact_value

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
REQUEST_ID_HEADER = "x-request-id"
LEADING = ("timestamp", "level", "logger", "event")
# A caller's request id is kept (a proxy's, to join its logs with ours) when it is
# short and plain; anything else is replaced so it cannot forge log fields.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _redact_fields(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if key.lower() in SECRET_KEYS:
            event[key] = REDACTED
        elif isinstance(value, str):
            event[key] = redact(value)
        elif isinstance(value, Mapping | list | tuple):
            event[key] = redact_value(value)
    return event


def _trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``trace_id`` and ``span_id`` (W3C hex) of the span current where the line is
    written, to go from a log line to its trace; none when tracing is off."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def _redact_line(_: Any, __: str, line: Any) -> Any:
    """The rendered line (a string), once more: what no field held as a string (an
    exception's text, a value formatted late) passes too."""
    return redact(line) if isinstance(line, str) else line


def configure(level: str = "info", fmt: str = "auto", stream: IO[str] | None = None) -> None:
    """Send every log record to ``stream`` (stderr) as JSON (``fmt="json"``) or text.
    ``auto`` means text on a terminal and JSON otherwise (a container, a file, a log
    shipper)."""
    stream = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "text" if stream.isatty() else "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _trace_ids,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            _redact_fields,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # The console renderer formats exceptions itself; JSON needs them as a string field.
    final: list[Any] = (
        [structlog.processors.format_exc_info, _leading, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _redact_fields],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *final,
            _redact_line,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactFilter())  # stdlib records: before their message is built
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in UVICORN_LOGGERS:  # uvicorn's own handlers would print a second format
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True


def _leading(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``timestamp level logger event`` first: the line reads left to right."""
    head = {key: event.pop(key) for key in LEADING if key in event}
    return {**head, **event}


def get_logger(name: str) -> Any:
    """A structlog logger for one of our modules (``codementor.<part>``)."""
    return structlog.stdlib.get_logger(name)


def bind(**ids: Any) -> None:
    """Attach ids to every log line of the current task (and tasks it starts)."""
    structlog.contextvars.bind_contextvars(**ids)


_PROCESS_ID = secrets.token_hex(5)  # 40 random bits: processes' ids do not meet
_sequence = itertools.count(1)


def _new_request_id() -> str:
    """This process's random prefix and a counter: unique across a fleet like a uuid4,
    without a ``getrandom`` call per request (it showed in the connect phase's
    profile, bench/README)."""
    return f"{_PROCESS_ID}{next(_sequence):06x}"


class RequestIdMiddleware:
    """Gives each HTTP request and websocket a request id, bound to its log lines
    (uvicorn's access line included: it is written from the request's task) and
    returned in the ``X-Request-ID`` response header.

    A plain call that returns the next app's awaitable (the caller awaits it at once,
    in the same task and context): a websocket holds every coroutine frame of the
    chain for as long as it is open, and this layer needs none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] not in ("http", "websocket"):
            return self.app(scope, receive, send)
        given = ""
        for key, value in scope.get("headers", ()):
            if key == REQUEST_ID_HEADER.encode():
                given = value.decode("latin-1")
                break
        request_id = given if VALID_REQUEST_ID.fullmatch(given) else _new_request_id()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if scope["type"] == "websocket":
            return self.app(scope, receive, send)
        return self._http(scope, receive, send, request_id)

    async def _http(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)
