"""The operator's commands: ``codementor export|import|backup|restore`` and
``codementor rooms list|show|delete``, against the store the server is configured with
(``CODEMENTOR_DATA_DIR`` or ``--data-dir`` for SQLite, ``CODEMENTOR_MONGO_URL`` for
MongoDB: the same settings ``codementor serve`` reads).

Exit codes: 0 done; 1 refused or failed (unknown room, name taken, a bad file, the
store unavailable), with one line on stderr saying why; 2 a usage or settings error.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pycrdt import Doc

from crdt import schema
from rooms.observer import RoomObserver
from rooms.room_file import SUFFIX, RoomFileError
from rooms.sqlite_store import SQLiteStore
from rooms.store import Store, StoreError
from server import backup as backups
from server import room_transfer
from server.datadir import SQLITE_FILE
from server.settings import Settings, from_env

COMMANDS = ("export", "import", "backup", "restore", "rooms")
FAILED, USAGE = 1, 2
PAGE = 500
MONGO_BACKUP = (
    "the store is MongoDB (CODEMENTOR_MONGO_URL): back it up with "
    "`mongodump --uri=$CODEMENTOR_MONGO_URL --archive=FILE --gzip` and restore with "
    "`mongorestore --uri=$CODEMENTOR_MONGO_URL --archive=FILE --gzip --drop` "
    "(README, Backup and restore)"
)


class CliError(Exception):
    """One line for stderr, and the exit code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def add_commands(commands: Any) -> None:
    """Add the subcommands to ``codementor``'s parser (``commands``: its subparsers)."""

    def with_store(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="the server's data dir (default: CODEMENTOR_DATA_DIR, else ./data); "
            "ignored when CODEMENTOR_MONGO_URL is set",
        )
        return parser

    export = with_store(
        commands.add_parser(
            "export",
            help="write a room to a .cmroom file",
            description="Write a room (settings, document with its records, history) as a "
            ".cmroom file to stdout or -o FILE. Reads the store: a running server's "
            "updates are in it within the durability window.",
        )
    )
    export.add_argument("room")
    export.add_argument("-o", "--output", type=Path, default=None, help="file to write")
    imported = with_store(
        commands.add_parser(
            "import",
            help="create a room from a .cmroom file",
            description="Create a room from a .cmroom file (- for stdin); refused when the "
            "name is taken.",
        )
    )
    imported.add_argument("file", help=f"a {SUFFIX} file, or - for stdin")
    imported.add_argument("--as", dest="as_name", default=None, help="the new room's name")
    backup = with_store(
        commands.add_parser(
            "backup",
            help="copy the SQLite store into DIR while the server runs",
            description="A consistent online copy of the SQLite store, with SQLite's backup "
            "API, into DIR (new or empty), and a manifest.",
        )
    )
    backup.add_argument("dir", type=Path)
    restore = with_store(
        commands.add_parser(
            "restore",
            help="put a backup back as the SQLite store",
            description="Replace the data dir's SQLite store with a backup (its DIR, or the "
            "file). The server must be stopped.",
        )
    )
    restore.add_argument("source", type=Path, help="a backup directory or its .sqlite3 file")
    restore.add_argument(
        "--force", action="store_true", help="replace a store that already holds rooms"
    )
    rooms = commands.add_parser("rooms", help="list or show the store's rooms")
    actions = rooms.add_subparsers(dest="action", required=True)
    listing = with_store(actions.add_parser("list", help="every room, by name"))
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = with_store(actions.add_parser("show", help="one room's settings, size and files"))
    show.add_argument("room")
    show.add_argument("--json", action="store_true", help="as a JSON object")
    delete = with_store(
        actions.add_parser(
            "delete",
            help="delete a room: its document, records and history",
            description="Delete a room from the store and, with CODEMENTOR_REDIS_URL set, its "
            "Redis keys; running instances are told through Redis and close the room's "
            "peers with 4404. Without Redis a running server is not told: the command "
            "refuses while one has the SQLite store open (use DELETE /api/rooms/{room} "
            "with the admin token instead), unless --force.",
        )
    )
    delete.add_argument("room")
    delete.add_argument(
        "--force",
        action="store_true",
        help="delete even while a server without Redis has the store open (it keeps the "
        "room's peers and may write their next edits back)",
    )


def run(args: argparse.Namespace) -> int:
    """Run one of ``COMMANDS``; the exit code."""
    try:
        settings = from_env(data_dir=args.data_dir)
        if args.command == "backup":
            _backup(settings, args.dir)
        elif args.command == "restore":
            _restore(settings, args.source, args.force)
        else:
            if args.command == "rooms" and args.action == "delete" and not args.force:
                _refuse_while_served(settings, args.room)
            store = open_store(settings, create=args.command == "import")
            try:
                if args.command == "export":
                    _export(store, args.room, args.output)
                elif args.command == "import":
                    _import(store, args.file, args.as_name)
                elif args.action == "list":
                    _list(store, args.json)
                elif args.action == "delete":
                    _delete(settings, store, args.room)
                else:
                    _show(store, args.room, args.json)
            finally:
                store.close()
    except CliError as exc:
        print(f"codementor {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except (StoreError, room_transfer.TransferError, RoomFileError, backups.BackupError) as exc:
        print(f"codementor {args.command}: {exc}", file=sys.stderr)
        return FAILED
    return 0


def open_store(settings: Settings, create: bool = False) -> Store:
    """The configured store. A SQLite store that does not exist yet is made only when
    ``create`` (import): reading a misspelled data dir must not look like an empty one."""
    if settings.mongo_url:
        from rooms.mongo_store import MongoStore  # here: the SQLite commands start faster

        return MongoStore.from_url(settings.mongo_url)
    path = settings.data_dir / SQLITE_FILE
    if not create and not path.is_file():
        raise CliError(
            f"no store at {path}: point CODEMENTOR_DATA_DIR (or --data-dir) at the server's "
            "data dir, or set CODEMENTOR_MONGO_URL"
        )
    return SQLiteStore(path)


def _export(store: Store, room: str, output: Path | None) -> None:
    data = room_transfer.export_room(store, room)
    if output is None:
        if sys.stdout.isatty():
            raise CliError(f"refusing to write a binary file to a terminal: use > {room}{SUFFIX}")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror}") from None


