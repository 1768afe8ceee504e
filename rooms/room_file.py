"""The ``.cmroom`` file: one room (its settings, document and history) in one versioned
file, for export and import. Pure: bytes in, bytes out, and validation; the store and
the CLI/REST glue live elsewhere (``server.room_transfer``).

The file is a zip archive (stdlib ``zipfile``, deflated) of:

- ``manifest.json``: ``{"format": "codementor-room", "version": 1, "room", "info",
  "exported_at", "counts", "history_base", "parts"}``; ``parts`` names every other
  member with its size and SHA-256, so a damaged or altered file is refused whole;
- ``document.bin``: the document as one full Yjs v1 update. Records (runs, exercises,
  class summaries, authorship) live in the document's server-owned roots, so they
  travel with it;
- ``history.jsonl``: one history row per line, oldest first: ``{"seq", "ts_first",
  "ts", "who": {"id", "name", "role"}, "kind", "updates": [base64 v1 update, ...],
  "parts": [[id, name, role, kind, count], ...] | null}``;
- ``history_base.bin`` (only when the history was pruned): the document at the base,
  whose ``seq``, ``ts`` and ``derived`` are in the manifest's ``history_base``.

A reader refuses a ``version`` above the one it knows with a message saying a newer
codementor is needed; a later version keeps ``format`` and ``version`` where they are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import zipfile
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeGuard

from pycrdt import Doc

from crdt import failures
from rooms.history import HistoryBase, HistoryRow, Who, parts_from_json
from rooms.store import RoomInfo

FORMAT = "codementor-room"
VERSION = 1
SUFFIX = ".cmroom"
MEDIA_TYPE = "application/vnd.codementor.room+zip"
MANIFEST = "manifest.json"
DOCUMENT = "document.bin"
HISTORY = "history.jsonl"
BASE_STATE = "history_base.bin"
# Unpacked bytes a file may hold, whatever its packed size: a zip bomb is refused
# before it is inflated (members are read only up to their declared sizes).
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
MODES = ("pair", "review", "broadcast")


class RoomFileError(ValueError):
    """Not a room file this version can read; the message says why, for a person."""


@dataclass(slots=True)
class RoomFile:
    """A room as the file holds it. ``info.name`` is the room's name when exported."""

    info: RoomInfo
    document: bytes  # a full v1 update
    history: list[HistoryRow]
    base: HistoryBase | None = None
    exported_at: float = 0.0


