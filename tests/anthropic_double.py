"""An Anthropic Messages API test double: a real HTTP server (``http.server`` in a thread)
that the real ``anthropic`` SDK talks to through ``base_url``.

``POST /v1/messages`` with ``stream: true`` answers the SSE sequence of the API, each
frame with its ``event:`` line: ``message_start`` (usage with cache fields),
``content_block_start``, ``ping``, ``content_block_delta`` (``text_delta`` and
``input_json_delta``), ``content_block_stop``, ``message_delta`` (stop reason and
cumulative ``output_tokens``), ``message_stop``; or, mid-stream, ``event: error``.
Errors before the stream: ``429 rate_limit_error`` with ``retry-after``, ``529
overloaded_error``, each with the API's error body and a ``request-id`` header.

Tests queue ``Reply`` scripts (``replies``); a request with no script left gets a short
default text. Observations: ``requests`` (headers and JSON body of each call) and
``emitted`` (wall time at which each text delta was written and flushed).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One answer. ``steps``: ("text", str), ("tool", name, input), ("sleep", seconds),
    ("error", error_type). ``status`` other than 200 answers an error before any stream."""

    steps: list[tuple[Any, ...]] = field(default_factory=list)
    status: int = 200
    retry_after: str | None = None
    input_tokens: int = 25
    output_tokens: int = 12
    cache_read: int = 0
    cache_write: int = 0


ERROR_TYPES = {429: "rate_limit_error", 529: "overloaded_error", 500: "api_error"}


class AnthropicDouble:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.emitted: list[tuple[float, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> AnthropicDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                double.requests.append({"headers": headers, "body": body})
                if self.path.split("?")[0] != "/v1/messages":
                    self._json(404, _error("not_found_error", "Not found"))
                    return
                reply = double.replies.popleft() if double.replies else Reply([("text", "OK")])
                if reply.status != 200:
                    kind = ERROR_TYPES.get(reply.status, "api_error")
                    headers = {"retry-after": reply.retry_after} if reply.retry_after else {}
                    self._json(reply.status, _error(kind, kind.replace("_", " ")), headers)
                    return
                self._stream(body, reply)

            def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.send_header("request-id", "req_" + uuid.uuid4().hex[:20])
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def _event(self, name: str, data: dict[str, Any]) -> None:
                frame = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
                self.wfile.flush()

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream; charset=utf-8")
                self.send_header("cache-control", "no-cache")
                self.send_header("transfer-encoding", "chunked")
                self.send_header("request-id", "req_" + uuid.uuid4().hex[:20])
                self.end_headers()
                try:
                    self._frames(body, reply)
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (cancelled, timed out)

            def _frames(self, body: dict[str, Any], reply: Reply) -> None:
                message: dict[str, Any] = {
                    "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
                    "model": body.get("model"), "content": [], "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1,
                              "cache_creation_input_tokens": reply.cache_write,
                              "cache_read_input_tokens": reply.cache_read},
                }  # fmt: skip
                self._event("message_start", {"type": "message_start", "message": message})
                index = -1
                open_text = False
                stop_reason = "end_turn"
                for step in reply.steps:
                    kind = step[0]
                    if kind == "sleep":
                        time.sleep(step[1])
                    elif kind == "error":
                        self._event("error", {"type": "error", "error": {
                            "type": step[1], "message": step[1].replace("_", " ")}})  # fmt: skip
                        return
                    elif kind == "text":
                        if not open_text:
                            index += 1
                            open_text = True
                            self._event("content_block_start", {
                                "type": "content_block_start", "index": index,
                                "content_block": {"type": "text", "text": ""}})  # fmt: skip
                            self._event("ping", {"type": "ping"})
                        double.emitted.append((time.time(), step[1]))
                        self._event("content_block_delta", {
                            "type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": step[1]}})  # fmt: skip
                    elif kind == "tool":
                        if open_text:
                            self._event(
                                "content_block_stop", {"type": "content_block_stop", "index": index}
                            )
                            open_text = False
                        index += 1
                        stop_reason = "tool_use"
                        self._event("content_block_start", {
                            "type": "content_block_start", "index": index,
                            "content_block": {"type": "tool_use", "id": "toolu_" +
                                              uuid.uuid4().hex[:20], "name": step[1],
                                              "input": {}}})  # fmt: skip
                        raw = json.dumps(step[2])
                        for i in range(0, len(raw), 7):  # partial JSON, as the API sends it
                            self._event("content_block_delta", {
                                "type": "content_block_delta", "index": index,
                                "delta": {"type": "input_json_delta",
                                          "partial_json": raw[i : i + 7]}})  # fmt: skip
                        self._event(
                            "content_block_stop", {"type": "content_block_stop", "index": index}
                        )
                if open_text:
                    self._event(
                        "content_block_stop", {"type": "content_block_stop", "index": index}
                    )
                self._event("message_delta", {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": reply.output_tokens}})  # fmt: skip
                self._event("message_stop", {"type": "message_stop"})

        return Handler


def _error(kind: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_" + uuid.uuid4().hex[:20],
    }
