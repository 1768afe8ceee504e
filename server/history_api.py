"""``/api/rooms/{room}/history...`` and ``/authors``: a room's recorded history over REST.

Every answer comes from a ``rooms.playback.Playback`` of the room, kept in a small
LRU cache and brought up to date from the store before each request (only the rows
it has not seen: ``store.history(room, after=...)`` through the store worker, never
on the event loop). Replays run on one thread of their own, so a long replay neither
blocks the loop nor takes both cores. Before reading, the room's pending batch is
flushed (when this instance holds the room), so what a client saw a moment ago is in.

Who may read: owners, editors, reviewers; viewers when the room allows it
(``history_viewers``, off by default in broadcast rooms). Restore is the owner's and
editors': one server edit, attributed to the caller, that sets every file back.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pycrdt import Doc, Text
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crdt import paths, schema
from rooms.history import HistoryBase, HistoryRow, Who
from rooms.playback import Playback
from rooms.roles import Mode, Role
from rooms.store import RoomInfo, Store
from rooms.workspace import WorkspaceError, check_files, text_bytes
from server.api import LANGUAGE, Api, ApiError, Strict, _body
from server.auth import Identity
from server.files_api import replace_text

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
CACHED_ROOMS = 4  # rooms whose playback is kept (each holds its updates and checkpoints)
READ_ROWS = 5000  # rows read from the store per call while catching up
READERS = (Role.OWNER, Role.EDITOR, Role.REVIEWER)
RESTORERS = (Role.OWNER, Role.EDITOR)

T = TypeVar("T")


# -- bodies (the OpenAPI document is built from these) -----------------------------


class WhoBody(BaseModel):
    id: str
    name: str
    role: str


class RunRef(BaseModel):
    id: str
    status: str


class HistoryEvent(BaseModel):
    ts: float
    ts_first: float
    seq: int
    who: WhoBody
    kind: str = Field(description="edit, run, ai, comment or chat")
    chars_added: int = Field(description="code points inserted into files")
    chars_removed: int
    files: list[str] = Field(description="paths whose text changed")
    large: int = Field(description="the biggest one-update insert if at least large_insert, else 0")
    run: RunRef | None = None


class HistoryPage(BaseModel):
    events: list[HistoryEvent]
    more: bool
    first_ts: float | None
    last_ts: float | None
    large_insert: int


class ChatLine(BaseModel):
    author: str
    author_role: str
    text: str
    ts: float | None
    ai: bool


class HistoryAt(BaseModel):
    ts: float
    seq: int = Field(description="the last history row the state includes")
    entry: str
    language: str
    files: dict[str, str]
    chat: list[ChatLine]
    run: dict[str, Any] | None = Field(description="the newest run as it stood then")


class Span(BaseModel):
    from_: int = Field(alias="from", description="UTF-16 offset (a CodeMirror position)")
    to: int
    who: int = Field(description="index into people")


class Authorship(BaseModel):
    path: str
    text: str
    spans: list[Span]
    people: list[WhoBody]


class PersonSummary(BaseModel):
    who: WhoBody
    typed: int
    pasted: int
    ai: int
    edits: int


class LargeInsert(BaseModel):
    ts: float
    seq: int
    who: WhoBody
    chars: int
    path: str


class HistorySummary(BaseModel):
    people: list[PersonSummary]
    large_inserts: list[LargeInsert]


class AtMoment(Strict):
    ts: float = Field(ge=0, allow_inf_nan=False, description="unix seconds")


class Restored(BaseModel):
    ts: float
    restored_at: float
    files: int


# -- the cache -----------------------------------------------------------------------


@dataclass(slots=True)
class _Cached:
    playback: Playback
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _catch_up(
    store: Store, room: str, after: int, base_seq: int
) -> tuple[HistoryBase | None, list[HistoryRow], bool]:
    """On the store thread: the base when it moved past ``base_seq`` (the history was
    pruned: replay afresh), and the rows after ``after`` (a page; True if more)."""
    base = store.history_base(room)
    if base is not None and base.seq > base_seq:
        rows = store.history(room, after=base.seq, limit=READ_ROWS)
        return base, rows, len(rows) == READ_ROWS
    # From the last row read, not after it: the store may have appended to it since.
    rows = store.history(room, after=max(0, after - 1), limit=READ_ROWS)
    return None, rows, len(rows) == READ_ROWS


class HistoryApi:
    def __init__(self, api: Api, cached_rooms: int = CACHED_ROOMS) -> None:
        self.api = api
        self.cached_rooms = cached_rooms
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playback")

    def routes(self) -> list[Route]:
        h = self.api._handler
        base = "/api/rooms/{room}"
        return [
            Route(f"{base}/history", h(self.events), methods=["GET"]),
            Route(f"{base}/history/at", h(self.at), methods=["GET"]),
            Route(f"{base}/history/authorship", h(self.authorship), methods=["GET"]),
            Route(f"{base}/history/summary", h(self.summary), methods=["GET"]),
            Route(f"{base}/history/restore", h(self.restore), methods=["POST"]),
            Route(f"{base}/history/fork", h(self.fork), methods=["POST"]),
            Route(f"{base}/authors", h(self.authors), methods=["GET"]),
        ]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- plumbing ------------------------------------------------------------------

    async def _readable(self, request: Request) -> tuple[str, RoomInfo, Identity]:
        name, info, identity = await self.api._room(request)
        if not self.api.settings.history().enabled:
            raise ApiError(409, "history is off on this server (CODEMENTOR_HISTORY_DAYS=0)")
        if identity.role not in READERS and not (
            identity.role is Role.VIEWER and info.viewers_may_read_history
        ):
            raise ApiError(403, "viewers may not read this room's history")
        return name, info, identity

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def _use(self, name: str, read: Callable[[Playback], T]) -> T:
        """``read`` on the room's playback brought up to date, on the playback thread."""
        registry = self.api.registry
        room = registry.rooms.get(name)
        if room is not None:
            await room.writer.flush()  # what peers sent a moment ago is history too
        cached = self._cache.get(name)
        if cached is None:
            cached = self._cache[name] = _Cached(
                Playback(large_insert=self.api.settings.history().large_insert)
            )
        self._cache.move_to_end(name)
        while len(self._cache) > self.cached_rooms:
            self._cache.popitem(last=False)
        async with cached.lock:
            while True:
                playback = cached.playback
                base, rows, more = await registry.worker.run(
                    _catch_up, registry.worker.store, name, playback.last_seq, playback.first_seq
                )
                if base is not None:
                    playback = cached.playback = Playback(
                        base, large_insert=self.api.settings.history().large_insert
                    )
                if rows:
                    await self._run(playback.extend, rows)
                if not more:
                    break
            return await self._run(read, playback)

    # -- reading -------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        """The timeline: one event per history row between ``from`` and ``to``."""
        name, _, _ = await self._readable(request)
        start = _number(request, "from", 0.0)
        end = _number(request, "to", math.inf)
        limit = _limit(request)

        def page(playback: Playback) -> dict[str, Any]:
            chosen = [e for e in playback.events if start <= e.ts and e.ts_first <= end]
            return {
                "events": [e.as_json() for e in chosen[:limit]],
                "more": len(chosen) > limit,
                "first_ts": playback.first_ts,
                "last_ts": playback.last_ts,
                "large_insert": playback.large_insert,
            }

        return JSONResponse(await self._use(name, page))

    async def at(self, request: Request) -> Response:
        """The workspace, chat and newest run at ``ts``; ``?format=yjs``: the document."""
        name, _, _ = await self._readable(request)
        ts = _number(request, "ts", None)
        wanted = request.query_params.get("format", "json")
        if wanted == "yjs":
            state = await self._use(name, lambda p: p.state_at(ts).get_update())
            return Response(state, media_type="application/octet-stream")
        if wanted != "json":
            raise _invalid("format", "must be json or yjs")
        return JSONResponse(await self._use(name, lambda p: p.at_json(ts)))

    async def authorship(self, request: Request) -> Response:
        """Who wrote each character of ``path`` at ``ts`` (default: now)."""
        name, _, _ = await self._readable(request)
        raw = request.query_params.get("path")
        if raw is None:
            raise _invalid("path", "is required")
        try:
            path = paths.normalize(raw)
        except paths.PathError as exc:
            raise _invalid("path", exc.rule) from exc
        ts = _number(request, "ts", None) if "ts" in request.query_params else None
        found = await self._use(name, lambda p: p.authorship_at(path, ts))
        if found is None:
            raise _invalid("path", f"{path} is not a file of the workspace at that moment")
        return JSONResponse(found)

    async def summary(self, request: Request) -> Response:
        """Per person: characters typed, pasted (large inserts), from the AI."""
        name, _, _ = await self._readable(request)
        return JSONResponse(await self._use(name, lambda p: p.summary()))

    async def authors(self, request: Request) -> Response:
        """Each Yjs client id -> the verified identity that first wrote with it."""
        name, _, _ = await self._readable(request)
        return JSONResponse(await self._use(name, lambda p: p.authors_json()))

    # -- writing -------------------------------------------------------------------

    async def restore(self, request: Request) -> Response:
        """Owner and editor: set the workspace back to ``ts`` as one edit of the caller's."""
        name, _, identity = await self._readable(request)
        if identity.role not in RESTORERS:
            raise ApiError(403, "only the room's owner and editors may restore its history")
        ts = (await _body(request, AtMoment)).ts
        target = await self._use(name, lambda p: _moment(p.state_at(ts)))
        try:
            check_files(
                target.entry,
                [(p, text_bytes(t)) for p, t in target.files.items()],
                self.api.settings.workspace_limits(),
            )
        except WorkspaceError as exc:
            raise ApiError(409, f"the workspace at that moment breaks a limit now: {exc}") from exc
        room = await self.api.registry.loaded(name)
        await room.wait_rebuilt()
        who = Who(identity.user_id, identity.name, identity.role.value)
        room.edit(target.apply, who=who)
        body = {"ts": ts, "restored_at": time.time(), "files": len(target.files)}
        return JSONResponse(body)

    async def fork(self, request: Request) -> Response:
        """A new pair room seeded with the workspace at ``ts`` (as ``POST .../fork``)."""
        name, info, identity = await self._readable(request)
        if info.mode == Mode.BROADCAST.value and not identity.role.on_stage and not info.forks:
            raise ApiError(403, "the room's owner does not allow forks in this room")
        ts = (await _body(request, AtMoment)).ts
        target = await self._use(name, lambda p: _moment(p.state_at(ts)))
        language = target.language if re.fullmatch(LANGUAGE, target.language) else None
        created = await self.api.fork_seeded(
            request, info, identity, target.files, target.entry, language
        )
        return JSONResponse(created.model_dump(), status_code=201)


