"""Writing a room's updates to its store: batching, retries, compaction.

One ``StoreWorker`` thread runs every store call, so the synchronous stores
(sqlite3, pymongo) never block the event loop and never run concurrently.

Each room has one ``RoomWriter``: updates are collected in memory and written
as one batch per durability window, which bounds what a SIGKILL can lose. A
failed write keeps the batch and retries with backoff; nothing is dropped. When
the log since the last snapshot grows past a threshold, it is folded into a new
snapshot (``compact_room``), which never leaves out an update the room's
document has not integrated.

Each update the room relays is also recorded as history (``rooms.history``): who sent
it and when, kept with the batch and written in the same store call, so history is as
durable as the document and costs the keystroke nothing but a list append. Entries
coalesce within a window in memory, and the store appends a flush's entry to the room's
last row when it is still within that window (``HistoryEntry.join_seconds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import structlog
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pycrdt import Doc, merge_updates

from crdt import failures, schema
from crdt.updates import decode_state_vector, uncovered
from rooms.broker import Broker
from rooms.history import HistoryEntry, HistorySettings, Who, coalesce
from rooms.observer import RoomObserver
from rooms.store import Store, StoredRoom

log = structlog.get_logger("codementor.persistence")
tracer = trace.get_tracer(__name__)

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


class SnapshotMismatch(Exception):
    """The snapshot would not reproduce the live document: compaction is refused."""


def compact_room(
    store: Store,
    room: str,
    doc_update: bytes,
    doc_state: bytes,
    upto: int,
    code: str | None = None,
) -> None:
    """Replace the room's snapshot with ``doc_update`` (the document's full state at
    state vector ``doc_state``, covering every batch up to ``upto``). Whatever of the
    stored history the document holds only as pending (dependencies that never
    arrived) is not in ``doc_update``, so it is merged in rather than dropped.
    Compaction deletes the log it folds, so ``doc_update`` is first checked against
    the live document: loaded into a fresh document it must reach ``doc_state`` and,
    when ``code`` is given, the live code text (a hostile but decodable update once
    made yrs encode a document that differs from the one it holds). Otherwise
    ``SnapshotMismatch`` is raised and the log stays. Runs on the store thread."""
    check: Doc[Any] = Doc()
    # This runs on the store thread: a panic is said as the refusal it is rather than
    # let it end the flusher.
    with failures.raised_as(lambda failure: SnapshotMismatch(f"room {room!r}: {failure}")):
        check.apply_update(doc_update)
    # Compared decoded: yrs writes a state vector's clients in no fixed order.
    if decode_state_vector(check.get_state()) != decode_state_vector(doc_state):
        raise SnapshotMismatch(f"room {room!r}: the encoded document's state vector differs")
    if code is not None and schema.code_text(check) != code:
        raise SnapshotMismatch(f"room {room!r}: the encoded document's code differs")
    stored = store.load(room)
    history = [stored.snapshot] if stored.snapshot is not None else []
    history += stored.updates
    leftovers = [part for u in history if (part := uncovered(u, doc_state)) is not None]
    snapshot = merge_updates(doc_update, *leftovers) if leftovers else doc_update
    store.compact(room, snapshot, upto)


class BatchFlusher:
    """Writes the pending updates of every room that has any in one store call per
    durability window: one SQLite transaction for 200 busy rooms instead of 2,000
    a second. A failed write keeps every batch and retries with backoff."""

    def __init__(self, worker: StoreWorker, settings: PersistenceSettings, observer: RoomObserver):
        self._worker = worker
        self._settings = settings
        self._observer = observer
        self._dirty: dict[str, RoomWriter] = {}
        self._wakeup = asyncio.Event()
        # One write at a time keeps each room's batches in order; a room reading its whole
        # history (``RoomWriter.accepted_history``) holds it too.
        self.lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # When the writes started failing (monotonic), None while the last one succeeded:
        # a store that answers reads but refuses writes makes the server not ready.
        self.failing_since: float | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="store-flusher")

    def mark(self, writer: RoomWriter) -> None:
        self._dirty[writer.name] = writer
        self._wakeup.set()

    def forget(self, writer: RoomWriter) -> None:
        if self._dirty.get(writer.name) is writer:
            del self._dirty[writer.name]

    async def _run(self) -> None:
        window = self._settings.durability_window
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(window)
            self._wakeup.clear()
            delay = window
            while self._dirty:
                writers = list(self._dirty.values())
                self._dirty.clear()
                # Shielded: cancelling the timer at shutdown must not abandon a write.
                if await asyncio.shield(self.flush(writers)):
                    delay = window
                    continue
                for writer in writers:
                    if writer.pending:
                        self._dirty.setdefault(writer.name, writer)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)

    async def flush(self, writers: list[RoomWriter]) -> bool:
        """Write these rooms' pending updates in one call. False (all kept) on failure."""
        async with self.lock:
            taken = [(w, w.take()) for w in writers]
            taken = [(w, batch) for w, batch in taken if batch.updates]
            if not taken:
                return True
            count = sum(len(b.updates) for _, b in taken)
            # One span per store write (a durability window's worth), never per update.
            attributes = {
                "codementor.rooms": len(taken),
                "codementor.updates": count,
                "codementor.bytes": sum(b.size for _, b in taken),
            }
            with tracer.start_as_current_span("store.flush", attributes=attributes) as span:
                started = time.perf_counter()
                history = {w.name: b.history for w, b in taken if b.history}
                try:
                    seqs = await self._worker.run(
                        self._worker.store.append_many,
                        {w.name: b.updates for w, b in taken},
                        history or None,
                    )
                except Exception as exc:
                    for writer, batch in taken:
                        writer.put_back(batch)
                    if self.failing_since is None:
                        self.failing_since = time.monotonic()
                    self._observer.flush_failed()
                    span.set_attribute("error.type", type(exc).__name__)
                    span.set_status(Status(StatusCode.ERROR))
                    log.exception("flush_failed", rooms=len(taken))
                    return False
                self.failing_since = None
                self._observer.flushed(time.perf_counter() - started, count)
                for writer, batch in taken:
                    await writer.stored(seqs[writer.name], batch)
                return True

    def failing_for(self) -> float:
        """Seconds since the writes started failing; 0 while they succeed."""
        since = self.failing_since
        return 0.0 if since is None else time.monotonic() - since

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


