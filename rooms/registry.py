"""The rooms of one process: load on first join, keep alive, unload when idle.

A room is registered only after its document loaded completely. If loading
fails, every peer waiting for it gets ``RoomLoadError`` (the server closes them
with 1011 so they retry later) and nothing is written: a failed load can never
turn into an empty document that overwrites stored content.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from opentelemetry import trace
from pycrdt import Doc

from crdt import failures, schema
from crdt.awareness import AwarenessLimits
from crdt.protocol import CLOSE_SERVICE_RESTART
from rooms.access import (
    CLOSE_TOKEN_REFUSED,
    ROTATED,
    SCAN_SECONDS,
    ExpirySchedule,
    LinksRotated,
)
from rooms.broker import Broker
from rooms.history import HistorySettings
from rooms.observer import RoomObserver
from rooms.peer import Peer
from rooms.persistence import BatchFlusher, PersistenceSettings, StoreWorker
from rooms.roles import Mode
from rooms.room import Room
from rooms.store import RoomInfo, Store
from rooms.workspace import WorkspaceLimits

log = structlog.get_logger("codementor.registry")
tracer = trace.get_tracer(__name__)

STORE_CHECK_SECONDS = 2.0
REMOTE_AWARENESS_TIMEOUT = 30.0  # y-protocols' own outdated timeout
# Several instances: how often each asks the shared store which rooms had their links
# rotated, and how far back (clock skew between instances, a slow or failed poll).
ROTATION_POLL_SECONDS = 1.0
ROTATION_POLL_MARGIN = 60.0


class RoomLoadError(Exception):
    """The room's stored history could not be read or applied."""


class RoomDeleted(RoomLoadError):
    """The room was deleted (here or on another instance): it is not loaded again."""


CLOSE_ROOM_DELETED = 4404  # final for y-websocket: the client stops reconnecting
DELETED_REASON = "room deleted"
DELETED_NAMES = 10_000  # deleted names remembered per process (implicit rooms refused)


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    idle_unload_seconds: float = 30.0
    keepalive_seconds: float = 15.0
    persistence: PersistenceSettings = field(default_factory=PersistenceSettings)
    awareness: AwarenessLimits = field(default_factory=AwarenessLimits)
    workspace: WorkspaceLimits = field(default_factory=WorkspaceLimits)
    history: HistorySettings = field(default_factory=HistorySettings)

    @property
    def tick_seconds(self) -> float:
        return max(0.05, min(1.0, self.idle_unload_seconds / 4, self.keepalive_seconds / 4))


