"""Prometheus metrics, all prefixed ``codementor_``, in a registry per app.

A registry per app (not the global one) lets tests run several apps in one
process. Label values come from small fixed sets (message types, reasons):
never a room name or user id, whose cardinality is unbounded.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from ai_assist.service import AIObserver
from rooms.observer import RoomObserver
from runner.records import FINAL
from runner.service import RunnerObserver
from server.frame_metrics import (
    DirectFrameMetrics,
    FrameMetrics,
    TalliedFrameMetrics,
)

# Latency buckets from 50 microseconds to 10 seconds.
FAST_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# Run delays: 10 milliseconds to two minutes.
RUN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
JUDGE0_DELETE_OUTCOMES = ("deleted", "refused", "not_found", "failed", "skipped")
JUDGE0_ERROR_KINDS = (
    "timeout", "connect", "server_error", "queue_full", "rate_limited", "auth", "invalid",
    "not_found", "protocol",
)  # fmt: skip


def multiprocess_mode() -> bool:
    """--workers: prometheus-client keeps every value in files shared by the workers."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics(RoomObserver, RunnerObserver, AIObserver):
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()

        def seconds(name: str, documentation: str) -> Histogram:
            return Histogram(name, documentation, buckets=FAST_BUCKETS, registry=r)

        self.connections = Gauge(
            "codementor_connections",
            "Open websocket connections.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.rooms_loaded = Gauge(
            "codementor_rooms_loaded", "Rooms in memory.", multiprocess_mode="livesum", registry=r
        )
        # The per-frame series (frames, bytes, apply and fan-out times): plain numbers
        # in one process, prometheus-client metrics across --workers.
        frame_metrics = DirectFrameMetrics if multiprocess_mode() else TalliedFrameMetrics
        self.frame_metrics: FrameMetrics = frame_metrics(r, FAST_BUCKETS)
        self.store_flush_seconds = seconds(
            "codementor_store_flush_seconds",
            "Time to write one batch of updates to the store.",
        )
        self.store_flush_failures = Counter(
            "codementor_store_flush_failures", "Batches the store refused (retried).", registry=r
        )
        self.compactions = seconds(
            "codementor_store_compaction_seconds",
            "Time to fold a room's log into a snapshot.",
        )
        self.room_load_seconds = seconds(
            "codementor_room_load_seconds",
            "Time to load a room from the store.",
        )
        self.store_load_seconds = seconds(
            "codementor_store_load_seconds",
            "Time the store takes to read one room (its record and stored history) on load.",
        )
        self.room_load_failures = Counter(
            "codementor_room_load_failures",
            "Rooms whose stored history failed to load.",
            registry=r,
        )
        self.document_rebuilds = Counter(
            "codementor_document_rebuilds",
            "Documents rebuilt from accepted history after yrs failed on an update "
            "(started, done, failed).",
            ["outcome"],
            registry=r,
        )
        self.peers_dropped = Counter(
            "codementor_peers_dropped",
            "Peers closed by the server for being too slow or over a bound.",
            ["reason"],
            registry=r,
        )
        self.frames_rejected = Counter(
            "codementor_frames_rejected", "Frames refused, by reason.", ["reason"], registry=r
        )
        self.writes_refused = Counter(
            "codementor_writes_refused",
            "Document changes dropped because the sender's role may not make them.",
            ["role"],
            registry=r,
        )
        self.connections_by_transport = Counter(
            "codementor_ws_connections",
            "Websockets admitted, by transport: direct (the server's own, with direct "
            "reads and writes) or asgi (plain ASGI: stock uvicorn, another server).",
            ["transport"],
            registry=r,
        )
        self.connections_shed = Counter(
            "codementor_connections_shed",
            "Websockets refused with 1013 because CODEMENTOR_MAX_CONNECTIONS were open.",
            registry=r,
        )
        self.handshake_timeouts = Counter(
            "codementor_handshake_timeouts",
            "Connections closed for not completing their request or websocket upgrade in "
            "CODEMENTOR_HANDSHAKE_TIMEOUT_SECONDS.",
            registry=r,
        )
        self.connections_refused = Counter(
            "codementor_connections_refused",
            "New connections answered 503 at once: open and half-open connections past "
            "CODEMENTOR_MAX_CONNECTIONS and its headroom.",
            registry=r,
        )
        self.auth_refused = Counter(
            "codementor_auth_refused",
            "Connections and requests refused by authentication, by HTTP status.",
            ["status"],
            registry=r,
        )
        self.redis_connected = Gauge(
            "codementor_redis_connected",
            "1 while Redis answers (multi-instance mode).",
            multiprocess_mode="livemin",
            registry=r,
        )
        self.stream_lag_seconds = Gauge(
            "codementor_stream_lag_seconds",
            "Age of the newest update read from other instances, when it was read.",
            multiprocess_mode="livemax",
            registry=r,
        )
        self.publish_failures = Counter(
            "codementor_redis_publish_failures", "Failed attempts to publish to Redis.", registry=r
        )
        self.buffered = Gauge(
            "codementor_redis_buffered_updates",
            "Updates waiting to be published to Redis.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.awareness_dropped_total = Counter(
            "codementor_redis_awareness_dropped",
            "Awareness messages dropped before reaching Redis (its queue was full).",
            registry=r,
        )
        self.lease_changes = Counter(
            "codementor_redis_leases_acquired",
            "Compaction leases this instance took over.",
            registry=r,
        )
        self.ai_requests = Counter(
            "codementor_ai_requests", "AI requests by outcome.", ["outcome"], registry=r
        )
        self.ai_first_token_seconds = Histogram(
            "codementor_ai_first_token_seconds",
            "From sending a request to Claude until its first text delta.",
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.ai_tokens_total = Counter(
            "codementor_ai_tokens",
            "Tokens by kind: input, output, cache_read, cache_write.",
            ["kind"],
            registry=r,
        )
        self.ai_budget_used_tokens = Gauge(
            "codementor_ai_budget_used_tokens",
            "Tokens charged to the global AI budget in the last hour.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.runs = Counter("codementor_runs", "Code runs by final status.", ["status"], registry=r)
        self.run_queue_seconds = Histogram(
            "codementor_run_queue_seconds",
            "From a run request until Judge0 was seen executing it (our queue, Judge0's, polling).",
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.run_execution_seconds = Histogram(
            "codementor_run_execution_seconds",
            "Execution time of finished runs as Judge0 reports it (wall time).",
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.judge0_errors = Counter(
            "codementor_judge0_errors",
            "Failed calls to Judge0 by kind (each retry counts).",
            ["kind"],
            registry=r,
        )
        self.judge0_deletes = Counter(
            "codementor_judge0_deletes",
            "Deletes of stopped runs' submissions by outcome (deleted, refused, not_found, "
            "failed, skipped).",
            ["outcome"],
            registry=r,
        )
        self.runner_breaker_open = Gauge(
            "codementor_runner_breaker_open",
            "1 while the runner's circuit breaker keeps calls away from Judge0.",
            multiprocess_mode="livemax",
            registry=r,
        )
        self.runs_in_flight_gauge = Gauge(
            "codementor_runs_in_flight",
            "Runs queued or executing.",
            multiprocess_mode="livesum",
            registry=r,
        )
        # Operations (issue 23): what the alert rules and the capacity row need.
        self.http_request_seconds = Histogram(
            "codementor_http_request_seconds",
            "REST requests under /api by route template, method and status class (2xx...).",
            ["route", "method", "status"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.ready = Gauge(
            "codementor_ready",
            "1 while /readyz would answer 200 (evaluated at each scrape), 0 when not: "
            "draining, full, the store or Redis failing.",
            # --workers: the value the scraped worker just computed, not a stale one.
            multiprocess_mode="livemostrecent",
            registry=r,
        )
        self.max_connections = Gauge(
            "codementor_max_connections",
            "CODEMENTOR_MAX_CONNECTIONS of this process (0: no limit).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.redis_enabled = Gauge(
            "codementor_redis_enabled",
            "1 when this instance is configured to share rooms through Redis.",
            multiprocess_mode="livemax",
            registry=r,
        )
        self.event_loop_lag_seconds = Histogram(
            "codementor_event_loop_lag_seconds",
            "How late the event loop ran a timer set to fire every 0.5 s.",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.resident_memory_bytes = Gauge(
            "codementor_process_resident_memory_bytes",
            "Resident memory of the server's processes (every worker summed).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.cpu_seconds = Counter(
            "codementor_process_cpu_seconds",
            "CPU time (user and system) the server's processes used.",
            registry=r,
        )
        self.ai_breaker_open = Gauge(
            "codementor_ai_breaker_open",
            "1 while the AI's circuit breaker keeps calls away from Claude.",
            multiprocess_mode="livemax",
            registry=r,
        )
        self.ai_budget_limit_tokens = Gauge(
            "codementor_ai_budget_limit_tokens",
            "The global AI token budget per hour (CODEMENTOR_AI_GLOBAL_TOKENS_PER_HOUR).",
            multiprocess_mode="livesum",
            registry=r,
        )
        for status in FINAL:  # every series exists from the start, at 0
            self.runs.labels(status)
        for kind in JUDGE0_ERROR_KINDS:
            self.judge0_errors.labels(kind)
        for outcome in JUDGE0_DELETE_OUTCOMES:
            self.judge0_deletes.labels(outcome)
        # The life of a room (``server.room_life``, ``server.retention``, ``server.quotas``).
        self.rooms_deleted = Counter(
            "codementor_rooms_deleted",
            "Rooms deleted, by why: owner (DELETE by its owner), admin (with the admin "
            "token), retention (idle past CODEMENTOR_ROOM_RETENTION_DAYS).",
            ["reason"],
            registry=r,
        )
        self.quota_refusals = Counter(
            "codementor_quota_refusals",
            "Room creations refused with 429 by quota: rooms_per_user, user_forks_per_hour, "
            "rooms_per_address_per_hour.",
            ["quota"],
            registry=r,
        )
        for reason in ("owner", "admin", "retention"):
            self.rooms_deleted.labels(reason)
        for quota in ("rooms_per_user", "user_forks_per_hour", "rooms_per_address_per_hour"):
            self.quota_refusals.labels(quota)

    def render(self) -> bytes:
        if multiprocess_mode():
            # --workers N: every worker writes its values to files; merge them all.
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)

    def frames_sent(self, frame: bytes, count: int) -> None:
        self.frame_metrics.sent(frame, count)

    # RoomObserver

    def frame_received(self, frame: bytes) -> None:
        self.frame_metrics.received(frame)

    def frame_rejected(self, reason: str) -> None:
        self.frames_rejected.labels(reason).inc()

    def write_refused(self, role: str) -> None:
        self.writes_refused.labels(role).inc()

    def update_applied(self, seconds: float) -> None:
        self.frame_metrics.applied(seconds)

    def fanned_out(self, seconds: float) -> None:
        self.frame_metrics.fanned_out(seconds)

    def peer_dropped(self, reason: str) -> None:
        self.peers_dropped.labels(reason).inc()

    def flushed(self, seconds: float, updates: int) -> None:
        self.store_flush_seconds.observe(seconds)

    def flush_failed(self) -> None:
        self.store_flush_failures.inc()

    def compacted(self, seconds: float) -> None:
        self.compactions.observe(seconds)

    def stream_lag(self, seconds: float) -> None:
        self.stream_lag_seconds.set(seconds)

    def awareness_dropped(self) -> None:
        self.awareness_dropped_total.inc()

    def publish_failed(self) -> None:
        self.publish_failures.inc()

    def buffered_updates(self, count: int) -> None:
        self.buffered.set(count)

    def lease_acquired(self) -> None:
        self.lease_changes.inc()

    def broker_connected(self, connected: bool) -> None:
        self.redis_connected.set(1 if connected else 0)

    def room_loaded(self, seconds: float) -> None:
        self.room_load_seconds.observe(seconds)
        self.rooms_loaded.inc()

    def store_loaded(self, seconds: float) -> None:
        self.store_load_seconds.observe(seconds)

    def room_load_failed(self) -> None:
        self.room_load_failures.inc()

    def document_rebuilt(self, outcome: str) -> None:
        self.document_rebuilds.labels(outcome).inc()

    def room_unloaded(self) -> None:
        self.rooms_loaded.dec()

    # RunnerObserver

    def run_finished(self, status: str) -> None:
        self.runs.labels(status).inc()

    def run_queue_delay(self, seconds: float) -> None:
        self.run_queue_seconds.observe(seconds)

    def run_execution(self, seconds: float) -> None:
        self.run_execution_seconds.observe(seconds)

    def judge0_error(self, kind: str) -> None:
        self.judge0_errors.labels(kind).inc()

    def judge0_delete(self, outcome: str) -> None:
        self.judge0_deletes.labels(outcome).inc()

    def breaker_changed(self, state: str) -> None:
        self.runner_breaker_open.set(0 if state == "closed" else 1)

    def runs_in_flight(self, count: int) -> None:
        self.runs_in_flight_gauge.set(count)

    # AIObserver

    def ai_request(self, outcome: str) -> None:
        self.ai_requests.labels(outcome).inc()

    def ai_first_token(self, seconds: float) -> None:
        self.ai_first_token_seconds.observe(seconds)

    def ai_tokens(self, kind: str, count: int) -> None:
        self.ai_tokens_total.labels(kind).inc(count)

    def ai_budget_used(self, tokens: int) -> None:
        self.ai_budget_used_tokens.set(tokens)

    def ai_breaker_changed(self, state: str) -> None:
        self.ai_breaker_open.set(0 if state == "closed" else 1)

    def ai_budget_limit(self, tokens: int) -> None:
        self.ai_budget_limit_tokens.set(tokens)
