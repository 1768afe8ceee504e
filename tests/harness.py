"""Rooms, registries and brokers in this process: no server, no socket.

Room logic (sync, relay, roles, awareness, persistence, cross-instance sync) is
synchronous at its core, so most of it can be tested by calling it. This module
gives those tests what a transport would: a ``FakeClient`` is a real
``rooms.peer.Peer`` (the room sees nothing else) paired with a real pycrdt ``Doc``
on the client side that answers the room's frames as y-websocket does; ``started``
runs a real ``RoomRegistry`` over a real SQLite file, optionally with a real broker.
Tests that exercise the websocket transport itself still use ``tests.serverproc``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text, TransactionEvent

from crdt import protocol
from crdt.awareness import Entry, encode_update
from rooms.broker import Broker
from rooms.observer import RoomObserver
from rooms.peer import Peer
from rooms.persistence import PersistenceSettings
from rooms.redis_broker import RedisBroker, RedisSettings
from rooms.registry import RegistrySettings, RoomRegistry
from rooms.roles import Role
from rooms.room import Room
from rooms.sqlite_store import SQLiteStore
from rooms.store import StoredRoom
from tests.yclient import Notices

STORE_FILE = "rooms.sqlite3"


def settings(**persistence: Any) -> RegistrySettings:
    """Registry settings for tests: a short durability window, nothing unloads by itself."""
    window = persistence.pop("durability_window", 0.02)
    return RegistrySettings(
        idle_unload_seconds=3600,
        persistence=PersistenceSettings(durability_window=window, **persistence),
    )


def registry_at(
    path: Path, broker: Broker | None = None, config: RegistrySettings | None = None
) -> RoomRegistry:
    """A registry over the SQLite file in ``path`` (shared by every registry given it)."""
    path.mkdir(parents=True, exist_ok=True)
    return RoomRegistry(SQLiteStore(path / STORE_FILE), config or settings(), broker=broker)


@asynccontextmanager
async def started(
    path: Path, broker: Broker | None = None, config: RegistrySettings | None = None
) -> AsyncIterator[RoomRegistry]:
    """A running registry; closing it flushes every room, as a clean shutdown does."""
    registry = registry_at(path, broker, config)
    await registry.start()
    try:
        yield registry
    finally:
        await registry.close()


def redis_broker(url: str, instance: str) -> RedisBroker:
    """The multi-instance broker of instance ``instance`` on the Redis at ``url``."""
    return RedisBroker(RedisSettings(url=url, instance_id=instance, timeout=2.0), RoomObserver())


def stored_text(path: Path, room: str) -> str:
    """The room's code as its SQLite file holds it (snapshot, then the log)."""
    store = SQLiteStore(path / STORE_FILE)
    try:
        stored: StoredRoom = store.load(room)
    finally:
        store.close()
    doc: Doc[Any] = Doc()
    for update in [stored.snapshot, *stored.updates]:
        if update is not None:
            doc.apply_update(update)
    return str(doc.get("code", type=Text))


class FakeClient(Notices):
    """One y-websocket client in one room, without the websocket.

    Its ``peer`` is what the room holds: frames the room sends it wait in the peer's
    outbox until ``pump`` handles them as the browser would (answer a Step1 with a
    Step2, apply updates without echoing them, keep awareness states, note denials
    and role notices). Local edits go to the room at once, as one update frame each.
    """

    def __init__(
        self, role: Role = Role.EDITOR, name: str = "Ada", user_id: str | None = None
    ) -> None:
        super().__init__()
        self.peer = Peer(role=role, name=name, user_id=user_id or f"u-{name.lower()}")
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("code", type=Text)
        self.room: Room | None = None
        self.synced = False  # a Step2 from the room arrived
        self.frames: list[bytes] = []  # everything the room sent, in order
        self._clock = 0
        self._applying = False
        self.doc.observe(self._on_local)

    # -- joining ------------------------------------------------------------------

    def enter(self, room: Room) -> FakeClient:
        """Join ``room`` directly and finish the handshake both ways."""
        room.join(self.peer)
        return self.connected(room)

    async def join(self, registry: RoomRegistry, name: str) -> FakeClient:
        """Join through the registry (loading the room if needed), then sync."""
        return self.connected(await registry.join(name, self.peer))

    def connected(self, room: Room) -> FakeClient:
        """The peer is in ``room``: send our Step1 (as a provider does on open) and
        handle what the room sent."""
        self.room = room
        self.send(protocol.sync_step1(self.doc.get_state()))
        self.pump()
        return self

    def leave(self, registry: RoomRegistry | None = None) -> None:
        assert self.room is not None
        if registry is None:
            self.room.leave(self.peer)
        else:
            registry.leave(self.room, self.peer)
        self.room = None

    # -- to the room --------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        assert self.room is not None, "not in a room"
        self.room.receive(self.peer, frame, time.perf_counter())

    def _on_local(self, event: TransactionEvent) -> None:
        if not self._applying and self.room is not None:
            self.send(protocol.update_frame(event.update))

    def type(self, text: str, at: int | None = None) -> None:
        """Insert ``text`` into ``code`` (at the end by default), sent as one update."""
        where = len(str(self.text).encode()) if at is None else at
        self.text.insert(where, text)

    def set_awareness(self, state: dict[str, Any] | None) -> None:
        self._clock += 1
        text = "null" if state is None else json.dumps(state)
        payload = encode_update([Entry(self.doc.client_id, self._clock, text)])
        self.send(protocol.awareness_frame(payload))

    # -- from the room ------------------------------------------------------------

    def pump(self) -> int:
        """Handle every frame waiting in the peer's outbox; returns how many."""
        handled = 0
        outbox = self.peer.outbox
        while outbox:
            frame = outbox.popleft()
            self.peer.queued_bytes -= len(frame)
            self.frames.append(frame)
            self._handle(frame)
            handled += 1
        return handled

    def _handle(self, frame: bytes) -> None:
        kind = frame[0]
        if kind == protocol.MessageType.SYNC:
            message = protocol.parse_frame(frame)
            if isinstance(message, protocol.SyncStep1):
                if self.room is not None:
                    self.send(protocol.sync_step2(self.doc.get_update(message.state_vector)))
            elif isinstance(message, protocol.DocUpdate):
                self._applying = True
                try:
                    self.doc.apply_update(message.update)
                finally:
                    self._applying = False
                self.synced = self.synced or message.is_step2
        else:
            self.note(frame)

    def updates(self) -> list[bytes]:
        """The document updates among the frames received so far."""
        out = []
        for frame in self.frames:
            if frame[0] == protocol.MessageType.SYNC:
                message = protocol.parse_frame(frame)
                if isinstance(message, protocol.DocUpdate):
                    out.append(message.update)
        return out


def pump_all(*clients: FakeClient) -> None:
    """Let every client handle what it was sent until nobody has anything left (one
    client's answer can make the room send the others more)."""
    while sum(client.pump() for client in clients):
        pass


def text_of(doc: Doc[Any]) -> str:
    return str(doc.get("code", type=Text))


def doc_of(updates: list[bytes]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc
