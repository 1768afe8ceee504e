"""An OTLP/HTTP trace sink for the tracing family: a separate process that takes every
``POST /v1/traces`` and answers ``200`` (an empty ``ExportTraceServiceResponse`` is zero
bytes), decoding nothing, so the server under test exports as to a collector that keeps
up, and the sink's own CPU stays small. ``GET /stats`` answers how many exports and bytes
came in (the family checks that the traced server did export).

usage: python -m bench.otlp_sink PORT
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_lock = threading.Lock()
_stats = {"exports": 0, "bytes": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector offers

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        with _lock:
            _stats["exports"] += 1
            _stats["bytes"] += length
        self._answer(200, "application/x-protobuf", b"")

    def do_GET(self) -> None:
        with _lock:
            body = json.dumps(_stats).encode()
        self._answer(200, "application/json", body)

    def _answer(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
