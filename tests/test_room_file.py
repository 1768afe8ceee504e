"""The .cmroom format (rooms/room_file.py): what it writes reads back the same, and every
damaged, foreign or newer file is refused with a message saying which."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import pytest
from pycrdt import Doc, Text

from rooms import room_file
from rooms.history import HistoryBase, HistoryRow, Who
from rooms.room_file import RoomFile, RoomFileError
from rooms.store import RoomInfo

ALICE = Who("u-alice", "Alice", "editor")


def sample() -> RoomFile:
    doc: Doc[Any] = Doc()
    code = doc.get("code", type=Text)
    updates = []
    for ch in "hey":
        before = doc.get_state()
        code += ch
        updates.append(doc.get_update(before))
    rows = [
        HistoryRow(3, 1.0, 1.5, ALICE, "edit", updates[:2], ((ALICE, "edit", 1), (ALICE, "ai", 1))),
        HistoryRow(7, 2.0, 2.0, ALICE, "chat", updates[2:]),
    ]
    base = HistoryBase(2, 0.5, Doc().get_update(), {"people": [ALICE.as_json()]})
    info = RoomInfo("r1", "review", "go", "T", 1.0, 2.0, 0.0, False, True, None)
    return RoomFile(info, doc.get_update(), rows, base, 1234.5)


def rebuilt(data: bytes, change: dict[str, bytes | None]) -> bytes:
    """``data`` with some members replaced (None: removed), the rest copied as they are."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(out, "w") as new:
        for name in old.namelist():
            if name not in change:
                new.writestr(name, old.read(name))
        for name, blob in change.items():
            if blob is not None:
                new.writestr(name, blob)
    return out.getvalue()


def manifest_of(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        value: dict[str, Any] = json.loads(archive.read(room_file.MANIFEST))
        return value


def with_manifest(data: bytes, **changes: Any) -> bytes:
    manifest = {**manifest_of(data), **changes}
    return rebuilt(data, {room_file.MANIFEST: json.dumps(manifest).encode()})


def test_a_room_file_reads_back_what_was_written() -> None:
    room = sample()
    data = room_file.write(room)
    assert data[:2] == b"PK"
    assert room_file.read(data) == room
    manifest = manifest_of(data)
    assert manifest["format"] == "codementor-room" and manifest["version"] == 1
    assert manifest["room"] == "r1" and manifest["info"]["mode"] == "review"
    assert manifest["counts"] == {"history_rows": 2, "history_updates": 3}
    assert set(manifest["parts"]) == {"document.bin", "history.jsonl", "history_base.bin"}


def test_the_owner_is_neither_written_nor_read() -> None:
    """Whoever imports a room owns it (the quotas count it): an exporter's user id does
    not travel, and one a file claims is ignored."""
    room = sample()
    room.info.owner = "u-exporter"
    data = room_file.write(room)
    assert "owner" not in manifest_of(data)["info"]
    claimed = {**manifest_of(data)["info"], "owner": "u-victim"}
    assert room_file.read(with_manifest(data, info=claimed)).info.owner == ""


def test_a_room_without_history_or_base_reads_back() -> None:
    room = RoomFile(RoomInfo("empty"), Doc().get_update(), [], None, 0.0)
    assert room_file.read(room_file.write(room)) == room


def test_a_newer_version_asks_for_a_newer_codementor() -> None:
    data = with_manifest(room_file.write(sample()), version=2)
    with pytest.raises(RoomFileError, match="version 2 room files need a newer codementor"):
        room_file.read(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a zip archive"),
        (b"room: r1\ncode: hello\n", "not a zip archive"),
        (b"PK\x03\x04" + b"\x00" * 40, "not a zip archive"),
    ],
)
def test_what_is_not_a_zip_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(RoomFileError, match=message):
        room_file.read(data)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99])
def test_a_truncated_file_is_refused(keep: float) -> None:
    data = room_file.write(sample())
    with pytest.raises(RoomFileError):
        room_file.read(data[: int(len(data) * keep)])


def test_a_foreign_zip_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("main.py", "print(1)\n")
    with pytest.raises(RoomFileError, match="no manifest.json"):
        room_file.read(out.getvalue())
    data = with_manifest(room_file.write(sample()), format="something-else")
    with pytest.raises(RoomFileError, match="format is 'something-else'"):
        room_file.read(data)


@pytest.mark.parametrize("version", [0, -1, "1", None, True, 1.5])
def test_a_bad_version_is_refused(version: object) -> None:
    data = with_manifest(room_file.write(sample()), version=version)
    with pytest.raises(RoomFileError, match="bad version"):
        room_file.read(data)


def test_a_changed_part_fails_its_checksum() -> None:
    data = room_file.write(sample())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        history = archive.read(room_file.HISTORY)
    altered = history.replace(b'"Alice"', b'"Mallo"')
    assert altered != history and len(altered) == len(history)
    with pytest.raises(RoomFileError, match="checksum mismatch in history.jsonl"):
        room_file.read(rebuilt(data, {room_file.HISTORY: altered}))


def test_a_missing_part_is_refused() -> None:
    data = rebuilt(room_file.write(sample()), {room_file.DOCUMENT: None})
    with pytest.raises(RoomFileError, match="document.bin is missing"):
        room_file.read(data)


def resealed(data: bytes, name: str, blob: bytes) -> bytes:
    """``data`` with member ``name`` replaced and the manifest's checksum made to fit."""
    manifest = manifest_of(data)
    manifest["parts"][name] = {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    return rebuilt(data, {name: blob, room_file.MANIFEST: json.dumps(manifest).encode()})


def test_an_undecodable_document_is_refused_even_with_a_matching_checksum() -> None:
    data = resealed(room_file.write(sample()), room_file.DOCUMENT, b"\x05\xff\xff\xff")
    with pytest.raises(RoomFileError, match="undecodable update"):
        room_file.read(data)


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b'{"seq": 1}',
        b'{"seq":1,"ts_first":1,"ts":1,"who":{"id":"a","name":"b","role":"c"},"kind":"edit",'
        b'"updates":["%%%"],"parts":null}',
        b'{"seq":1,"ts_first":1,"ts":1,"who":{"id":"a","name":"b","role":"c"},"kind":"edit",'
        b'"updates":["AAA="],"parts":[["a","b","c","edit",5]]}',
    ],
)
def test_a_malformed_history_row_is_refused(line: bytes) -> None:
    data = resealed(room_file.write(sample()), room_file.HISTORY, line + b"\n")
    with pytest.raises(RoomFileError, match="history row 1"):
        room_file.read(data)


def test_history_rows_out_of_order_are_refused() -> None:
    room = sample()
    room.history.reverse()
    with pytest.raises(RoomFileError, match="out of order"):
        room_file.read(room_file.write(room))


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"mode": "party"}, "unknown room mode"),
        ({"title": 5}, "info.title"),
        ({"created_at": "yesterday"}, "info.created_at"),
        ({"forks": "yes"}, "info.forks"),
        ({"reviewers_run": 1}, "info.reviewers_run"),
    ],
)
def test_bad_room_info_is_refused(info: dict[str, Any], message: str) -> None:
    data = room_file.write(sample())
    manifest = manifest_of(data)
    with pytest.raises(RoomFileError, match=message):
        room_file.read(with_manifest(data, info={**manifest["info"], **info}))


def test_a_file_that_unpacks_past_the_limit_is_refused_before_inflating() -> None:
    data = room_file.write(sample())
    with pytest.raises(RoomFileError, match="unpacks to more than 100 bytes"):
        room_file.read(data, max_unpacked=100)
