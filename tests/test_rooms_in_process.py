"""Rooms, the registry and the brokers, driven in this process (``tests.harness``).

Room logic needs no socket: these tests call the real ``Room``, ``RoomRegistry``,
SQLite store and brokers directly, with real pycrdt documents on the client side, so
each runs in milliseconds and a failure points at the room, not at a transport. The
websocket suites (``test_smoke_sync``, ``test_roles`` ...) keep checking the same
behaviour end to end.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pycrdt import Map

from crdt import protocol, schema
from crdt.awareness import Entry, encode_update
from rooms.broker import Broker
from rooms.roles import Role
from rooms.sqlite_store import SQLiteStore
from rooms.store import RoomInfo
from tests.harness import (
    STORE_FILE,
    FakeClient,
    pump_all,
    redis_broker,
    settings,
    started,
    stored_text,
    text_of,
)
from tests.redisproc import RedisProcess
from tests.support import eventually

pytestmark = pytest.mark.anyio


def sees(client: FakeClient, text: str) -> bool:
    """Handle what ``client`` was sent; does its document now read ``text``?"""
    client.pump()
    return str(client.text) == text


# -- sync --------------------------------------------------------------------------


async def test_step1_and_step2_bring_both_sides_up_to_date(tmp_path: Path) -> None:
    """A client that edited offline joins a room holding other edits: the room's Step1
    fetches its edits (its Step2), the client's Step1 fetches the room's, and the room
    relays the newcomer's edits to who was there."""
    async with started(tmp_path) as registry:
        ada = await FakeClient(name="Ada").join(registry, "sync")
        ada.type("room;")
        bob = FakeClient(name="Bob")
        bob.type("offline;")  # not in a room yet: kept, as a browser keeps it
        await bob.join(registry, "sync")
        pump_all(ada, bob)
        assert ada.synced and bob.synced
        assert str(ada.text) == str(bob.text) == text_of(registry.rooms["sync"].doc)
        assert "room;" in str(ada.text) and "offline;" in str(ada.text)


async def test_a_client_with_nothing_new_sends_an_empty_step2_that_changes_nothing(
    tmp_path: Path,
) -> None:
    async with started(tmp_path) as registry:
        ada = await FakeClient().join(registry, "empty")
        ada.type("x")
        before = len(ada.frames)
        bob = await FakeClient(name="Bob").join(registry, "empty")
        pump_all(ada, bob)
        # Bob's Step2 was empty: nothing relayed to Ada, nothing more to store.
        assert len(ada.frames) == before and str(bob.text) == "x"
        assert registry.rooms["empty"].writer.pending == 1


# -- relay and storage ---------------------------------------------------------------


