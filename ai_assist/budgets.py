"""The limits a request must pass before Claude is called: the room's queue, and the
room's and the server's hourly token budgets (charged afterwards with the usage the
API reported, whatever the outcome)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from ai_assist.settings import AIObserver, AISettings


class TokenBudget:
    """Tokens charged in a sliding hour."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._charges: deque[tuple[float, int]] = deque()

    def used(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        while self._charges and self._charges[0][0] < now - 3600:
            self._charges.popleft()
        return sum(c for _, c in self._charges)

    def exhausted(self) -> bool:
        return self.used() >= self.limit

    def charge(self, tokens: int) -> None:
        if tokens > 0:
            self._charges.append((time.monotonic(), tokens))


@dataclass(slots=True)
class Usage:
    """Tokens one request used, by the kinds the metrics name."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def kinds(self) -> list[tuple[str, int]]:
        return [
            ("input", self.input),
            ("output", self.output),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
        ]


class Budgets:
    """The server's token budget, and the limits each room gets."""

    def __init__(self, settings: AISettings, observer: AIObserver) -> None:
        self.queue = settings.queue
        self.room_tokens = settings.room_tokens_per_hour
        self.server = TokenBudget(settings.global_tokens_per_hour)
        self._observer = observer
        observer.ai_budget_limit(settings.global_tokens_per_hour)  # alerts compare used to it

    def for_room(self) -> TokenBudget:
        return TokenBudget(self.room_tokens)

    def queue_full(self, busy: int) -> bool:
        """``busy``: the room's running and waiting requests."""
        return busy > self.queue

    def refusal(self, room: TokenBudget) -> str | None:
        """The chat answer when a budget is used up; None when the request may go."""
        if room.exhausted() or self.server.exhausted():
            which = "this room's" if room.exhausted() else "the server's"
            return f"Sorry, {which} AI token budget for this hour is used up."
        return None

    def charge(self, room: TokenBudget, usage: Usage) -> None:
        total = sum(count for _, count in usage.kinds())
        room.charge(total)
        self.server.charge(total)
        for kind, count in usage.kinds():
            if count:
                self._observer.ai_tokens(kind, count)
        self._observer.ai_budget_used(self.server.used())
