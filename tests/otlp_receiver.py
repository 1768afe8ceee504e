"""An OTLP/HTTP trace receiver: a real HTTP server (``http.server`` in a thread) that
takes what the SDK's OTLP/HTTP exporter sends and decodes the real protobuf.

``POST /v1/traces`` with ``Content-Type: application/x-protobuf`` (body gzip- or
deflate-encoded when ``Content-Encoding`` says so) is parsed as an
``ExportTraceServiceRequest`` (``opentelemetry-proto``) and answered ``200`` with an
empty ``ExportTraceServiceResponse``, as a collector does. Anything else is ``404`` /
``415`` / ``400``.

Observations: ``spans`` (every span received, flattened with its resource's
``service.name``), ``headers`` (the headers of each export request), ``exports``.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.support import wait_until

PATH = "/v1/traces"


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver decoded it: ids as W3C hex, attributes as Python values."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    kind: int  # opentelemetry.proto.trace.v1.Span.SpanKind
    status_code: int  # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any] = field(default_factory=dict)
    service: str = ""
    scope: str = ""


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def decode(body: bytes) -> list[ReceivedSpan]:
    """The spans of one ``ExportTraceServiceRequest``."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    out: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        status_code=span.status.code,
                        attributes={kv.key: _value(kv.value) for kv in span.attributes},
                        service=str(resource.get("service.name", "")),
                        scope=scope_spans.scope.name,
                    )
                )
    return out


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.headers: list[dict[str, str]] = []
        self.exports = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` takes it (the SDK appends
        ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries ----------------------------------------------------------------------

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def named(self, name: str, trace_id: str | None = None) -> list[ReceivedSpan]:
        return [
            s
            for s in self.snapshot()
            if s.name == name and (trace_id is None or s.trace_id == trace_id)
        ]

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 15.0
    ) -> list[ReceivedSpan]:
        """Wait until ``predicate(spans)`` holds (spans arrive in batches); the spans."""
        wait_until(lambda: predicate(self.snapshot()), timeout)
        return self.snapshot()

    def one(self, name: str, trace_id: str | None = None, timeout: float = 15.0) -> ReceivedSpan:
        """The span named ``name`` (in ``trace_id``), once it arrived; exactly one."""
        spans = self.wait_for(
            lambda got: any(
                s.name == name and (trace_id is None or s.trace_id == trace_id) for s in got
            ),
            timeout,
        )
        found = [
            s for s in spans if s.name == name and (trace_id is None or s.trace_id == trace_id)
        ]
        assert len(found) == 1, found
        return found[0]

    # -- HTTP -------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if self.path != PATH:
                    self._answer(404, b"")
                    return
                if self.headers.get("content-type") != "application/x-protobuf":
                    self._answer(415, b"")
                    return
                encoding = (self.headers.get("content-encoding") or "").lower()
                try:
                    if encoding == "gzip":
                        body = gzip.decompress(body)
                    elif encoding == "deflate":
                        body = zlib.decompress(body)
                    spans = decode(body)
                except Exception as exc:  # a malformed export: the exporter's 400
                    with receiver._lock:
                        receiver.errors.append(repr(exc))
                    self._answer(400, b"")
                    return
                with receiver._lock:
                    receiver.exports += 1
                    receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                    receiver.spans.extend(spans)
                self._answer(200, ExportTraceServiceResponse().SerializeToString())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
