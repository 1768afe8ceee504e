"""Rooms out of a store and into one as ``.cmroom`` files: what the CLI and REST share.

Both functions are synchronous store calls: the CLI calls them directly, the server on
its store thread (``StoreWorker.run``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from pycrdt import Doc

from crdt import failures
from rooms import room_file
from rooms.room_file import RoomFile, RoomFileError
from rooms.store import CorruptDataError, RoomInfo, Store
from server.names import valid_room_name


class TransferError(Exception):
    """Export or import refused; ``status`` is the HTTP status REST answers with."""

    status = 400


class UnknownRoom(TransferError):
    status = 404

    def __init__(self, room: str) -> None:
        super().__init__(f"unknown room {room!r}")


class NameTaken(TransferError):
    status = 409

    def __init__(self, room: str) -> None:
        super().__init__(f"room {room!r} already exists: import it under another name (--as)")


class BadName(TransferError):
    status = 422

    def __init__(self, room: str) -> None:
        super().__init__(
            f"invalid room name {room!r}: 1-128 letters, digits, dots, dashes or underscores"
        )


def export_room(store: Store, name: str, document: bytes | None = None) -> bytes:
    """Room ``name`` as a ``.cmroom`` file (``collect``, then ``room_file.write``)."""
    return room_file.write(collect(store, name, document))


def collect(store: Store, name: str, document: bytes | None = None) -> RoomFile:
    """What the file of room ``name`` holds, read from the store. ``document`` is the live
    document of a loaded room (it may hold updates not flushed yet); else the stored one."""
    info = store.room_info(name)
    if document is None:
        stored = store.load(name)
        if info is None and stored.is_empty:
            raise UnknownRoom(name)
        document = merged_document([stored.snapshot or b"", *stored.updates])
    return RoomFile(
        info or RoomInfo(name),  # a room stored before rooms had info: the defaults
        document,
        store.history(name),
        store.history_base(name),
        time.time(),
    )


def read_file(data: bytes, as_name: str | None = None) -> RoomFile:
    """The room in ``data``, renamed to ``as_name`` when given; nothing is written."""
    room = room_file.read(data)
    name = as_name if as_name is not None else room.info.name
    if not valid_room_name(name):
        raise BadName(name)
    room.info = dataclasses.replace(room.info, name=name)
    return room


def import_room(store: Store, room: RoomFile) -> RoomInfo:
    """Write ``room`` (from ``read_file``) as a new room; ``NameTaken`` if its name is."""
    if not store.import_room(room.info, room.document, room.history, room.base):
        raise NameTaken(room.info.name)
    return room.info


def merged_document(updates: list[bytes]) -> bytes:
    """A stored snapshot and log as one full update; ``CorruptDataError`` if yrs refuses."""
    doc: Doc[Any] = Doc()
    with failures.raised_as(lambda failure: CorruptDataError(f"stored document: {failure}")):
        for update in updates:
            if update:
                doc.apply_update(update)
    return doc.get_update()


__all__ = [
    "BadName",
    "NameTaken",
    "RoomFileError",
    "TransferError",
    "UnknownRoom",
    "export_room",
    "import_room",
    "read_file",
]
