"""The verified-token cache in ``server.auth.Authenticator``: a token checked once is not
decoded again until it expires, and nothing else about the check changes."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta, tzinfo

import jwt
import pytest

from rooms.roles import Role
from server.auth import VERIFIED_CACHE, Authenticator, AuthError, issue_token


def later_by(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move the clock both checks read (ours: ``time.time``; pyjwt's: ``datetime.now``)
    forward, instead of waiting for a token to expire."""
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + seconds)

    class Later(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Later:
            moment = datetime.now(tz) + timedelta(seconds=seconds)
            return cls.fromtimestamp(moment.timestamp(), tz)

    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)


def test_a_remembered_token_is_still_refused_once_expired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = secrets.token_hex(32)
    auth = Authenticator(secret=secret, anonymous=False)
    token = issue_token(secret, room="r", role=Role.EDITOR, name="Ada", ttl=60)
    assert auth.identify(token, "r").name == "Ada"
    assert auth.identify(token, "r").name == "Ada"  # now from the cache
    later_by(monkeypatch, 61)
    with pytest.raises(AuthError) as info:
        auth.identify(token, "r")
    assert (info.value.status, info.value.message) == (401, "token expired")


def test_a_remembered_token_opens_only_its_room() -> None:
    secret = secrets.token_hex(32)
    auth = Authenticator(secret=secret, anonymous=False)
    token = issue_token(secret, room="r", role=Role.VIEWER, name="Vera", ttl=60)
    assert auth.identify(token, "r").role is Role.VIEWER
    with pytest.raises(AuthError) as info:
        auth.identify(token, "other")
    assert info.value.status == 403


def test_refused_tokens_are_not_remembered_and_the_cache_is_bounded() -> None:
    secret = secrets.token_hex(32)
    auth = Authenticator(secret=secret, anonymous=False)
    forged = issue_token("another-secret-" + "x" * 32, room="r", role=Role.OWNER, name="M", ttl=60)
    for _ in range(2):
        with pytest.raises(AuthError):
            auth.identify(forged, "r")
    assert forged not in auth._verified
    tokens = [
        issue_token(secret, room="r", role=Role.EDITOR, name=f"n{i}", ttl=60)
        for i in range(VERIFIED_CACHE + 10)
    ]
    for token in tokens:
        auth.identify(token, "r")
    assert len(auth._verified) == VERIFIED_CACHE
    assert tokens[0] not in auth._verified and tokens[-1] in auth._verified
    assert auth.identify(tokens[0], "r").name == "n0"  # dropped, checked again
