"""The series the alert rules and the capacity row read (issue 23), each seen to change
when it should: on real servers (subprocesses, real Redis, the real ``anthropic`` SDK
against its double), and, for what a server cannot be made to do on cue (block its event
loop, raise inside a route), on the real classes in this process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rooms.observer import RoomObserver
from rooms.redis_broker import RedisBroker, RedisSettings
from server.http_metrics import HttpMetrics
from server.runtime_metrics import RuntimeSampler
from tests.anthropic_double import AnthropicDouble, Reply
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign, wait_until
from tests.yclient import YClient


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample ``name{labels}`` in /metrics text, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, value = line.rsplit(" ", 1)
        head, _, rest = series.partition("{")
        if head != name:
            continue
        found = dict(pair.split("=", 1) for pair in rest.rstrip("}").split(",") if "=" in pair)
        if {k: v.strip('"') for k, v in found.items()} == labels:
            return float(value)
    return None


# -- REST request duration ---------------------------------------------------------------------


def test_rest_requests_are_counted_by_route_template_method_and_status(
    server: ServerProcess,
) -> None:
    name = "codementor_http_request_seconds_count"
    before = server.metrics()
    assert sample(before, name, method="GET", route="/api/config", status="2xx") is None
    for _ in range(3):
        assert httpx.get(server.http_url + "/api/config", timeout=5).status_code == 200
    assert httpx.get(server.http_url + "/api/rooms/no-such-room", timeout=5).status_code == 404
    assert httpx.get(server.http_url + "/api/no/such/route", timeout=5).status_code == 404
    assert httpx.get(server.http_url + "/healthz", timeout=5).status_code == 200
    after = server.metrics()
    assert sample(after, name, method="GET", route="/api/config", status="2xx") == 3
    # The template, never the room's name: one series however many rooms there are.
    assert sample(after, name, method="GET", route="/api/rooms/{room}", status="4xx") == 1
    assert sample(after, name, method="GET", route="unmatched", status="4xx") == 1
    assert "no-such-room" not in after and "/healthz" not in after
    assert "/api/no/such/route" not in after


def test_websockets_are_not_rest_requests(server: ServerProcess) -> None:
    async def connect() -> None:
        client = YClient(server.ws_url("ws-only-room"))
        await client.connect()
        await client.wait_synced()
        await client.close()

    asyncio.run(connect())
    assert "codementor_http_request_seconds_count{" not in server.metrics()


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def created(request: Request) -> Response:
    return JSONResponse({}, status_code=201)


@pytest.mark.anyio
async def test_an_exception_counts_as_5xx_and_a_wrong_method_under_its_route() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("h", "h", ["route", "method", "status"], registry=registry)
    routes = [
        Route("/api/boom", boom, methods=["GET"]),
        Route("/api/items/{item}", created, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(HttpMetrics, histogram=histogram, routes=lambda: app.routes)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/api/boom")).status_code == 500
        assert (await client.post("/api/items/42")).status_code == 201
        assert (await client.get("/api/items/42")).status_code == 405
        assert (await client.request("BREW", "/api/items/42")).status_code == 405

    def count(route: str, method: str, status: str) -> float | None:
        labels = {"route": route, "method": method, "status": status}
        return registry.get_sample_value("h_count", labels)

    assert count("/api/boom", "GET", "5xx") == 1
    assert count("/api/items/{item}", "POST", "2xx") == 1
    assert count("/api/items/{item}", "GET", "4xx") == 1
    assert count("/api/items/{item}", "other", "4xx") == 1  # methods are a fixed set


# -- readiness, Redis, limits ------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_ready_and_redis_connected_follow_redis(
    server_factory: Callable[..., ServerProcess], redis_server: RedisProcess, workers: int
) -> None:
    """With Redis up, an idle instance (no room) is ready and connected; with it down,
    neither. Under --workers every worker pings Redis by itself, so the merged series
    (connected: the lowest of the workers) is right whichever worker answers a scrape."""
    server = server_factory(
        CODEMENTOR_REDIS_URL=redis_server.url,
        CODEMENTOR_MAX_CONNECTIONS="7",
        CODEMENTOR_WORKERS=str(workers),
    )

    def connected_and_ready() -> bool:
        text = server.metrics()
        return (
            # Summed over the workers: every one has started (and written its values).
            sample(text, "codementor_max_connections") == 7 * workers
            and sample(text, "codementor_redis_connected") == 1
            and sample(text, "codementor_ready") == 1
        )

    wait_until(connected_and_ready, 30, "every worker started, connected and ready")
    assert sample(server.metrics(), "codementor_redis_enabled") == 1
    redis_server.stop()
    wait_until(lambda: sample(server.metrics(), "codementor_ready") == 0, 15)
    wait_until(lambda: sample(server.metrics(), "codementor_redis_connected") == 0, 15)


class ConnectedLog(RoomObserver):
    def __init__(self) -> None:
        self.seen: list[bool] = []

    def broker_connected(self, connected: bool) -> None:
        self.seen.append(connected)


@pytest.mark.anyio
async def test_an_idle_broker_learns_by_itself_that_redis_comes_and_goes(
    redis_server: RedisProcess,
) -> None:
    """No room, nothing published, nobody asking /readyz: the broker's own ping tells
    the observer (codementor_redis_connected) that Redis answers, and that it stopped."""
    observer = ConnectedLog()
    broker = RedisBroker(RedisSettings(redis_server.url, "idle", timeout=2.0), observer)
    await broker.start()
    try:
        await eventually(lambda: observer.seen == [True], 10, "connected")
        redis_server.stop()
        await eventually(lambda: observer.seen == [True, False], 15, "disconnected")
    finally:
        await broker.close()


def test_without_redis_the_redis_series_say_so(server: ServerProcess) -> None:
    text = server.metrics()
    assert sample(text, "codementor_redis_enabled") == 0
    assert sample(text, "codementor_ready") == 1
    assert sample(text, "codementor_max_connections") == 20_000  # the default


# -- event-loop lag, memory, CPU ---------------------------------------------------------------


def test_a_server_samples_its_loop_memory_and_cpu(server: ServerProcess) -> None:
    def lag_count() -> float:
        return sample(server.metrics(), "codementor_event_loop_lag_seconds_count") or 0.0

    first = lag_count()
    wait_until(lambda: lag_count() >= first + 2, 15)
    text = server.metrics()
    assert (sample(text, "codementor_process_resident_memory_bytes") or 0) > 10_000_000
    assert (sample(text, "codementor_process_cpu_seconds_total") or 0) > 0


def sampler(interval: float = 0.05) -> tuple[RuntimeSampler, CollectorRegistry]:
    registry = CollectorRegistry()
    lag = Histogram("lag", "lag", buckets=(0.01, 0.1, 0.2, 1.0), registry=registry)
    memory = Gauge("rss", "rss", registry=registry)
    cpu = Counter("cpu", "cpu", registry=registry)
    return RuntimeSampler(lag, memory, cpu, interval=interval, process_every=1), registry


@pytest.mark.anyio
async def test_a_blocked_loop_shows_as_lag() -> None:
    """The timer cannot fire while the loop is blocked: the lag it records is at least as
    long as the block, less the interval it was already waiting."""
    runtime, registry = sampler(interval=0.05)
    runtime.start()
    try:
        await asyncio.sleep(0.02)
        time.sleep(0.4)  # noqa: ASYNC251 - the point: a synchronous step holding the loop
        await eventually(lambda: (registry.get_sample_value("lag_count") or 0) >= 2, 5)
        assert (registry.get_sample_value("lag_bucket", {"le": "0.2"}) or 0) < (
            registry.get_sample_value("lag_count") or 0
        ), "one sample above 0.2 s"
        assert (registry.get_sample_value("lag_sum") or 0) >= 0.3
    finally:
        await runtime.close()


def test_cpu_is_counted_as_it_is_used() -> None:
    runtime, registry = sampler()
    runtime.sample_process()
    before = registry.get_sample_value("cpu_total") or 0.0
    assert (registry.get_sample_value("rss") or 0) > 0
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn 0.2 s of CPU
        pass
    runtime.sample_process()
    assert (registry.get_sample_value("cpu_total") or 0.0) >= before + 0.2


# -- the AI's breaker and budget cap -----------------------------------------------------------


@pytest.mark.anyio
async def test_ai_breaker_open_and_budget_cap(
    server_factory: Callable[..., ServerProcess], double: AnthropicDouble
) -> None:
    server = server_factory(
        CODEMENTOR_SECRET=SECRET,
        ANTHROPIC_API_KEY="test-key",
        CODEMENTOR_AI_BASE_URL=double.url,
        CODEMENTOR_AI_MAX_RETRIES="0",
        CODEMENTOR_AI_BREAKER_FAILURES="1",
        CODEMENTOR_AI_BREAKER_COOLDOWN_SECONDS="300",
        CODEMENTOR_AI_GLOBAL_TOKENS_PER_HOUR="12345",
    )
    text = server.metrics()
    assert sample(text, "codementor_ai_budget_limit_tokens") == 12345
    assert sample(text, "codementor_ai_breaker_open") == 0
    http = httpx.AsyncClient(base_url=server.http_url, timeout=10)
    created_room = await http.post("/api/rooms", json={"mode": "pair", "language": "python"})
    assert created_room.status_code == 201, created_room.text
    room = created_room.json()["room"]
    token = sign(room, "owner", name="Ada")
    client = YClient(server.ws_url(room))
    await client.connect(f"token={token}")
    await client.wait_synced()
    try:
        double.script(Reply(status=529))
        asked = await http.post(
            f"/api/rooms/{room}/ai",
            json={"prompt": "hello"},
            headers={"authorization": f"Bearer {token}"},
        )
        assert asked.status_code == 202, asked.text
        await eventually(
            lambda: sample(server.metrics(), "codementor_ai_breaker_open") == 1, 15, "breaker open"
        )
    finally:
        await client.close()
        await http.aclose()
