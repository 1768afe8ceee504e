"""The data dir, checked before the server starts: one line saying what and where.

A read-only, full or misplaced data dir otherwise surfaces as a traceback from
deep inside the lifespan (SQLite's "unable to open database file") or from the
dev secret's temporary file. Here the directory is made (0700: it holds the
store and, in dev mode, the signing secret), a small file is written to it and
synced (so a full disk is found too, not only a read-only one), and the SQLite
store is opened once. Real writes rather than ``os.access``, which says yes to
root on a read-only mount and on a mode-0555 directory alike.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from rooms.sqlite_store import SQLiteStore
from rooms.store import StoreError
from server.settings import Settings, SettingsError

# The embedded store's file in the data dir.
SQLITE_FILE = "codementor.sqlite3"

PROBE_BYTES = 4096


def needed(settings: Settings) -> bool:
    """The data dir holds the SQLite store, the dev-mode secret and the workers' metrics."""
    return not settings.mongo_url or not settings.secret or settings.workers > 1


def prepare(settings: Settings) -> None:
    """Make the data dir usable, or raise ``SettingsError`` with one line that says why."""
    if not needed(settings):
        return
    path = settings.data_dir
    where = f"the data dir {path} (CODEMENTOR_DATA_DIR)"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise SettingsError(f"cannot use {where}: it exists and is not a directory") from None
    except OSError as exc:
        raise SettingsError(f"cannot create {where}: {_reason(exc)}") from None
    if not path.is_dir():
        raise SettingsError(f"cannot use {where}: it is not a directory")
    try:
        _probe(path)
    except OSError as exc:
        raise SettingsError(f"cannot write to {where}: {_reason(exc)}") from None
    if not settings.mongo_url:
        try:
            SQLiteStore(path / SQLITE_FILE).close()
        except StoreError as exc:
            raise SettingsError(f"cannot use {where}: {exc}") from None


def _probe(directory: Path) -> None:
    """Create, fill, sync and remove a small file: what the store and the secret need."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".write-check-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"\0" * PROBE_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
