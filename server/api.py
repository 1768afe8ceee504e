"""The REST API under ``/api``: rooms, tokens, roles, snapshots, forks, config.

Every handler reads its credential with ``_identity`` and its body with
``_body``; both raise ``ApiError``, which becomes one JSON error shape:
``{"error": message, "fields": [...]}`` (fields only for 422). Request bodies
are pydantic models with ``extra="forbid"``, so unknown fields are refused too.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pycrdt import Text
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from crdt import schema
from crdt.awareness import is_server_name
from rooms.history import Who
from rooms.registry import RoomLoadError, RoomRegistry
from rooms.roles import Mode, Role
from rooms.store import RoomInfo
from server import implicit_rooms
from server.auth import (
    Authenticator,
    AuthError,
    Identity,
    check_not_rotated,
    issue_token,
    new_user_id,
    rotation_second,
)
from server.errors import ApiError as ApiError  # re-exported: runs, ai raise it
from server.files_api import FilesApi, archive_response
from server.metrics import Metrics
from server.names import new_room_name, valid_room_name
from server.quotas import Quotas
from server.ratelimit import RateLimiter
from server.settings import Settings

MAX_BODY_BYTES = 64 * 1024
LANGUAGE = r"^[a-z0-9+#._-]{1,32}$"


# -- request and response bodies ----------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateRoom(Strict):
    mode: Mode = Mode.PAIR
    language: str = Field(default="python", pattern=LANGUAGE)
    title: str = Field(default="", max_length=200)


class UpdateRoom(Strict):
    language: str | None = Field(default=None, pattern=LANGUAGE)
    title: str | None = Field(default=None, max_length=200)
    # Pair rooms only: the AI applies its edits itself (``meta.ai_edits``) rather
    # than offering them as suggestions.
    ai_edits: bool | None = None
    # Broadcast rooms only: whether students may fork the code (``meta.forks``).
    forks: bool | None = None
    # Whether reviewers may run the code (``meta.reviewers_run``); default: review rooms.
    reviewers_run: bool | None = None
    # Whether viewers may read the history (``meta.history_viewers``); default: on, but
    # not in broadcast rooms.
    history_viewers: bool | None = None


class CreateToken(Strict):
    role: Role
    name: str = Field(min_length=1, max_length=100)
    ttl: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)

    @field_validator("name")
    @classmethod
    def _not_the_ai(cls, value: str) -> str:
        if is_server_name(value):
            raise ValueError("is the AI pair-programmer's name")
        return value


NAME_LENGTH = 40
# Characters a display name may not hold: controls, format characters (bidi overrides,
# zero-width spaces) but the emoji joiner, unassigned and private-use code points.
_NOT_IN_NAMES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def display_name(value: str) -> str:
    """A person's display name: trimmed, 1-40 characters, printable, and never one
    that passes for the AI pair-programmer's."""
    name = value.strip()
    if not 1 <= len(name) <= NAME_LENGTH:
        raise ValueError(f"must be 1-{NAME_LENGTH} characters once trimmed")
    if any(unicodedata.category(ch) in _NOT_IN_NAMES and ch != "\u200d" for ch in name):
        raise ValueError("must not contain control or invisible format characters")
    if is_server_name(name):
        raise ValueError("is the AI pair-programmer's name")
    return name