async def test_an_update_is_relayed_as_the_same_bytes_and_stored(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        ada = await FakeClient().join(registry, "relay")
        bob = await FakeClient(name="Bob").join(registry, "relay")
        pump_all(ada, bob)
        before = len(bob.frames)
        sent: list[bytes] = []
        ada.doc.observe(lambda event: sent.append(protocol.update_frame(event.update)))
        ada.type("def f():\n    return 1\n")
        bob.pump()
        assert bob.frames[before:] == sent  # fanned out untouched
        assert str(bob.text) == "def f():\n    return 1\n"
        room = registry.rooms["relay"]
        assert await room.writer.flush()
        assert stored_text(tmp_path, "relay") == str(ada.text)
    # A new process reads the same document back from the file.
    async with started(tmp_path) as again:
        carol = await FakeClient(name="Carol").join(again, "relay")
        assert str(carol.text) == "def f():\n    return 1\n"


async def test_a_clean_close_flushes_what_the_window_had_not(tmp_path: Path) -> None:
    config = settings(durability_window=60.0)  # the timer never fires in this test
    async with started(tmp_path, config=config) as registry:
        ada = await FakeClient().join(registry, "close")
        ada.type("unflushed")
        assert stored_text(tmp_path, "close") == ""
    assert stored_text(tmp_path, "close") == "unflushed"


async def test_updates_are_stored_within_the_durability_window(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        ada = await FakeClient().join(registry, "window")
        for word in ("a", "b", "c"):
            ada.type(word)
        await eventually(lambda: stored_text(tmp_path, "window") == "abc", 5, "stored")


async def test_compaction_under_the_in_process_broker_keeps_the_text(tmp_path: Path) -> None:
    """The embedded broker grants every lease: past the threshold the log is folded into
    a snapshot, and the room reloads from it unchanged."""
    config = settings(compact_updates=5)
    async with started(tmp_path, Broker(), config) as registry:
        ada = await FakeClient().join(registry, "compact")
        for i in range(12):
            ada.type(f"{i};")
            assert await registry.rooms["compact"].writer.flush()
    store = SQLiteStore(tmp_path / STORE_FILE)
    try:
        stored = store.load("compact")
    finally:
        store.close()
    assert stored.snapshot is not None and len(stored.updates) < 5
    assert stored_text(tmp_path, "compact") == "".join(f"{i};" for i in range(12))


# -- roles ---------------------------------------------------------------------------


async def test_a_viewers_update_is_refused_said_once_and_not_stored(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        editor = await FakeClient().join(registry, "roles")
        viewer = await FakeClient(Role.VIEWER, "Vera").join(registry, "roles")
        pump_all(editor, viewer)
        before = len(editor.frames)
        viewer.type("vandalism")
        viewer.type("again")
        pump_all(editor, viewer)
        assert viewer.denials == ["permission denied"]  # told once per connection
        assert len(editor.frames) == before  # nothing relayed
        room = registry.rooms["roles"]
        assert text_of(room.doc) == "" and room.writer.pending == 0
        assert not viewer.peer.closed  # refused, not disconnected
    assert stored_text(tmp_path, "roles") == ""


async def test_a_reviewer_may_comment_but_not_edit_code(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        owner = await FakeClient(Role.OWNER, "Olga").join(registry, "review")
        reviewer = await FakeClient(Role.REVIEWER, "Rita").join(registry, "review")
        # The comment first: a refused change stays in the reviewer's own document, and
        # its later updates depend on it (the room would hold them as pending).
        schema.comments(reviewer.doc)["c1"] = Map({"text": "why?", "resolved": False})
        reviewer.type("EVIL")
        pump_all(owner, reviewer)
        assert reviewer.denials == ["permission denied"]
        assert str(owner.text) == "" and "c1" in schema.comments(owner.doc)


async def test_a_promoted_viewer_resends_what_was_refused(tmp_path: Path) -> None:
    """A role change asks the peer for its state: edits refused under the old role come
    back in its Step2 and are accepted under the new one."""
    async with started(tmp_path) as registry:
        owner = await FakeClient(Role.OWNER, "Olga").join(registry, "promote")
        viewer = await FakeClient(Role.VIEWER, "Vic").join(registry, "promote")
        viewer.type("before;")
        pump_all(owner, viewer)
        assert str(owner.text) == ""
        changed = registry.rooms["promote"].set_role("u-vic", Role.EDITOR)
        assert changed == [viewer.peer]
        pump_all(owner, viewer)
        assert viewer.role_notices == [{"role": "editor", "expires": None}]
        assert str(owner.text) == "before;"


# -- awareness -----------------------------------------------------------------------


async def test_awareness_is_relayed_snapshotted_and_removed_on_leave(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        ada = await FakeClient().join(registry, "aw")
        ada.set_awareness({"user": {"name": "Ada"}, "cursor": 1})
        bob = await FakeClient(name="Bob").join(registry, "aw")
        # The join snapshot carries Ada's state without Ada sending anything new.
        assert bob.awareness == {ada.doc.client_id: {"user": {"name": "Ada"}, "cursor": 1}}
        bob.set_awareness({"user": {"name": "Bob"}})
        ada.pump()
        assert ada.awareness[bob.doc.client_id] == {"user": {"name": "Bob"}}
        bob.leave(registry)
        ada.pump()
        assert bob.doc.client_id not in ada.awareness


async def test_query_awareness_answers_with_every_state(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        a = await FakeClient(name="A").join(registry, "query")
        b = await FakeClient(name="B").join(registry, "query")
        a.set_awareness({"user": {"name": "a"}})
        b.pump()
        b.awareness.clear()
        b.send(bytes([protocol.MessageType.QUERY_AWARENESS]))
        b.pump()
        assert b.awareness == {a.doc.client_id: {"user": {"name": "a"}}}


async def test_a_peer_cannot_remove_another_peers_state(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        a = await FakeClient(name="A").join(registry, "spoof")
        b = await FakeClient(name="B").join(registry, "spoof")
        c = await FakeClient(name="C").join(registry, "spoof")
        a.set_awareness({"user": {"name": "a"}})
        # b announces a's removal with a higher clock: ignored.
        b.send(protocol.awareness_frame(encode_update([Entry(a.doc.client_id, 99, "null")])))
        pump_all(a, b, c)
        assert c.awareness == {a.doc.client_id: {"user": {"name": "a"}}}


async def test_a_broadcast_audience_sees_the_stage_only(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        assert await registry.create_room(RoomInfo("class", mode="broadcast"))
        teacher = await FakeClient(Role.OWNER, "Tan").join(registry, "class")
        teacher.set_awareness({"user": {"name": "Tan"}})
        students = [await FakeClient(Role.VIEWER, f"s{i}").join(registry, "class") for i in (1, 2)]
        for student in students:
            student.set_awareness({"user": {"name": student.peer.name}})
        pump_all(teacher, *students)
        for student in students:
            assert student.awareness == {teacher.doc.client_id: {"user": {"name": "Tan"}}}
        assert set(teacher.awareness) == {s.doc.client_id for s in students}


# -- the registry: leave, unload, reload ---------------------------------------------


async def test_an_empty_room_unloads_after_idle_time_and_reloads(tmp_path: Path) -> None:
    config = settings()
    config = type(config)(idle_unload_seconds=0.2, persistence=config.persistence)
    async with started(tmp_path, config=config) as registry:
        ada = await FakeClient().join(registry, "idle")
        ada.type("kept")
        ada.leave(registry)
        await eventually(lambda: "idle" not in registry.rooms, 5, "the room to unload")
        assert stored_text(tmp_path, "idle") == "kept"
        bob = await FakeClient(name="Bob").join(registry, "idle")
        assert str(bob.text) == "kept"


async def test_a_joined_room_does_not_unload(tmp_path: Path) -> None:
    config = settings()
    config = type(config)(idle_unload_seconds=0.1, persistence=config.persistence)
    async with started(tmp_path, config=config) as registry:
        ada = await FakeClient().join(registry, "busy")
        room = registry.rooms["busy"]
        # A room left empty beside it: once that one is unloaded, sweeps have run.
        bob = await FakeClient(name="Bob").join(registry, "left")
        bob.leave(registry)
        await eventually(lambda: "left" not in registry.rooms, 5, "the empty room to unload")
        assert registry.rooms.get("busy") is room and not ada.peer.closed


async def test_leave_hooks_run_and_a_second_leave_changes_nothing(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        left: list[str] = []
        registry.leave_hooks.append(lambda room, peer: left.append(peer.name))
        ada = await FakeClient().join(registry, "hooks")
        room = registry.rooms["hooks"]
        registry.leave(room, ada.peer)
        registry.leave(room, ada.peer)
        assert left == ["Ada", "Ada"] and not room.peers


async def test_a_clean_close_closes_every_peer_with_1012(tmp_path: Path) -> None:
    async with started(tmp_path) as registry:
        ada = await FakeClient().join(registry, "bye")
    assert ada.peer.close_code == protocol.CLOSE_SERVICE_RESTART


# -- several instances through Redis -------------------------------------------------


async def test_two_registries_share_a_room_through_redis(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    """Two instances over one SQLite file and one Redis: an update made on one reaches
    a client on the other, and so does presence."""
    one = redis_broker(redis_server.url, "one")
    two = redis_broker(redis_server.url, "two")
    async with started(tmp_path, one) as first, started(tmp_path, two) as second:
        ada = await FakeClient().join(first, "shared")
        bob = await FakeClient(name="Bob").join(second, "shared")
        ada.type("from one;")
        await eventually(lambda: sees(bob, "from one;"), 5, "the update on instance two")
        bob.type("from two;")
        await eventually(lambda: sees(ada, "from one;from two;"), 5, "the reply on one")
        ada.set_awareness({"user": {"name": "Ada"}})

        def bob_sees_ada() -> bool:
            bob.pump()
            return ada.doc.client_id in bob.awareness

        await eventually(bob_sees_ada, 5, "Ada's presence on instance two")
    # Each instance stored what it applied: the file holds both edits.
    assert stored_text(tmp_path, "shared") == "from one;from two;"


async def test_a_room_loaded_later_catches_up_from_the_stream(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    """An instance that loads the room after the others wrote to it reads what they
    published (and may not have stored yet) before it serves anyone."""
    config = settings(durability_window=60.0)  # nothing reaches the shared file first
    async with started(tmp_path / "a", redis_broker(redis_server.url, "a"), config) as first:
        ada = await FakeClient().join(first, "late")
        ada.type("published;")
        redis = redis_server.client()
        try:
            await eventually(lambda: redis.xlen("codementor:room:late") > 0, 5, "published")
        finally:
            redis.close()
        async with started(tmp_path / "b", redis_broker(redis_server.url, "b")) as second:
            bob = await FakeClient(name="Bob").join(second, "late")
            assert str(bob.text) == "published;"
