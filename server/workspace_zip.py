"""A workspace as a zip, and a zip (an upload) as a workspace, with the stdlib's ``zipfile``.

Writing is deterministic: the entry file first, then the others sorted by path, every
entry dated 1980-01-01 00:00 with permissions 0644 and deflated at one level, so the
same workspace always gives the same bytes (a client can compare them, a cache can
keep them).

Reading is bounded before and during extraction. Before: the entry count against
``max_files``, the declared sizes against the file and workspace limits, and each
entry's declared compression ratio against ``MAX_RATIO`` (a zip bomb declares a huge
size for a few compressed bytes). During: the bytes actually inflated are counted
(declared sizes can lie) and reading stops at the limit.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from crdt import paths
from rooms.workspace import WorkspaceLimits

# Largest ratio of an entry's size to its compressed size: source code deflates about
# 3-10 times; a zip bomb, thousands of times.
MAX_RATIO = 100
DATE = (1980, 1, 1, 0, 0, 0)
PERMISSIONS = 0o100644 << 16  # a regular file, rw-r--r--
CHUNK = 64 * 1024
SKIPPED_DIRS = frozenset({"__MACOSX"})
SKIPPED_FILES = frozenset({".DS_Store", "Thumbs.db"})


class ZipRefused(Exception):
    """An upload that cannot become files: ``status`` is the HTTP answer (400 not a zip,
    413 past a limit, 422 a bad path or a file that is not UTF-8 text)."""

    def __init__(self, status: int, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.path = path


def build(files: list[tuple[str, str]]) -> bytes:
    """The zip of ``files`` (path, text; the entry file first, kept first)."""
    if not files:
        ordered: list[tuple[str, str]] = []
    else:
        ordered = [files[0], *sorted(files[1:])]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path, text in ordered:
            info = zipfile.ZipInfo(path, date_time=DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the permissions are read
            info.external_attr = PERMISSIONS
            archive.writestr(info, text.encode("utf-8", "surrogatepass"), compresslevel=6)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class _Entry:
    info: zipfile.ZipInfo
    path: str


def read(data: bytes, limits: WorkspaceLimits) -> dict[str, str]:
    """The files of the zip ``data``: normal path -> text. Raises ``ZipRefused``."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise ZipRefused(400, f"not a zip file: {exc}") from exc
    with archive:
        entries = _entries(archive.infolist(), limits)
        out: dict[str, str] = {}
        total = 0
        for entry in entries:
            raw = _inflate(archive, entry, limits, limits.max_workspace_bytes - total)
            total += len(raw)
            try:
                out[entry.path] = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ZipRefused(
                    422, f"{entry.path} is not UTF-8 text (byte {exc.start})", entry.path
                ) from exc
        return out


def _skipped(name: str) -> bool:
    segments = name.split("/")
    return any(s in SKIPPED_DIRS for s in segments[:-1]) or segments[-1] in SKIPPED_FILES


def _entries(infos: list[zipfile.ZipInfo], limits: WorkspaceLimits) -> list[_Entry]:
    """The entries to extract, checked on what the zip declares (nothing inflated yet)."""
    kept = [i for i in infos if not i.is_dir() and not _skipped(i.filename)]
    if len(kept) > limits.max_files:
        raise ZipRefused(413, f"the zip holds {len(kept)} files; at most {limits.max_files}")
    declared = sum(i.file_size for i in kept)
    if declared > limits.max_workspace_bytes:
        raise ZipRefused(
            413,
            f"the zip's files declare {declared} bytes; at most "
            f"{limits.max_workspace_bytes} bytes in all",
        )
    for info in kept:
        if info.file_size > limits.max_file_bytes:
            raise ZipRefused(
                413,
                f"{info.filename} declares {info.file_size} bytes; a file may be at most "
                f"{limits.max_file_bytes}",
                info.filename,
            )
        if info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ZipRefused(
                413,
                f"{info.filename} inflates more than {MAX_RATIO} times its compressed size",
                info.filename,
            )
    names = [i.filename for i in kept]
    prefix = _common_folder(names)
    entries: list[_Entry] = []
    seen: set[str] = set()
    for info, name in zip(kept, names, strict=True):
        name = name[len(prefix) :]
        try:
            path = paths.normalize(name)
        except paths.PathError as exc:
            raise ZipRefused(422, f"{name}: {exc.rule}", name) from exc
        if path in seen:
            raise ZipRefused(422, f"{path}: the zip holds this path twice", path)
        seen.add(path)
        entries.append(_Entry(info, path))
    return entries


def _common_folder(names: list[str]) -> str:
    """``folder/`` when every name lies under that one top-level folder (a zipped
    folder), else the empty string."""
    if not names or any("/" not in n for n in names):
        return ""
    first = names[0].split("/", 1)[0] + "/"
    return first if all(n.startswith(first) for n in names) else ""


def _inflate(
    archive: zipfile.ZipFile, entry: _Entry, limits: WorkspaceLimits, room_left: int
) -> bytes:
    """The entry's bytes, read in chunks and counted: more than the file or workspace
    limit (whatever the zip declared) stops the reading with 413."""
    limit = min(limits.max_file_bytes, room_left)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(entry.info) as stream:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise ZipRefused(
                        413,
                        f"{entry.path} inflates past the limit ({limit} bytes left)",
                        entry.path,
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ZipRefused(400, f"{entry.path}: cannot be read from the zip: {exc}") from exc
    except Exception as exc:  # zlib.error and friends
        if isinstance(exc, ZipRefused):
            raise
        raise ZipRefused(400, f"{entry.path}: cannot be read from the zip: {exc}") from exc
    return b"".join(chunks)