@dataclass(slots=True)
class Batch:
    updates: list[bytes]
    size: int
    # The document's state when the batch was cut (what it makes durable), for save
    # receipts; None when nobody in the room asked for receipts (get_state is not free).
    state_vector: bytes | None
    history: list[HistoryEntry]


class RoomWriter:
    """One room's updates on their way to the store (through a ``BatchFlusher``), and
    the room's compaction."""

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
        flusher: BatchFlusher | None = None,
        wants_receipts: Callable[[], bool] = lambda: True,
        history: HistorySettings | None = None,
    ) -> None:
        self.name = name
        self._history_settings = history or HistorySettings()
        self._history: list[HistoryEntry] = []
        self._doc = doc
        self._wants_receipts = wants_receipts
        self._worker = worker
        self._settings = settings
        self._observer = observer
        self._on_durable = on_durable
        self._broker = broker or Broker()
        # Without a shared flusher (a room used on its own), the writer runs its own.
        self._own_flusher = flusher is None
        self._flusher = flusher or BatchFlusher(worker, settings, observer)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._log_count = len(stored.updates)
        self._log_bytes = sum(len(u) for u in stored.updates)
        self._last_seq = stored.last_seq
        self.discarded = False  # ``discard``: the room was deleted

    @property
    def backlogged(self) -> bool:
        """True when so much is unflushed (the store is failing) that writers must wait."""
        return self._pending_bytes > self._settings.max_pending_bytes

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        if self._own_flusher:
            self._flusher.start()
        if self._pending:
            self._flusher.mark(self)

    def add(self, update: bytes) -> None:
        if not self._pending:
            if self.discarded:
                return  # the room was deleted: nothing of it may be written again
            self._flusher.mark(self)
        self._pending.append(update)
        self._pending_bytes += len(update)

    def record(self, update: bytes, who: Who, kind: str, ts: float) -> None:
        """Keep ``update`` (already ``add``-ed) as history: sent by ``who`` at ``ts``."""
        if self._history_settings.enabled:
            coalesce(self._history, HistoryEntry(ts, ts, who, kind, [update]),
                     self._history_settings)  # fmt: skip

    async def accepted_history(self) -> list[bytes]:
        """Every update this room accepted, in order: the store's snapshot and log, then
        what waits for the next flush. Read while no flush is under way, so no batch is
        between the two (taken from ``pending`` but not yet stored). The caller must use
        the result before it awaits anything else."""
        async with self._flusher.lock:
            stored = await self._worker.run(self._worker.store.load, self.name)
            history = [stored.snapshot] if stored.snapshot is not None else []
            return [*history, *stored.updates, *self._pending]

    def discard(self) -> None:
        """The room was deleted: drop what waits for a flush, and write nothing from now
        on (checked only when a first update would mark the writer: no cost per update).
        A flush under way finishes first; the deletion takes the flusher's lock after it."""
        self.discarded = True
        self._flusher.forget(self)
        self._pending, self._pending_bytes, self._history = [], 0, []
        self._history_settings = HistorySettings(retention_days=0)  # record() keeps nothing

    def replace_doc(self, doc: Doc[Any]) -> None:
        """The room rebuilt its document (``Room.rebuild_document``): compact from the new one."""
        self._doc = doc

    def take(self) -> Batch:
        state = self._doc.get_state() if self._wants_receipts() else None
        batch = Batch(self._pending, self._pending_bytes, state, self._history)
        self._pending, self._pending_bytes, self._history = [], 0, []
        return batch

    def put_back(self, batch: Batch) -> None:
        self._pending[:0] = batch.updates
        self._pending_bytes += batch.size
        self._history[:0] = batch.history

    async def stored(self, seq: int, batch: Batch) -> None:
        """``batch`` is durable as sequence ``seq``: tell the peers, maybe compact."""
        self._last_seq = seq
        self._log_count += len(batch.updates)
        self._log_bytes += batch.size
        if batch.state_vector is not None:
            self._on_durable(batch.state_vector)
        if (
            self._log_count >= self._settings.compact_updates
            or self._log_bytes >= self._settings.compact_bytes
        ):
            await self._compact()

    async def flush(self) -> bool:
        """Write everything pending now. False (kept) if the store failed."""
        return await self._flusher.flush([self])

    async def _compact(self) -> None:
        # With several instances, one at a time rewrites the snapshot; the others
        # keep appending (their batches after ``upto`` are untouched).
        if not await self._broker.acquire_lease(self.name):
            return
        upto = self._last_seq
        mark = self._broker.position(self.name)
        doc_update = self._doc.get_update()
        doc_state = self._doc.get_state()
        code = schema.code_text(self._doc)
        started = time.perf_counter()
        try:
            await self._worker.run(
                compact_room, self._worker.store, self.name, doc_update, doc_state, upto, code
            )
        except SnapshotMismatch as exc:
            # Keep the log (it replays to the live document) and try again only after
            # as much history again, not after every flush.
            log.error("compaction_refused", room=self.name, reason=str(exc))
            self._log_count = 0
            self._log_bytes = 0
            return
        except Exception:
            # The log is intact; compaction is retried after the next flush.
            log.exception("compaction_failed", room=self.name)
            return
        self._observer.compacted(time.perf_counter() - started)
        self._log_count = 0
        self._log_bytes = 0
        # The snapshot holds everything this instance had applied from the others up
        # to ``mark``: the broker may forget it.
        await self._broker.forget_before(self.name, mark)

    async def close(self) -> bool:
        """Flush what is left, retrying until the shutdown timeout. Returns False if
        some updates could not be stored."""
        self._flusher.forget(self)
        if self._own_flusher:
            await self._flusher.close()
        deadline = time.monotonic() + self._settings.shutdown_flush_timeout
        delay = self._settings.durability_window
        while not await self.flush():
            if time.monotonic() + delay > deadline:
                log.error("unflushed_updates", room=self.name, updates=self.pending)
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)
        return True
