"""``codementor export|import|rooms list|show|delete`` as an operator runs them: the
installed command in a subprocess, against a real SQLite data dir."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from rooms import room_file
from rooms.sqlite_store import SQLiteStore
from server.datadir import SQLITE_FILE
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.test_store_contract import build_room, roots
from tests.yclient import YClient

CODEMENTOR = Path(sys.executable).parent / "codementor"


def codementor(
    *args: str | Path, data_dir: Path | None = None, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed command with only the ``CODEMENTOR_*`` variables given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CODEMENTOR_")}
    if data_dir is not None:
        clean["CODEMENTOR_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [str(CODEMENTOR), *map(str, args)],
        input=stdin,
        capture_output=True,
        env={**clean, **env},
        timeout=120,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir whose store holds room ``orig`` (files, chat, comment, run, history)."""
    path = tmp_path / "data"
    store = SQLiteStore(path / SQLITE_FILE)
    try:
        build_room(store, "orig")
    finally:
        store.close()
    return path


def opened(data_dir: Path) -> SQLiteStore:
    return SQLiteStore(data_dir / SQLITE_FILE)


def test_export_to_stdout_then_import_as_a_new_room(data_dir: Path, tmp_path: Path) -> None:
    exported = codementor("export", "orig", data_dir=data_dir)
    assert exported.returncode == 0, exported.stderr
    assert room_file.read(exported.stdout).info.name == "orig"
    file = tmp_path / "orig.cmroom"
    file.write_bytes(exported.stdout)
    imported = codementor("import", file, "--as", "copy", data_dir=data_dir)
    assert imported.returncode == 0, imported.stderr
    assert b"imported room copy (review, 5 history rows)" in imported.stdout
    store = opened(data_dir)
    try:
        assert roots(store.load("copy")) == roots(store.load("orig"))
        assert [r.updates for r in store.history("copy")] == [
            r.updates for r in store.history("orig")
        ]
    finally:
        store.close()


def test_export_to_a_file_and_import_from_stdin_into_another_data_dir(
    data_dir: Path, tmp_path: Path
) -> None:
    file = tmp_path / "out.cmroom"
    assert codementor("export", "orig", "-o", file, data_dir=data_dir).returncode == 0
    fresh = tmp_path / "fresh"
    imported = codementor("import", "-", data_dir=fresh, stdin=file.read_bytes())
    assert imported.returncode == 0, imported.stderr
    listed = codementor("rooms", "list", "--json", data_dir=fresh)
    assert listed.returncode == 0, listed.stderr
    rooms = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["room"], r["mode"], r["title"], r["history_rows"]) for r in rooms] == [
        ("orig", "review", "Ferris", 5)
    ]


def test_rooms_list_and_show(data_dir: Path) -> None:
    table = codementor("rooms", "list", data_dir=data_dir)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.decode().splitlines()
    assert lines[0].split()[:2] == ["ROOM", "MODE"] and lines[1].split()[:2] == ["orig", "review"]
    shown = codementor("rooms", "show", "orig", "--json", data_dir=data_dir)
    assert shown.returncode == 0, shown.stderr
    details = json.loads(shown.stdout)
    assert details["title"] == "Ferris" and details["history_rows"] == 5
    assert details["files"] == {"lib.rs": 5, "main.py": len("// hi\nfn main() {}\n")}
    text = codementor("rooms", "show", "orig", data_dir=data_dir).stdout.decode()
    assert "title: Ferris" in text and "  lib.rs (5 bytes)" in text


@pytest.mark.parametrize(
    "args", [("export", "nobody"), ("rooms", "show", "nobody"), ("export", "-o", "x", "nobody")]
)
def test_an_unknown_room_is_exit_1(data_dir: Path, args: tuple[str, ...]) -> None:
    done = codementor(*args, data_dir=data_dir)
    assert done.returncode == 1 and b"unknown room 'nobody'" in done.stderr
    assert done.stdout == b""


def test_a_taken_name_is_refused_and_nothing_written(data_dir: Path, tmp_path: Path) -> None:
    file = tmp_path / "orig.cmroom"
    assert codementor("export", "orig", "-o", file, data_dir=data_dir).returncode == 0
    store = opened(data_dir)
    before = (store.history("orig"), store.load("orig"), store.list_rooms())
    store.close()
    done = codementor("import", file, data_dir=data_dir)
    assert done.returncode == 1 and b"room 'orig' already exists" in done.stderr
    store = opened(data_dir)
    try:
        assert (store.history("orig"), store.load("orig"), store.list_rooms()) == before
    finally:
        store.close()


