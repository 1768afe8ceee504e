"""Keeping history bounded: rows older than the retention, or past a room's row cap,
are folded into the room's ``HistoryBase`` (the document at the cut and what playback
derived up to it: who wrote each character, the summary counts), so playback still
starts from the right document and old characters keep their authors.

The store thread only reads and writes; the replay that builds the new base runs on a
thread of its own, so a fold never holds up a room's flushes. Each pass folds at most
``FOLD_ROWS`` rows of a room (a long-neglected room catches up over several passes).
A row the store extends after the cut was taken is harmless: it is past the cut, and
playback skips the updates it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable

import structlog

from rooms.history import HistoryBase, HistoryRow, HistorySettings
from rooms.persistence import StoreWorker
from rooms.playback import Playback
from rooms.store import Store

log = structlog.get_logger("codementor.history")

DAY = 86_400.0
FOLD_ROWS = 20_000  # rows folded per room per pass
SWEEP_SECONDS = 600.0  # between two passes of the sweep
ROOMS_PER_PASS = 50


def _plan(
    store: Store, room: str, settings: HistorySettings, now: float, fold_rows: int
) -> tuple[HistoryBase | None, list[HistoryRow]] | None:
    """On the store thread: the base and the rows to fold into it, None when none are."""
    count, _, oldest = store.history_size(room)
    if count == 0:
        return None
    cutoff = now - settings.retention_days * DAY
    excess = count - settings.max_rows
    if excess <= 0 and (oldest is None or oldest >= cutoff):
        return None
    base = store.history_base(room)
    rows = store.history(room, after=base.seq if base is not None else 0, limit=fold_rows)
    old = 0
    while old < len(rows) and rows[old].ts < cutoff:
        old += 1
    cut = min(max(old, excess), len(rows))
    return (base, rows[:cut]) if cut else None


def fold(base: HistoryBase | None, rows: list[HistoryRow], large_insert: int) -> HistoryBase:
    """The base that folds ``rows`` (the oldest rows after ``base``) into ``base``."""
    playback = Playback(base, large_insert=large_insert)
    playback.extend(rows)
    return playback.base_at(rows[-1].seq)


async def prune_room(
    worker: StoreWorker,
    room: str,
    settings: HistorySettings,
    now: float | None = None,
    fold_rows: int = FOLD_ROWS,
) -> int:
    """Fold the room's rows past the retention or the row cap into its base; returns
    how many rows were folded (at most ``fold_rows``)."""
    if not settings.enabled:
        return 0
    store = worker.store
    plan = await worker.run(
        _plan, store, room, settings, time.time() if now is None else now, fold_rows
    )
    if plan is None:
        return 0
    base, rows = plan
    new_base = await asyncio.to_thread(fold, base, rows, settings.large_insert)
    await worker.run(store.rewrite_history, room, [], [], new_base)
    log.info("history_pruned", room=room, rows=len(rows), upto=new_base.seq)
    return len(rows)


class PruneSweep:
    """Every ``SWEEP_SECONDS``, prunes the rooms this process has served (the store has
    no list of rooms with history; a room nobody opens gains no rows)."""

    def __init__(
        self,
        worker: StoreWorker,
        settings: HistorySettings,
        rooms: Callable[[], Iterable[str]],
        every: float = SWEEP_SECONDS,
    ) -> None:
        self.worker = worker
        self.settings = settings
        self.rooms = rooms
        self.every = every
        self._known: set[str] = set()
        self._cursor = 0  # where the next pass starts among the known rooms
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.settings.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="history-prune")

    async def sweep(self) -> int:
        """One pass: at most ``ROOMS_PER_PASS`` rooms; returns the rows folded."""
        self._known.update(self.rooms())
        known = sorted(self._known)
        start = self._cursor % len(known) if known else 0
        chosen = (known[start:] + known[:start])[:ROOMS_PER_PASS]
        self._cursor = start + len(chosen)
        folded = 0
        for room in chosen:
            try:
                folded += await prune_room(self.worker, room, self.settings)
            except Exception:
                log.exception("history_prune_failed", room=room)
        loaded = set(self.rooms())
        self._known = {r for r in self._known if r in loaded}  # unloaded rooms: done
        return folded

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.sweep()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
