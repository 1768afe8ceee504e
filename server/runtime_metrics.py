"""Event-loop lag, resident memory and CPU time, sampled by one periodic task.

Every ``interval`` (0.5 s) the task asks to wake up and records how late it woke: a loop
busy with a long synchronous step (a huge update, a slow store call run inline) wakes it
late, and every peer of every room on this process waits as long. Every
``process_every``-th wake it also reads the process's resident memory and CPU time, for
the capacity panels and alerts (RSS per connection, CPU per delivered update). The cost
is a timer, a clock read and, now and then, one ``getrusage`` and one small ``/proc``
read: nothing per frame.

The process figures are the server's own series rather than prometheus-client's
``process_*`` ones, because those describe only the worker that answers a scrape under
``--workers``; these are kept per worker and summed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

INTERVAL_SECONDS = 0.5
PROCESS_EVERY = 10  # the process figures every 5 s
STATM = Path("/proc/self/statm")


def resident_bytes() -> int | None:
    """Resident memory now (Linux's ``/proc``); None where there is none."""
    try:
        pages = int(STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class RuntimeSampler:
    """The periodic task; ``start`` in the app's lifespan, ``close`` at its end."""

    def __init__(
        self,
        lag: Histogram,
        memory: Gauge,
        cpu: Counter,
        interval: float = INTERVAL_SECONDS,
        process_every: int = PROCESS_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lag = lag
        self.memory = memory
        self.cpu = cpu
        self.interval = interval
        self.process_every = max(1, process_every)
        self.clock = clock
        self._cpu_seen = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.sample_process()
        self._task = asyncio.create_task(self._run(), name="runtime-sampler")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def sample_process(self) -> None:
        rss = resident_bytes()
        if rss is not None:
            self.memory.set(rss)
        used = cpu_seconds()
        if used > self._cpu_seen:  # a counter: add what was used since the last sample
            self.cpu.inc(used - self._cpu_seen)
            self._cpu_seen = used

    async def _run(self) -> None:
        ticks = 0
        while True:
            expected = self.clock() + self.interval
            await asyncio.sleep(self.interval)
            self.lag.observe(max(0.0, self.clock() - expected))
            ticks += 1
            if ticks % self.process_every == 0:
                self.sample_process()
