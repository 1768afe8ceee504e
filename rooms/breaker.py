"""A circuit breaker for a remote service the server depends on (Judge0, Claude).

``closed``: calls go through; ``threshold`` consecutive failures open it.
``open``: calls are refused without touching the network until ``cooldown``
seconds have passed; then it is ``half_open``: exactly one call (a probe) may
go through. Its success closes the breaker, its failure opens it again for
another cool-down. Any success resets the failure count.

It lives in ``rooms`` because both ``runner`` and ``ai_assist`` use it and neither
may import the other; it knows nothing of rooms.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerOpen(Exception):
    """The breaker refused the call: the service failed too often lately."""

    def __init__(self, service: str, failures: int, retry_in: float, last_error: str) -> None:
        super().__init__(
            f"{service} failed {failures} times in a row ({last_error}); "
            f"retrying in about {max(1, round(retry_in))} s"
        )
        self.service = service
        self.failures = failures
        self.retry_in = retry_in
        self.last_error = last_error


class CircuitBreaker:
    def __init__(
        self,
        service: str,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.service = service  # named in ``BreakerOpen``'s message
        self.threshold = max(1, threshold)
        self.cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self.failures = 0
        self.last_error = ""
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self.retry_in() <= 0:
            return BreakerState.HALF_OPEN
        return self._state

    def retry_in(self) -> float:
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self._clock())

    def before_call(self) -> bool:
        """Raise ``BreakerOpen`` unless a call may go through now. True when this call
        is the half-open probe: the caller must end it with ``success``, ``failure``
        or ``release_probe``, or nobody else gets through."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        raise BreakerOpen(self.service, self.failures, self.retry_in(), self.last_error)

    def success(self) -> None:
        self._probing = False
        self.failures = 0
        self._set(BreakerState.CLOSED)

    def failure(self, kind: str) -> None:
        self._probing = False
        self.failures += 1
        self.last_error = kind
        if self._state is not BreakerState.CLOSED or self.failures >= self.threshold:
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def release_probe(self) -> None:
        """The probe ended without an answer either way (cancelled): free its slot."""
        self._probing = False

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)