def _import(store: Store, file: str, as_name: str | None) -> None:
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror}") from None
    room = room_transfer.read_file(data, as_name)
    info = room_transfer.import_room(store, room)
    print(
        f"imported room {info.name} ({info.mode}, {len(room.history)} history rows); "
        f"an owner token: codementor token --room {info.name} --role owner --name owner"
    )


def _summaries(store: Store) -> Iterator[dict[str, Any]]:
    after = ""
    while True:
        page = store.list_rooms(after=after, limit=PAGE)
        for summary in page:
            info = summary.info
            yield {
                "room": info.name,
                "mode": info.mode,
                "language": info.language,
                "title": info.title,
                "created_at": info.created_at,
                "updated_at": info.updated_at,
                "document_bytes": summary.document_bytes,
                "history_rows": summary.history_rows,
            }
        if len(page) < PAGE:
            return
        after = page[-1].info.name


def _list(store: Store, as_json: bool) -> None:
    if not as_json:
        print(f"{'ROOM':<24} {'MODE':<9} {'UPDATED (UTC)':<19} {'BYTES':>10} {'HISTORY':>8}  TITLE")
    for room in _summaries(store):
        if as_json:
            print(json.dumps(room))
        else:
            print(
                f"{room['room']:<24} {room['mode']:<9} {_when(room['updated_at']):<19} "
                f"{room['document_bytes']:>10} {room['history_rows']:>8}  {room['title']}"
            )


def _show(store: Store, room: str, as_json: bool) -> None:
    info = store.room_info(room)
    stored = store.load(room)
    if info is None and stored.is_empty:
        raise room_transfer.UnknownRoom(room)
    doc: Doc[Any] = Doc()
    doc.apply_update(room_transfer.merged_document([stored.snapshot or b"", *stored.updates]))
    rows, history_bytes, oldest = store.history_size(room)
    files = schema.workspace(doc)
    shown: dict[str, Any] = {
        "room": room,
        "registered": info is not None,
        **{k: v for k, v in (dataclasses.asdict(info) if info else {}).items() if k != "name"},
        "document_bytes": len(stored.snapshot or b"") + sum(map(len, stored.updates)),
        "history_rows": rows,
        "history_bytes": history_bytes,
        "history_oldest": oldest,
        "entry": schema.entry_path(doc),
        "files": {path: len(text.encode()) for path, text in sorted(files.items())},
    }
    if as_json:
        print(json.dumps(shown, indent=2))
        return
    for key, value in shown.items():
        if key == "files":
            print("files:")
            for path, size in value.items():
                print(f"  {path} ({size} bytes)")
        elif key.endswith(("_at", "_oldest")) and isinstance(value, float) and value:
            print(f"{key}: {value} ({_when(value)} UTC)")
        else:
            print(f"{key}: {value}")


def _refuse_while_served(settings: Settings, room: str) -> None:
    """Without Redis a running server is not told of a deletion: it would keep the room's
    peers and write their next edits back. Checked before this process opens the store
    (SQLite's locks are per process: its own would hide the server's)."""
    if settings.redis_url or settings.mongo_url:
        return
    if backups.in_use(settings.data_dir / SQLITE_FILE):
        raise CliError(
            "a server has this store open and, without Redis, cannot be told: delete "
            f"with DELETE /api/rooms/{room} and the admin token, stop it first, or --force"
        )


def _delete(settings: Settings, store: Store, room: str) -> None:
    """The store's rows first, then Redis: an instance that flushes the room in between
    is told next and deletes its rows again (``server.room_life``)."""
    existed = store.delete_room(room)
    keys = asyncio.run(_delete_redis_keys(settings, room)) if settings.redis_url else None
    if not existed and not keys:
        raise room_transfer.UnknownRoom(room)
    said = {None: "", True: "; its Redis keys removed and running instances told"}
    if keys is False:
        raise CliError(f"deleted room {room} from the store, but Redis did not answer: "
                       "its keys are left and running instances were not told")  # fmt: skip
    print(f"deleted room {room}{said[keys]}")


async def _delete_redis_keys(settings: Settings, room: str) -> bool:
    """The room's keys, and the deletion notice every running instance subscribes to."""
    from rooms.redis_broker import RedisBroker, RedisSettings  # here: see open_store

    broker = RedisBroker(
        RedisSettings(
            url=settings.redis_url or "",
            instance_id=f"cli-{os.getpid()}",
            cluster=settings.redis_cluster == "on",
        ),
        RoomObserver(),
    )
    try:
        return await broker.delete_room(room)
    finally:
        await broker.close()


def _backup(settings: Settings, directory: Path) -> None:
    if settings.mongo_url:
        raise CliError(MONGO_BACKUP)
    manifest = backups.backup(settings.data_dir / SQLITE_FILE, directory)
    print(
        f"backed up {manifest['rooms']} rooms ({manifest['bytes']} bytes) to "
        f"{directory / manifest['file']}"
    )


def _restore(settings: Settings, source: Path, force: bool) -> None:
    if settings.mongo_url:
        raise CliError(MONGO_BACKUP)
    restored = backups.restore(source, settings.data_dir / SQLITE_FILE, force)
    print(f"restored {restored['rooms']} rooms into {restored['restored_to']}")


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
