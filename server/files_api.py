"""``/api/rooms/{room}/files`` and ``/archive``: a room's workspace over REST.

Reads are open to every role the room's token gives. Writes (PUT, DELETE, POST
archive) are the owner's and editors', and are server edits: one transaction each,
stored and sent to every peer like a keystroke. A PUT replaces only the changed
middle of a file (the common prefix and suffix stay the same items), so cursors and
comments anchored outside it survive. Every write is checked against the same rules
as a peer's update (``rooms.workspace``) before it is made: a bad path or a limit is
422 naming the path and the rule, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import quote

from pycrdt import Doc, Text
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from crdt import paths, schema
from crdt.offsets import codepoint_to_utf8
from rooms.history import Who
from rooms.registry import RoomRegistry
from rooms.roles import Role
from rooms.room import Room
from rooms.store import RoomInfo
from rooms.workspace import WorkspaceError, WorkspaceLimits, check_files, text_bytes
from server import workspace_zip
from server.auth import Identity
from server.errors import ApiError
from server.settings import Settings
from server.workspace_zip import ZipRefused


class RoomApi(Protocol):
    """What of ``server.api.Api`` this module uses (it cannot import it: api imports this)."""

    settings: Settings

    @property
    def registry(self) -> RoomRegistry: ...

    def _handler(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]: ...

    async def _room(self, request: Request) -> tuple[str, RoomInfo, Identity]: ...


ZIP = "application/zip"
# An upload's body: the workspace's bytes and room for the zip's own headers.
ZIP_OVERHEAD_PER_FILE = 1024
ZIP_OVERHEAD = 64 * 1024


class FileInfo(BaseModel):
    path: str  # crdt.paths normal form
    bytes: int  # UTF-8
    language: str  # by extension, else the room's language


class FileWritten(BaseModel):
    path: str
    bytes: int
    created: bool  # 201 when created, 200 when replaced


class ArchiveApplied(BaseModel):
    added: list[str]
    replaced: list[str]


def replace_text(text: Text, new: str) -> None:
    """Make ``text`` read ``new`` by replacing only the middle that differs."""
    old = str(text)
    if old == new:
        return
    limit = min(len(old), len(new))
    start = 0
    while start < limit and old[start] == new[start]:
        start += 1
    end = 0
    while end < limit - start and old[len(old) - 1 - end] == new[len(new) - 1 - end]:
        end += 1
    at = codepoint_to_utf8(old, start)
    stop = codepoint_to_utf8(old, len(old) - end)
    if stop > at:
        del text[at:stop]
    middle = new[start : len(new) - end]
    if middle:
        text.insert(at, middle)


def workspace_after(doc: Doc[Any], changes: dict[str, str | None], limits: WorkspaceLimits) -> None:
    """Raise ``WorkspaceError`` unless ``doc``'s workspace with ``changes`` (path -> new
    text, None to delete) keeps every rule."""
    files = dict(schema.workspace(doc))
    entry = schema.entry_path(doc)
    for path, text in changes.items():
        if text is None:
            files.pop(path, None)
        else:
            files[path] = text
    # The changed files last: a limit crossed is named after the file that crosses it.
    order = sorted(files, key=lambda p: (p in changes, p != entry))
    check_files(entry, [(p, text_bytes(files[p])) for p in order], limits)


def apply_changes(doc: Doc[Any], changes: dict[str, str | None]) -> None:
    """Write ``changes`` (checked already) into ``doc``, in the caller's transaction."""
    entry = schema.entry_path(doc)
    files = schema.files(doc)
    for path, text in changes.items():
        if path == entry:
            assert text is not None
            replace_text(schema.code(doc), text)
        elif text is None:
            files.pop(path, None)
        else:
            current = files.get(path)
            if isinstance(current, Text):
                replace_text(current, text)
            else:
                files[path] = Text(text)


def _ordered(workspace: dict[str, str]) -> list[tuple[str, str]]:
    """The entry file (first in ``workspace``), then the others sorted by path."""
    items = list(workspace.items())
    return items[:1] + sorted(items[1:])


def _path_error(path: str, rule: str) -> ApiError:
    return ApiError(422, f"{path}: {rule}", _fields(path, rule))


def _fields(path: str, rule: str) -> list[dict[str, str]]:
    """The 422 (and 413) error's fields: which path, which rule."""
    return [{"field": "path", "path": path, "message": rule}]


