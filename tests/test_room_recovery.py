"""A room whose document yrs broke is rebuilt from exactly what it had accepted.

The checks of ``crdt.integrity`` keep every update known to break yrs away from a
room's document; this is the layer under them: whatever still makes yrs
panic or raise while the document changes (a peer's update, a server edit) is caught
where it happens, and the document is replaced by one rebuilt from the store and the
updates waiting for it, while what arrives meanwhile waits and is replayed. A real
SQLite store and registry, in process, so the moment of the failure can be chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from crdt import protocol
from crdt.integrity import Admitted, UpdateCheck
from crdt.protocol import ProtocolError
from rooms.peer import Peer
from rooms.persistence import PersistenceSettings
from rooms.registry import RegistrySettings, RoomRegistry
from rooms.room import DocumentUnavailable, Room
from rooms.sqlite_store import SQLiteStore
from rooms.store import RoomInfo
from tests.support import eventually

pytestmark = pytest.mark.anyio
CORPUS = Path(__file__).parent / "corpus" / "yrs"


def repro() -> tuple[bytes, bytes]:
    seed, bad = (CORPUS / "repro-reported.hex").read_text().split()
    return bytes.fromhex(seed), bytes.fromhex(bad)


def registry_at(path: Path) -> RoomRegistry:
    settings = RegistrySettings(persistence=PersistenceSettings(durability_window=0.05))
    return RoomRegistry(SQLiteStore(path / "rooms.sqlite3"), settings)


class Unchecked(UpdateCheck):
    """Lets every update through to yrs: the failures this test needs are the ones the
    real check exists to keep out."""

    def admit(self, doc: Doc[Any], update: bytes) -> Admitted:
        return Admitted(update, False, ())


def text_of(doc: Doc[Any]) -> str:
    return str(doc.get("code", type=Text))


def encoded_text(doc: Doc[Any]) -> str:
    fresh: Doc[Any] = Doc()
    fresh.apply_update(doc.get_update())
    return text_of(fresh)


def edit(writer: Doc[Any], at: int, text: str) -> bytes:
    before = writer.get_state()
    writer.get("code", type=Text).insert(at, text)
    return writer.get_update(before)


async def test_a_panicking_update_is_refused_and_the_document_rebuilt(tmp_path: Path) -> None:
    seed, bad = repro()
    registry = registry_at(tmp_path)
    await registry.start()
    try:
        await registry.create_room(RoomInfo("r1"))
        honest, attacker = Peer(), Peer()
        room: Room = await registry.join("r1", honest)
        room.join(attacker)
        room._check = Unchecked()
        room.receive(honest, protocol.update_frame(seed), 0.0)
        writer: Doc[Any] = Doc()
        writer.apply_update(seed)
        expected_before = text_of(writer)

        with pytest.raises(ProtocolError) as refused:
            room.receive(attacker, protocol.update_frame(bad), 0.0)
        assert refused.value.code == protocol.CLOSE_POLICY_VIOLATION
        assert "panic" in refused.value.detail
        assert room.rebuilding

        # While the document is rebuilt, an honest edit and a server edit wait...
        later = edit(writer, 0, "# first line\n")
        room.receive(honest, protocol.update_frame(later), 0.0)
        room.edit(lambda doc: doc.get("notes", type=Text).insert(0, "server"))
        assert text_of(writer) != expected_before
        await room.wait_rebuilt()

        # ...and are replayed on the new document, which agrees with its encoding and
        # holds every accepted update (the seed, unflushed when it broke) but the panic.
        assert not room.rebuilding
        assert text_of(room.doc) == encoded_text(room.doc) == text_of(writer)
        assert str(room.doc.get("notes", type=Text)) == "server"
    finally:
        await registry.close()
    # Stored too: a new process reads the same document.
    again = registry_at(tmp_path)
    await again.start()
    try:
        reloaded = await again.loaded("r1")
        assert text_of(reloaded.doc) == text_of(writer)
    finally:
        await again.close()


async def test_a_server_edit_that_breaks_yrs_raises_and_rebuilds(tmp_path: Path) -> None:
    seed, bad = repro()
    registry = registry_at(tmp_path)
    await registry.start()
    try:
        await registry.create_room(RoomInfo("r2"))
        room = await registry.loaded("r2")
        room.edit(lambda doc: doc.apply_update(seed))
        accepted = text_of(room.doc)
        with pytest.raises(DocumentUnavailable):
            room.edit(lambda doc: doc.apply_update(bad))
        await room.wait_rebuilt()
        assert text_of(room.doc) == encoded_text(room.doc) == accepted
    finally:
        await registry.close()


async def test_what_arrives_during_a_rebuild_is_bounded(tmp_path: Path) -> None:
    """Frames held while the document is rebuilt are bounded: past the bound their
    peer is closed with 1013 (lossless: the client resends in its next Step2)."""
    seed, bad = repro()
    registry = registry_at(tmp_path)
    await registry.start()
    try:
        await registry.create_room(RoomInfo("r3"))
        flooder = Peer()
        room = await registry.join("r3", flooder)
        room._check = Unchecked()
        room.receive(flooder, protocol.update_frame(seed), 0.0)
        with pytest.raises(ProtocolError):
            room.receive(Peer(), protocol.update_frame(bad), 0.0)
        big = protocol.update_frame(b"\x00\x00" + b"\x00" * (4 * 1024 * 1024))
        for _ in range(8):
            if flooder.closed:
                break
            room.receive(flooder, big, 0.0)
        assert flooder.close_code == protocol.CLOSE_TRY_AGAIN_LATER
        await room.wait_rebuilt()
        assert text_of(room.doc) == encoded_text(room.doc)
    finally:
        await registry.close()


async def test_an_update_ahead_of_its_dependencies_waits_for_them(tmp_path: Path) -> None:
    """A client that typed while reconnecting sends the new keystroke before the Step2
    that carries its offline edits: the keystroke waits (the connection stays open),
    then both apply in the client's order and are relayed to the others."""
    registry = registry_at(tmp_path)
    await registry.start()
    try:
        await registry.create_room(RoomInfo("r4"))
        typist, other = Peer(), Peer()
        room = await registry.join("r4", typist)
        room.join(other)
        writer: Doc[Any] = Doc()
        offline = edit(writer, 0, "offline ")
        live = edit(writer, 8, "live")
        room.receive(typist, protocol.update_frame(live), 0.0)
        assert not typist.closed, (typist.close_code, typist.close_reason)
        assert "live" not in text_of(room.doc)
        room.receive(typist, protocol.update_frame(offline), 0.0)  # its Step2
        await eventually(lambda: text_of(room.doc) == "offline live")
        assert text_of(room.doc) == encoded_text(room.doc) and not typist.closed
        relayed: Doc[Any] = Doc()
        for frame in other.outbox:
            message = protocol.parse_frame(frame)
            if isinstance(message, protocol.DocUpdate):
                relayed.apply_update(message.update)
        assert text_of(relayed) == "offline live"
    finally:
        await registry.close()
