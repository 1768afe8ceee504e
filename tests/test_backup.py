"""``codementor backup`` and ``restore`` of the SQLite store: an online copy taken while a
real server accepts edits holds every edit acknowledged before it began, passes SQLite's
integrity check, and serves again once restored; restore refuses a store in use."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc

from crdt.updates import decode_state_vector
from rooms.sqlite_store import SQLiteStore
from server.datadir import SQLITE_FILE
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.test_admin_cli import codementor
from tests.test_store_contract import build_room
from tests.yclient import YClient

pytestmark = pytest.mark.anyio


def covers(doc: Doc[Any], state_vector: bytes) -> bool:
    have = decode_state_vector(doc.get_state())
    return all(have.get(c, 0) >= k for c, k in decode_state_vector(state_vector).items())


async def test_a_backup_taken_while_serving_holds_every_acknowledged_edit(
    tmp_path: Path,
) -> None:
    live = tmp_path / "live"
    server = ServerProcess(live, {"CODEMENTOR_DURABILITY_WINDOW_MS": "20"}).start()
    backup = tmp_path / "backup"
    try:
        writer = await YClient(server.ws_url("busy")).connect("receipts=1")
        await writer.wait_synced()
        stop = asyncio.Event()

        async def type_on() -> None:
            i = 0
            while not stop.is_set():
                writer.text += f"{i},"
                i += 1
                await asyncio.sleep(0.002)

        typing = asyncio.create_task(type_on())
        await eventually(lambda: len(writer.receipts) >= 5)
        acknowledged = writer.receipts[-1]  # durable (a save receipt) before the backup
        done = await asyncio.to_thread(codementor, "backup", backup, data_dir=live)
        stop.set()
        await typing
        assert done.returncode == 0, done.stderr
        assert f"to {backup / SQLITE_FILE}".encode() in done.stdout
        # The server is still running with the store open: restore into it is refused.
        refused = await asyncio.to_thread(codementor, "restore", backup, "--force", data_dir=live)
        assert refused.returncode == 1 and b"open in another process" in refused.stderr
        final = str(writer.text)
        await writer.close()
    finally:
        server.stop()

    copy = sqlite3.connect(backup / SQLITE_FILE)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        copy.close()
    manifest = json.loads((backup / "manifest.json").read_text())
    assert (manifest["format"], manifest["store"], manifest["rooms"]) == (
        "codementor-backup",
        "sqlite",
        1,
    )

    fresh = tmp_path / "fresh"
    restored = codementor("restore", backup, data_dir=fresh)
    assert restored.returncode == 0, restored.stderr
    with ServerProcess(fresh) as again:
        reader = await YClient(again.ws_url("busy")).connect()
        try:
            await reader.wait_synced()
            text = str(reader.text)
            assert covers(reader.doc, acknowledged), "an acknowledged edit is missing"
            assert final.startswith(text) and text.count(",") >= 5
        finally:
            await reader.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    store = SQLiteStore(path / SQLITE_FILE)
    try:
        build_room(store, "orig")
    finally:
        store.close()
    return path


def test_restore_replaces_a_store_with_rooms_only_when_forced(
    data_dir: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "b"
    assert codementor("backup", backup, data_dir=data_dir).returncode == 0
    other = tmp_path / "other"
    store = SQLiteStore(other / SQLITE_FILE)
    build_room(store, "mine")
    store.close()
    refused = codementor("restore", backup, data_dir=other)
    assert refused.returncode == 1 and b"already holds rooms: pass --force" in refused.stderr
    store = SQLiteStore(other / SQLITE_FILE)
    assert [s.info.name for s in store.list_rooms()] == ["mine"]
    store.close()  # open, it makes restore refuse (as a running server does)
    forced = codementor("restore", backup / SQLITE_FILE, "--force", data_dir=other)
    assert forced.returncode == 0, forced.stderr
    store = SQLiteStore(other / SQLITE_FILE)
    try:
        assert [s.info.name for s in store.list_rooms()] == ["orig"]
        assert len(store.history("orig")) == 5
    finally:
        store.close()


def test_a_backup_goes_into_a_new_directory_only(data_dir: Path, tmp_path: Path) -> None:
    backup = tmp_path / "b"
    assert codementor("backup", backup, data_dir=data_dir).returncode == 0
    again = codementor("backup", backup, data_dir=data_dir)
    assert again.returncode == 1 and b"already holds a backup" in again.stderr
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    busy = codementor("backup", tmp_path / "busy", data_dir=data_dir)
    assert busy.returncode == 1 and b"is not empty" in busy.stderr
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
    none = codementor("backup", tmp_path / "c", data_dir=tmp_path / "nothing")
    assert none.returncode == 1 and b"no SQLite store at" in none.stderr


def test_a_damaged_or_foreign_backup_is_refused(data_dir: Path, tmp_path: Path) -> None:
    backup = tmp_path / "b"
    assert codementor("backup", backup, data_dir=data_dir).returncode == 0
    with open(backup / SQLITE_FILE, "r+b") as handle:
        handle.seek(5000)
        handle.write(b"\xff" * 16)
    fresh = tmp_path / "fresh"
    damaged = codementor("restore", backup, data_dir=fresh)
    assert damaged.returncode == 1 and b"does not match its checksum" in damaged.stderr
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "manifest.json").write_text('{"format": "tarball"}')
    foreign = codementor("restore", tmp_path / "foreign", data_dir=fresh)
    assert foreign.returncode == 1 and b"not a codementor backup" in foreign.stderr
    missing = codementor("restore", tmp_path / "absent", data_dir=fresh)
    assert missing.returncode == 1 and b"no backup at" in missing.stderr
    assert not (fresh / SQLITE_FILE).exists()


def test_a_backup_holds_what_is_only_in_the_write_ahead_log_yet(tmp_path: Path) -> None:
    """A server's recent commits sit in ``-wal`` until a checkpoint: copying the database
    file alone would lose them; the backup API does not."""
    live = tmp_path / "live"
    store = SQLiteStore(live / SQLITE_FILE)  # held open, as a running server holds it
    try:
        build_room(store, "orig")
        assert Path(f"{live / SQLITE_FILE}-wal").stat().st_size > 0
        done = codementor("backup", tmp_path / "b", data_dir=live)
        assert done.returncode == 0, done.stderr
        refused = codementor("restore", tmp_path / "b", "--force", data_dir=live)
        assert refused.returncode == 1 and b"open in another process" in refused.stderr
    finally:
        store.close()
    copy = SQLiteStore(tmp_path / "b" / SQLITE_FILE)
    try:
        assert [s.info.name for s in copy.list_rooms()] == ["orig"]
        assert len(copy.history("orig")) == 5 and copy.history_base("orig") is not None
    finally:
        copy.close()
