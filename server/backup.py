"""Online backup and restore of the SQLite store, with SQLite's own backup API.

``sqlite3.Connection.backup`` in one step copies the database as of one read
transaction: in WAL mode the server keeps writing meanwhile, and the copy holds every
transaction committed before the step began (every update flushed, so every update
acknowledged with a save receipt) and none of the later ones, never half of one.
A backup directory holds the copy (``codementor.sqlite3``, journal mode DELETE: one
self-contained file) and ``manifest.json`` with its size and SHA-256.

Restore writes the copy into the data dir's store through the same API, which keeps
SQLite's own files (``-wal``, ``-shm``) consistent, and refuses while any process has
the store open (``in_use``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

BACKUP_FORMAT = "codementor-backup"
BACKUP_VERSION = 1
MANIFEST = "manifest.json"
BUSY_TIMEOUT_MS = 10_000
# Where SQLite's unix VFS keeps the "dead man switch" lock in the -shm file
# (os_unix.c: UNIX_SHM_BASE 120 + SQLITE_SHM_NLOCK 8): every connection that has the
# database open in WAL mode holds a shared lock on this byte for as long as it is open.
SHM_DMS_BYTE = 128


class BackupError(Exception):
    """The backup or restore was refused or failed; the message says why."""


def backup(store_file: Path, directory: Path) -> dict[str, Any]:
    """Copy the store at ``store_file`` into ``directory`` (new or empty); the manifest."""
    if not store_file.is_file():
        raise BackupError(f"no SQLite store at {store_file}")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = directory / store_file.name
    if target.exists() or (directory / MANIFEST).exists():
        raise BackupError(f"{directory} already holds a backup: choose a new directory")
    if any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: choose a new or empty directory")
    partial = directory / f"{store_file.name}.partial"
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC, 0o600))
    try:
        source = _connect(_read_only(store_file))
        try:
            copy = _connect(str(partial))
            try:
                source.backup(copy)  # pages=-1: the whole database in one step
                copy.execute("PRAGMA journal_mode=DELETE")
                _check_integrity(copy, "the copy")
                rooms = copy.execute("SELECT COUNT(*) FROM rooms").fetchone()[0]
            finally:
                copy.close()
        finally:
            source.close()
        _fsync(partial)
        os.replace(partial, target)
        _fsync(directory)
    except sqlite3.Error as exc:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise BackupError(f"backup of {store_file} failed: {exc}") from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    manifest = {
        "format": BACKUP_FORMAT,
        "version": BACKUP_VERSION,
        "store": "sqlite",
        "file": target.name,
        "bytes": target.stat().st_size,
        "sha256": _sha256(target),
        "rooms": int(rooms),
        "created_at": time.time(),
        "source": str(store_file.resolve()),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    _fsync(directory / MANIFEST)
    return manifest


def restore(source: Path, store_file: Path, force: bool = False) -> dict[str, Any]:
    """Replace the store at ``store_file`` with the backup at ``source`` (a backup
    directory, or a copy of the file itself). Refused while the store is open anywhere,
    and, without ``force``, when the store already holds rooms."""
    copy_file, manifest = _backup_file(source)
    if in_use(store_file):
        raise BackupError(
            f"the store {store_file} is open in another process (a running server?): stop it first"
        )
    try:
        copy = _connect(_read_only(copy_file))
        try:
            _check_integrity(copy, str(copy_file))
            rooms = copy.execute("SELECT COUNT(*) FROM rooms").fetchone()[0]
            if store_file.exists() and not force and _holds_rooms(store_file):
                raise BackupError(
                    f"{store_file} already holds rooms: pass --force to replace them all"
                )
            store_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(store_file, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
            os.close(fd)
            target = _connect(str(store_file))
            try:
                copy.backup(target)
            finally:
                target.close()
        finally:
            copy.close()
    except sqlite3.Error as exc:
        raise BackupError(f"restore from {copy_file} failed: {exc}") from exc
    return {**manifest, "rooms": int(rooms), "restored_to": str(store_file)}


def in_use(store_file: Path) -> bool:
    """Whether some process has the store open: it then holds a shared lock on the
    -shm file's dead-man-switch byte, so an exclusive test lock on it is refused."""
    shm = Path(f"{store_file}-shm")
    try:
        fd = os.open(shm, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, SHM_DMS_BYTE)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return True
        raise BackupError(f"cannot tell whether {store_file} is in use: {exc}") from exc
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, SHM_DMS_BYTE)
        return False
    finally:
        os.close(fd)


def _backup_file(source: Path) -> tuple[Path, dict[str, Any]]:
    """The backup's database file and manifest; the checksum checked when there is one."""
    if source.is_file():
        return source, {"file": source.name}
    if not source.is_dir():
        raise BackupError(f"no backup at {source}")
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} is not a backup: no {MANIFEST}") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source}/{MANIFEST} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise BackupError(f"{source} is not a codementor backup")
    version = manifest.get("version")
    if not isinstance(version, int) or version > BACKUP_VERSION:
        raise BackupError(
            f"backup version {version!r} needs a newer codementor (this one reads "
            f"version {BACKUP_VERSION})"
        )
    name = manifest.get("file")
    if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
        raise BackupError(f"{source}/{MANIFEST} names no file")
    copy = source / name
    if not copy.is_file():
        raise BackupError(f"the backup's {name} is missing")
    if _sha256(copy) != manifest.get("sha256"):
        raise BackupError(f"the backup's {name} does not match its checksum: damaged")
    return copy, manifest


def _holds_rooms(store_file: Path) -> bool:
    db = _connect(_read_only(store_file))
    try:
        return db.execute("SELECT 1 FROM rooms LIMIT 1").fetchone() is not None
    except sqlite3.OperationalError:
        return False  # no rooms table: an empty file
    finally:
        db.close()


def _read_only(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


def _connect(target: str) -> sqlite3.Connection:
    db = sqlite3.connect(target, uri=target.startswith("file:"), isolation_level=None)
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return db


def _check_integrity(db: sqlite3.Connection, what: str) -> None:
    result = [row[0] for row in db.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        raise BackupError(f"{what} fails SQLite's integrity check: {'; '.join(result[:3])}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
