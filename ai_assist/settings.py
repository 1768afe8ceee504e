"""The AI's knobs (``server.settings`` fills them from the environment) and the hooks
through which it reports to ``server.metrics``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkspaceLimits:
    """The workspace limits the AI's new files must keep (the room's own rules,
    CODEMENTOR_MAX_FILES etc., the entry file counts)."""

    max_files: int = 200
    max_file_bytes: int = 1024 * 1024
    max_workspace_bytes: int = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AISettings:
    api_key: str
    base_url: str | None = None
    model: str = "claude-sonnet-4-6"
    max_tokens: int = 2048
    timeout: float = 60.0  # a whole request, first byte to last
    max_retries: int = 2  # SDK retries (backoff) on 429, 529, 5xx and connection errors
    queue: int = 2  # requests waiting per room behind the one running
    room_tokens_per_hour: int = 200_000
    global_tokens_per_hour: int = 2_000_000
    breaker_failures: int = 3
    breaker_cooldown: float = 30.0
    flush_interval: float = 0.05  # one chat transaction per this long while streaming
    idle_leave: float = 60.0
    chat_context: int = 10  # recent chat messages sent along
    max_code_chars: int = 100_000  # the file texts the AI is shown, all files together
    limits: WorkspaceLimits = WorkspaceLimits()


class AIObserver:
    """Hooks for metrics; ``server.metrics`` implements them with Prometheus."""

    def ai_request(self, outcome: str) -> None: ...

    def ai_first_token(self, seconds: float) -> None: ...

    def ai_tokens(self, kind: str, count: int) -> None: ...

    def ai_budget_used(self, tokens: int) -> None: ...

    def ai_breaker_changed(self, state: str) -> None: ...

    def ai_budget_limit(self, tokens: int) -> None: ...
