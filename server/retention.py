"""Deleting rooms nobody used for ``CODEMENTOR_ROOM_RETENTION_DAYS`` (0: never).

Every ``CODEMENTOR_RETENTION_SWEEP_SECONDS`` one sweep asks the store for rooms unchanged
since the cutoff (``Store.idle_rooms``: one indexed query, ``BATCH`` at a time) and
deletes each one that is open nowhere: not loaded here, and, with Redis, with no
instance subscribed to its awareness channel (an instance subscribes while it has the
room loaded, and unloads it only after it has been empty a while). A room loaded
anywhere is in use even if nobody typed: it is kept, and the next sweep looks again.

With several instances only one sweeps at a time: the sweep holds a Redis lease
(``SET NX PX``, renewed and released by compare-and-delete scripts, so an instance
whose lease expired never releases another's). Without Redis there is one instance.
Logs name the rooms deleted, never their contents.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from rooms.registry import RoomRegistry
from server.logs import get_logger
from server.metrics import Metrics

log = get_logger("codementor.retention")

DAY = 86_400.0
BATCH = 100  # rooms per store query
MAX_BATCHES = 10  # per sweep: a backlog is worked off over several sweeps
LEASE_NAME = "retention"


class RetentionSweep:
    def __init__(
        self,
        registry: RoomRegistry,
        metrics: Metrics,
        retention_seconds: float,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.retention_seconds = retention_seconds
        self.interval = interval
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.retention_seconds > 0

    @property
    def lease_seconds(self) -> float:
        """Held for a few sweeps' worth, and renewed before every batch: a sweep that
        outlived its lease could overlap another instance's."""
        return max(60.0, 3 * self.interval)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="retention-sweep")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception:  # the store or Redis failed: the next sweep tries again
                log.exception("retention_sweep_failed")

    async def sweep(self) -> list[str] | None:
        """One sweep: the rooms it deleted, or None when another instance holds the
        lease (or retention is off)."""
        if not self.enabled:
            return None
        broker = self.registry.broker
        if not await broker.acquire_named_lease(LEASE_NAME, self.lease_seconds):
            log.info("retention_sweep_skipped", reason="another instance holds the lease")
            return None
        try:
            return await self._sweep(self.clock() - self.retention_seconds)
        finally:
            await broker.release_named_lease(LEASE_NAME)

    async def _sweep(self, cutoff: float) -> list[str]:
        registry = self.registry
        worker = registry.worker
        deleted: list[str] = []
        kept: set[str] = set()
        broker = registry.broker
        for batch in range(MAX_BATCHES):
            # Renewed before every batch but the first, only while still this instance's.
            if batch and not await broker.acquire_named_lease(LEASE_NAME, self.lease_seconds):
                log.warning("retention_lease_lost", deleted=len(deleted))
                break
            limit = BATCH + len(kept)  # the rooms kept open come first again: skip them
            names = await worker.run(worker.store.idle_rooms, cutoff, limit)
            for name in names:
                if name in kept:
                    continue
                if not await self._idle(name, cutoff):
                    kept.add(name)
                    continue
                await registry.delete(name)
                self.metrics.rooms_deleted.labels("retention").inc()
                log.info("room_deleted", room=name, reason="retention")
                deleted.append(name)
            if len(names) < limit:
                break
        log.info("retention_swept", deleted=len(deleted), kept_open=len(kept))
        return deleted

    async def _idle(self, name: str, cutoff: float) -> bool:
        """Still unchanged since ``cutoff`` and open nowhere."""
        registry = self.registry
        if registry.in_use(name):
            return False
        info = await registry.room_info(name)
        if info is None or info.updated_at >= cutoff:
            return False
        return not await registry.broker.loaded_elsewhere(name)


def retention_seconds(days: float) -> float:
    return days * DAY
