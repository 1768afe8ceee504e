"""Writing a room's updates to its store: batching, retries, compaction.

One ``StoreWorker`` thread runs every store call, so the synchronous stores
(sqlite3, pymongo) never block the event loop and never run concurrently.

Each room has one ``RoomWriter``: updates are collected in memory and written
as one batch per durability window, which bounds what a SIGKILL can lose. A
failed write keeps the batch and retries with backoff; nothing is dropped. When
the log since the last snapshot grows past a threshold, it is folded into a new
snapshot (``compact_room``), which never leaves out an update the room's
document has not integrated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from pycrdt import Doc, merge_updates

from crdt.updates import uncovered
from rooms.broker import Broker
from rooms.observer import RoomObserver
from rooms.store import Store, StoredRoom

log = logging.getLogger("codementor.persistence")

P = ParamSpec("P")
T = TypeVar("T")

MAX_RETRY_DELAY = 5.0


@dataclass(frozen=True, slots=True)
class PersistenceSettings:
    durability_window: float = 0.1  # seconds between a write and its flush
    compact_updates: int = 500  # fold the log into a snapshot after this many updates...
    compact_bytes: int = 1024 * 1024  # ...or this many bytes
    max_pending_bytes: int = 64 * 1024 * 1024  # unflushed bytes before writers are refused
    shutdown_flush_timeout: float = 10.0


class StoreWorker:
    """Runs store calls one at a time on a dedicated thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def close(self) -> None:
        await self.run(self.store.close)
        self._executor.shutdown(wait=True)


def compact_room(store: Store, room: str, doc_update: bytes, doc_state: bytes, upto: int) -> None:
    """Replace the room's snapshot with ``doc_update`` (the document's full state at
    state vector ``doc_state``, covering every batch up to ``upto``). Whatever of the
    stored history the document holds only as pending (dependencies that never
    arrived) is not in ``doc_update``, so it is merged in rather than dropped.
    Runs on the store thread."""
    stored = store.load(room)
    history = [stored.snapshot] if stored.snapshot is not None else []
    history += stored.updates
    leftovers = [part for u in history if (part := uncovered(u, doc_state)) is not None]
    snapshot = merge_updates(doc_update, *leftovers) if leftovers else doc_update
    store.compact(room, snapshot, upto)


class RoomWriter:
    """Batches one room's updates into its store."""

    def __init__(
        self,
        name: str,
        doc: Doc[Any],
        stored: StoredRoom,
        worker: StoreWorker,
        settings: PersistenceSettings,
        observer: RoomObserver,
        on_durable: Callable[[bytes], None],
        broker: Broker | None = None,
    ) -> None:
        self.name = name
        self._doc = doc
        self._worker = worker
        self._settings = settings
        self._observer = observer
        self._on_durable = on_durable
        self._broker = broker or Broker()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._log_count = len(stored.updates)
        self._log_bytes = sum(len(u) for u in stored.updates)
        self._last_seq = stored.last_seq
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def backlogged(self) -> bool:
        """True when so much is unflushed (the store is failing) that writers must wait."""
        return self._pending_bytes > self._settings.max_pending_bytes

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"writer:{self.name}")

    def add(self, update: bytes) -> None:
        self._pending.append(update)
        self._pending_bytes += len(update)
        self._dirty.set()

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self._settings.durability_window)
            self._dirty.clear()
            delay = self._settings.durability_window
            # Shielded: cancelling the timer at shutdown must not abandon a batch mid-write.
            while not await asyncio.shield(self.flush()):
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)

    async def flush(self) -> bool:
        """Write everything pending as one batch. False (batch kept) if the store failed."""
        async with self._lock:
            if not self._pending:
                return True
            batch, nbytes = self._pending, self._pending_bytes
            self._pending, self._pending_bytes = [], 0
            state_vector = self._doc.get_state()
            started = time.perf_counter()
            try:
                seq = await self._worker.run(self._worker.store.append, self.name, batch)
            except Exception:
                self._pending[:0] = batch
                self._pending_bytes += nbytes
                self._observer.flush_failed()
                log.exception("flush_failed room=%s updates=%d", self.name, len(batch))
                return False
            self._observer.flushed(time.perf_counter() - started, len(batch))
            self._last_seq = seq
            self._log_count += len(batch)
            self._log_bytes += nbytes
            self._on_durable(state_vector)
            if (
                self._log_count >= self._settings.compact_updates
                or self._log_bytes >= self._settings.compact_bytes
            ):
                await self._compact()
            return True

    async def _compact(self) -> None:
        # With several instances, one at a time rewrites the snapshot; the others
        # keep appending (their batches after ``upto`` are untouched).
        if not await self._broker.acquire_lease(self.name):
            return
        upto = self._last_seq
        mark = self._broker.position(self.name)
        doc_update = self._doc.get_update()
        doc_state = self._doc.get_state()
        started = time.perf_counter()
        try:
            await self._worker.run(
                compact_room, self._worker.store, self.name, doc_update, doc_state, upto
            )
        except Exception:
            # The log is intact; compaction is retried after the next flush.
            log.exception("compaction_failed room=%s", self.name)
            return
        self._observer.compacted(time.perf_counter() - started)
        self._log_count = 0
        self._log_bytes = 0
        # The snapshot holds everything this instance had applied from the others up
        # to ``mark``: the broker may forget it.
        await self._broker.forget_before(self.name, mark)

    async def close(self) -> bool:
        """Stop the timer and flush what is left, retrying until the shutdown timeout.
        Returns False if some updates could not be stored."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        deadline = time.monotonic() + self._settings.shutdown_flush_timeout
        delay = self._settings.durability_window
        while not await self.flush():
            if time.monotonic() + delay > deadline:
                log.error("unflushed_updates room=%s updates=%d", self.name, self.pending)
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)
        return True
