"""The Starlette application: routes, lifespan, and the store it is wired to."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rooms.broker import Broker
from rooms.class_grid import ClassGrid
from rooms.history_prune import PruneSweep
from rooms.mongo_store import MongoStore
from rooms.redis_broker import RedisBroker, RedisSettings
from rooms.registry import STORE_CHECK_SECONDS, RoomDeleted, RoomLoadError, RoomRegistry
from rooms.sqlite_store import SQLiteStore
from rooms.store import Store, StoreError
from server import (
    ai,
    class_api,
    collector,
    exercises_api,
    history_api,
    logs,
    native_stderr,
    openapi,
    redact,
    retention,
    room_life,
    runs,
    spotlight_api,
    tracing,
    transfer_api,
    web,
)
from server.api import Api
from server.auth import Authenticator, resolve_secret
from server.datadir import SQLITE_FILE
from server.drain import SignalDrain
from server.handshake import STATE_KEY
from server.headers import SecurityHeaders
from server.http_metrics import HttpMetrics
from server.logs import get_logger
from server.metrics import Metrics
from server.origins import OriginCheck, OriginPolicy, allowed_origins
from server.runtime_metrics import RuntimeSampler
from server.settings import Settings, from_env
from server.websocket import ConnectionLimit, websocket_endpoint

log = get_logger("codementor.app")

WEBSOCKET_PREFIX = "/ws/"
# Not ready once every write to the store has failed for this long: as long as the
# readiness probe gives the store to answer at all (a retry or two of the flusher).
WRITES_FAILING_SECONDS = STORE_CHECK_SECONDS


def open_store(settings: Settings) -> Store:
    if settings.mongo_url:
        return MongoStore.from_url(settings.mongo_url)
    return SQLiteStore(settings.data_dir / SQLITE_FILE)


async def healthz(request: Request) -> Response:
    """The process and its event loop answer. No dependency checks."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the store answers, and Redis too in multi-instance mode; not ready
    from the moment a shutdown starts draining (the load balancer stops routing here)."""
    registry: RoomRegistry = request.app.state.registry
    if registry.draining:
        return JSONResponse({"status": "draining", "checks": {}}, status_code=503)
    limit: ConnectionLimit = request.app.state.connection_limit
    if limit.full:  # the load balancer sends newcomers elsewhere; nobody is dropped
        return JSONResponse(
            {"status": "full", "checks": {}, "connections": limit.open,
             "half_open": limit.half_open, "limit": limit.limit},
            status_code=503,
        )  # fmt: skip
    checks: dict[str, str] = {}
    for name, check in (("store", registry.check_store), ("redis", registry.broker.check)):
        if name == "redis" and not registry.broker.enabled:
            continue
        try:
            await check()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
    failing = registry.flusher.failing_for()
    if failing > WRITES_FAILING_SECONDS and checks.get("store") == "ok":
        # The store answers its ping but refuses writes (a full disk, a read-only file).
        checks["store"] = f"error: writes failing for {failing:.0f} s"
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "unavailable", "checks": checks}
    runner_check, runner_health = runs.readiness(request.app.state.runner)
    if runner_check is not None:  # reported, but a degraded runner leaves the server ready
        checks["runner"] = runner_check
        body["runner"] = runner_health
    return JSONResponse(body, status_code=200 if ready else 503)


def open_broker(settings: Settings, metrics: Metrics) -> Broker:
    if not settings.redis_url:
        return Broker()
    instance = settings.instance_id or socket.gethostname()
    if settings.workers > 1 or not settings.instance_id:
        instance = f"{instance}-{os.getpid()}"  # workers of one command are instances too
    cluster = settings.redis_cluster == "on"
    return RedisBroker(
        RedisSettings(url=settings.redis_url, instance_id=instance, cluster=cluster), metrics
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405: JSON under /api, as every other API error is."""
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)
    return PlainTextResponse(exc.detail, exc.status_code, headers=exc.headers)


