"""The verified-token cache in ``server.auth.Authenticator``: a token checked once is not
decoded again until it expires, and nothing else about the check changes."""

from __future__ import annotations

import secrets
import time

import jwt
import pytest

from rooms.roles import Role
from server.auth import VERIFIED_CACHE, Authenticator, AuthError, issue_token


def test_a_remembered_token_is_still_refused_once_expired() -> None:
    secret = secrets.token_hex(32)
    auth = Authenticator(secret=secret, anonymous=False)
    token = issue_token(secret, room="r", role=Role.EDITOR, name="Ada", ttl=1)
    assert auth.identify(token, "r").name == "Ada"
    assert auth.identify(token, "r").name == "Ada"  # now from the cache
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    deadline = time.monotonic() + 3
    while time.time() <= expires and time.monotonic() < deadline:
        time.sleep(0.05)
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