class FilesApi:
    def __init__(self, api: RoomApi) -> None:
        self.api = api

    @property
    def limits(self) -> WorkspaceLimits:
        return self.api.settings.workspace_limits()

    def routes(self) -> list[Route]:
        h = self.api._handler
        return [
            Route("/api/rooms/{room}/files", h(self.list_files), methods=["GET"]),
            Route("/api/rooms/{room}/files/{path:path}", h(self.get_file), methods=["GET"]),
            Route("/api/rooms/{room}/files/{path:path}", h(self.put_file), methods=["PUT"]),
            Route("/api/rooms/{room}/files/{path:path}", h(self.delete_file), methods=["DELETE"]),
            Route("/api/rooms/{room}/archive", h(self.get_archive), methods=["GET"]),
            Route("/api/rooms/{room}/archive", h(self.post_archive), methods=["POST"]),
        ]

    async def _loaded(self, request: Request, write: bool = False) -> tuple[Room, str, Who]:
        """The room, its title, and the caller as its history names them."""
        name, info, identity = await self.api._room(request)
        if write and identity.role not in (Role.OWNER, Role.EDITOR):
            raise ApiError(403, "only the room's owner and editors may change its files")
        room = await self.api.registry.loaded(name)
        await room.wait_rebuilt()
        return room, info.title or name, Who(identity.user_id, identity.name, identity.role.value)

    def _path(self, request: Request) -> str:
        raw = request.path_params["path"]
        try:
            path = paths.normalize(raw)
        except paths.PathError as exc:
            raise _path_error(raw, exc.rule) from exc
        if path != raw:
            raise _path_error(raw, f"not in normal form (it would be {path!r})")
        return path

    async def list_files(self, request: Request) -> Response:
        """Every file: path, UTF-8 bytes and language; the entry file first, the others
        sorted by path."""
        room, _, _ = await self._loaded(request)
        language = schema.meta(room.doc).get("language")
        default = language if isinstance(language, str) else "python"
        listing = [
            {"path": p, "bytes": text_bytes(t), "language": paths.language_for(p, default)}
            for p, t in _ordered(schema.workspace(room.doc))
        ]
        return JSONResponse(listing)

    async def get_file(self, request: Request) -> Response:
        """One file's text."""
        room, _, _ = await self._loaded(request)
        text = schema.file_text(room.doc, self._path(request))
        if text is None:
            raise ApiError(404, "unknown file")
        return PlainTextResponse(str(text))

    async def put_file(self, request: Request) -> Response:
        """Create or replace a file (the entry file's path edits ``code``)."""
        room, _, who = await self._loaded(request, write=True)
        path = self._path(request)
        limit = self.limits.max_file_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _path_error(path, f"a file may be at most {limit} bytes of UTF-8")
        raw = await _read_capped(request, limit)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(
                422,
                "invalid request",
                [{"field": "(body)", "message": f"not UTF-8 text (byte {exc.start})"}],
            ) from exc
        created = schema.file_text(room.doc, path) is None
        self._check(room, {path: text})
        room.edit(lambda doc: apply_changes(doc, {path: text}), who=who)
        body = {"path": path, "bytes": len(raw), "created": created}
        return JSONResponse(body, status_code=201 if created else 200)

    async def delete_file(self, request: Request) -> Response:
        """Delete a file; the entry file cannot be deleted (409)."""
        room, _, who = await self._loaded(request, write=True)
        path = self._path(request)
        if path == schema.entry_path(room.doc):
            raise ApiError(
                409, f"{path} is the entry file: make another file the entry before deleting it"
            )
        if schema.file_text(room.doc, path) is None:
            raise ApiError(404, "unknown file")
        room.edit(lambda doc: apply_changes(doc, {path: None}), who=who)
        return Response(status_code=204)

    async def get_archive(self, request: Request) -> Response:
        """The workspace as a zip (the same workspace always gives the same bytes)."""
        room, title, _ = await self._loaded(request)
        return archive_response(room, title)

    async def post_archive(self, request: Request) -> Response:
        """Add or replace files from a zip, all in one transaction or none."""
        room, _, who = await self._loaded(request, write=True)
        limits = self.limits
        cap = limits.max_workspace_bytes + limits.max_files * ZIP_OVERHEAD_PER_FILE + ZIP_OVERHEAD
        data = await _read_capped(request, cap)
        try:
            uploaded = workspace_zip.read(data, limits)
        except ZipRefused as exc:
            if exc.status == 422 and exc.path is not None:
                rule = exc.message.removeprefix(f"{exc.path}: ")
                raise ApiError(422, exc.message, _fields(exc.path, rule)) from exc
            raise ApiError(exc.status, exc.message) from exc
        before = schema.workspace(room.doc)
        try:
            workspace_after(room.doc, dict(uploaded), limits)
        except WorkspaceError as exc:  # the zip fits, the workspace with it would not
            raise _path_error(exc.path, exc.rule) from exc
        room.edit(lambda doc: apply_changes(doc, dict(uploaded)), who=who)
        added = sorted(p for p in uploaded if p not in before)
        replaced = sorted(p for p in uploaded if p in before)
        return JSONResponse({"added": added, "replaced": replaced})

    def _check(self, room: Room, changes: dict[str, str | None]) -> None:
        try:
            workspace_after(room.doc, changes, self.limits)
        except WorkspaceError as exc:
            raise _path_error(exc.path, exc.rule) from exc


def archive_response(room: Room, title: str) -> Response:
    """The room's workspace as a zip download named after ``title``."""
    data = workspace_zip.build(list(schema.workspace(room.doc).items()))
    filename = f"{title}.zip"
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename)  # fmt: skip
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
    return Response(data, media_type=ZIP, headers={"Content-Disposition": disposition})


async def _read_capped(request: Request, cap: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``cap`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise ApiError(413, f"request body too large (at most {cap} bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise ApiError(413, f"request body too large (at most {cap} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)
