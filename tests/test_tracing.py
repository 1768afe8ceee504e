"""Tracing end to end: a real server (subprocess) exports with the SDK's OTLP/HTTP exporter
to a receiver that decodes the real protobuf (``tests/otlp_receiver.py``); the Judge0 and
Anthropic doubles record the ``traceparent`` they were sent."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.anthropic_double import AnthropicDouble, Reply
from tests.judge0_double import Judge0Double
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, free_port, sign, wait_until
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

SERVER, CLIENT, CONSUMER = 2, 3, 5  # the protobuf's Span.SpanKind
STOPPED = (0, -signal.SIGTERM)  # uvicorn ends by raising the signal it handled
JUDGE0_TOKEN = "judge0-secret-token"
OTEL_KEY = "otel-api-key-not-for-logs"
TRACED = {
    "CODEMENTOR_SECRET": SECRET,
    "CODEMENTOR_API_RATE_PER_MINUTE": "100000",
    "OTEL_BSP_SCHEDULE_DELAY": "50",  # milliseconds: spans arrive soon after they end
}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture
def judge0() -> Iterator[Judge0Double]:
    fake = Judge0Double(auth_token=JUDGE0_TOKEN).start()
    yield fake
    fake.stop()


def traced(receiver: OtlpReceiver, **env: str) -> dict[str, str]:
    return {**TRACED, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, **env}


def runner_env(judge0: Judge0Double) -> dict[str, str]:
    return {"CODEMENTOR_JUDGE0_URL": judge0.url, "CODEMENTOR_JUDGE0_TOKEN": JUDGE0_TOKEN}


def parent_header() -> tuple[str, str, str]:
    """A W3C ``traceparent`` of a caller's span: (header, trace id, span id)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def parse_traceparent(value: str) -> tuple[str, str]:
    version, trace_id, span_id, flags = value.split("-")
    assert version == "00" and flags == "01" and len(trace_id) == 32 and len(span_id) == 16
    return trace_id, span_id


def create_room(server: ServerProcess, code: str = "") -> str:
    response = httpx.post(server.http_url + "/api/rooms", json={"language": "python"}, timeout=10)
    assert response.status_code == 201, response.text
    room: str = response.json()["room"]
    if code:
        put = httpx.put(
            f"{server.http_url}/api/rooms/{room}/files/main.py",
            content=code.encode(),
            headers={"authorization": f"Bearer {sign(room, 'owner')}"},
            timeout=10,
        )
        assert put.status_code in (200, 201), put.text
    return room


def children(spans: list[ReceivedSpan], parent: ReceivedSpan, name: str) -> list[ReceivedSpan]:
    return [
        s
        for s in spans
        if s.name == name and s.trace_id == parent.trace_id and s.parent_span_id == parent.span_id
    ]


