"""Per-key token buckets for the REST API.

Each key (a token's user and room, or a client address) may make ``rate``
requests per minute (or per ``window`` seconds), with bursts up to the same
number. The table of keys is bounded: the least recently used bucket is
forgotten first, which can only ever be generous.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from server.errors import ApiError

MAX_KEYS = 10_000


class RateLimiter:
    def __init__(self, rate: int, max_keys: int = MAX_KEYS, window: float = 60.0) -> None:
        self.capacity = float(rate)
        self.refill_per_second = rate / window
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, key: str, now: float | None = None) -> float:
        """Take one request from ``key``'s bucket. Returns 0 if allowed, else the
        seconds to wait before the next request would be (for ``Retry-After``)."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.refill_per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.refill_per_second
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def enforce(self, key: str, message: str) -> None:
        """``check``, answering 429 with ``message`` and ``Retry-After`` when over."""
        wait = self.check(key)
        if wait > 0:
            raise ApiError(429, message, headers={"Retry-After": retry_after_header(wait)})


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
