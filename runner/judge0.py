"""A Judge0 CE client on one shared ``httpx.AsyncClient``.

Only the endpoints the runner needs: ``GET /languages`` (and ``/languages/{id}`` for a
multi-file program's toolchain), ``POST /submissions``
(always ``base64_encoded=true&wait=false``), ``GET /submissions/{token}`` (always
``base64_encoded=true``, with an explicit ``fields`` list) and, for a stopped run,
``DELETE /submissions/{token}``. Every call has the client's timeout and runs in its
own task, which a caller's cancellation never reaches (``_detached``: cancelling httpx
mid-call leaks pool connections). Nothing here retries: a failed call raises
``Judge0Error``, whose ``kind`` says whether a retry can help (``retryable``) and whether
the failure says Judge0 is unwell (``counts_as_failure``, for the circuit breaker).

Wire facts (integrations.md, Part 1): booleans must be the lowercase string
``"true"``; text fields travel base64 both ways, and Judge0 wraps its base64 at
60 characters with newlines (decoded leniently here); ``time``/``wall_time`` are
decimal strings, ``memory`` integer KB; a full queue answers ``503 {"error":
"queue is full"}``; a wrong ``X-Auth-Token`` answers ``401`` with an empty body;
invalid submissions answer ``422 {field: [messages]}``.

``DELETE /submissions/{token}`` (submissions_controller.rb of 1.13.1) is refused unless
Judge0 runs with ``ENABLE_SUBMISSION_DELETE=true`` (``400 {"error": "delete not
allowed"}``) and the request carries its ``AUTHZ_TOKEN`` in the ``AUTHZ_HEADER``
(default ``X-Auth-User``; ``403`` with an empty body otherwise, and always when Judge0
has no ``AUTHZ_TOKEN``); a submission still ``1 In Queue`` or ``2 Processing`` is
refused with ``400 {"error": "submission cannot be deleted because its status is 1
(In Queue)"}``; an unknown token is ``404``. A deleted one answers ``200`` with the
submission (base64).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

AUTH_HEADER = "X-Auth-Token"
AUTHZ_HEADER = "X-Auth-User"  # Judge0's default AUTHZ_HEADER
FIELDS = (
    "token,status,stdout,stderr,compile_output,message,time,wall_time,memory,exit_code,exit_signal"
)
TEXT_FIELDS = ("stdout", "stderr", "compile_output", "message")

# Judge0 status ids (integrations.md 1.6).
T = TypeVar("T")

tracer = trace.get_tracer(__name__)

IN_QUEUE = 1
PROCESSING = 2


class ErrorKind(enum.StrEnum):
    TIMEOUT = "timeout"  # no answer within the client's timeout
    CONNECT = "connect"  # refused, reset, DNS, TLS: Judge0 unreachable
    SERVER = "server_error"  # 5xx (but the queue-full answer)
    QUEUE_FULL = "queue_full"  # 503 {"error": "queue is full"}
    RATE_LIMITED = "rate_limited"  # 429 (hosted gateways; CE itself never sends it)
    AUTH = "auth"  # 401/403: the runner's token is wrong
    INVALID = "invalid"  # 422: Judge0 refused the submission's fields
    NOT_FOUND = "not_found"  # 404: Judge0 does not know the submission
    PROTOCOL = "protocol"  # an answer we cannot read, or any other status
    REFUSED = "refused"  # DELETE: 400 (deletes disabled) or 403 (no authorization)
    STILL_RUNNING = "still_running"  # DELETE: 400, the submission is queued or processing

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE

    @property
    def counts_as_failure(self) -> bool:
        """Does this failure say Judge0 is unwell (circuit breaker)? A full queue or a
        rate limit is Judge0 answering, busy: back off, but do not open the breaker."""
        return self not in _ANSWERED


_ANSWERED = frozenset(
    {
        ErrorKind.QUEUE_FULL,
        ErrorKind.RATE_LIMITED,
        ErrorKind.INVALID,
        ErrorKind.REFUSED,
        ErrorKind.STILL_RUNNING,
    }
)


_RETRYABLE = frozenset(
    {
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECT,
        ErrorKind.SERVER,
        ErrorKind.QUEUE_FULL,
        ErrorKind.RATE_LIMITED,
    }
)


class Judge0Error(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
        fields: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.fields = fields or {}


@dataclass(frozen=True, slots=True)
class Language:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class LanguageDetail:
    """``GET /languages/{id}``: how this Judge0 compiles and runs a language, which says
    where its toolchain lives (``/usr/local/gcc-9.2.0/bin/gcc`` in 1.13.1)."""

    id: int
    name: str
    source_file: str
    compile_cmd: str | None
    run_cmd: str


@dataclass(frozen=True, slots=True)
class SubmissionRequest:
    """One submission. A multi-file program ("Multi-file program", 89 in 1.13.1) has no
    ``source_code`` (Judge0 refuses one) and ``additional_files``: base64 of a zip holding
    the files and the ``run`` (and ``compile``) scripts; base64 whatever the
    ``base64_encoded`` flag says."""

    source_code: str | None
    language_id: int
    stdin: str = ""
    cpu_time_limit: float = 5.0
    wall_time_limit: float = 10.0
    memory_limit_kb: int = 256 * 1024
    additional_files: str | None = None  # base64 zip
    # Set: Judge0 compares it with stdout (3 Accepted when equal, 4 Wrong Answer when not).
    expected_output: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "language_id": self.language_id,
            "stdin": _b64(self.stdin),
            "cpu_time_limit": self.cpu_time_limit,
            "wall_time_limit": self.wall_time_limit,
            "memory_limit": self.memory_limit_kb,
        }
        if self.source_code is not None:
            body["source_code"] = _b64(self.source_code)
        if self.additional_files is not None:
            body["additional_files"] = self.additional_files
        if self.expected_output is not None:
            body["expected_output"] = _b64(self.expected_output)
        return body


@dataclass(frozen=True, slots=True)
class Submission:
    """One ``GET /submissions/{token}`` answer, text fields decoded to bytes."""

    token: str
    status_id: int
    status: str
    stdout: bytes
    stderr: bytes
    compile_output: bytes
    message: bytes
    time: float | None
    wall_time: float | None
    memory: float | None  # KB
    exit_code: int | None
    exit_signal: int | None

    @property
    def final(self) -> bool:
        return self.status_id > PROCESSING


class Judge0Client:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 10.0,
        max_connections: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
        authz_token: str | None = None,
        authz_header: str = AUTHZ_HEADER,
    ) -> None:
        # Sent with DELETE only: the one call that needs Judge0's authorization.
        self._authz = {authz_header: authz_token} if authz_token else None
        headers = {"Accept": "application/json"}
        if token:
            headers[AUTH_HEADER] = token
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        # A Judge0 call's span attributes: where it went (never the token it carried).
        self._server: dict[str, AttributeValue] = {
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        }
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            follow_redirects=False,
        )
        # Calls in flight, each in its own task (``_call``); at most one per caller, and
        # every one ends within the client's timeouts.
        self._calls: set[asyncio.Task[Any]] = set()

    @property
    def calls_in_flight(self) -> int:
        """Calls still running, those whose caller stopped waiting included."""
        return len(self._calls)

    async def close(self) -> None:
        for call in list(self._calls):
            call.cancel()  # the pool is closed next: nothing left to leak
        await asyncio.gather(*self._calls, return_exceptions=True)
        await self._http.aclose()

    async def languages(self) -> list[Language]:
        data = await self._call("GET", "/languages", route="/languages")
        if not isinstance(data, list):
            raise Judge0Error(ErrorKind.PROTOCOL, "GET /languages did not answer a list")
        out: list[Language] = []
        for item in data:
            if isinstance(item, dict) and isinstance(item.get("id"), int):
                out.append(Language(item["id"], str(item.get("name", ""))))
        return out

    async def language(self, language_id: int) -> LanguageDetail:
        data = await self._call("GET", f"/languages/{language_id}", route="/languages/{id}")
        if not isinstance(data, dict) or not isinstance(data.get("run_cmd"), str):
            raise Judge0Error(ErrorKind.PROTOCOL, "GET /languages/{id} answered no run_cmd")
        compile_cmd = data.get("compile_cmd")
        return LanguageDetail(
            id=language_id,
            name=str(data.get("name", "")),
            source_file=str(data.get("source_file") or ""),
            compile_cmd=compile_cmd if isinstance(compile_cmd, str) and compile_cmd else None,
            run_cmd=data["run_cmd"],
        )

    async def submit(
        self, request: SubmissionRequest, submitted: Callable[[str], None] | None = None
    ) -> str:
        """The new submission's token. ``submitted`` gets it as soon as Judge0 answers,
        even when the caller has stopped waiting meanwhile (a run stopped while its
        submission was on its way still knows what to delete)."""
        return await self._detached(self._submit(request, submitted))

    async def _submit(
        self, request: SubmissionRequest, submitted: Callable[[str], None] | None
    ) -> str:
        data = await self._request(
            "POST",
            "/submissions",
            route="/submissions",
            params={"base64_encoded": "true", "wait": "false"},
            json=request.body(),
        )
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise Judge0Error(ErrorKind.PROTOCOL, "POST /submissions answered no token")
        if submitted is not None:
            submitted(token)
        return token

    async def get(self, token: str) -> Submission:
        data = await self._call(
            "GET",
            f"/submissions/{token}",
            route="/submissions/{token}",
            params={"base64_encoded": "true", "fields": FIELDS},
        )
        if not isinstance(data, dict):
            raise Judge0Error(ErrorKind.PROTOCOL, "GET /submissions/{token} did not answer JSON")
        return parse_submission(data, token)

    @property
    def can_delete(self) -> bool:
        """Without an authorization token Judge0 refuses every DELETE (403): not tried."""
        return self._authz is not None

    async def delete(self, token: str) -> Submission:
        """Delete a finished submission (its code, input and outputs) from Judge0.
        Raises ``Judge0Error``: ``STILL_RUNNING`` while it is queued or processing,
        ``REFUSED`` when Judge0 does not allow deletes or this client, ``NOT_FOUND``."""
        try:
            data = await self._call(
                "DELETE", f"/submissions/{token}", route="/submissions/{token}",
                params={"fields": "token,status"}, headers=self._authz or {},
            )  # fmt: skip
        except Judge0Error as exc:
            if exc.status == 400:
                still = "cannot be deleted because its status" in exc.message
                kind = ErrorKind.STILL_RUNNING if still else ErrorKind.REFUSED
                raise Judge0Error(kind, exc.message, exc.status) from exc
            if exc.status == 403:
                message = "Judge0 refused the delete (HTTP 403: wrong or no authorization token)"
                raise Judge0Error(ErrorKind.REFUSED, message, exc.status) from exc
            raise
        if not isinstance(data, dict):
            raise Judge0Error(ErrorKind.PROTOCOL, "DELETE /submissions/{token} did not answer JSON")
        return parse_submission(data, token)

    async def _call(self, method: str, path: str, route: str, **kwargs: Any) -> Any:
        return await self._detached(self._request(method, path, route, **kwargs))

    async def _detached(self, work: Coroutine[Any, Any, T]) -> T:
        """A call in its own task, shielded: a caller cancelled meanwhile (a stopped run,
        a run's deadline) stops waiting, and the call ends by itself within the timeouts.
        Cancelling httpx itself leaks pool connections: a cancellation that lands while
        httpcore closes a response escapes its anyio shield (asyncio's ``Task.cancel`` is
        not stopped by it), the pool never releases that request, and once every
        connection has leaked each call waits for the pool until it times out
        (httpcore#1115, httpx#3782; issue 22's loop of started and stopped runs)."""
        call = asyncio.create_task(work)
        self._calls.add(call)
        call.add_done_callback(self._call_done)
        return await asyncio.shield(call)

    def _call_done(self, call: asyncio.Task[Any]) -> None:
        self._calls.discard(call)
        if not call.cancelled():
            call.exception()  # retrieved here: a caller that stopped waiting never will

    async def _request(self, method: str, path: str, route: str, **kwargs: Any) -> Any:
        """One HTTP call, its span a child of the caller's (the run's job), whose
        ``traceparent`` Judge0 (or a proxy in front of it) receives."""
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "url.template": route,
            **self._server,
        }
        with tracer.start_as_current_span(
            f"{method} {route}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            headers = dict(kwargs.pop("headers", None) or {})
            propagate.inject(headers)
            try:
                response = await self._http.request(method, path, headers=headers, **kwargs)
            except httpx.TimeoutException as exc:
                span.set_attribute("error.type", "timeout")
                raise Judge0Error(ErrorKind.TIMEOUT, "Judge0 did not answer in time") from exc
            except httpx.TransportError as exc:
                span.set_attribute("error.type", type(exc).__name__)
                raise Judge0Error(
                    ErrorKind.CONNECT, f"could not reach Judge0 ({type(exc).__name__})"
                ) from exc
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_attribute("error.type", str(response.status_code))
                span.set_status(Status(StatusCode.ERROR))
        status = response.status_code
        if status in (200, 201):
            try:
                return response.json()
            except ValueError as exc:
                message = "Judge0 answered invalid JSON"
                raise Judge0Error(ErrorKind.PROTOCOL, message, status) from exc
        raise _error_for(response)


def _error_for(response: httpx.Response) -> Judge0Error:
    status = response.status_code
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        pass
    detail = body.get("error") if isinstance(body, dict) else None
    reason = f": {detail}" if isinstance(detail, str) and detail else ""
    retry_after = _retry_after(response.headers.get("retry-after"))
    kind = ErrorKind.PROTOCOL
    message = f"Judge0 answered HTTP {status}{reason}"
    fields: dict[str, list[str]] = {}
    if status in (401, 403):
        kind, message = ErrorKind.AUTH, f"Judge0 refused the runner's token (HTTP {status})"
    elif status == 422:
        for key, value in body.items() if isinstance(body, dict) else ():
            fields[str(key)] = [str(m) for m in value] if isinstance(value, list) else [str(value)]
        listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in fields.items())
        kind, message = ErrorKind.INVALID, f"Judge0 refused the submission ({listed or status})"
    elif status == 429:
        kind, message = ErrorKind.RATE_LIMITED, "Judge0 rate-limited the runner (HTTP 429)"
    elif status == 503 and isinstance(detail, str) and "queue is full" in detail:
        kind, message = ErrorKind.QUEUE_FULL, "Judge0 is busy (its queue is full)"
    elif status >= 500:
        kind, message = ErrorKind.SERVER, f"Judge0 failed (HTTP {status}{reason})"
    elif status == 404:
        kind, message = ErrorKind.NOT_FOUND, "Judge0 does not know this submission"
    return Judge0Error(kind, message, status, retry_after, fields)


def parse_submission(data: dict[str, Any], token: str) -> Submission:
    status = data.get("status")
    if not isinstance(status, dict) or not isinstance(status.get("id"), int):
        raise Judge0Error(ErrorKind.PROTOCOL, "Judge0 answered a submission without a status")
    return Submission(
        token=str(data.get("token") or token),
        status_id=status["id"],
        status=str(status.get("description", "")),
        stdout=decode_b64(data.get("stdout")),
        stderr=decode_b64(data.get("stderr")),
        compile_output=decode_b64(data.get("compile_output")),
        message=decode_b64(data.get("message")),
        time=_number(data.get("time")),
        wall_time=_number(data.get("wall_time")),
        memory=_number(data.get("memory")),
        exit_code=_integer(data.get("exit_code")),
        exit_signal=_integer(data.get("exit_signal")),
    )


def decode_b64(value: Any) -> bytes:
    """Judge0's base64 (Ruby ``encode64``: newlines every 60 characters), leniently."""
    if not isinstance(value, str) or not value:
        return b""
    try:
        return base64.b64decode(value)
    except (binascii.Error, ValueError):
        # Not base64 after all (a proxy, or an old Judge0 ignoring the flag): keep the text.
        return value.encode("utf-8", "replace")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _number(value: Any) -> float | None:
    """Judge0 sends ``time`` as a decimal string ("0.012") and ``memory`` as an int."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