class JoinRoom(Strict):
    name: str = Field(
        max_length=200,
        description="display name: trimmed, then 1-40 characters, no control or invisible "
        "format characters, never the AI pair-programmer's",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return display_name(value)


class Joined(BaseModel):
    token: str  # personal: the bearer's room, role, iat and exp
    user_id: str  # the bearer's when it was personal, else a new one
    name: str
    role: Role


class ChangeRole(Strict):
    role: Role
    ttl: int | None = Field(default=None, ge=1, le=24 * 3600)


class RoomCreated(BaseModel):
    room: str
    owner_token: str
    links: dict[str, str]


class PeerEntry(BaseModel):
    id: str  # the token's user id (shared by everyone who joined through one link)
    conn: str  # this connection, unique in the room
    name: str
    clients: list[int] = []  # awareness client IDs this connection announced


class RoomDetails(BaseModel):
    room: str
    mode: Mode
    language: str
    title: str
    peers: dict[str, list[PeerEntry]]
    created_at: float
    updated_at: float
    forks: bool  # whether POST /fork is open to this room's participants
    reviewers_run: bool  # whether reviewers may POST runs (on by default in review rooms)
    history_viewers: bool  # whether viewers may read the history (off in broadcast rooms)


class TokenIssued(BaseModel):
    token: str


class RoleChanged(BaseModel):
    changed: int
    role: Role
    expires_at: float | None


class Limits(BaseModel):
    """The workspace's limits, so a client can refuse an upload before sending it."""

    max_files: int
    max_file_bytes: int
    max_workspace_bytes: int


class Features(BaseModel):
    ai: bool
    runner: bool
    multi_instance: bool
    anonymous: bool
    limits: Limits


class ErrorBody(BaseModel):
    error: str
    fields: list[dict[str, str]] | None = None


# -- plumbing ------------------------------------------------------------------


class Api:
    def __init__(
        self,
        settings: Settings,
        auth: Authenticator,
        registry_of: Callable[[], RoomRegistry],
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.auth = auth
        self._registry_of = registry_of
        self.metrics = metrics
        self.limiter = RateLimiter(settings.api_rate_per_minute)
        self.fork_limiter = RateLimiter(settings.forks_per_user_per_hour, window=3600.0)
        self.quotas = Quotas(settings, metrics)

    @property
    def registry(self) -> RoomRegistry:
        return self._registry_of()

    def routes(self) -> list[Route]:
        h = self._handler
        return [
            Route("/api/config", h(self.config), methods=["GET"]),
            Route("/api/rooms", h(self.create_room), methods=["POST"]),
            Route("/api/rooms/{room}", h(self.get_room), methods=["GET"]),
            Route("/api/rooms/{room}", h(self.update_room), methods=["PATCH"]),
            Route("/api/rooms/{room}/tokens", h(self.create_token), methods=["POST"]),
            Route("/api/rooms/{room}/join", h(self.join), methods=["POST"]),
            Route("/api/rooms/{room}/peers/{user}/role", h(self.change_role), methods=["PUT"]),
            Route("/api/rooms/{room}/snapshot", h(self.snapshot), methods=["GET"]),
            Route("/api/rooms/{room}/fork", h(self.fork), methods=["POST"]),
            Route("/api/rooms/{room}/rotate", h(self.rotate), methods=["POST"]),
            *FilesApi(self).routes(),
        ]

    def _handler(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                self._rate_limit(request)
                return await handler(request)
            except ApiError as exc:
                if exc.status in (401, 403):
                    self.metrics.auth_refused.labels(str(exc.status)).inc()
                return exc.response()

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    def _rate_limit(self, request: Request) -> None:
        """One bucket per verified token (its user and room), else per client address:
        made-up tokens must not each get a bucket of their own."""
        key = f"addr:{request.client.host if request.client else 'unknown'}"
        token = _bearer(request)
        if token:
            try:
                identity = self.auth.identify(token, None)
            except AuthError:
                pass
            else:
                key = f"user:{identity.user_id}:{identity.room}"
        self.limiter.enforce(key, "too many requests")

    def _identity(self, request: Request, room: str | None) -> Identity:
        try:
            return self.auth.identify(_bearer(request), room)
        except AuthError as exc:
            raise ApiError(exc.status, exc.message) from exc

    async def _room(self, request: Request) -> tuple[str, RoomInfo, Identity]:
        """The path's room, after the caller was checked against it."""
        name = request.path_params["room"]
        if not valid_room_name(name):
            raise ApiError(404, "unknown room")
        identity = self._identity(request, name)
        info = await self.registry.room_info(name)
        if info is None:
            raise ApiError(404, "unknown room")
        try:
            check_not_rotated(identity, info.tokens_after)
        except AuthError as exc:
            raise ApiError(exc.status, exc.message) from exc
        return name, info, identity

    def _links(self, request: Request, room: str, mode: Mode, owner_token: str) -> dict[str, str]:
        base = (self.settings.public_url or str(request.base_url)).rstrip("/")
        join = mode.join_role
        join_token = issue_token(
            self.auth.secret,
            room=room,
            role=join,
            name=join.value,
            user_id="",
            ttl=self.settings.token_ttl_seconds,
        )
        return {
            Role.OWNER.value: f"{base}/r/{room}?token={owner_token}",
            join.value: f"{base}/r/{room}?token={join_token}",
        }

    async def _new_room(
        self, request: Request, body: CreateRoom, owner: str | None, code: str, made_by: str = ""
    ) -> RoomCreated:
        now = time.time()
        for _ in range(5):
            name = new_room_name()
            info = RoomInfo(name, body.mode.value, body.language, body.title, now, now)
            info.owner = made_by  # whose quota it counts against (server.quotas)
            if await self.registry.create_room(info, code=code):
                break
        else:  # pragma: no cover - 72 random bits colliding five times
            raise ApiError(500, "could not pick a room name")
        owner_token = issue_token(
            self.auth.secret,
            room=name,
            role=Role.OWNER,
            name="owner",
            user_id=owner,
            ttl=self.settings.token_ttl_seconds,
            personal=True,
        )
        return RoomCreated(
            room=name,
            owner_token=owner_token,
            links=self._links(request, name, body.mode, owner_token),
        )

    # -- endpoints -------------------------------------------------------------

    async def config(self, request: Request) -> Response:
        """Which optional features this server has on, and the workspace's limits."""
        features = Features(
            ai=bool(self.settings.anthropic_api_key),
            runner=bool(self.settings.judge0_url),
            multi_instance=bool(self.settings.redis_url),
            anonymous=self.auth.anonymous,
            limits=Limits.model_validate(self.settings.workspace_limits(), from_attributes=True),
        )
        return JSONResponse(features.model_dump())

    async def create_room(self, request: Request) -> Response:
        """Create a room; answers its owner token and join links."""
        admin = self.settings.admin_token
        if admin:
            given = _bearer(request)
            if not given:
                raise ApiError(401, "missing admin token")
            if not hmac.compare_digest(given.encode(), admin.encode()):
                raise ApiError(403, "wrong admin token")
        else:
            self.quotas.check_address(client_address(request))
        body = await _body(request, CreateRoom)
        created = await self._new_room(request, body, owner=None, code="")
        return JSONResponse(created.model_dump(), status_code=201)

    async def get_room(self, request: Request) -> Response:
        """A room's settings, who is connected by role, and when it changed. In a
        broadcast room the audience sees only the stage (and its own connections),
        as over the websocket: a student does not get the class list."""
        name, info, identity = await self._room(request)
        room = self.registry.rooms.get(name)
        peers = room.peers_by_role() if room else {r.value: [] for r in Role}
        if info.mode == Mode.BROADCAST.value and not identity.role.on_stage:
            me = identity.user_id if identity.personal else None
            peers = {
                role: entries if Role(role).on_stage else [p for p in entries if p["id"] == me]
                for role, entries in peers.items()
            }
        details = RoomDetails(
            room=name,
            mode=Mode(info.mode),
            language=info.language,
            title=info.title,
            peers={k: [PeerEntry(**p) for p in v] for k, v in peers.items()},
            created_at=info.created_at,
            updated_at=info.updated_at,
            forks=info.mode == Mode.BROADCAST.value and info.forks,
            reviewers_run=info.reviewers_may_run,
            history_viewers=info.viewers_may_read_history,
        )
        return JSONResponse(details.model_dump(mode="json"))

    async def update_room(self, request: Request) -> Response:
        """Owner only: change the title, the language, (pair rooms) whether the AI edits
        the code itself, (broadcast rooms) forks, whether reviewers may run the code, or
        whether viewers may read the history; all are written to ``meta`` too."""
        name, info, identity = await self._room(request)
        _require(identity, Role.OWNER)
        body = await _body(request, UpdateRoom)
        if body.ai_edits is not None and info.mode != Mode.PAIR.value:
            raise ApiError(
                409, f"AI edits apply only in pair rooms; in a {info.mode} room the AI suggests"
            )
        if body.forks is not None and info.mode != Mode.BROADCAST.value:
            raise ApiError(409, f"forks apply only in broadcast rooms, not in a {info.mode} room")
        await self.registry.worker.run(
            self.registry.worker.store.update_room_info,
            name,
            title=body.title,
            language=body.language,
            forks=body.forks,
            reviewers_run=body.reviewers_run,
            history_viewers=body.history_viewers,
        )
        room = await self.registry.loaded(name)

        def write_meta(doc: Any) -> None:
            meta = schema.meta(doc)
            if body.title is not None:
                meta["title"] = body.title
            if body.language is not None:
                meta["language"] = body.language
            if body.ai_edits is not None:
                meta["ai_edits"] = body.ai_edits
            if body.forks is not None:
                meta["forks"] = body.forks  # for clients to show or hide Fork; REST decides
            if body.reviewers_run is not None:
                meta["reviewers_run"] = body.reviewers_run  # for clients; runs.py decides
            if body.history_viewers is not None:
                meta["history_viewers"] = body.history_viewers  # for clients; REST decides

        room.edit(write_meta, who=Who(identity.user_id, identity.name, identity.role.value))
        return await self.get_room(request)

    async def create_token(self, request: Request) -> Response:
        """Owner only: a token for this room with the given role."""
        name, _, identity = await self._room(request)
        _require(identity, Role.OWNER)
        body = await _body(request, CreateToken)
        token = issue_token(
            self.auth.secret,
            room=name,
            role=body.role,
            name=body.name,
            ttl=body.ttl,
            personal=True,
        )
        return JSONResponse(TokenIssued(token=token).model_dump(), status_code=201)

    async def join(self, request: Request) -> Response:
        """Exchange any valid token for this room for a personal one with a display
        name: the same room, role, iat and exp; the same user id when the bearer was
        already personal (a rename keeps the person), else a new one (a join link's
        user id is everyone's who opened it). Dev mode with anonymous joins: a
        tokenless call gets a personal editor token (and, like a tokenless websocket, makes
        a room that does not exist yet)."""
        name = request.path_params["room"]
        makes_room = implicit_rooms.implicit(
            self.auth.anonymous, _bearer(request), self.settings.admin_token
        )
        if makes_room and valid_room_name(name):
            try:
                await implicit_rooms.room_exists(
                    self.registry,
                    name,
                    implicit=True,
                    before_create=lambda: self.quotas.check_address(client_address(request)),
                )
            except RoomLoadError as exc:
                raise ApiError(503, "the room store is unavailable; retry later") from exc
        name, _, identity = await self._room(request)
        body = await _body(request, JoinRoom)
        if _bearer(request) is None:  # dev mode, anonymous joins on (else _room refused)
            now = int(time.time())
            lifetime = (now, now + self.settings.token_ttl_seconds)
        else:
            issued = int(identity.issued_at)
            lifetime = (issued, int(identity.expires or 0))
        user_id = identity.user_id if identity.personal else new_user_id()
        token = issue_token(
            self.auth.secret,
            room=name,
            role=identity.role,
            name=body.name,
            user_id=user_id,
            ttl=0,
            personal=True,
            lifetime=lifetime,
        )
        joined = Joined(token=token, user_id=user_id, name=body.name, role=identity.role)
        return JSONResponse(joined.model_dump(mode="json"), status_code=201)

    async def change_role(self, request: Request) -> Response:
        """Owner only: change the role of a connection (``conn``) or of every connection
        of a user id, at once and optionally for ``ttl`` seconds."""
        name, _, identity = await self._room(request)
        _require(identity, Role.OWNER)
        body = await _body(request, ChangeRole)
        room = self.registry.rooms.get(name)
        changed = room.set_role(request.path_params["user"], body.role, body.ttl) if room else []
        if not changed:
            raise ApiError(404, "no such user connected to this room")
        result = RoleChanged(
            changed=len(changed), role=body.role, expires_at=changed[0].grant_expires
        )
        return JSONResponse(result.model_dump(mode="json"))

    async def snapshot(self, request: Request) -> Response:
        """The entry file as text, with ``?format=yjs`` the whole document as one Yjs
        update, with ``?format=zip`` the workspace's archive."""
        name, info, _ = await self._room(request)
        room = await self.registry.loaded(name)
        wanted = request.query_params.get("format", "text")
        if wanted == "yjs":
            return Response(room.doc.get_update(), media_type="application/octet-stream")
        if wanted == "zip":
            return archive_response(room, info.title or name)
        if wanted != "text":
            raise ApiError(
                422,
                "invalid request",
                [{"field": "format", "message": "must be text, yjs or zip"}],
            )
        return PlainTextResponse(schema.code_text(room.doc))

    async def fork(self, request: Request) -> Response:
        """Broadcast rooms: a new pair room seeded with the current code, owned by the caller.
        Forks make rooms without the admin token: the owner can forbid them, and each
        user (the verified token id) may make ``forks_per_user_per_hour`` per room."""
        name, info, identity = await self._room(request)
        if info.mode != Mode.BROADCAST.value:
            raise ApiError(409, "only broadcast rooms can be forked")
        if not info.forks:
            raise ApiError(403, "the room's owner does not allow forks in this room")
        room = await self.registry.loaded(name)
        created = await self.fork_seeded(
            request,
            info,
            identity,
            schema.workspace(room.doc),
            schema.entry_path(room.doc),
            explicit_entry=schema.meta(room.doc).get(schema.ENTRY) is not None,
        )
        return JSONResponse(created.model_dump(), status_code=201)

    async def fork_seeded(
        self,
        request: Request,
        info: RoomInfo,
        identity: Identity,
        files: dict[str, str],
        entry: str,
        language: str | None = None,
        explicit_entry: bool = True,
    ) -> RoomCreated:
        """A new pair room owned by the caller, seeded with ``files`` (``entry`` the entry
        file's path): the fork endpoints' common part, after their own checks. Each user
        (the verified token id) may make ``forks_per_user_per_hour`` per room (429)."""
        self.fork_limiter.enforce(
            f"{identity.user_id}:{info.name}",
            f"at most {self.settings.forks_per_user_per_hour} forks of this room per hour",
        )
        # The verified token id, personal or not (a join link's id is everyone's who
        # opened it, so they share one quota: never more than one person would get).
        await self.quotas.check_owner(self.registry.worker, identity.user_id)
        body = CreateRoom(
            mode=Mode.PAIR, language=language or info.language, title=f"{info.title} (fork)"[:200]
        )
        created = await self._new_room(
            request,
            body,
            # The fork's owner token is personal: a join link's shared id is nobody's own.
            owner=identity.user_id if identity.personal else None,
            code=files.get(entry, ""),
            made_by=identity.user_id,
        )
        # Every other file and the entry file's name go with the code.
        others = {p: t for p, t in files.items() if p != entry}
        if others or explicit_entry:
            fork = await self.registry.loaded(created.room)

            def copy_files(doc: Any) -> None:
                schema.meta(doc)[schema.ENTRY] = entry
                for path, text in others.items():
                    schema.files(doc)[path] = Text(text)

            fork.edit(copy_files)
        return created

    async def rotate(self, request: Request) -> Response:
        """Owner only: rotate the room's links. Every token issued before is refused from
        now on (401, websockets 4401) and connections holding one are closed with 4401;
        answers new links and a new owner token for the caller."""
        name, info, identity = await self._room(request)
        _require(identity, Role.OWNER)
        # Strictly later than any earlier rotation: links it handed out are refused too.
        after = max(rotation_second(time.time()), info.tokens_after + 1)
        await self.registry.worker.run(
            self.registry.worker.store.update_room_info, name, tokens_after=after
        )
        self.registry.rotate(name, after)
        # ``iat`` counts whole seconds: the new tokens are minted once the clock reaches
        # ``after`` (under two seconds), so they are the first accepted.
        await _wall_clock_reaches(after)
        owner_token = issue_token(
            self.auth.secret,
            room=name,
            role=Role.OWNER,
            name=identity.name,
            user_id=identity.user_id,
            ttl=self.settings.token_ttl_seconds,
        )
        rotated = RoomCreated(
            room=name,
            owner_token=owner_token,
            links=self._links(request, name, Mode(info.mode), owner_token),
        )
        return JSONResponse(rotated.model_dump())


async def _read_limited(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes ``MAX_BODY_BYTES`` (never read whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "request body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "request body too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _wall_clock_reaches(at: float) -> None:
    """Sleep until ``time.time()`` is ``at`` or later (the loop's clock is monotonic, and
    may run a hair ahead of the wall clock)."""
    for _ in range(100):
        left = at - time.time()
        if left <= 0:
            return
        await asyncio.sleep(left + 0.001)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _require(identity: Identity, role: Role) -> None:
    if identity.role is not role:
        raise ApiError(403, f"only the room's {role.value} may do this")


M = TypeVar("M", bound=BaseModel)


async def _body(request: Request, model: type[M]) -> M:
    raw = await _read_limited(request)
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        fields = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
            for err in exc.errors()
        ]
        raise ApiError(422, "invalid request", fields) from exc


ERROR_STATUSES: dict[int, str] = {
    400: "not a zip file",
    401: "missing or invalid token",
    403: "not allowed",
    404: "unknown room (or file)",
    409: "conflict",
    413: "body too large",
    422: "invalid request body",
    429: "rate limited (see Retry-After)",
    503: "the runner is off or busy (see Retry-After)",
}
