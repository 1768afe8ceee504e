"""Every setting, its environment variable, default and meaning, in one table.

The CLI (``server.cli``) builds its ``--help`` and its options from ``FIELDS``,
so a setting documented here is documented everywhere.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ai_assist.service import AISettings
from crdt.awareness import AwarenessLimits
from rooms.history import HistorySettings
from rooms.peer import QueueLimits
from rooms.persistence import PersistenceSettings
from rooms.registry import RegistrySettings
from rooms.workspace import WorkspaceLimits
from runner.service import (
    MAX_CPU_TIME,
    MAX_MEMORY_KB,
    MAX_WALL_TIME,
    MIN_MEMORY_KB,
    MIN_WALL_TIME,
    RunnerSettings,
)

MiB = 1024 * 1024


class SettingsError(ValueError):
    """A setting with a value that cannot work; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./data")
    mongo_url: str | None = None
    redis_url: str | None = None
    redis_cluster: str = "off"
    instance_id: str | None = None
    workers: int = 1
    secret: str | None = None
    anonymous: str = "on"
    admin_token: str | None = None
    public_url: str | None = None
    allowed_origins: str | None = None
    forwarded_allow_ips: str = "127.0.0.1"
    token_ttl_seconds: int = 7 * 24 * 3600
    api_rate_per_minute: int = 120
    forks_per_user_per_hour: int = 3
    durability_window_ms: int = 100
    idle_unload_seconds: float = 30.0
    keepalive_seconds: float = 15.0
    ping_seconds: float = 20.0
    ping_timeout_seconds: float = 20.0
    send_queue_frames: int = 1000
    send_queue_bytes: int = 8 * MiB
    max_frame_bytes: int = 8 * MiB
    max_connections: int = 20_000
    handshake_timeout_seconds: float = 10.0
    ws_fast_path: str = "auto"
    awareness_state_bytes: int = 16 * 1024
    awareness_clients: int = 4
    awareness_room_bytes: int = 4 * MiB
    compact_updates: int = 500
    compact_bytes: int = 1 * MiB
    max_pending_bytes: int = 64 * MiB
    max_files: int = 200
    max_file_bytes: int = 1 * MiB
    max_workspace_bytes: int = 8 * MiB
    history_days: float = 30.0
    history_max_rows: int = 200_000
    history_coalesce_seconds: float = 2.0
    history_large_insert: int = 200
    log_level: str = "info"
    log_format: str = "auto"
    drain_seconds: float = 10.0
    judge0_url: str | None = None
    judge0_token: str | None = None
    judge0_authz_token: str | None = None
    judge0_authz_header: str = "X-Auth-User"
    runner_cpu_time_seconds: float = 5.0
    runner_wall_time_seconds: float = 10.0
    runner_memory_mb: int = 256
    runner_output_kib: int = 64
    runner_concurrency: int = 4
    runner_queue: int = 20
    runner_runs_per_minute: int = 10
    runner_deadline_seconds: float = 60.0
    runner_http_timeout_seconds: float = 10.0
    runner_breaker_failures: int = 5
    runner_breaker_cooldown_seconds: float = 30.0
    anthropic_api_key: str | None = None
    ai_base_url: str | None = None
    ai_model: str = "claude-sonnet-4-6"
    ai_max_tokens: int = 2048
    ai_timeout_seconds: float = 60.0
    ai_max_retries: int = 2
    ai_queue: int = 2
    ai_room_tokens_per_hour: int = 200_000
    ai_global_tokens_per_hour: int = 2_000_000
    ai_breaker_failures: int = 3
    ai_breaker_cooldown_seconds: float = 30.0
    ai_idle_leave_seconds: float = 60.0
    max_import_bytes: int = 64 * MiB
    # The life of a room (``server.retention``, ``server.quotas``).
    room_retention_days: float = 0.0
    retention_sweep_seconds: float = 3600.0
    rooms_per_user: int = 50
    user_forks_per_hour: int = 20
    rooms_per_address_per_hour: int = 30

    def registry_settings(self) -> RegistrySettings:
        return RegistrySettings(
            idle_unload_seconds=self.idle_unload_seconds,
            keepalive_seconds=self.keepalive_seconds,
            persistence=PersistenceSettings(
                durability_window=self.durability_window_ms / 1000,
                compact_updates=self.compact_updates,
                compact_bytes=self.compact_bytes,
                max_pending_bytes=self.max_pending_bytes,
            ),
            awareness=AwarenessLimits(
                state_bytes=self.awareness_state_bytes,
                clients=self.awareness_clients,
                room_bytes=self.awareness_room_bytes,
            ),
            workspace=self.workspace_limits(),
            history=self.history(),
        )

    def history(self) -> HistorySettings:
        return HistorySettings(
            retention_days=self.history_days,
            max_rows=self.history_max_rows,
            coalesce_seconds=self.history_coalesce_seconds,
            large_insert=self.history_large_insert,
        )

    def workspace_limits(self) -> WorkspaceLimits:
        return WorkspaceLimits(
            max_files=self.max_files,
            max_file_bytes=self.max_file_bytes,
            max_workspace_bytes=self.max_workspace_bytes,
        )

    def runner_settings(self) -> RunnerSettings | None:
        """The runner's settings, or None when no Judge0 URL is set (runner off)."""
        if not self.judge0_url:
            return None
        return RunnerSettings(
            url=self.judge0_url,
            token=self.judge0_token,
            judge0_authz_token=self.judge0_authz_token,
            judge0_authz_header=self.judge0_authz_header,
            cpu_time=self.runner_cpu_time_seconds,
            wall_time=self.runner_wall_time_seconds,
            memory_kb=self.runner_memory_mb * 1024,
            output_bytes=self.runner_output_kib * 1024,
            concurrency=self.runner_concurrency,
            queue=self.runner_queue,
            deadline=self.runner_deadline_seconds,
            http_timeout=self.runner_http_timeout_seconds,
            breaker_failures=self.runner_breaker_failures,
            breaker_cooldown=self.runner_breaker_cooldown_seconds,
            exclusive=not self.redis_url,
        )

    def ai_settings(self) -> AISettings | None:
        """The AI pair-programmer's settings, or None without ANTHROPIC_API_KEY (off)."""
        if not self.anthropic_api_key:
            return None
        return AISettings(
            api_key=self.anthropic_api_key,
            base_url=self.ai_base_url,
            model=self.ai_model,
            max_tokens=self.ai_max_tokens,
            timeout=self.ai_timeout_seconds,
            max_retries=self.ai_max_retries,
            queue=self.ai_queue,
            room_tokens_per_hour=self.ai_room_tokens_per_hour,
            global_tokens_per_hour=self.ai_global_tokens_per_hour,
            breaker_failures=self.ai_breaker_failures,
            breaker_cooldown=self.ai_breaker_cooldown_seconds,
            idle_leave=self.ai_idle_leave_seconds,
        )

    def queue_limits(self) -> QueueLimits:
        return QueueLimits(max_frames=self.send_queue_frames, max_bytes=self.send_queue_bytes)

    def validate(self) -> None:
        """Refuse settings that are unsafe or cannot work."""
        if not is_loopback(self.host) and not self.secret:
            raise SettingsError(
                f"refusing to listen on {self.host}, which is not a loopback address, "
                "without CODEMENTOR_SECRET: set a secret (e.g. `openssl rand -hex 32`) "
                "or bind to 127.0.0.1"
            )
        positive = {
            "durability_window_ms": self.durability_window_ms,
            "idle_unload_seconds": self.idle_unload_seconds,
            "keepalive_seconds": self.keepalive_seconds,
            "ping_timeout_seconds": self.ping_timeout_seconds,
            "send_queue_frames": self.send_queue_frames,
            "send_queue_bytes": self.send_queue_bytes,
            "max_frame_bytes": self.max_frame_bytes,
            "handshake_timeout_seconds": self.handshake_timeout_seconds,
            "awareness_state_bytes": self.awareness_state_bytes,
            "awareness_clients": self.awareness_clients,
            "awareness_room_bytes": self.awareness_room_bytes,
            "compact_updates": self.compact_updates,
            "compact_bytes": self.compact_bytes,
            "max_pending_bytes": self.max_pending_bytes,
            "token_ttl_seconds": self.token_ttl_seconds,
            "api_rate_per_minute": self.api_rate_per_minute,
            "forks_per_user_per_hour": self.forks_per_user_per_hour,
            "workers": self.workers,
            "max_files": self.max_files,
            "max_file_bytes": self.max_file_bytes,
            "max_workspace_bytes": self.max_workspace_bytes,
            "history_max_rows": self.history_max_rows,
            "history_large_insert": self.history_large_insert,
        }
        for name, value in positive.items():
            if value <= 0:
                raise SettingsError(f"{env_name(name)} must be positive, got {value}")
        if self.max_file_bytes > self.max_workspace_bytes:
            raise SettingsError(
                "CODEMENTOR_MAX_FILE_BYTES must not be larger than CODEMENTOR_MAX_WORKSPACE_BYTES"
            )
        if self.room_retention_days < 0 or self.retention_sweep_seconds <= 0:
            raise SettingsError(
                "CODEMENTOR_ROOM_RETENTION_DAYS must not be negative (0: off) and"
                " CODEMENTOR_RETENTION_SWEEP_SECONDS must be positive"
            )
        if min(self.rooms_per_user, self.user_forks_per_hour) < 0:
            raise SettingsError(
                "CODEMENTOR_ROOMS_PER_USER and CODEMENTOR_USER_FORKS_PER_HOUR must not be"
                " negative (0: no limit)"
            )
        if self.rooms_per_address_per_hour <= 0:
            raise SettingsError("CODEMENTOR_ROOMS_PER_ADDRESS_PER_HOUR must be positive")
        if self.history_days < 0 or self.history_coalesce_seconds < 0:
            raise SettingsError(
                "CODEMENTOR_HISTORY_DAYS and CODEMENTOR_HISTORY_COALESCE_SECONDS must not be"
                " negative (CODEMENTOR_HISTORY_DAYS=0 turns history off)"
            )
        if self.ping_seconds < 0:
            raise SettingsError(
                f"CODEMENTOR_PING_SECONDS must be 0 (off) or more, got {self.ping_seconds}"
            )
        if self.max_connections < 0:
            raise SettingsError(
                f"CODEMENTOR_MAX_CONNECTIONS must be 0 or more, got {self.max_connections}"
            )
        if self.workers > 1 and not self.redis_url:
            raise SettingsError(
                f"--workers {self.workers} needs CODEMENTOR_REDIS_URL: worker processes share "
                "rooms only through Redis"
            )
        if self.redis_cluster not in ("on", "off"):
            raise SettingsError(
                f"CODEMENTOR_REDIS_CLUSTER must be on or off, got {self.redis_cluster!r}"
            )
        if self.redis_cluster == "on" and not self.redis_url:
            raise SettingsError("CODEMENTOR_REDIS_CLUSTER=on needs CODEMENTOR_REDIS_URL")
        if self.log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
            raise SettingsError(
                f"CODEMENTOR_LOG_LEVEL must be debug, info, warning or error, got "
                f"{self.log_level!r}"
            )
        if self.ws_fast_path not in ("auto", "on", "off"):
            raise SettingsError(
                f"CODEMENTOR_WS_FAST_PATH must be auto, on or off, got {self.ws_fast_path!r}"
            )
        if self.log_format not in ("auto", "json", "text"):
            raise SettingsError(
                f"CODEMENTOR_LOG_FORMAT must be auto, json or text, got {self.log_format!r}"
            )
        if self.drain_seconds <= 0:
            raise SettingsError(
                f"CODEMENTOR_DRAIN_SECONDS must be positive, got {self.drain_seconds}"
            )
        if self.anonymous not in ("on", "off"):
            raise SettingsError(f"CODEMENTOR_ANONYMOUS must be on or off, got {self.anonymous!r}")
        if not 0 < self.port < 65536:
            raise SettingsError(f"CODEMENTOR_PORT must be 1-65535, got {self.port}")
        from server.origins import allowed_origins  # it reads these settings: no cycle

        allowed_origins(self.allowed_origins)
        self._validate_runner()
        self._validate_ai()
        if self.max_import_bytes <= 0:
            raise SettingsError(
                f"CODEMENTOR_MAX_IMPORT_BYTES must be positive, got {self.max_import_bytes}"
            )

    def _validate_ai(self) -> None:
        if self.ai_base_url and not self.ai_base_url.startswith(("http://", "https://")):
            raise SettingsError(
                "CODEMENTOR_AI_BASE_URL must be an http:// or https:// URL, "
                f"got {self.ai_base_url!r}"
            )
        positive = (
            "ai_max_tokens", "ai_timeout_seconds", "ai_room_tokens_per_hour",
            "ai_global_tokens_per_hour", "ai_breaker_failures", "ai_breaker_cooldown_seconds",
            "ai_idle_leave_seconds",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{env_name(name)} must be positive, got {getattr(self, name)}")
        for name in ("ai_queue", "ai_max_retries"):
            if getattr(self, name) < 0:
                raise SettingsError(
                    f"{env_name(name)} must be 0 or more, got {getattr(self, name)}"
                )

    def _validate_runner(self) -> None:
        if self.judge0_url and not self.judge0_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"CODEMENTOR_JUDGE0_URL must be an http:// or https:// URL, got {self.judge0_url!r}"
            )
        positive = (
            "runner_output_kib", "runner_concurrency", "runner_runs_per_minute",
            "runner_http_timeout_seconds", "runner_breaker_failures",
            "runner_breaker_cooldown_seconds",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{env_name(name)} must be positive, got {getattr(self, name)}")
        if self.runner_queue < 0:
            raise SettingsError(
                f"CODEMENTOR_RUNNER_QUEUE must be 0 or more, got {self.runner_queue}"
            )
        # Judge0 CE 1.13.1 refuses submissions outside these ranges (422).
        ranges = {
            "runner_cpu_time_seconds": (0.1, MAX_CPU_TIME),
            "runner_wall_time_seconds": (MIN_WALL_TIME, MAX_WALL_TIME),
            "runner_memory_mb": (MIN_MEMORY_KB / 1024, MAX_MEMORY_KB / 1024),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise SettingsError(f"{env_name(name)} must be {low:g}-{high:g}, got {value}")
        if self.runner_deadline_seconds <= self.runner_wall_time_seconds:
            raise SettingsError(
                "CODEMENTOR_RUNNER_DEADLINE_SECONDS must be longer than "
                "CODEMENTOR_RUNNER_WALL_TIME_SECONDS"
            )


@dataclass(frozen=True, slots=True)
class FieldDoc:
    name: str
    help: str
    secret: bool = False


FIELDS: tuple[FieldDoc, ...] = (
    FieldDoc("host", "address to listen on; a non-loopback address requires a secret"),
    FieldDoc("port", "TCP port"),
    FieldDoc("data_dir", "directory for the embedded SQLite store (codementor.sqlite3)"),
    FieldDoc("mongo_url", "MongoDB URL; when set, rooms are stored in MongoDB instead of SQLite"),
    FieldDoc("redis_url", "Redis URL; turns multi-instance mode on (rooms shared by processes)"),
    FieldDoc(
        "redis_cluster",
        "on: CODEMENTOR_REDIS_URL names a node of a Redis Cluster (keys and reads by shard); "
        "off: one Redis",
    ),
    FieldDoc("instance_id", "this process's name in Redis (default: hostname-pid)"),
    FieldDoc("workers", "uvicorn worker processes; more than 1 requires CODEMENTOR_REDIS_URL"),
    FieldDoc(
        "secret",
        "signing secret for access tokens, at least 32 bytes; required off loopback",
        secret=True,
    ),
    FieldDoc(
        "anonymous",
        "on: without CODEMENTOR_SECRET (dev mode), tokenless connections are editors; off: never",
    ),
    FieldDoc(
        "admin_token",
        "bearer token required by POST /api/rooms when set, at least 32 bytes (dev-mode joins "
        "then create no room)",
        secret=True,
    ),
    FieldDoc("public_url", "base URL for join links (default: the URL the request came to)"),
    FieldDoc(
        "allowed_origins",
        "browser origins (comma-separated scheme://host[:port]) besides the server's own "
        "that may open websockets and send REST changes; other origins get 403",
    ),
    FieldDoc(
        "forwarded_allow_ips",
        "proxies whose X-Forwarded-For/-Proto are trusted (comma-separated addresses or "
        "networks, * for any): the client address rate limits and logs use",
    ),
    FieldDoc("token_ttl_seconds", "lifetime of tokens in join links and of fork owner tokens"),
    FieldDoc("api_rate_per_minute", "REST requests per token (or address) per minute; over: 429"),
    FieldDoc(
        "forks_per_user_per_hour",
        "forks of one broadcast room per user (verified token id) per hour; over: 429",
    ),
    FieldDoc("durability_window_ms", "updates are flushed to the store within this window"),
    FieldDoc("idle_unload_seconds", "an empty room is flushed and unloaded after this long"),
    FieldDoc("keepalive_seconds", "an idle peer gets a keep-alive frame after this long"),
    FieldDoc(
        "ping_seconds",
        "websocket ping to every peer this often; one that does not answer is closed (0: off)",
    ),
    FieldDoc("ping_timeout_seconds", "how long a peer has to answer a ping before 1011"),
    FieldDoc("send_queue_frames", "per-peer send queue bound in frames; overflow closes 1013"),
    FieldDoc("send_queue_bytes", "per-peer send queue bound in bytes; overflow closes 1013"),
    FieldDoc("max_frame_bytes", "largest accepted websocket frame; larger closes 1009"),
    FieldDoc(
        "max_connections",
        "open websockets per process; newcomers past it are closed 1013 and /readyz says "
        "full (0: no limit)",
    ),
    FieldDoc(
        "handshake_timeout_seconds",
        "a connection must complete its HTTP request or websocket upgrade within this long "
        "or is closed; until then it counts toward max_connections",
    ),
    FieldDoc(
        "ws_fast_path",
        "auto: the server's own websocket transport when a start-up probe finds it fits the "
        "installed uvicorn and websockets, else stock uvicorn websockets (one warning); on: "
        "refuse to start when it does not fit; off: stock uvicorn websockets",
    ),
    FieldDoc(
        "awareness_state_bytes",
        "largest awareness (presence) state of one client; larger closes 1008",
    ),
    FieldDoc("awareness_clients", "awareness client ids one connection may hold; more closes 1008"),
    FieldDoc(
        "awareness_room_bytes",
        "all live awareness states of a room (a newcomer's snapshot); a state past it closes 1008",
    ),
    FieldDoc("compact_updates", "fold the update log into a snapshot after this many updates"),
    FieldDoc("compact_bytes", "...or after this many bytes of updates"),
    FieldDoc("max_pending_bytes", "unflushed bytes per room before writers are refused (1013)"),
    FieldDoc("max_files", "files in one room's workspace, the entry file included"),
    FieldDoc("max_file_bytes", "UTF-8 bytes of one workspace file (the entry file too)"),
    FieldDoc(
        "max_workspace_bytes",
        "UTF-8 bytes of all of a room's files together; also caps an uploaded zip's size",
    ),
    FieldDoc(
        "history_days",
        "days a room's history (every update, who sent it, when) is kept; 0 turns history off",
    ),
    FieldDoc(
        "history_max_rows",
        "history rows kept per room; past it the oldest are folded into one starting state",
    ),
    FieldDoc(
        "history_coalesce_seconds",
        "a room's consecutive updates within this share a history row (each keeps its sender)",
    ),
    FieldDoc(
        "history_large_insert",
        "characters one update inserts that mark it a large insert (a paste) in the history",
    ),
    FieldDoc("log_level", "debug, info, warning or error"),
    FieldDoc(
        "log_format",
        "json (one object per line), text, or auto: text on a terminal, json otherwise",
    ),
    FieldDoc(
        "drain_seconds",
        "on SIGTERM: at most this long to flush rooms, and again for sockets to close (1012)",
    ),
    FieldDoc("judge0_url", "Judge0 CE base URL (http://judge0:2358); turns the runner on"),
    FieldDoc("judge0_token", "sent to Judge0 as X-Auth-Token (its AUTHN_TOKEN)", secret=True),
    FieldDoc(
        "judge0_authz_token",
        "Judge0's AUTHZ_TOKEN: lets the runner delete a stopped run's submission (Judge0 also "
        "needs ENABLE_SUBMISSION_DELETE=true); unset: stopped runs' submissions are kept",
        secret=True,
    ),
    FieldDoc("judge0_authz_header", "the header Judge0 reads AUTHZ_TOKEN from (its AUTHZ_HEADER)"),
    FieldDoc("runner_cpu_time_seconds", "CPU time limit of one run (Judge0 allows up to 15)"),
    FieldDoc("runner_wall_time_seconds", "wall-clock limit of one run (Judge0 allows 1-20)"),
    FieldDoc("runner_memory_mb", "memory limit of one run in MB (Judge0 allows 2-500)"),
    FieldDoc("runner_output_kib", "stdout, stderr and compile output are each cut at this size"),
    FieldDoc("runner_concurrency", "runs talking to Judge0 at once, over all rooms"),
    FieldDoc("runner_queue", "runs waiting for a slot; more are refused with 503"),
    FieldDoc("runner_runs_per_minute", "runs per user per minute; over: 429 with Retry-After"),
    FieldDoc(
        "runner_deadline_seconds", "a run not finished this long after its request ends unavailable"
    ),
    FieldDoc("runner_http_timeout_seconds", "timeout of every call to Judge0"),
    FieldDoc(
        "runner_breaker_failures", "consecutive Judge0 failures that open the circuit breaker"
    ),
    FieldDoc(
        "runner_breaker_cooldown_seconds", "an open breaker lets a probe through after this long"
    ),
    FieldDoc(
        "anthropic_api_key",
        "Claude API key (variable ANTHROPIC_API_KEY); turns the AI pair-programmer on",
        secret=True,
    ),
    FieldDoc("ai_base_url", "Anthropic API base URL (default: the SDK's, api.anthropic.com)"),
    FieldDoc("ai_model", "Claude model the AI pair-programmer uses"),
    FieldDoc("ai_max_tokens", "largest reply of one AI request, in tokens"),
    FieldDoc("ai_timeout_seconds", "an AI request not finished this long after it started fails"),
    FieldDoc("ai_max_retries", "SDK retries (with backoff) on 429, 529 and connection errors"),
    FieldDoc("ai_queue", "AI requests waiting per room behind the running one; more are refused"),
    FieldDoc("ai_room_tokens_per_hour", "AI tokens (in + out) one room may use per hour"),
    FieldDoc("ai_global_tokens_per_hour", "AI tokens (in + out) the server may use per hour"),
    FieldDoc("ai_breaker_failures", "failed AI requests in a row that open the circuit breaker"),
    FieldDoc("ai_breaker_cooldown_seconds", "an open AI breaker answers 'unavailable' this long"),
    FieldDoc("ai_idle_leave_seconds", "the AI leaves a room's presence after this quiet period"),
    FieldDoc(
        "max_import_bytes",
        "largest .cmroom file POST /api/rooms/import accepts (bytes as sent); larger: 413",
    ),
    FieldDoc(
        "room_retention_days",
        "rooms unchanged this many days (and open nowhere) are deleted by a periodic sweep; "
        "0: never",
    ),
    FieldDoc("retention_sweep_seconds", "how often the retention sweep looks for idle rooms"),
    FieldDoc(
        "rooms_per_user",
        "rooms one user (the verified token id) may own at once (forks); over: 429; 0: no limit",
    ),
    FieldDoc(
        "user_forks_per_hour",
        "forks one user may make per hour over all rooms; over: 429 with Retry-After; 0: none",
    ),
    FieldDoc(
        "rooms_per_address_per_hour",
        "rooms one client address may make per hour without the admin token (dev mode: "
        "POST /api/rooms and opening a new name); over: 429 with Retry-After",
    ),
)


def env_name(field: str) -> str:
    if field == "anthropic_api_key":
        return "ANTHROPIC_API_KEY"  # the SDK's own variable
    return "CODEMENTOR_" + field.upper()


def parser_for(name: str) -> Callable[[str], Any]:
    """Each setting is parsed as the type of its default (``str`` where that is None)."""
    default = next(f.default for f in fields(Settings) if f.name == name)
    return str if default is None else type(default)


def from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from ``CODEMENTOR_*`` variables, then ``overrides`` (CLI flags) on top."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = environ.get(env_name(f.name))
        if raw is None or raw == "":
            continue
        parse = parser_for(f.name)
        try:
            values[f.name] = parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{env_name(f.name)}={raw!r} is not a valid value") from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