class JsonErrors:
    """An exception no handler caught answers JSON, as every other error does, with the
    request id to find it in the log (Starlette's own answer is a plain-text 500). A
    failing store is 503, retried later; anything else is 500 with its traceback in
    the log, never in the body. After the response started, it is uvicorn's again."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except ClientDisconnect:
            return  # gone before its request was in (a slow body closed at its deadline)
        except Exception as exc:
            if started:
                raise
            if isinstance(exc, RoomDeleted):  # deleted while the request was under way
                status, error = 404, "unknown room"
            elif isinstance(exc, StoreError | RoomLoadError):
                status, error = 503, "store unavailable: retry later"
                log.warning("request_failed", status=status, error=str(exc))
            else:
                status, error = 500, "internal error"
                log.exception("request_failed", status=status)
            request_id = structlog.contextvars.get_contextvars().get("request_id")
            body = {"error": error, "request_id": request_id}
            await JSONResponse(body, status_code=status)(scope, receive, send)


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    # Readiness as a series, for the alert rules: what /readyz would answer right now.
    metrics.ready.set(1 if (await readyz(request)).status_code == 200 else 0)
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def app_from_env() -> WebSocketFastPath:
    """The app of one ``--workers`` process, configured from ``CODEMENTOR_*`` variables."""
    settings = from_env()
    stderr, _ = native_stderr.install()  # for the whole life of the worker process
    logs.configure(settings.log_level, settings.log_format, stderr)  # a fresh (spawned) process
    collector.tune()
    return WebSocketFastPath(create_app(settings))


class WebSocketFastPath:
    """What uvicorn runs: websockets to ``/ws/{room}`` go straight to the endpoint, all
    else (HTTP, lifespan) through Starlette. An open websocket keeps its whole chain of
    coroutine frames alive; Starlette's error and exception middleware and its router
    add seven frames, about 3 KiB per idle connection (bench/conn_memory.py), and do
    nothing for a websocket: the endpoint closes with its own codes and raises no
    ``HTTPException``. The endpoint still finds the app in ``scope["app"]``."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.state = app.state
        self._websocket = logs.RequestIdMiddleware(websocket_endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path.startswith(WEBSOCKET_PREFIX):
                scope["app"] = self.app
                scope["path_params"] = {"room": path[len(WEBSOCKET_PREFIX) :]}
                await self._websocket(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings, store: Store | None = None) -> Starlette:
    """Build the app. ``store`` defaults to the one the settings choose."""
    metrics = Metrics()
    metrics.max_connections.set(settings.max_connections)
    metrics.redis_enabled.set(1 if settings.redis_url else 0)
    secret, configured = resolve_secret(settings)
    auth = Authenticator(secret=secret, anonymous=not configured and settings.anonymous == "on")
    origins = OriginPolicy(
        allowed_origins(settings.allowed_origins), settings.public_url, loopback_only=not configured
    )
    openapi_document = openapi.build()
    traced = tracing.configured()  # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT set

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        # uvicorn has configured its loggers by now (in this worker process too):
        # tokens ride in websocket query strings, keep them out of the logs.
        redact.install("uvicorn.error", "uvicorn.access", "codementor")
        traces = tracing.Tracing.install() if traced else None  # this worker's own SDK
        registry = RoomRegistry(
            store if store is not None else open_store(settings),
            settings.registry_settings(),
            metrics,
            open_broker(settings, metrics),
        )
        app.state.registry = registry
        # The teachers' grids and spotlights: summaries of student rooms, once a second.
        app.state.class_grid = grid = ClassGrid(registry.loaded, registry.rooms, auth.secret)
        registry.load_hooks.append(grid.on_room_loaded)
        app.state.runner = runner = runs.open_runner(settings, registry, metrics)
        app.state.ai = ai_service = ai.open_ai(settings, registry, metrics)
        await registry.start()
        # Folds history past the retention or the row cap, every 10 minutes.
        prune = PruneSweep(registry.worker, settings.history(), lambda: list(registry.rooms))
        prune.start()
        # Deletes rooms idle past CODEMENTOR_ROOM_RETENTION_DAYS (off by default).
        sweep = retention.RetentionSweep(
            registry,
            metrics,
            retention.retention_seconds(settings.room_retention_days),
            settings.retention_sweep_seconds,
        )
        sweep.start()
        app.state.retention = sweep
        grid.start()
        # Event-loop lag, memory and CPU for the alert rules and the capacity row.
        sampler = RuntimeSampler(
            metrics.event_loop_lag_seconds, metrics.resident_memory_bytes, metrics.cpu_seconds
        )
        sampler.start()
        # On SIGTERM: drain (flush, then 1012) before uvicorn closes the sockets.
        SignalDrain(registry.drain, settings.drain_seconds).install()
        if runner is not None:
            await runner.start()
        if ai_service is not None:
            await ai_service.start()
        if auth.anonymous:
            log.warning(
                "dev mode: no CODEMENTOR_SECRET, so connections without a token join as "
                "editors (set CODEMENTOR_ANONYMOUS=off to refuse them)"
            )
        log.info(
            "started",
            host=settings.host,
            port=settings.port,
            store="mongodb" if settings.mongo_url else "sqlite",
            redis=bool(settings.redis_url),
            runner=runner is not None,
            ai=ai_service is not None,
        )
        try:
            # The lifespan state reaches uvicorn's protocols (``server.handshake``).
            yield {STATE_KEY: connection_limit}
        finally:
            if ai_service is not None:
                await ai_service.close()
            if runner is not None:
                await runner.close()  # runs in flight end "interrupted" before rooms flush
            await prune.close()
            await sampler.close()
            await sweep.close()
            await grid.close()
            await registry.close()
            history.close()
            log.info("stopped: every room flushed")
            if traces is not None:
                await traces.close()  # the last spans, within a bounded wait

    async def openapi_endpoint(request: Request) -> Response:
        return JSONResponse(openapi_document)

    connection_limit = ConnectionLimit(
        settings.max_connections,
        settings.handshake_timeout_seconds,
        on_timeout=metrics.handshake_timeouts.inc,
        on_refused=metrics.connections_refused.inc,
    )
    api = Api(settings, auth, lambda: app.state.registry, metrics)
    history = history_api.HistoryApi(api)
    exercises = exercises_api.ExercisesApi(api, lambda: app.state.runner)
    app = Starlette(
        routes=[
            *api.routes(),
            *runs.RunsApi(api, settings, lambda: app.state.runner).routes(),
            *ai.AiApi(api, lambda: app.state.ai).routes(),
            *history.routes(),
            *exercises.routes(),
            *spotlight_api.SpotlightApi(api, exercises, lambda: app.state.class_grid).routes(),
            *class_api.ClassApi(api).routes(),
            *transfer_api.TransferApi(api).routes(),
            *room_life.RoomLifeApi(api).routes(),
            Route("/api/openapi.json", openapi_endpoint),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            WebSocketRoute("/ws/{room:path}", websocket_endpoint),
            *web.routes(),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
        middleware=[
            *tracing.middleware(traced),
            Middleware(logs.RequestIdMiddleware),
            Middleware(SecurityHeaders),
            Middleware(JsonErrors),
            Middleware(OriginCheck, policy=origins),
        ],
    )
    # Outermost: REST durations by route template, whatever the middleware below answers.
    app.add_middleware(
        HttpMetrics, histogram=metrics.http_request_seconds, routes=lambda: app.routes
    )
    app.state.settings = settings
    app.state.runner = None
    app.state.ai = None
    app.state.class_grid = None
    app.state.metrics = metrics
    app.state.auth = auth
    app.state.origins = origins
    app.state.connection_limit = connection_limit
    app.state.queue_limits = settings.queue_limits()
    app.state.quotas = api.quotas  # rooms per address also for rooms made by opening them
    return app
