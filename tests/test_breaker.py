"""The circuit breaker the runner (Judge0) and the AI (Claude) share: closed, open,
half-open with exactly one probe, on a clock the test moves."""

from __future__ import annotations

import pytest

from rooms.breaker import BreakerOpen, BreakerState, CircuitBreaker


def state(breaker: CircuitBreaker) -> BreakerState:
    """Read afresh each time (a property mypy would otherwise keep narrowed)."""
    return breaker.state


def test_breaker_opens_half_opens_and_closes() -> None:
    now = [0.0]
    changes: list[BreakerState] = []
    breaker = CircuitBreaker("Judge0", 3, 10.0, clock=lambda: now[0], on_change=changes.append)
    for _ in range(2):
        assert breaker.before_call() is False  # closed: not a probe
        breaker.failure("connect")
    assert state(breaker) is BreakerState.CLOSED
    breaker.before_call()
    breaker.success()  # a success resets the count
    for _ in range(3):
        breaker.before_call()
        breaker.failure("timeout")
    assert state(breaker) is BreakerState.OPEN and changes == [BreakerState.OPEN]
    with pytest.raises(BreakerOpen, match=r"^Judge0 failed 3 times in a row \(timeout\)"):
        breaker.before_call()
    now[0] = 10.5
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.before_call() is True  # the one probe
    with pytest.raises(BreakerOpen):
        breaker.before_call()  # nobody else while it is out
    breaker.failure("timeout")  # the probe failed: open for another cool-down
    assert state(breaker) is BreakerState.OPEN and breaker.retry_in() == pytest.approx(10.0)
    now[0] = 21.0
    assert breaker.before_call() is True
    breaker.success()
    assert state(breaker) is BreakerState.CLOSED and breaker.failures == 0
    assert changes == [BreakerState.OPEN, BreakerState.CLOSED]
    breaker.before_call()  # closed: everyone through
    breaker.before_call()


def test_a_released_probe_lets_the_next_call_probe() -> None:
    now = [0.0]
    breaker = CircuitBreaker("Claude", 1, 5.0, clock=lambda: now[0])
    breaker.failure("APITimeoutError")
    now[0] = 6.0
    assert breaker.before_call() is True
    with pytest.raises(BreakerOpen, match="^Claude failed 1 times"):
        breaker.before_call()
    breaker.release_probe()  # cancelled: no verdict either way
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.before_call() is True
