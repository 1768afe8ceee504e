"""A room: one pycrdt ``Doc``, its peers, their awareness, and its writer.

Everything here is synchronous and runs on the event loop: a frame is parsed,
applied and fanned out before the next one is looked at, so peers see updates
in the order the room applied them. The room only ever appends to peers'
bounded outboxes (``rooms.peer``); it never waits for a socket.

A ``Room`` exists only for a document that loaded successfully
(``rooms.registry``), so an empty in-memory document can never stand in for
stored content.

Roles are checked here, per update (``rooms.roles``). In broadcast rooms,
presence is routed: the audience's awareness goes only to the stage (owners and
editors), and the audience receives only the stage's, so N students cost O(N)
awareness messages rather than O(N^2).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from pycrdt import Doc, TransactionEvent, merge_updates

from crdt import failures, integrity, protocol, schema
from crdt.awareness import NULL_STATE, AwarenessLimits, AwarenessStates, decode_update
from crdt.integrity import Refused, UpdateCheck
from crdt.protocol import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    AwarenessUpdate,
    DocUpdate,
    ProtocolError,
    QueryAwareness,
    SyncStep1,
)
from rooms.authorship import Author, Authorship
from rooms.broker import Broker
from rooms.history import (
    AI,
    AI_WHO,
    CHAT,
    COMMENT,
    EDIT,
    RUN,
    SERVER,
    HistorySettings,
    Who,
    pack_origin,
    unpack_origin,
)
from rooms.observer import RoomObserver
from rooms.peer import Peer
from rooms.persistence import BatchFlusher, PersistenceSettings, RoomWriter, StoreWorker
from rooms.roles import Mode, ReviewerCheck, Role
from rooms.store import StoredRoom
from rooms.workspace import WorkspaceError, WorkspaceLimits, WorkspaceRules

log = structlog.get_logger("codementor.room")

# What a room holds while its document is rebuilt (see ``Room._rebuild``): frames past
# either bound close their peer with 1013, which is lossless (the client resends).
HELD_FRAMES = 10_000
HELD_BYTES = 16 * 1024 * 1024
REBUILD_RETRY_MAX = 5.0
# Updates a peer sent before what they depend on (a keystroke made while reconnecting,
# ahead of its Step2), held per peer until it arrives.
PARKED_FRAMES = 1000
PARKED_BYTES = 4 * 1024 * 1024
PARKED_SECONDS = 10.0


class DocumentUnavailable(RuntimeError):
    """A server edit could not be made: the document failed and is being rebuilt."""


@dataclass(slots=True)
class _HeldFrame:
    peer: Peer
    frame: bytes
    received_at: float


@dataclass(slots=True)
class _HeldEdit:
    change: Callable[[Doc[Any]], None]
    origin: str
    who: Who | None = None


@dataclass(slots=True)
class _HeldRemote:
    update: bytes
    origin: bytes | None = None


_Held = _HeldFrame | _HeldEdit | _HeldRemote


class Room:
    def __init__(
        self,
        name: str,
        doc: Doc[Any],
        stored: StoredRoom,
        worker: StoreWorker,
        settings: PersistenceSettings,
        observer: RoomObserver,
        mode: Mode = Mode.PAIR,
        broker: Broker | None = None,
        flusher: BatchFlusher | None = None,
        awareness: AwarenessLimits | None = None,
        workspace: WorkspaceLimits | None = None,
        history: HistorySettings | None = None,
    ) -> None:
        self.name = name
        self.doc = doc
        self.mode = mode
        self.peers: dict[int, Peer] = {}
        self.stage: dict[int, Peer] = {}  # owners and editors
        self._reviewer_check: ReviewerCheck | None = None  # made when a reviewer first writes
        # Keeps from yrs the updates it would integrate wrongly (``crdt.integrity``).
        self._check = UpdateCheck()
        self._check.reset(doc)
        # Keeps the workspace's files within their rules and limits (``rooms.workspace``).
        self.workspace = WorkspaceRules(workspace)
        self.awareness = AwarenessStates(awareness)
        self.broker = broker = broker or Broker()
        self._remote_stage: set[int] = set()  # client IDs announced by other instances' stage
        self.empty_since: float = time.monotonic()
        self.failed = False  # its document failed and could not be rebuilt: unload it
        self._observer = observer
        self._receipt_peers = 0  # peers that asked for save receipts
        # While the document is rebuilt after yrs failed: the task, and what waits for it
        # (peers' frames, server edits, other instances' updates), in arrival order.
        self._rebuild: asyncio.Task[None] | None = None
        self._held: deque[_Held] | None = None
        self._held_bytes = 0
        # Called with (room, peer, text) for each chat message a peer posted: who posted
        # it is the peer's verified identity (the AI answers "@ai" this way).
        self.chat_hooks: list[Callable[[Room, Peer, str], None]] = []
        # Per peer id: updates waiting for what they depend on (``_park``).
        self._parked: dict[int, deque[tuple[Peer, bytes, DocUpdate, float, float]]] = {}
        # Stamps who wrote chat and comments, and keeps runs the server's (rooms.authorship).
        self._authorship = Authorship(doc)
        self.writer = RoomWriter(
            name, doc, stored, worker, settings, observer, self._send_receipts, broker, flusher,
            wants_receipts=lambda: self._receipt_peers > 0, history=history,
        )  # fmt: skip

    # -- membership -------------------------------------------------------

    def join(self, peer: Peer) -> None:
        """Add a peer and start its handshake: our Step1, then who is here."""
        self.peers[peer.id] = peer
        self._receipt_peers += peer.wants_receipts
        if peer.role.on_stage:
            self.stage[peer.id] = peer
        self._send(peer, protocol.sync_step1(self.doc.get_state()))
        self._send_awareness_snapshot(peer)

    def leave(self, peer: Peer) -> None:
        """Remove a peer and tell the others its cursors are gone."""
        if self.peers.pop(peer.id, None) is None:
            return
        self._receipt_peers -= peer.wants_receipts
        self.stage.pop(peer.id, None)
        self._parked.pop(peer.id, None)
        if peer.grant_timer is not None:
            peer.grant_timer.cancel()
        removal = self.awareness.remove_owner(peer.id)
        if removal is not None:
            self._relay_awareness(peer, protocol.awareness_frame(removal))
            self.broker.publish_awareness(self.name, removal, peer.role.on_stage)
        if not self.peers:
            self.empty_since = time.monotonic()

    # -- incoming frames --------------------------------------------------

    def receive(self, peer: Peer, frame: bytes, received_at: float) -> None:
        """Handle one frame from ``peer``. Raises ``ProtocolError`` for a bad one,
        in which case the document is unchanged and nobody else is affected."""
        self._observer.frame_received(frame)
        if self._held is not None:
            self._hold(_HeldFrame(peer, frame, received_at), len(frame))
            return
        message = protocol.parse_frame(frame)
        if isinstance(message, DocUpdate):
            self._apply_update(peer, frame, message, received_at)
        elif isinstance(message, SyncStep1):
            # A read: the document is unchanged whatever yrs did.
            with failures.raised_as(_violation("undecodable state vector")):
                reply = self.doc.get_update(message.state_vector)
            self._send(peer, protocol.sync_step2(reply))
        elif isinstance(message, AwarenessUpdate):
            relay = self.awareness.apply(
                message.payload, peer.id, user=peer.user_id, personal=peer.personal
            )
            if relay is not None:
                self._relay_awareness(peer, protocol.awareness_frame(relay))
                self.broker.publish_awareness(self.name, relay, peer.role.on_stage)
        elif isinstance(message, QueryAwareness):
            self._send_awareness_snapshot(peer)

    def _routed(self, peer: Peer) -> bool:
        """Is ``peer`` in a broadcast room's audience, whose presence is routed?"""
        return self.mode is Mode.BROADCAST and not peer.role.on_stage

    def _relay_awareness(self, sender: Peer | None, frame: bytes, on_stage: bool = True) -> None:
        """Relay to the local peers who may see it: in a broadcast room the audience's
        presence goes to the stage only. ``sender`` None: from another instance."""
        if sender is not None:
            on_stage = not self._routed(sender)
        if self.mode is Mode.BROADCAST and not on_stage:
            self.broadcast(frame, exclude=sender, peers=self.stage)
        else:
            self.broadcast(frame, exclude=sender)

    def _send_awareness_snapshot(self, peer: Peer) -> None:
        if self._routed(peer):
            snapshot = self.awareness.snapshot(
                include=lambda owner, cid: owner in self.stage or cid in self._remote_stage
            )
        else:
            snapshot = self.awareness.snapshot()
        if snapshot is not None:
            self._send(peer, protocol.awareness_frame(snapshot))

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
        if not peer.role.writes_everything and not self._may_write(peer, update):
            self._refuse_write(peer)
            return
        check = self._check
        try:
            admitted = check.admit(self.doc, update)
        except Refused as exc:
            if exc.missing:
                # Behind, not hostile (it typed while reconnecting): its Step2 brings
                # what this depends on. Held until then (bounded), in order.
                self._park(peer, frame, message, received_at)
                return
            if exc.busy:
                self._observer.peer_dropped("verify_budget")
                peer.close(CLOSE_TRY_AGAIN_LATER, "room busy: retry")  # lossless: resent
                self.leave(peer)
                return
            raise ProtocolError(CLOSE_POLICY_VIOLATION, "invalid update", exc.reason) from exc
        try:
            self.workspace.check(
                self.doc,
                admitted.update,
                admitted.items,
                lambda: check.index(self.doc),
                admitted.deletes,
            )
        except WorkspaceError as exc:
            check.failed()
            log.info("workspace_rule_refused", room=self.name, peer=peer.conn_id, path=exc.path,
                     rule=exc.rule)  # fmt: skip
            self._refuse_write(peer)
            return
        if admitted.update is not update:  # only the new part of a repeating update
            update = admitted.update
            frame = protocol.update_frame(update)
            message = DocUpdate(update, message.is_step2)
        started = time.perf_counter()
        try:
            self.doc.apply_update(update)
        except BaseException as exc:
            if not failures.is_yrs_failure(exc):
                raise
            check.failed()
            # Undecodable bytes leave the document as it was; a refused or panicked
            # integration may not (``crdt.failures``): rebuild it from what was accepted.
            if not failures.leaves_doc_intact(exc):
                self.rebuild_document(f"update from {peer.conn_id}: {failures.describe(exc)}")
            raise ProtocolError(
                CLOSE_POLICY_VIOLATION, "invalid update", failures.describe(exc)
            ) from exc
        if admitted.verify and not integrity.consistent(self.doc):
            # yrs took it without a word and its views no longer agree: the update was
            # not accepted (neither stored nor relayed), so a rebuild leaves it out.
            self.rebuild_document(f"update from {peer.conn_id}: inconsistent document")
            raise ProtocolError(CLOSE_POLICY_VIOLATION, "invalid update", "origins contradict")
        check.commit(admitted)
        self._observer.update_applied(time.perf_counter() - started)
        self.writer.add(update)
        if self._parked and peer.id in self._parked:
            self._unpark_later(peer)
        if self._authorship.pending:  # chat, comments or runs: see rooms.authorship
            self._correct(peer, update, received_at)
            return
        self.broadcast(protocol.as_update_frame(frame, message), exclude=peer)
        self._observer.fanned_out(time.perf_counter() - received_at)
        self._publish(update, _who(peer), EDIT)

    def _correct(self, peer: Peer, update: bytes, received_at: float) -> None:
        """The peer's update touched chat, comments or runs: stamp its authorship, undo
        what only the server may write, and send the update and the correction as one
        (nobody sees the forged fields)."""
        author = Author(peer.name, peer.user_id, peer.role.value)
        roots = {change.root for change in self._authorship.pending}
        kind = CHAT if schema.CHAT in roots else COMMENT if schema.COMMENTS in roots else EDIT
        found = self._authorship.correction(author)
        fixes: list[bytes] = []
        posted: list[str] = []
        if found is not None:
            fix, posted = found
            # Recorded as part of the peer's update below, not as a server edit.
            fixes, _ = self._change(fix, "server", record=False)
        merged = merge_updates(update, *fixes) if fixes else update
        self.broadcast(protocol.update_frame(merged), exclude=peer)
        for fixed in fixes:
            self._send(peer, protocol.update_frame(fixed))
        self._observer.fanned_out(time.perf_counter() - received_at)
        self._publish(merged, _who(peer), kind)
        for text in posted:
            for hook in self.chat_hooks:
                try:
                    hook(self, peer, text)
                except Exception:
                    log.exception("chat_hook_failed", room=self.name)

    def _park(self, peer: Peer, frame: bytes, message: DocUpdate, received_at: float) -> None:
        """Hold an update that depends on what the peer has yet to send. Past the bounds,
        or when the oldest waited too long, the peer is closed with 1013 (lossless: its
        client resends everything in its next Step2)."""
        parked = self._parked.setdefault(peer.id, deque())
        size = sum(len(p[1]) for p in parked) + len(frame)
        now = time.monotonic()
        waited = now - parked[0][4] if parked else 0.0
        if len(parked) >= PARKED_FRAMES or size > PARKED_BYTES or waited > PARKED_SECONDS:
            self._parked.pop(peer.id, None)
            self._observer.peer_dropped("resync")
            peer.close(CLOSE_TRY_AGAIN_LATER, "resync: update depends on unsent data")
            self.leave(peer)
            return
        parked.append((peer, frame, message, received_at, now))

    def _unpark_later(self, peer: Peer) -> None:
        """The peer's update was applied: try what it had waiting, in order (after this
        update is relayed, so everyone receives the peer's updates in its order)."""
        asyncio.get_running_loop().call_soon(self._unpark, peer)

    def _unpark(self, peer: Peer) -> None:
        parked = self._parked.pop(peer.id, None)
        if not parked or peer.closed or self.peers.get(peer.id) is not peer:
            return
        for _, frame, message, received_at, _ in parked:
            if peer.closed:
                return
            if self._held is not None:  # a rebuild started: wait with everything else
                self._hold(_HeldFrame(peer, frame, received_at), len(frame))
                continue
            try:
                self._apply_update(peer, frame, message, received_at)
            except ProtocolError as exc:
                self._reject(peer, exc)
                return

    def _reject(self, peer: Peer, exc: ProtocolError) -> None:
        """A frame the room took up later (held or parked) turned out bad: the transport
        has moved on, so the room closes the peer as the transport would have."""
        log.info(
            "frame_rejected", room=self.name, peer=peer.conn_id, reason=exc.reason,
            detail=exc.detail or None,
        )  # fmt: skip
        self._observer.frame_rejected("malformed")
        peer.close(exc.code, exc.reason)
        self.leave(peer)

    # -- from other instances ---------------------------------------------

    def apply_remote_update(self, update: bytes, origin: bytes | None = None) -> None:
        """An update another instance applied. Applied, sent to every local peer, and
        stored here too: the instance it came from may die before its own flush, and
        an update this instance received must be durable within its window like any
        other. Compaction folds the copies, and the store keeps one copy of each in the
        history (``origin``: who sent it and when; absent from a re-seed, whose
        content every instance recorded already)."""
        if self._held is not None:
            self._hold(_HeldRemote(update, origin), len(update))
            return
        try:
            self.doc.apply_update(update)
        except BaseException as exc:
            if not failures.is_yrs_failure(exc):
                raise
            # The origin instance accepted it, so this cannot happen unless the
            # stream is corrupt: skip it rather than stop following the room.
            log.error("remote_update_refused", room=self.name, error=failures.describe(exc))
            if not failures.leaves_doc_intact(exc):
                self.rebuild_document(f"remote update: {failures.describe(exc)}")
            return
        self._check.learn(update)
        self.workspace.learn(update)
        self._authorship.trusted(self.doc)
        self.writer.add(update)
        unpacked = unpack_origin(origin) if origin is not None else None
        if unpacked is not None:
            ts, who, kind = unpacked
            self.writer.record(update, who, kind, ts)
        self.broadcast(protocol.update_frame(update), exclude=None)

    def apply_remote_awareness(self, payload: bytes, instance: str, on_stage: bool) -> None:
        try:
            relay = self.awareness.apply(payload, f"remote:{instance}", trusted=True)
        except ProtocolError:
            log.warning("remote_awareness_refused", room=self.name, instance=instance)
            return
        if relay is None:
            return
        for entry in decode_update(relay):
            if on_stage and entry.state != NULL_STATE:
                self._remote_stage.add(entry.client_id)
            else:
                self._remote_stage.discard(entry.client_id)
        self._relay_awareness(None, protocol.awareness_frame(relay), on_stage)

    def expire_remote_awareness(self, max_age: float) -> None:
        """Drop other instances' presence that stopped being renewed (say, the instance
        died and nobody announced the removal)."""
        removal = self.awareness.expire(
            lambda owner: isinstance(owner, str) and owner.startswith("remote:"), max_age
        )
        if removal is not None:
            self.broadcast(protocol.awareness_frame(removal), exclude=None)

    def _may_write(self, peer: Peer, update: bytes) -> bool:
        """The slow path, for reviewers and viewers only; owners and editors never get here."""
        if peer.role is not Role.REVIEWER:
            return False
        if self._reviewer_check is None:
            self._reviewer_check = ReviewerCheck(self.doc)
        # Only the check's throwaway copy sees it (and is dropped): the document is intact.
        with failures.raised_as(_violation("invalid update")):
            return self._reviewer_check.allows(update)

    def _refuse_write(self, peer: Peer) -> None:
        """Drop the update (not applied, relayed or stored); say so once per connection."""
        self._observer.write_refused(peer.role.value)
        if not peer.told_denied:
            peer.told_denied = True
            self._send(peer, protocol.permission_denied_frame("permission denied"))

    # -- roles ------------------------------------------------------------

    def set_role(self, who: str, role: Role, ttl: float | None = None) -> list[Peer]:
        """Give the connection ``who`` (its ``conn`` id) or every connection of the user
        id ``who`` the role ``role`` at once, for ``ttl`` seconds if given (then it reverts
        to the token's role). Returns the peers changed."""
        changed = [p for p in self.peers.values() if who in (p.user_id, p.conn_id)]
        for peer in changed:
            if peer.grant_timer is not None:
                peer.grant_timer.cancel()
                peer.grant_timer = None
            expires = None
            if ttl is not None and role is not peer.granted_role:
                loop = asyncio.get_running_loop()
                peer.grant_timer = loop.call_later(ttl, self._expire_grant, peer)
                expires = time.time() + ttl
            peer.grant_expires = expires
            self._change_role(peer, role, expires)
        return changed

    def revert_role(self, who: str) -> list[Peer]:
        """Take a grant back early: the connection ``who`` (its ``conn`` id) or every
        connection of the user id ``who`` returns to its token's role now, and a timed
        grant's timer is cancelled. Returns the peers reverted."""
        reverted = [p for p in self.peers.values() if who in (p.user_id, p.conn_id)]
        for peer in reverted:
            if peer.grant_timer is not None:
                peer.grant_timer.cancel()
                peer.grant_timer = None
            peer.grant_expires = None
            if peer.role is not peer.granted_role:
                self._change_role(peer, peer.granted_role, None)
        return reverted

    def _expire_grant(self, peer: Peer) -> None:
        peer.grant_timer = None
        peer.grant_expires = None
        if peer.id in self.peers:
            self._change_role(peer, peer.granted_role, None)

    def _change_role(self, peer: Peer, role: Role, expires: float | None) -> None:
        was_routed = self._routed(peer)
        peer.role = role
        peer.told_denied = False
        if role.on_stage:
            self.stage[peer.id] = peer
        else:
            self.stage.pop(peer.id, None)
        notice = {"role": role.value, "expires": expires}
        self._send(peer, protocol.role_changed_frame(json.dumps(notice)))
        # Ask for the peer's state: edits refused under its old role sit in its document,
        # and its later updates depend on them. Its Step2 reply brings them, now checked
        # against the new role, so the room does not hold its updates as pending.
        self._send(peer, protocol.sync_step1(self.doc.get_state()))
        if was_routed and not self._routed(peer):
            self._send_awareness_snapshot(peer)  # now on stage: show the audience

    def peers_by_role(self) -> dict[str, list[dict[str, Any]]]:
        """Who is connected, by role. ``clients`` are the awareness client IDs each
        connection announced: how a roster built from presence (a raised hand) finds
        the ``conn`` to give a role to."""
        out: dict[str, list[dict[str, Any]]] = {r.value: [] for r in Role}
        for peer in self.peers.values():
            out[peer.role.value].append(
                {
                    "id": peer.user_id,
                    "conn": peer.conn_id,
                    "name": peer.name,
                    "clients": self.awareness.client_ids(peer.id),
                }
            )
        return out

    # -- outgoing ---------------------------------------------------------

    def broadcast(
        self, frame: bytes, exclude: Peer | None, peers: dict[int, Peer] | None = None
    ) -> None:
        too_slow: list[Peer] = []
        sent = 0
        for peer in (self.peers if peers is None else peers).values():
            if peer is exclude or peer.closed:
                continue
            if peer.send(frame):
                sent += 1
            else:
                too_slow.append(peer)
        self._observer.frames_sent(frame, sent)  # once per broadcast, not per peer
        for peer in too_slow:
            self._observer.peer_dropped("send_queue_full")
            self.leave(peer)

    def _send(self, peer: Peer, frame: bytes) -> None:
        """One frame to one peer (handshake answers, notices); broadcasts use ``broadcast``."""
        if peer.send(frame):
            self._observer.frames_sent(frame, 1)
        elif peer.closed and peer.id in self.peers:
            self._observer.peer_dropped("send_queue_full")
            self.leave(peer)

    def edit(
        self, change: Callable[[Doc[Any]], None], origin: str = "server", who: Who | None = None
    ) -> None:
        """Change the document on the server (runner results, the AI, tests).
        The resulting updates take the same path as a peer's: stored and sent to everyone.
        While the document is being rebuilt the change waits and is made right after.
        Raises ``DocumentUnavailable`` if yrs fails during the change (which then
        starts a rebuild). ``who``: the verified person a server edit is made for (a
        REST file edit, a restore), for the history; else it is the AI's or the server's."""
        if self._held is not None:
            self._hold(_HeldEdit(change, origin, who), 0)
            return
        updates, sent_by = self._change(change, origin, who=who)
        for update in updates:
            self.broadcast(protocol.update_frame(update), exclude=None)
            self.broker.publish_update(self.name, update, sent_by)

    def _publish(self, update: bytes, who: Who, kind: str) -> None:
        """Record ``update`` (accepted and stored) as history and send it to the other
        instances, with who sent it and when."""
        now = time.time()
        self.writer.record(update, who, kind, now)
        sent_by = pack_origin(now, who, kind) if self.broker.enabled else None
        self.broker.publish_update(self.name, update, sent_by)

    def _change(
        self,
        change: Callable[[Doc[Any]], None],
        origin: str,
        who: Who | None = None,
        record: bool = True,
    ) -> tuple[list[bytes], bytes | None]:
        """Make a server change, store it and (``record``) keep it as history; returns
        its updates and who made them (``pack_origin``), for the caller to send."""
        updates: list[bytes] = []

        def collect(event: TransactionEvent) -> None:
            updates.append(event.update)

        subscription = self.doc.observe(collect)
        failed: BaseException | None = None
        try:
            with self.doc.transaction(origin=origin):
                change(self.doc)
        except BaseException as exc:
            if failures.is_yrs_failure(exc) and not failures.leaves_doc_intact(exc):
                self.rebuild_document(f"server edit ({origin}): {failures.describe(exc)}")
                raise DocumentUnavailable(f"the document failed: {failures.describe(exc)}") from exc
            # Our own error: what the change did before it is in the document all the
            # same, so it is stored and sent like the rest, then the error goes on.
            failed = exc
        finally:
            self.doc.unobserve(subscription)
        self._authorship.trusted(self.doc)
        updates = [u for u in updates if u != protocol.EMPTY_UPDATE]
        author, kind = (
            (AI_WHO, AI) if origin == "ai"
            else (who or SERVER, RUN) if origin == "runner"
            else (who or SERVER, EDIT)
        )  # fmt: skip
        now = time.time()
        for update in updates:
            self._check.learn(update)
            self.workspace.learn(update)
            self.writer.add(update)
            if record:
                self.writer.record(update, author, kind, now)
        sent_by = pack_origin(now, author, kind) if self.broker.enabled else None
        if failed is not None:
            if updates:  # what it did before failing still reaches everyone
                for update in updates:
                    self.broadcast(protocol.update_frame(update), exclude=None)
                    self.broker.publish_update(self.name, update, sent_by)
            raise failed
        return updates, sent_by

    # -- recovery ---------------------------------------------------------

    @property
    def rebuilding(self) -> bool:
        return self._held is not None

    async def wait_rebuilt(self) -> None:
        """Return once no rebuild is under way (REST readers must not see a failed document)."""
        while self._rebuild is not None:
            await asyncio.shield(self._rebuild)

    def rebuild_document(self, cause: str) -> None:
        """yrs failed while changing the document, which may now hold part of an update
        nobody accepted (its text view and its encoding can disagree). Replace it with a
        document rebuilt from exactly what was accepted: the store's history plus what
        waits for the next flush. Until then, whatever would touch the document waits
        in arrival order (bounded) and is replayed on the new one."""
        if self._held is not None:
            return  # already under way: the rebuild reads history after this failure
        self._observer.document_rebuilt("started")
        self._held = deque()
        self._held_bytes = 0
        self._rebuild = asyncio.get_running_loop().create_task(
            self._rebuild_document(cause), name=f"rebuild:{self.name}"
        )

    def _hold(self, item: _Held, size: int) -> None:
        held = self._held
        assert held is not None
        peer = item.peer if isinstance(item, _HeldFrame) else None
        if peer is not None and (len(held) >= HELD_FRAMES or self._held_bytes + size > HELD_BYTES):
            self._observer.peer_dropped("rebuild_backlog")
            peer.close(CLOSE_TRY_AGAIN_LATER, "room is recovering, retry")
            self.leave(peer)
            return
        if self.failed:
            if peer is not None:
                peer.close(CLOSE_INTERNAL_ERROR, "room failed; reconnect")
                self.leave(peer)
            return
        held.append(item)
        self._held_bytes += size

    async def _rebuild_document(self, cause: str) -> None:
        started = time.perf_counter()
        try:
            doc = await self._accepted_document()
        except BaseException as exc:
            if not failures.is_yrs_failure(exc):
                raise  # cancelled: the room is closing
            # Accepted history no longer applies: no retry fixes that. Nothing touches
            # this document again; the registry drops the room (its writer flushes what
            # was accepted) and the next join loads it from the store.
            log.error(
                "document_rebuild_failed", room=self.name, cause=cause,
                error=failures.describe(exc),
            )  # fmt: skip
            self._observer.document_rebuilt("failed")
            self.failed = True
            self.close_peers(CLOSE_INTERNAL_ERROR, "room failed; reconnect")
            return
        finally:
            self._rebuild = None
        self._swap(doc)
        held, self._held, self._held_bytes = self._held or deque(), None, 0
        self._replay(held)
        log.warning(
            "document_rebuilt", room=self.name, cause=cause, replayed=len(held),
            seconds=round(time.perf_counter() - started, 4),
        )  # fmt: skip
        self._observer.document_rebuilt("done")

    async def _accepted_document(self) -> Doc[Any]:
        """A new document holding exactly what the room accepted. The store is read
        again until it answers; applying the history raises the yrs failure as is."""
        delay = 0.1
        while True:
            try:
                history = await self.writer.accepted_history()
                break
            except Exception as exc:
                log.warning("document_rebuild_retry", room=self.name, error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, REBUILD_RETRY_MAX)
        # No await from reading the history to the swap: nothing is accepted in between.
        doc: Doc[Any] = Doc()
        for update in history:
            doc.apply_update(update)
        return doc

    def _swap(self, doc: Doc[Any]) -> None:
        """Put the rebuilt document in place and resynchronise every peer with it."""
        self.doc = doc
        self.writer.replace_doc(doc)
        self._reviewer_check = None
        self._check.reset(doc)
        self.workspace.reset()
        self._authorship.attach(doc)
        # Each peer sends back what the room lacks (the rebuilt document is exactly
        # what was accepted, so nothing a peer holds is lost).
        step1 = protocol.sync_step1(doc.get_state())
        for peer in list(self.peers.values()):
            self._send(peer, step1)

    def _replay(self, held: deque[_Held]) -> None:
        for item in held:
            if self._held is not None:  # the replay itself broke the document again
                self._hold(item, 0)
            elif isinstance(item, _HeldFrame):
                peer = item.peer
                if peer.closed or self.peers.get(peer.id) is not peer:
                    continue
                try:
                    self.receive(peer, item.frame, item.received_at)
                except ProtocolError as exc:
                    self._reject(peer, exc)
            elif isinstance(item, _HeldEdit):
                try:
                    self.edit(item.change, item.origin, item.who)
                except Exception:
                    log.exception("held_edit_failed", room=self.name)
            else:
                self.apply_remote_update(item.update, item.origin)

    def set_server_presence(self, owner: str, payload: bytes) -> None:
        """Awareness of a participant that lives in this process (the AI): kept like a
        peer's under ``owner``, shown to every local peer (on stage) and to other instances."""
        relay = self.awareness.apply(payload, owner, trusted=True)
        if relay is not None:
            self._relay_awareness(None, protocol.awareness_frame(relay), on_stage=True)
            self.broker.publish_awareness(self.name, relay, True)

    def _send_receipts(self, state_vector: bytes) -> None:
        receipt: bytes | None = None
        for peer in list(self.peers.values()):
            if peer.wants_receipts:
                receipt = receipt or protocol.save_receipt_frame(state_vector)
                self._send(peer, receipt)

    def send_keepalives(self, now: float, interval: float) -> None:
        for peer in list(self.peers.values()):
            if now - peer.last_enqueued >= interval:
                self._send(peer, protocol.KEEPALIVE_FRAME)

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        self.writer.start()

    def close_peers(self, code: int, reason: str) -> int:
        """Close every peer with ``code``; returns how many there were."""
        peers = list(self.peers.values())
        for peer in peers:
            peer.close(code, reason)
        return len(peers)

    async def close(self, code: int | None = None, reason: str = "") -> bool:
        """Close every peer (when ``code`` is given) and flush. False if updates remain unstored."""
        if code is not None:
            self.close_peers(code, reason)
        if self._rebuild is not None:
            self._rebuild.cancel()
        return await self.writer.close()


def _who(peer: Peer) -> Who:
    """The peer's verified identity, as its history shows it."""
    return Who(peer.user_id, peer.name, peer.role.value)


def _violation(reason: str) -> Callable[[str], ProtocolError]:
    """A 1008 close with ``reason``, the yrs failure as its detail."""
    return lambda failure: ProtocolError(CLOSE_POLICY_VIOLATION, reason, failure)