@dataclass(frozen=True, slots=True)
class _Moment:
    """The workspace at a moment: what restore writes back."""

    entry: str
    language: str
    files: dict[str, str]

    def apply(self, doc: Doc[Any]) -> None:
        """Make ``doc``'s workspace this one, changing only what differs."""
        meta = schema.meta(doc)
        if self.language and meta.get("language") != self.language:
            meta["language"] = self.language
        if schema.entry_path(doc) != self.entry:
            current = schema.entry_path(doc)
            old_entry_text = schema.code_text(doc)
            meta[schema.ENTRY] = self.entry
            if current in self.files:  # the old entry file stays, as an ordinary file now
                schema.files(doc)[current] = Text(old_entry_text)
        replace_text(schema.code(doc), self.files.get(self.entry, ""))
        files = schema.files(doc)
        for path in list(files.keys()):
            if path not in self.files or path == self.entry:
                del files[path]
        for path, text in self.files.items():
            if path == self.entry:
                continue
            current_text = files.get(path)
            if isinstance(current_text, Text):
                replace_text(current_text, text)
            else:
                files[path] = Text(text)


def _moment(doc: Doc[Any]) -> _Moment:
    language = schema.meta(doc).get("language")
    return _Moment(
        schema.entry_path(doc),
        language if isinstance(language, str) else "",
        schema.workspace(doc),
    )


def _invalid(name: str, message: str) -> ApiError:
    return ApiError(422, "invalid request", [{"field": name, "message": message}])


def _number(request: Request, name: str, default: float | None) -> Any:
    raw = request.query_params.get(name)
    if raw is None:
        if default is None:
            raise _invalid(name, "is required (unix seconds)")
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise _invalid(name, "must be a number (unix seconds)") from exc
    if not math.isfinite(value) or value < 0:
        raise _invalid(name, "must be a finite number, not negative")
    return value


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise _invalid("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)