class RoomRegistry:
    def __init__(
        self,
        store: Store,
        settings: RegistrySettings,
        observer: RoomObserver | None = None,
        broker: Broker | None = None,
    ) -> None:
        self.settings = settings
        self.broker = broker or Broker()
        self.rooms: dict[str, Room] = {}
        self.worker = StoreWorker(store)
        self._observer = observer or RoomObserver()
        self.flusher = BatchFlusher(self.worker, settings.persistence, self._observer)
        self._loading: dict[str, asyncio.Task[Room]] = {}
        self._unloading: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.draining = False  # set by drain(): not ready, no new peers
        # Called with each room right after it loaded, before anyone is served from it
        # (the runner ends runs a restart left in flight). A failing hook is logged.
        self.load_hooks: list[Callable[[Room], None]] = []
        # Called after a peer left a room (the AI stops answering an asker who left).
        self.leave_hooks: list[Callable[[Room, Peer], None]] = []
        # Loaded rooms' link rotations: peers whose token was issued before are refused.
        self.tokens_after: dict[str, float] = {}
        self.expiry = ExpirySchedule()  # closes peers when their token expires
        self._rotations_polled = 0.0  # wall clock of the last poll that answered
        self._rotation_poll: asyncio.Task[None] | None = None
        # Rooms deleted lately, oldest first (``delete``): not loaded, joined or made by
        # opening them again (``server.implicit_rooms``) while remembered.
        self.deleted: dict[str, None] = {}
        self._deleting: set[asyncio.Task[bool]] = set()
        self.broker.on_deleted = self._deleted_elsewhere

    async def start(self) -> None:
        await self.broker.start()
        self.flusher.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="room-sweeper")

    async def join(self, name: str, peer: Peer, expires: float | None = None) -> Room:
        """Put ``peer`` into room ``name``, loading the room if needed, until its token
        ``expires`` (unix seconds; None: no token). Raises ``LinksRotated`` if its token
        was issued before the room's last link rotation."""
        room = await self.loaded(name)
        if peer.issued_at < self.tokens_after.get(name, 0.0):
            raise LinksRotated(name)
        room.join(peer)
        self.expiry.add(peer, expires)
        return room

    async def _load(self, name: str) -> Room:
        """Read the room's history, catch up with other instances, then register it.
        Until it is registered, joiners wait on this task (``_loading``). Its span is
        a child of the first asker's (a websocket's admission, a REST request)."""
        with tracer.start_as_current_span("room.load", attributes={"codementor.room": name}):
            return await self._load_traced(name)

    async def _load_traced(self, name: str) -> Room:
        started = time.perf_counter()
        try:
            info = await self.worker.run(self.worker.store.room_info, name)
            tokens_after = info.tokens_after if info is not None else 0.0
            with tracer.start_as_current_span("store.load") as span:
                stored = await self.worker.run(self.worker.store.load, name)
                span.set_attribute("codementor.updates", len(stored.updates))
                span.set_attribute("codementor.snapshot", stored.snapshot is not None)
            self._observer.store_loaded(time.perf_counter() - started)
            mode = Mode(info.mode) if info is not None else Mode.PAIR
            doc: Doc[Any] = Doc()
            with failures.raised_as(lambda failure: RoomLoadError(f"stored history: {failure}")):
                if stored.snapshot is not None:
                    doc.apply_update(stored.snapshot)
                for update in stored.updates:
                    doc.apply_update(update)
            room = Room(
                name,
                doc,
                stored,
                self.worker,
                self.settings.persistence,
                self._observer,
                mode,
                self.broker,
                self.flusher,
                self.settings.awareness,
                self.settings.workspace,
                self.settings.history,
            )
            # What other instances published and nobody has stored yet, before serving.
            await self.broker.attach(room)
        except Exception as exc:
            self._observer.room_load_failed()
            log.exception("room_load_failed", room=name)
            raise RoomLoadError(f"room {name!r} could not be loaded") from exc
        finally:
            self._loading.pop(name, None)
        room.start()
        # A rotation this instance made while the room loaded is newer than what was read.
        self.tokens_after[name] = max(tokens_after, self.tokens_after.get(name, 0.0))
        self.rooms[name] = room
        self._observer.room_loaded(time.perf_counter() - started)
        for hook in self.load_hooks:
            try:
                hook(room)
            except Exception:
                log.exception("room_load_hook_failed", room=name)
        return room

    async def room_info(self, name: str) -> RoomInfo | None:
        return await self.worker.run(self.worker.store.room_info, name)

    async def create_room(self, info: RoomInfo, code: str = "") -> bool:
        """Record a new room and seed its document (``meta``, and ``code`` for a fork).
        False if the name is taken; nothing is changed then."""
        if not await self.worker.run(self.worker.store.create_room, info):
            return False
        self.deleted.pop(info.name, None)  # made again on purpose
        room = await self.loaded(info.name)

        def seed(doc: Doc[Any]) -> None:
            meta = schema.meta(doc)
            meta["mode"] = info.mode
            meta["language"] = info.language
            meta["title"] = info.title
            if code:
                schema.code(doc).insert(0, code)

        room.edit(seed)
        return True

    async def loaded(self, name: str) -> Room:
        """The room, loaded if needed, without joining it (REST reads and seeds)."""
        while True:
            if name in self.deleted:
                raise RoomDeleted(f"room {name!r} was deleted")
            if name in self._unloading:
                await asyncio.shield(self._unloading[name])
                continue
            room = self.rooms.get(name)
            if room is not None:
                if room.failed:
                    await self._discard(room)
                    continue
                if room.rebuilding:
                    await room.wait_rebuilt()
                    continue
                if not room.peers:
                    room.empty_since = time.monotonic()  # a fresh reprieve from unloading
                return room
            loading = self._loading.get(name)
            if loading is None:
                loading = asyncio.create_task(self._load(name), name=f"load:{name}")
                self._loading[name] = loading
            await asyncio.shield(loading)

    async def _discard(self, room: Room) -> None:
        """Drop a room whose document could not be rebuilt (``Room.failed``): what it
        accepted is flushed, and the next ``loaded`` reads it from the store."""
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            self.broker.detach(room)
            self._observer.room_unloaded()
            await room.close(CLOSE_SERVICE_RESTART, "room reloading")

    def leave(self, room: Room, peer: Peer) -> None:
        room.leave(peer)
        self.expiry.discard(peer)
        for hook in self.leave_hooks:
            try:
                hook(room, peer)
            except Exception:
                log.exception("room_leave_hook_failed", room=room.name)

    def rotate(self, name: str, tokens_after: float) -> int:
        """Room ``name``'s links were rotated (here, or on another instance): refuse
        tokens issued before ``tokens_after`` from now on and close the peers that hold
        one with 4401. Returns how many were closed. The caller stores the rotation."""
        if tokens_after <= self.tokens_after.get(name, 0.0):
            return 0
        room = self.rooms.get(name)
        if room is None:
            if name in self._loading:  # it may have read the room's info before the change
                self.tokens_after[name] = tokens_after
            return 0
        self.tokens_after[name] = tokens_after
        stale = [peer for peer in room.peers.values() if peer.issued_at < tokens_after]
        for peer in stale:
            peer.close(CLOSE_TOKEN_REFUSED, ROTATED)
        if stale:
            log.info("links_rotated", room=name, closed=len(stale))
        return len(stale)

    def _poll_rotations(self) -> None:
        """Several instances: learn of rotations made elsewhere from the shared store,
        one query for every room (``Store.rotated_since``), at most one at a time."""
        if self._rotation_poll is not None and not self._rotation_poll.done():
            return
        self._rotation_poll = asyncio.create_task(self._read_rotations(), name="rotations")

    async def _read_rotations(self) -> None:
        started = time.time()
        since = (self._rotations_polled or started) - ROTATION_POLL_MARGIN
        try:
            rotated = await self.worker.run(self.worker.store.rotated_since, since)
        except Exception:
            log.warning("rotation_poll_failed", exc_info=True)
            return
        self._rotations_polled = started
        for name, tokens_after in rotated.items():
            if name in self.rooms:
                self.rotate(name, tokens_after)

    async def _sweep(self) -> None:
        settings = self.settings
        last_poll = last_scan = 0.0
        while True:
            await asyncio.sleep(settings.tick_seconds)
            now = time.monotonic()
            if self.broker.enabled and self.rooms and now - last_poll >= ROTATION_POLL_SECONDS:
                last_poll = now
                self._poll_rotations()
            if now - last_scan >= SCAN_SECONDS:
                last_scan = now
                for room in self.rooms.values():
                    self.expiry.scan(room.peers.values())
            for name, room in list(self.rooms.items()):
                if self.broker.enabled:
                    room.expire_remote_awareness(REMOTE_AWARENESS_TIMEOUT)
                if room.peers:
                    room.send_keepalives(now, settings.keepalive_seconds)
                elif (
                    now - room.empty_since >= settings.idle_unload_seconds
                    and name not in self._unloading
                ):
                    task = asyncio.create_task(self._unload(room), name=f"unload:{name}")
                    self._unloading[name] = task

    async def _unload(self, room: Room) -> None:
        """Flush and drop an empty room. A room whose flush fails stays loaded."""
        try:
            if await room.writer.close():
                if not room.peers:
                    del self.rooms[room.name]
                    self.tokens_after.pop(room.name, None)
                    self.broker.detach(room)
                    self._observer.room_unloaded()
                    return
            room.empty_since = time.monotonic()
            room.writer.start()
        finally:
            self._unloading.pop(room.name, None)

    async def drain(self) -> bool:
        """Before a shutdown: take no more peers, store every room's updates in one
        write, then close every peer with 1012 so its client reconnects (to another
        replica) and finds everything it had sent already stored. Rooms stay loaded
        until ``close``; updates arriving meanwhile are flushed there. Returns False
        if the store refused the flush (``close`` retries it)."""
        self.draining = True
        stored = await self.flusher.flush([room.writer for room in self.rooms.values()])
        peers = sum(
            room.close_peers(CLOSE_SERVICE_RESTART, "server shutting down")
            for room in list(self.rooms.values())
        )
        log.info("drained", rooms=len(self.rooms), peers=peers, stored=stored)
        return stored

    async def close(self) -> None:
        """Clean shutdown: close every peer with 1012 (clients reconnect), flush every room."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        self.expiry.close()
        if self._rotation_poll is not None:
            self._rotation_poll.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._rotation_poll
        for task in list(self._unloading.values()):
            with contextlib.suppress(Exception):
                await task
        for deleting in list(self._deleting):  # another instance's deletions, done here
            with contextlib.suppress(Exception):
                await deleting
        for room in list(self.rooms.values()):
            await room.close(CLOSE_SERVICE_RESTART, "server shutting down")
        self.rooms.clear()
        await self.flusher.close()
        await self.broker.close()
        await self.worker.close()

    async def check_store(self) -> None:
        """Raise unless the store answers within ``STORE_CHECK_SECONDS``."""
        async with asyncio.timeout(STORE_CHECK_SECONDS):
            await self.worker.run(self.worker.store.ping)

    # -- deletion ------------------------------------------------------------------

    async def delete(self, name: str) -> bool:
        """Delete room ``name`` for good: its peers are closed with 4404, what waits
        for a flush is dropped (a flush after this must not write the room back), its
        rows leave the store, and its keys the broker, which tells the other instances.
        True if the store had it."""
        existed = await self._forget(name)
        if not await self.broker.delete_room(name):
            log.warning("room_deleted_without_broker", room=name)
        return existed

    async def _forget(self, name: str) -> bool:
        """This process's part of a deletion: unload the room without flushing it, then
        delete its rows, under the flusher's lock so no flush is half done meanwhile."""
        self.deleted[name] = None
        if len(self.deleted) > DELETED_NAMES:
            del self.deleted[next(iter(self.deleted))]
        # A load or an unload under way ends first: what it registers is dropped below.
        for pending in (self._loading.get(name), self._unloading.get(name)):
            if pending is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pending)
        room = self.rooms.pop(name, None)
        if room is not None:
            room.writer.discard()
            closed = room.close_peers(CLOSE_ROOM_DELETED, DELETED_REASON)
            self.tokens_after.pop(name, None)
            self.broker.detach(room)
            # Whoever still holds the room (a run, the AI) edits it into nothing: no
            # publish would write its stream back either.
            room.broker = Broker()
            self._observer.room_unloaded()
            log.info("room_unloaded_deleted", room=name, closed=closed)
        async with self.flusher.lock:
            return await self.worker.run(self.worker.store.delete_room, name)

    def in_use(self, name: str) -> bool:
        """Loaded or loading here: someone has it open (or had, within the idle unload)."""
        return name in self.rooms or name in self._loading

    def _deleted_elsewhere(self, name: str) -> None:
        """Another instance deleted ``name``: close this one's peers and drop its pending
        updates. Its rows are deleted again here: a flush of this instance may have
        written some after the other's delete and before this notice."""
        task = asyncio.create_task(self._forget(name), name=f"deleted:{name}")
        self._deleting.add(task)
        task.add_done_callback(self._deleting.discard)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[bool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("room_delete_failed", exc_info=task.exception())