def bad_files(good: bytes) -> dict[str, tuple[bytes, bytes]]:
    manifest = room_file.MANIFEST.encode()
    return {
        "truncated": (good[: len(good) * 2 // 3], b"not a zip archive, or truncated"),
        "not a zip": (b"#!/bin/sh\necho hi\n", b"not a zip archive"),
        "newer": (_versioned(good, 7), b"version 7 room files need a newer codementor"),
        "no manifest": (good.replace(manifest, b"manifesto.jso"), b"no manifest.json"),
    }


def _versioned(good: bytes, version: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as old, zipfile.ZipFile(out, "w") as new:
        for name in old.namelist():
            blob = old.read(name)
            if name == room_file.MANIFEST:
                blob = json.dumps({**json.loads(blob), "version": version}).encode()
            new.writestr(name, blob)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["truncated", "not a zip", "newer", "no manifest"])
def test_a_bad_file_is_refused_and_nothing_written(
    data_dir: Path, tmp_path: Path, kind: str
) -> None:
    good = codementor("export", "orig", data_dir=data_dir).stdout
    data, message = bad_files(good)[kind]
    file = tmp_path / "bad.cmroom"
    file.write_bytes(data)
    done = codementor("import", file, "--as", "new", data_dir=data_dir)
    assert done.returncode == 1, done.stderr
    assert message in done.stderr and done.stderr.count(b"\n") == 1  # one line, no traceback
    store = opened(data_dir)
    try:
        assert [s.info.name for s in store.list_rooms()] == ["orig"]
        assert store.load("new").is_empty and store.history("new") == []
    finally:
        store.close()


def test_a_bad_new_name_and_a_missing_file_are_refused(data_dir: Path, tmp_path: Path) -> None:
    file = tmp_path / "orig.cmroom"
    assert codementor("export", "orig", "-o", file, data_dir=data_dir).returncode == 0
    done = codementor("import", file, "--as", "../etc", data_dir=data_dir)
    assert done.returncode == 1 and b"invalid room name '../etc'" in done.stderr
    done = codementor("import", tmp_path / "absent.cmroom", data_dir=data_dir)
    assert done.returncode == 1 and b"cannot read" in done.stderr


def test_no_store_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "typo"
    for args in (("export", "orig"), ("rooms", "list"), ("rooms", "show", "orig")):
        done = codementor(*args, data_dir=empty)
        assert done.returncode == 1 and b"no store at" in done.stderr, done.stderr
    assert not empty.exists()


def test_backup_and_restore_of_a_mongo_store_point_to_mongodump(tmp_path: Path) -> None:
    for args in (("backup", tmp_path / "b"), ("restore", tmp_path / "b")):
        done = codementor(*args, CODEMENTOR_MONGO_URL="mongodb://127.0.0.1:9/x")
        assert (
            done.returncode == 1 and b"mongodump" in done.stderr and b"mongorestore" in done.stderr
        )
    assert not (tmp_path / "b").exists()


def test_a_bad_setting_is_exit_2(data_dir: Path) -> None:
    done = codementor("rooms", "list", data_dir=data_dir, CODEMENTOR_PORT="many")
    assert done.returncode == 2 and b"CODEMENTOR_PORT" in done.stderr


# -- rooms delete -----------------------------------------------------------------


def gone(data_dir: Path, room: str) -> bool:
    store = opened(data_dir)
    try:
        return (
            store.room_info(room) is None
            and store.load(room).is_empty
            and store.history_size(room)[0] == 0
        )
    finally:
        store.close()


def test_rooms_delete_removes_the_room_and_an_unknown_one_is_exit_1(data_dir: Path) -> None:
    assert not gone(data_dir, "orig")
    deleted = codementor("rooms", "delete", "orig", data_dir=data_dir)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == b"deleted room orig\n"
    assert gone(data_dir, "orig")
    assert b"orig" not in codementor("rooms", "list", data_dir=data_dir).stdout
    again = codementor("rooms", "delete", "orig", data_dir=data_dir)
    assert again.returncode == 1 and b"unknown room" in again.stderr


@pytest.mark.anyio
async def test_rooms_delete_refuses_while_a_server_without_redis_serves_the_store(
    data_dir: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    server_factory(data_dir)
    refused = await asyncio.to_thread(codementor, "rooms", "delete", "orig", data_dir=data_dir)
    assert refused.returncode == 1
    assert b"DELETE /api/rooms/orig" in refused.stderr and b"--force" in refused.stderr
    assert not gone(data_dir, "orig")
    forced = await asyncio.to_thread(
        codementor, "rooms", "delete", "orig", "--force", data_dir=data_dir
    )
    assert forced.returncode == 0, forced.stderr
    assert gone(data_dir, "orig")


@pytest.mark.anyio
async def test_rooms_delete_with_redis_closes_the_rooms_peers_on_running_instances(
    data_dir: Path, server_factory: Callable[..., ServerProcess], redis_server: RedisProcess
) -> None:
    server = server_factory(
        data_dir, CODEMENTOR_SECRET=SECRET, CODEMENTOR_REDIS_URL=redis_server.url
    )
    editor = await YClient(server.ws_url("orig", f"token={sign('orig', 'editor')}")).connect()
    await editor.wait_synced()
    editor.text.insert(0, "typed just before ")
    redis = redis_server.client()
    await eventually(lambda: redis.exists("codementor:room:orig") == 1)
    deleted = await asyncio.to_thread(
        codementor,
        "rooms",
        "delete",
        "orig",
        data_dir=data_dir,
        CODEMENTOR_REDIS_URL=redis_server.url,
    )
    assert deleted.returncode == 0, deleted.stderr
    assert b"running instances told" in deleted.stdout
    assert await editor.wait_closed() == 4404
    assert redis.exists("codementor:room:orig") == 0
    server.stop()  # its last flush must not bring the room back
    assert gone(data_dir, "orig")
