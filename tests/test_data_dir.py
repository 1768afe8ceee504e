"""A data dir the server cannot use (read-only, full, not a directory) stops the start
with one line on stderr that says what and where, exit code 2, no traceback; and what
the server writes there is its owner's alone (directory 0700, SQLite files 0600).

Read-only and full file systems are real: as root (where a mode-0555 directory stops
nothing) each case runs the server in a private mount namespace (``unshare -m``) with a
read-only bind mount of the data dir, or a tiny tmpfs filled to the last byte; nothing
outside that namespace sees the mounts. Without root, a mode-0555 directory stands in
for the read-only one, and the full file system is skipped (it needs a mount).
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rooms.sqlite_store import SQLiteStore
from tests.serverproc import ROOT
from tests.support import eventually, free_port, wait_until
from tests.yclient import YClient

SECRET = secrets.token_hex(32)
STORE = "codementor.sqlite3"


@functools.cache
def can_mount() -> bool:
    """Root with a mount namespace of its own (a container may forbid it)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
        capture_output=True,
        timeout=10,
    )
    return probe.returncode == 0


def environment(**env: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CODEMENTOR_")}
    return {**inherited, "CODEMENTOR_PORT": str(free_port()), **env}


def serve(
    data_dir: Path, setup: str | None = None, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``codementor serve`` (or another command) on ``data_dir``; ``setup``: shell
    commands run first, as root, in a mount namespace of the server's own."""
    command = [sys.executable, "-m", "server", *(args or ("serve",)), "--data-dir", str(data_dir)]
    if setup is not None:
        command = ["unshare", "-m", "sh", "-c", f'{setup} && exec "$@"', "sh", *command]
    return subprocess.run(
        command, cwd=ROOT, env=environment(**env), capture_output=True, text=True, timeout=60
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for part in expected:
        assert part in lines[0], lines[0]
    return lines[0]


def make_read_only(data_dir: Path) -> str | None:
    """The setup that makes ``data_dir`` read-only for the server (None: already done)."""
    if can_mount():
        return f"mount --bind {data_dir} {data_dir} && mount -o remount,bind,ro {data_dir}"
    if os.geteuid() == 0:
        pytest.skip("running as root without mount namespaces: no read-only file system")
    data_dir.chmod(0o555)
    return None


@pytest.mark.parametrize("secret", [SECRET, None], ids=["configured-secret", "dev-mode"])
@pytest.mark.parametrize("holding", ["empty", "a-store"])
def test_a_read_only_data_dir_is_one_line(tmp_path: Path, secret: str | None, holding: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if holding == "a-store":
        SQLiteStore(data_dir / STORE).close()
    setup = make_read_only(data_dir)
    env = {"CODEMENTOR_SECRET": secret} if secret else {}
    try:
        result = serve(data_dir, setup, **env)
    finally:
        data_dir.chmod(0o700)
    reason = "Read-only file system" if setup else "Permission denied"
    line = assert_one_line(result, str(data_dir), "CODEMENTOR_DATA_DIR", reason)
    assert line.startswith("codementor: cannot write to the data dir")


def test_a_full_data_dir_is_one_line(tmp_path: Path) -> None:
    if not can_mount():
        pytest.skip("a full file system needs a tmpfs mount: root with mount namespaces")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    fill = f"dd if=/dev/zero of={data_dir}/fill bs=4k 2>/dev/null"
    setup = f"mount -t tmpfs -o size=64k,mode=0700 tmpfs {data_dir} && ({fill} || true)"
    result = serve(data_dir, setup, CODEMENTOR_SECRET=SECRET)
    assert_one_line(result, str(data_dir), "No space left on device")


@pytest.mark.parametrize("where", ["a-file", "under-a-file"])
def test_a_data_dir_that_is_not_a_directory_is_one_line(tmp_path: Path, where: str) -> None:
    (tmp_path / "data").write_text("not a directory")
    data_dir = tmp_path / "data" if where == "a-file" else tmp_path / "data" / "inner"
    for env in ({"CODEMENTOR_SECRET": SECRET}, {}):
        result = serve(data_dir, None, **env)
        assert_one_line(result, str(data_dir), "CODEMENTOR_DATA_DIR")


def test_the_token_command_says_what_and_where(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    setup = make_read_only(data_dir)
    try:
        result = serve(data_dir, setup, "token", "--room", "r", "--role", "viewer", "--name", "S")
    finally:
        data_dir.chmod(0o700)
    line = assert_one_line(result, str(data_dir / "secret"))
    assert line.startswith("codementor: cannot keep the dev-mode secret")


# -- what the server writes is private (the SQLite files were once 0644) ----------


class Started:
    """A server whose data dir does not exist yet (``ServerProcess`` makes it first, for
    its log file), so the server is the one that creates it."""

    def __init__(self, data_dir: Path, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--data-dir", str(data_dir)],
            cwd=ROOT, env=environment(CODEMENTOR_PORT=str(self.port), **env),
            stdout=self._log, stderr=subprocess.STDOUT, umask=0o022,
        )  # fmt: skip

        def healthy() -> bool:
            assert self.proc.poll() is None, log.read_text()
            try:
                return httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 20, "the server to start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        self._log.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_data_dir_and_the_store_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    server = Started(data_dir, tmp_path / "server.log")  # dev mode: the secret is written
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
            room = (await http.post("/api/rooms", json={})).json()["room"]
        async with YClient(f"ws://127.0.0.1:{server.port}/ws/{room}") as client:
            await client.wait_synced()
            client.text += "private"
            await eventually(lambda: Path(f"{data_dir / STORE}-wal").exists())
        files = [data_dir / STORE, Path(f"{data_dir / STORE}-wal"), Path(f"{data_dir / STORE}-shm")]
        assert mode(data_dir) == 0o700
        assert {f.name: mode(f) for f in [*files, data_dir / "secret"]} == {
            f.name: 0o600 for f in [*files, data_dir / "secret"]
        }
    finally:
        server.stop()


def test_a_store_left_readable_to_others_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / STORE
    with sqlite3.connect(path) as db:  # as an older version made it: 0644
        db.execute("PRAGMA journal_mode=WAL")
    path.chmod(0o644)
    SQLiteStore(path).close()
    assert mode(path) == 0o600
