"""A room: one pycrdt ``Doc``, its peers, their awareness, and its writer.

Everything here is synchronous and runs on the event loop: a frame is parsed,
applied and fanned out before the next one is looked at, so peers see updates
in the order the room applied them. The room only ever appends to peers'
bounded outboxes (``rooms.peer``); it never waits for a socket.

A ``Room`` exists only for a document that loaded successfully
(``rooms.registry``), so an empty in-memory document can never stand in for
stored content.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pycrdt import Doc, TransactionEvent

from crdt import protocol
from crdt.awareness import AwarenessStates
from crdt.protocol import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    AwarenessUpdate,
    DocUpdate,
    ProtocolError,
    QueryAwareness,
    SyncStep1,
)
from rooms.observer import RoomObserver
from rooms.peer import Peer
from rooms.persistence import PersistenceSettings, RoomWriter, StoreWorker
from rooms.store import StoredRoom

log = logging.getLogger("codementor.room")


class Room:
    def __init__(
        self,
        name: str,
        doc: Doc[Any],
        stored: StoredRoom,
        worker: StoreWorker,
        settings: PersistenceSettings,
        observer: RoomObserver,
    ) -> None:
        self.name = name
        self.doc = doc
        self.peers: dict[int, Peer] = {}
        self.awareness = AwarenessStates()
        self.empty_since: float = time.monotonic()
        self.closing = False
        self._observer = observer
        self.writer = RoomWriter(
            name, doc, stored, worker, settings, observer, on_durable=self._send_receipts
        )

    # -- membership -------------------------------------------------------

    def join(self, peer: Peer) -> None:
        """Add a peer and start its handshake: our Step1, then who is here."""
        self.peers[peer.id] = peer
        peer.send(protocol.sync_step1(self.doc.get_state()))
        snapshot = self.awareness.snapshot()
        if snapshot is not None:
            peer.send(protocol.awareness_frame(snapshot))

    def leave(self, peer: Peer) -> None:
        """Remove a peer and tell the others its cursors are gone."""
        if self.peers.pop(peer.id, None) is None:
            return
        removal = self.awareness.remove_owner(peer.id)
        if removal is not None:
            self.broadcast(protocol.awareness_frame(removal), exclude=None)
        if not self.peers:
            self.empty_since = time.monotonic()

    # -- incoming frames --------------------------------------------------

    def receive(self, peer: Peer, frame: bytes, received_at: float) -> None:
        """Handle one frame from ``peer``. Raises ``ProtocolError`` for a bad one,
        in which case the document is unchanged and nobody else is affected."""
        self._observer.frame_received(frame)
        message = protocol.parse_frame(frame)
        if isinstance(message, DocUpdate):
            self._apply_update(peer, frame, message, received_at)
        elif isinstance(message, SyncStep1):
            try:
                reply = self.doc.get_update(message.state_vector)
            except (ValueError, RuntimeError) as exc:
                raise ProtocolError(CLOSE_POLICY_VIOLATION, "undecodable state vector") from exc
            peer.send(protocol.sync_step2(reply))
        elif isinstance(message, AwarenessUpdate):
            relay = self.awareness.apply(message.payload, peer.id)
            if relay is not None:
                self.broadcast(protocol.awareness_frame(relay), exclude=peer)
        elif isinstance(message, QueryAwareness):
            snapshot = self.awareness.snapshot()
            if snapshot is not None:
                peer.send(protocol.awareness_frame(snapshot))

    def _apply_update(
        self, peer: Peer, frame: bytes, message: DocUpdate, received_at: float
    ) -> None:
        update = message.update
        if update == protocol.EMPTY_UPDATE:
            return  # an empty client's Step2: nothing to apply, store or relay
        if self.writer.backlogged:
            # The store is failing and the backlog is full. Refusing the writer is
            # lossless: its client keeps the edit and resends it in Step2 later.
            self._observer.peer_dropped("store_backlog")
            peer.close(CLOSE_TRY_AGAIN_LATER, "store unavailable, retry later")
            self.leave(peer)
            return
        started = time.perf_counter()
        try:
            self.doc.apply_update(update)
        except (ValueError, RuntimeError) as exc:
            # yrs refuses undecodable bytes (ValueError) and structurally impossible
            # updates (RuntimeError, "block parent must be deleted or shared ref
            # type"); in both cases the document is left as it was.
            raise ProtocolError(CLOSE_POLICY_VIOLATION, "invalid update") from exc
        self._observer.update_applied(time.perf_counter() - started)
        self.writer.add(update)
        self.broadcast(protocol.as_update_frame(frame, message), exclude=peer)
        self._observer.fanned_out(time.perf_counter() - received_at)

    # -- outgoing ---------------------------------------------------------

    def broadcast(self, frame: bytes, exclude: Peer | None) -> None:
        too_slow: list[Peer] = []
        for peer in self.peers.values():
            if peer is exclude or peer.closed:
                continue
            if not peer.send(frame):
                too_slow.append(peer)
        for peer in too_slow:
            self._observer.peer_dropped("send_queue_full")
            self.leave(peer)

    def edit(self, change: Callable[[Doc[Any]], None], origin: str = "server") -> None:
        """Change the document on the server (runner results, the AI, tests).
        The resulting updates take the same path as a peer's: stored and sent to everyone."""
        updates: list[bytes] = []

        def collect(event: TransactionEvent) -> None:
            updates.append(event.update)

        subscription = self.doc.observe(collect)
        try:
            with self.doc.transaction(origin=origin):
                change(self.doc)
        finally:
            self.doc.unobserve(subscription)
        for update in updates:
            if update != protocol.EMPTY_UPDATE:
                self.writer.add(update)
                self.broadcast(protocol.update_frame(update), exclude=None)

    def _send_receipts(self, state_vector: bytes) -> None:
        receipt: bytes | None = None
        for peer in self.peers.values():
            if peer.wants_receipts:
                receipt = receipt or protocol.save_receipt_frame(state_vector)
                peer.send(receipt)

    def send_keepalives(self, now: float, interval: float) -> None:
        for peer in self.peers.values():
            if now - peer.last_enqueued >= interval:
                peer.send(protocol.KEEPALIVE_FRAME)

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        self.writer.start()

    async def close(self, code: int | None = None, reason: str = "") -> bool:
        """Close every peer (when ``code`` is given) and flush. False if updates remain unstored."""
        if code is not None:
            for peer in list(self.peers.values()):
                peer.close(code, reason)
        return await self.writer.close()
