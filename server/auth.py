"""Access tokens: JWT HS256 carrying who (``sub``, ``name``), where (``room``) and what (``role``).

Only HS256 is accepted: pyjwt is called with an explicit algorithm list, so
``alg: none`` and every other algorithm fail signature verification. Errors
carry the HTTP status and websocket close code to answer with; their messages
never include the token or the secret.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from rooms.access import ROTATED
from rooms.roles import Role
from server.settings import Settings, SettingsError, is_loopback

ALGORITHM = "HS256"
ANY_ROOM = "*"
# HS256 keys shorter than its 32-byte hash can be brute-forced offline from any token
# (a join link is enough); the admin token is guessed online, one request a try.
MIN_SECRET_BYTES = 32
MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_hex(32))'"
SECRET_FILE = "secret"
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class AuthError(Exception):
    """A refused credential. ``status`` is 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def close_code(self) -> int:
        return CLOSE_UNAUTHENTICATED if self.status == 401 else CLOSE_FORBIDDEN


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    name: str
    room: str
    role: Role
    expires: float | None = None
    # ``iat``: a room whose links were rotated refuses tokens issued before. A tokenless
    # (dev mode) identity holds no token to refuse.
    issued_at: float = 0.0
    # ``prs``: the token's ``sub`` is one person's (owner tokens, POST /tokens, the join
    # exchange). A generic join-link token's ``sub`` is shared by everyone who opened it.
    personal: bool = False


ANONYMOUS = Identity(
    user_id="anonymous", name="anonymous", room=ANY_ROOM, role=Role.EDITOR, issued_at=math.inf
)


def check_not_rotated(identity: Identity, tokens_after: float) -> None:
    """Refuse a token issued before the room's last link rotation. ``iat`` counts whole
    seconds; a rotation refuses every ``iat`` below the second after it (see
    ``rotation_second``), so a token minted in the rotation's own second is refused."""
    if identity.issued_at < tokens_after:
        raise AuthError(401, ROTATED)


def rotation_second(now: float) -> float:
    """The ``tokens_after`` of a rotation made at ``now``: the next whole second. Every
    token issued up to ``now`` has a smaller ``iat``; tokens issued once the clock
    reaches it are accepted."""
    return float(math.floor(now) + 1)


def resolve_secret(settings: Settings) -> tuple[str, bool]:
    """The signing secret and whether it was configured (False: generated, dev mode).

    Without ``CODEMENTOR_SECRET`` a loopback server keeps a generated secret in
    ``<data dir>/secret`` (mode 0600), created once, so ``codementor token`` and
    the server agree. Anywhere else there is no safe default. A configured secret (or
    admin token) under ``MIN_SECRET_BYTES`` is refused."""
    check_strength("CODEMENTOR_SECRET", settings.secret)
    check_strength("CODEMENTOR_ADMIN_TOKEN", settings.admin_token)
    if settings.secret:
        return settings.secret, True
    if not is_loopback(settings.host):
        raise SettingsError(
            f"refusing to listen on {settings.host} without CODEMENTOR_SECRET; "
            "set one (e.g. `openssl rand -hex 32`) or bind to 127.0.0.1"
        )
    path = settings.data_dir / SECRET_FILE
    try:
        if not path.exists():
            settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            _create_private(path, secrets.token_hex(32))
        secret = path.read_text().strip()
    except OSError as exc:
        raise SettingsError(
            f"cannot keep the dev-mode secret at {path}: {exc.strerror or type(exc).__name__} "
            "(set CODEMENTOR_SECRET or CODEMENTOR_DATA_DIR)"
        ) from None
    if len(secret) < 32:
        raise SettingsError(
            f"{path} holds no usable secret ({len(secret)} characters); "
            "delete it to have a new one generated, or set CODEMENTOR_SECRET"
        )
    return secret, False


def check_strength(variable: str, value: str | None) -> None:
    """Refuse a credential too short to resist guessing, naming the variable (never the
    value) and a command that makes a good one."""
    if value is None:
        return
    size = len(value.encode())
    if size < MIN_SECRET_BYTES:
        raise SettingsError(
            f"{variable} is {size} bytes; it must be at least {MIN_SECRET_BYTES} random bytes: "
            f"make one with `{MAKE_SECRET}` (or `openssl rand -hex 32`)"
        )