def start_run(server: ServerProcess, room: str, traceparent: str) -> str:
    """Start a run of the room's code as its owner, under a caller's ``traceparent``."""
    response = httpx.post(
        f"{server.http_url}/api/rooms/{room}/runs",
        json={},
        headers={"authorization": f"Bearer {sign(room, 'owner')}", "traceparent": traceparent},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


def run_finished(server: ServerProcess) -> bool:
    return any(e.get("event") == "run_finished" for e in server.events())


def test_a_run_is_one_trace_from_the_rest_request_to_each_judge0_call(
    server_factory: Callable[..., ServerProcess], receiver: OtlpReceiver, judge0: Judge0Double
) -> None:
    server = server_factory(**traced(receiver, **runner_env(judge0)))
    room = create_room(server, "print('traced')\n")
    header, trace_id, caller_span = parent_header()
    run_id = start_run(server, room, header)

    job = receiver.one("runner.job", trace_id)
    rest = receiver.one("POST /api/rooms/{room}/runs", trace_id)
    assert rest.parent_span_id == caller_span and rest.kind == SERVER
    assert rest.service == "codementor"
    assert rest.attributes["http.route"] == "/api/rooms/{room}/runs"
    assert rest.attributes["http.request.method"] == "POST"
    assert rest.attributes["http.response.status_code"] == 202
    assert job.parent_span_id == rest.span_id
    assert job.attributes["codementor.run.id"] == run_id
    assert job.attributes["codementor.run.status"] == "accepted"

    spans = receiver.snapshot()
    submits = children(spans, job, "POST /submissions")
    polls = children(spans, job, "GET /submissions/{token}")
    assert len(submits) == 1 and polls, [(s.name, s.parent_span_id) for s in spans]
    for call in (*submits, *polls):
        assert call.kind == CLIENT and call.attributes["http.response.status_code"] in (200, 201)
        assert call.attributes["server.address"] == "127.0.0.1"
    # What Judge0 received: the trace, each call's own span as its parent.
    sent = {
        (method, endpoint): [parse_traceparent(h["traceparent"]) for m, e, h in judge0.headers
                             if (m, e) == (method, endpoint) and "traceparent" in h]
        for method, endpoint in (("POST", "submit"), ("GET", "get"))
    }  # fmt: skip
    assert sent[("POST", "submit")] == [(trace_id, submits[0].span_id)]
    assert sorted(sent[("GET", "get")]) == sorted((trace_id, p.span_id) for p in polls)

    # The log lines written under a span carry its ids: the job's, the request's access line.
    events = server.events()
    finished = [e for e in events if e.get("event") == "run_finished"]
    assert [(e.get("trace_id"), e.get("span_id")) for e in finished] == [(trace_id, job.span_id)]
    access = [e for e in events if e.get("logger") == "uvicorn.access" and "/runs" in e["event"]]
    assert [(e.get("trace_id"), e.get("span_id")) for e in access] == [(trace_id, rest.span_id)]


def test_ai_requests_keep_their_rest_requests_trace_into_the_anthropic_call(
    server_factory: Callable[..., ServerProcess], receiver: OtlpReceiver, double: AnthropicDouble
) -> None:
    # The SDK's own variable asks for the prompts in the spans: the server says no.
    env = {"ANTHROPIC_API_KEY": "test-key", "CODEMENTOR_AI_BASE_URL": double.url,
           "CODEMENTOR_AI_MAX_RETRIES": "0",
           "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE": "content"}  # fmt: skip
    server = server_factory(**traced(receiver, **env))
    room = create_room(server)
    # The second question waits behind the first: the room's queue task, which the first
    # request started, answers it, and still in the second request's trace.
    double.script(Reply(steps=[("text", "first "), ("sleep", 1.0), ("text", "answer")]))
    asks = []
    for prompt in ("what does zanzibar-prompt do?", "and zanzibar-two?"):
        header, trace_id, caller_span = parent_header()
        response = httpx.post(
            f"{server.http_url}/api/rooms/{room}/ai",
            json={"prompt": prompt},
            headers={"authorization": f"Bearer {sign(room, 'owner')}", "traceparent": header},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        asks.append((trace_id, caller_span, response.json()["ahead"]))
    assert [ahead for _, _, ahead in asks] == [0, 1]

    calls = []
    for trace_id, caller_span, _ in asks:
        call = receiver.one("anthropic.messages.create", trace_id)
        ai = receiver.one("ai.request", trace_id)
        rest = receiver.one("POST /api/rooms/{room}/ai", trace_id)
        assert rest.parent_span_id == caller_span
        assert ai.parent_span_id == rest.span_id and ai.attributes["codementor.room"] == room
        assert ai.attributes["codementor.ai.outcome"] == "ok"
        assert call.parent_span_id == ai.span_id and call.kind == CLIENT
        assert call.attributes["gen_ai.provider.name"] == "anthropic"
        assert int(call.attributes["gen_ai.usage.output_tokens"]) > 0
        calls.append((trace_id, call.span_id))
    assert "zanzibar" not in repr(receiver.snapshot())  # metadata only: no prompt, no code
    received = [r["headers"].get("traceparent") for r in double.requests]
    assert [parse_traceparent(h) for h in received if h] == calls


async def test_a_websocket_admission_its_room_load_and_the_store_flush(
    server_factory: Callable[..., ServerProcess], receiver: OtlpReceiver
) -> None:
    # Dev mode: a tokenless join makes the room, so the websocket loads it. Standard
    # variables are the SDK's to read: a service name, gzip.
    env = {k: v for k, v in TRACED.items() if k != "CODEMENTOR_SECRET"}
    env |= {"OTEL_SERVICE_NAME": "cm-ws", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}
    server = server_factory(**env, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
    room = f"traced-{secrets.token_hex(4)}"
    client = YClient(server.ws_url(room))
    await client.connect()
    await client.wait_synced()
    client.text += "hello"
    try:
        await eventually(lambda: receiver.named("store.flush"), 15, "a store.flush span")
    finally:
        await client.close()

    admit = receiver.one("ws.admit")
    assert admit.kind == SERVER and admit.attributes["codementor.room"] == room
    assert admit.service == "cm-ws"
    assert {h.get("content-encoding") for h in receiver.headers} == {"gzip"}
    assert admit.attributes["codementor.ws.admitted"] is True
    load = receiver.one("room.load", admit.trace_id)
    assert load.parent_span_id == admit.span_id and load.attributes["codementor.room"] == room
    assert children(receiver.snapshot(), load, "store.load")
    flushed = receiver.named("store.flush")
    assert sum(int(s.attributes["codementor.updates"]) for s in flushed) >= 1
    assert all(s.attributes["codementor.rooms"] == 1 for s in flushed)
    # Frames are not traced: the typed update made no span of its own.
    names = {s.name for s in receiver.snapshot()}
    assert names == {"ws.admit", "room.load", "store.load", "store.flush"}, names


async def test_redis_publish_and_read_batches_are_spans(
    server_factory: Callable[..., ServerProcess],
    receiver: OtlpReceiver,
    redis_server: RedisProcess,
    tmp_path: Any,
) -> None:
    env = traced(receiver, CODEMENTOR_REDIS_URL=redis_server.url)
    a = server_factory(data_dir=tmp_path / "shared", CODEMENTOR_INSTANCE_ID="a", **env)
    b = server_factory(data_dir=tmp_path / "shared", CODEMENTOR_INSTANCE_ID="b", **env)
    room = create_room(a)
    token = f"token={sign(room, 'editor')}"
    writer, reader = YClient(a.ws_url(room)), YClient(b.ws_url(room))
    await writer.connect(token)
    await reader.connect(token)
    try:
        await writer.wait_synced()
        await reader.wait_synced()
        writer.text += "across instances"
        await eventually(lambda: "across instances" in str(reader.text), 15)
        await eventually(lambda: receiver.named("redis.read_batch"), 15, "a read batch span")
    finally:
        await writer.close()
        await reader.close()
    published = receiver.wait_for(lambda got: any(s.name == "redis.publish_batch" for s in got))
    batches = [s for s in published if s.name == "redis.publish_batch"]
    assert all(s.kind == CLIENT and s.parent_span_id == "" for s in batches)
    assert sum(int(s.attributes["codementor.updates"]) for s in batches) >= 1
    reads = receiver.named("redis.read_batch")
    assert all(s.kind == CONSUMER and s.parent_span_id == "" for s in reads)
    assert sum(int(s.attributes["codementor.entries"]) for s in reads) >= 1


def test_tracing_off_exports_nothing_and_propagates_nothing(
    server_factory: Callable[..., ServerProcess], receiver: OtlpReceiver, judge0: Judge0Double
) -> None:
    # Every OTEL_* variable but the endpoint (and one endpoint, with the SDK disabled).
    env = {**TRACED, **runner_env(judge0), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}
    off = server_factory(**env)
    disabled = server_factory(
        **env, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_SDK_DISABLED="true"
    )
    for server in (off, disabled):
        room = create_room(server, "print('untraced')\n")
        header, _, _ = parent_header()
        start_run(server, room, header)
        wait_until(lambda server=server: run_finished(server), 15)  # type: ignore[misc]
        assert not [e for e in server.events() if "trace_id" in e or e["event"] == "tracing_on"]
    assert [h for _, _, h in judge0.headers if "traceparent" in h] == []
    for server in (off, disabled):
        assert server.stop() in STOPPED
    assert receiver.exports == 0 and receiver.errors == []


def test_a_collector_that_is_down_costs_a_few_log_lines_and_no_request(
    server_factory: Callable[..., ServerProcess],
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    server = server_factory(
        **TRACED,
        OTEL_EXPORTER_OTLP_ENDPOINT=closed,
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
        OTEL_EXPORTER_OTLP_HEADERS=f"authorization=Bearer {OTEL_KEY}",
    )

    def failed_exports() -> int:
        return len([e for e in server.events() if e.get("logger", "").startswith("opentelemetry")])

    for _ in range(30):  # every request's span is a batch of its own (50 ms schedule)
        room = create_room(server)
        detail = httpx.get(
            f"{server.http_url}/api/rooms/{room}",
            headers={"authorization": f"Bearer {sign(room, 'owner')}"},
            timeout=10,
        )
        assert detail.status_code == 200, detail.text
        time.sleep(0.1)
    failures = failed_exports()
    log = server.log()
    assert server.stop() in STOPPED  # the shutdown's last export gives up within its bound
    assert any(e.get("event") == "stopped: every room flushed" for e in server.events())
    assert OTEL_KEY not in log
    # One line per kind of message a minute, however many batches failed.
    assert 1 <= failures <= 4, [
        e for e in server.events() if e.get("logger", "").startswith("opentelemetry")
    ]


# -- the request-span middleware alone, with an SDK provider of its own ------------------


@pytest.fixture
def spans() -> Iterator[tuple[Any, Any]]:
    """A provider that keeps its spans in memory, not installed globally (other tests in
    this process must keep the no-op tracer)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


async def test_a_request_span_is_named_by_its_route_and_a_5xx_is_an_error(
    spans: tuple[Any, Any],
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from server.tracing import RequestSpans

    async def item(request: Request) -> Response:
        status = int(request.query_params.get("status", "200"))
        return JSONResponse({"id": request.path_params["item"]}, status_code=status)

    tracer, exporter = spans
    app = RequestSpans(Starlette(routes=[Route("/api/items/{item}", item)]), tracer)
    header, trace_id, caller_span = parent_header()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        ok = await client.get("/api/items/a1", headers={"traceparent": header})
        failed = await client.get("/api/items/b2?status=503")
        missing = await client.get("/nowhere")
        probe = await client.get("/healthz")
    assert (ok.status_code, failed.status_code, missing.status_code) == (200, 503, 404)
    assert probe.status_code == 404  # answered, and not traced
    first, second, third = exporter.get_finished_spans()
    assert first.name == "GET /api/items/{item}" and first.attributes["url.path"] == "/api/items/a1"
    assert first.attributes["http.route"] == "/api/items/{item}"
    assert format(first.context.trace_id, "032x") == trace_id
    assert first.parent is not None and format(first.parent.span_id, "016x") == caller_span
    assert first.attributes["http.response.status_code"] == 200
    assert first.status.status_code.name == "UNSET"
    assert second.parent is None and second.context.trace_id != first.context.trace_id
    assert second.attributes["http.response.status_code"] == 503
    assert second.status.status_code.name == "ERROR" and second.attributes["error.type"] == "503"
    assert third.name == "GET" and "http.route" not in third.attributes  # no route matched
    assert third.status.status_code.name == "UNSET"


def test_tracing_is_on_only_with_an_endpoint_and_the_sdk_enabled() -> None:
    from server.tracing import _endpoint_for_log, configured

    assert not configured({})
    assert not configured({"OTEL_EXPORTER_OTLP_ENDPOINT": " ", "OTEL_SERVICE_NAME": "x"})
    assert configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert not configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}
    )
    # What the start-up line says of the endpoint: no credentials, no query; a bad port
    # is the exporter's to report, not a failed start.
    logged = _endpoint_for_log({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://u:secret@c:4318/p?k=v"})
    assert logged == "https://c:4318/p"
    assert _endpoint_for_log({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:99999"}) == "http://c:?"


def test_below_the_server_only_the_opentelemetry_api_is_imported() -> None:
    """The library idiom: rooms, runner, ai_assist and crdt ask the API for a tracer; the
    SDK and the exporter are the server's choice (``server/tracing.py``), crdt uses none."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    found: dict[str, set[str]] = {}
    for package in ("crdt", "rooms", "runner", "ai_assist"):
        for file in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    if name.startswith("opentelemetry"):
                        found.setdefault(package, set()).add(name)
    api = {"opentelemetry", "opentelemetry.trace", "opentelemetry.context",
           "opentelemetry.propagate", "opentelemetry.util.types"}  # fmt: skip
    assert "crdt" not in found
    assert all(names <= api for names in found.values()), found
    assert set(found) == {"rooms", "runner", "ai_assist"}  # each traces its part
