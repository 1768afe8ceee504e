"""Tracing with OpenTelemetry: off unless an OTLP endpoint is configured.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set,
each process (each ``--workers`` worker) installs the SDK's ``TracerProvider``: a
resource named ``codementor`` unless ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``
say otherwise, a ``BatchSpanProcessor`` and the OTLP/HTTP protobuf exporter. Everything
else (sampler, batch delays and sizes, headers, timeout, compression) is the SDK's
reading of the standard ``OTEL_*`` variables. Without it nothing is installed: code
below ``server/`` asks ``opentelemetry.trace`` for its tracer, the library idiom, and
gets the API's no-op one.

Exporting runs in the SDK's own thread; a collector that is down costs a few log
lines (throttled here: one per message a minute), never a request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.logs import get_logger

log = get_logger("codementor.tracing")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SERVICE_NAME = "codementor"
# The last spans get this long to reach the collector at shutdown; a collector that is
# down must not hold the process (the exporter's own timeout bounds each attempt).
SHUTDOWN_SECONDS = 5.0
# Probes and scrapes come every few seconds from machines: they would drown the traces.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
PROPAGATION_HEADERS = (b"traceparent", b"tracestate")
# The exporter's and the batch processor's loggers: what a collector that is down logs.
EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.trace.export",
)
LOG_INTERVAL_SECONDS = 60.0
# Semantic-convention attribute names (stable HTTP conventions).
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
HTTP_ROUTE = "http.route"
URL_PATH = "url.path"
URL_SCHEME = "url.scheme"
ERROR_TYPE = "error.type"

TRACER = trace.get_tracer(__name__)


def configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Is tracing on: an OTLP endpoint set, and the SDK not disabled?"""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


class ThrottledLog(logging.Filter):
    """One record per message template per interval: a collector that is down makes the
    exporter log on every batch, for as long as it stays down."""

    def __init__(self, interval: float = LOG_INTERVAL_SECONDS) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()  # the exporter logs from its own thread

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                return False
            if len(self._last) > 256:  # templates are few; bounded all the same
                self._last.clear()
            self._last[key] = now
        return True


class Tracing:
    """The SDK as this process installed it; ``close`` sends what is left."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    @classmethod
    def install(cls, environ: Mapping[str, str] = os.environ) -> Tracing | None:
        """Install the SDK when tracing is configured; None (nothing installed) if not.
        The SDK is imported only then: it is not needed otherwise."""
        if not configured(environ):
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):  # installed before in this process
            return cls(current)
        resource = Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        throttle = ThrottledLog()
        for name in EXPORT_LOGGERS:
            logging.getLogger(name).addFilter(throttle)
        log.info(
            "tracing_on",
            service=resource.attributes.get("service.name"),
            endpoint=_endpoint_for_log(environ),
        )
        return cls(provider)

    async def close(self, seconds: float = SHUTDOWN_SECONDS) -> None:
        """Export the spans still queued, for at most ``seconds``. In a thread of
        its own (the SDK's shutdown blocks), a daemon so that it never holds the exit."""
        done = threading.Event()

        def shutdown() -> None:
            try:
                self.provider.shutdown()
            finally:
                done.set()

        threading.Thread(target=shutdown, name="otel-shutdown", daemon=True).start()
        if not await asyncio.to_thread(done.wait, seconds):
            log.warning("tracing_shutdown_timeout", seconds=seconds)


def _endpoint_for_log(environ: Mapping[str, str]) -> str:
    """The endpoint without what a URL may carry besides scheme, host, port and path."""
    for name in ENDPOINT_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            parts = urlsplit(value)
            try:
                port = f":{parts.port}" if parts.port else ""
            except ValueError:  # a port out of range: the exporter will say so
                port = ":?"
            return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
    return ""


def middleware(on: bool) -> list[Any]:
    """The request-span middleware when tracing is on, else nothing: a REST request of
    an untraced server pays nothing for it."""
    from starlette.middleware import Middleware

    return [Middleware(RequestSpans)] if on else []


class RequestSpans:
    """A server span for every HTTP request (but the probes and ``/metrics``), child of
    the caller's W3C ``traceparent`` when it sent one: the route template as its name
    (``POST /api/rooms/{room}/runs``), method, status code, error status on a 5xx.
    What the request starts (a run, an AI answer) keeps its trace."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer | None = None) -> None:
        self.app = app
        self.tracer = tracer if tracer is not None else TRACER

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key in PROPAGATION_HEADERS
        }
        parent = propagate.extract(carrier) if carrier else None
        method: str = scope["method"]
        attributes = {
            HTTP_REQUEST_METHOD: method,
            URL_PATH: scope["path"],
            URL_SCHEME: scope.get("scheme", "http"),
        }
        with self.tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            status = 0

            async def send_traced(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status)
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            finally:
                template = getattr(scope.get("route"), "path", None)
                if isinstance(template, str):
                    span.set_attribute(HTTP_ROUTE, template)
                    span.update_name(f"{method} {template}")
                if status >= 500:
                    span.set_attribute(ERROR_TYPE, str(status))
                    span.set_status(Status(StatusCode.ERROR))