def _create_private(path: Path, content: str) -> None:
    """Create ``path`` (mode 0600) with ``content`` in one step: written to a private
    temporary file first, then linked into place, which fails if another process
    (a second server, ``codementor token``) got there first. Nobody can ever read
    a half-written secret."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


class _CheckedKeyHMAC(HMACAlgorithm):
    """pyjwt's HS256, with the checks of the secret (not PEM, not SSH, not DER, not a JSON
    key) made once per secret instead of once per token: they were a quarter of pyjwt's
    share of the CPU of connecting (bench/README.md, "Connecting: our time against
    Node's"). The token's own checks are pyjwt's, unchanged."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._last: tuple[Any, bytes] | None = None

    def prepare_key(self, key: str | bytes) -> bytes:
        last = self._last
        if last is not None and type(last[0]) is type(key) and last[0] == key:
            return last[1]  # the server's own secret, already checked
        prepared = super().prepare_key(key)
        self._last = (key, prepared)
        return prepared


# Process-wide (pyjwt's public registry): the same algorithm, a cheaper key preparation.
jwt.unregister_algorithm(ALGORITHM)
jwt.register_algorithm(ALGORITHM, _CheckedKeyHMAC())


def issue_token(
    secret: str,
    *,
    room: str,
    role: Role,
    name: str,
    user_id: str | None = None,
    ttl: int,
    personal: bool = False,
    lifetime: tuple[int, int] | None = None,
) -> str:
    """A signed token. ``personal`` adds the ``prs`` claim; ``lifetime`` (iat, exp)
    replaces ``ttl`` for a token that must live no longer than the one it came from."""
    now = int(time.time())
    issued, expires = lifetime or (now, now + ttl)
    claims: dict[str, Any] = {
        "sub": user_id or new_user_id(),
        "name": name,
        "room": room,
        "role": role.value,
        "iat": issued,
        "exp": expires,
    }
    if personal:
        claims["prs"] = True
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def new_user_id() -> str:
    return f"u-{secrets.token_hex(6)}"


def verify_token(secret: str, token: str, room: str | None) -> Identity:
    """Check ``token`` and that it opens ``room`` (None: any room, e.g. room creation)."""
    return _for_room(_verify(secret, token), room)


def _for_room(identity: Identity, room: str | None) -> Identity:
    if room is not None and identity.room not in (ANY_ROOM, room):
        raise AuthError(403, "token is for another room")
    return identity


def _verify(secret: str, token: str) -> Identity:
    """The signature, the claims and the expiry of ``token``: who it says it is."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "room", "role"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError(401, "token expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise AuthError(401, "token not yet valid") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthError(401, f"invalid token: {type(exc).__name__}") from exc
    try:
        role = Role(claims["role"])
    except (ValueError, TypeError) as exc:
        raise AuthError(401, "invalid token: unknown role") from exc
    for claim in ("sub", "room"):
        if not isinstance(claims[claim], str) or not claims[claim]:
            raise AuthError(401, f"invalid token: bad {claim} claim")
    name = claims.get("name")
    if not isinstance(name, str):
        name = claims["sub"]
    issued = claims.get("iat", 0)  # pyjwt checked it is a number when present
    return Identity(
        claims["sub"],
        name[:100],
        claims["room"],
        role,
        float(claims["exp"]),
        float(issued),
        personal=claims.get("prs") is True,
    )


VERIFIED_CACHE = 1024  # tokens whose signature and claims were checked, kept until expiry


@dataclass(frozen=True, slots=True)
class Authenticator:
    """What the server needs to check a request: the secret and the dev-mode switch.

    A token that passed is remembered (up to ``VERIFIED_CACHE``, oldest dropped first)
    until it expires: a classroom's students share one viewer link, everyone's token
    comes back on every reconnect, and pyjwt's decode was a large share of the CPU of
    connecting (bench/README, "Things tried"). Its expiry and room are still checked
    on every use; refused tokens are never remembered."""

    secret: str
    anonymous: bool  # tokenless connections are editors (dev mode only)
    _verified: dict[str, Identity] = field(default_factory=dict, compare=False, repr=False)

    def identify(self, token: str | None, room: str | None) -> Identity:
        if token:
            return _for_room(self._checked(token), room)
        if self.anonymous:
            return ANONYMOUS
        raise AuthError(401, "missing token")

    def _checked(self, token: str) -> Identity:
        identity = self._verified.get(token)
        if identity is not None:
            if identity.expires is not None and identity.expires > time.time():
                return identity
            self._verified.pop(token, None)  # expired: pyjwt says so, with its message
        identity = _verify(self.secret, token)
        if len(self._verified) >= VERIFIED_CACHE:
            self._verified.pop(next(iter(self._verified)), None)
        self._verified[token] = identity
        return identity