def write(room: RoomFile) -> bytes:
    """The ``.cmroom`` bytes of ``room``."""
    history = "".join(json.dumps(_row_json(r), separators=(",", ":")) + "\n" for r in room.history)
    members: dict[str, bytes] = {DOCUMENT: room.document, HISTORY: history.encode()}
    if room.base is not None:
        members[BASE_STATE] = room.base.state
    info = asdict(room.info)
    del info["name"], info["owner"]  # the name is the manifest's; the owner is whoever imports
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "room": room.info.name,
        "info": info,
        "exported_at": room.exported_at,
        "counts": {
            "history_rows": len(room.history),
            "history_updates": sum(len(r.updates) for r in room.history),
        },
        "history_base": None
        if room.base is None
        else {"seq": room.base.seq, "ts": room.base.ts, "derived": room.base.derived},
        "parts": {
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in members.items()
        },
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        # The manifest first: ``unzip -p room.cmroom manifest.json`` shows what it is.
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def read(data: bytes, max_unpacked: int = MAX_UNPACKED_BYTES) -> RoomFile:
    """The room in ``data``, every part checked; ``RoomFileError`` for anything else."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise RoomFileError("not a CodeMentor room file: not a zip archive, or truncated") from None
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            raise RoomFileError(f"not a CodeMentor room file: no {MANIFEST}")
        if sum(i.file_size for i in archive.infolist()) > max_unpacked:
            raise RoomFileError(f"room file unpacks to more than {max_unpacked} bytes")
        manifest = _json_object(_member(archive, MANIFEST), MANIFEST)
        _check_version(manifest)
        parts = manifest.get("parts")
        if not isinstance(parts, dict) or DOCUMENT not in parts or HISTORY not in parts:
            raise RoomFileError("corrupt room file: the manifest does not list its parts")
        members: dict[str, bytes] = {}
        for name, described in parts.items():
            if name not in names:
                raise RoomFileError(f"corrupt room file: {name} is missing")
            if not isinstance(described, dict):
                raise RoomFileError(f"corrupt room file: bad manifest entry for {name}")
            blob = _member(archive, name)
            if len(blob) != described.get("bytes") or (
                hashlib.sha256(blob).hexdigest() != described.get("sha256")
            ):
                raise RoomFileError(f"corrupt room file: checksum mismatch in {name}")
            members[name] = blob
    info = _info(manifest)
    history = _history(members[HISTORY])
    base = _base(manifest.get("history_base"), members.get(BASE_STATE))
    exported_at = manifest.get("exported_at", 0.0)
    if not _is_number(exported_at):
        raise RoomFileError("corrupt room file: exported_at is not a number")
    _check_updates(members[DOCUMENT], history, base)
    return RoomFile(info, members[DOCUMENT], history, base, float(exported_at))


# -- reading, piece by piece ------------------------------------------------------


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = archive.getinfo(name)
        with archive.open(info) as handle:
            blob = handle.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise RoomFileError(f"corrupt room file: cannot read {name} ({exc})") from None
    except Exception as exc:  # zlib.error: damaged deflate data
        raise RoomFileError(f"corrupt room file: cannot inflate {name} ({exc})") from None
    if len(blob) != info.file_size:
        raise RoomFileError(f"corrupt room file: {name} is not the size it says")
    return blob


def _json_object(blob: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(blob)
    except (UnicodeDecodeError, ValueError):
        raise RoomFileError(f"corrupt room file: {name} is not JSON") from None
    if not isinstance(value, dict):
        raise RoomFileError(f"corrupt room file: {name} is not a JSON object")
    return value


def _check_version(manifest: dict[str, Any]) -> None:
    if manifest.get("format") != FORMAT:
        raise RoomFileError(
            f"not a CodeMentor room file: format is {manifest.get('format')!r}, not {FORMAT!r}"
        )
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RoomFileError(f"corrupt room file: bad version {version!r}")
    if version > VERSION:
        raise RoomFileError(
            f"version {version} room files need a newer codementor "
            f"(this one reads version {VERSION})"
        )


def _info(manifest: dict[str, Any]) -> RoomInfo:
    name = manifest.get("room")
    raw = manifest.get("info")
    if not isinstance(name, str) or not name or not isinstance(raw, dict):
        raise RoomFileError("corrupt room file: the manifest has no room name or info")
    # The owner is who imports it (quotas count it), never what the file says.
    known = {f.name for f in fields(RoomInfo)} - {"name", "owner"}
    values = {k: v for k, v in raw.items() if k in known}
    if values.get("mode", "pair") not in MODES:
        raise RoomFileError(f"corrupt room file: unknown room mode {values.get('mode')!r}")
    for key in ("language", "title"):
        if not isinstance(values.get(key, ""), str):
            raise RoomFileError(f"corrupt room file: info.{key} is not a string")
    for key in ("created_at", "updated_at", "tokens_after"):
        if not _is_number(values.get(key, 0.0)):
            raise RoomFileError(f"corrupt room file: info.{key} is not a number")
        values[key] = float(values.get(key, 0.0))
    if not isinstance(values.get("forks", True), bool):
        raise RoomFileError("corrupt room file: info.forks is not true or false")
    for key in ("reviewers_run", "history_viewers"):
        if values.get(key) is not None and not isinstance(values[key], bool):
            raise RoomFileError(f"corrupt room file: info.{key} is not true, false or null")
    return RoomInfo(name=name, **values)


def _row_json(row: HistoryRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "ts_first": row.ts_first,
        "ts": row.ts,
        "who": row.who.as_json(),
        "kind": row.kind,
        "updates": [base64.b64encode(u).decode() for u in row.updates],
        "parts": [[w.id, w.name, w.role, kind, n] for w, kind, n in row.parts] or None,
    }


def _history(blob: bytes) -> list[HistoryRow]:
    rows: list[HistoryRow] = []
    for number, line in enumerate(blob.splitlines(), start=1):
        try:
            raw = json.loads(line)
            who = raw["who"]
            row = HistoryRow(
                int(raw["seq"]),
                float(raw["ts_first"]),
                float(raw["ts"]),
                Who(str(who["id"]), str(who["name"]), str(who["role"])),
                str(raw["kind"]),
                [base64.b64decode(u, validate=True) for u in raw["updates"]],
                parts_from_json(raw.get("parts")),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise RoomFileError(f"corrupt room file: history row {number} is malformed") from None
        if rows and row.seq <= rows[-1].seq:
            raise RoomFileError(f"corrupt room file: history row {number} is out of order")
        if row.parts and sum(n for _, _, n in row.parts) != len(row.updates):
            raise RoomFileError(f"corrupt room file: history row {number} miscounts its parts")
        rows.append(row)
    return rows


def _base(raw: object, state: bytes | None) -> HistoryBase | None:
    if raw is None and state is None:
        return None
    if not isinstance(raw, dict) or state is None:
        raise RoomFileError("corrupt room file: the history base is incomplete")
    seq, ts, derived = raw.get("seq"), raw.get("ts"), raw.get("derived", {})
    if not isinstance(seq, int) or not _is_number(ts) or not isinstance(derived, dict):
        raise RoomFileError("corrupt room file: the history base is malformed")
    return HistoryBase(seq, float(ts), state, derived)


def _check_updates(document: bytes, history: list[HistoryRow], base: HistoryBase | None) -> None:
    """Every update the file holds must be one yrs can apply: a bad one would fail the
    room on its first load, or its history's playback, long after the import."""

    def bad(failure: str) -> RoomFileError:
        return RoomFileError(f"corrupt room file: an undecodable update ({failure})")

    with failures.raised_as(bad):
        try:
            Doc().apply_update(document)
            replay: Doc[Any] = Doc()
            if base is not None:
                replay.apply_update(base.state)
            for row in history:
                for update in row.updates:
                    replay.apply_update(update)
        except RoomFileError:
            raise
        except Exception as exc:
            raise bad(type(exc).__name__) from None


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
