"""Tokens never reach the log, however the client spelled the query key: the server
reads ``?tok%65n=...`` as ``token`` (the query is decoded), so the log redaction must
decode it too. Real requests and websockets against a real server, in both log formats;
the log is then searched for every value sent."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
from collections.abc import Callable

import pytest

from server.redact import redact
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.anyio

# How a client may spell a secret key: each is read as (or may be meant as) the token.
SPELLINGS = [
    "token={v}",
    "tok%65n={v}",
    "%74%6F%6B%65%6E={v}",
    "TOKEN={v}",
    "ToKeN={v}",
    "token+={v}",
    "+token={v}",
    "tok%65n%3D{v}",
    "a=1;token={v}",
    "a=1;tok%65n={v}&b=2",
    "access%5Ftoken={v}",
    "Access_Token={v}",
    "secret={v}",
    "SECR%45T={v}",
    "token=%{hexv}",
]


def spelled(spelling: str) -> tuple[str, str]:
    """(a query in this spelling, the secret it carries)."""
    value = "v" + secrets.token_hex(12)
    hexv = "%".join(f"{b:02X}" for b in value.encode())
    return spelling.format(v=value, hexv=hexv), value


def values() -> list[tuple[str, str]]:
    return [spelled(spelling) for spelling in SPELLINGS]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_a_secret_key_is_redacted(spelling: str) -> None:
    query, value = spelled(spelling)
    line = f'127.0.0.1:5 - "GET /ws/room?{query} HTTP/1.1" 200'
    redacted = redact(line)
    assert value not in redacted and "=[redacted]" in redacted, redacted
    assert redacted.startswith('127.0.0.1:5 - "GET /ws/room?')
    assert redacted.endswith(' HTTP/1.1" 200')


def test_other_keys_and_values_are_left_alone() -> None:
    line = "/ws/r?tokens=1&xtoken=2&a=token&room=token%3Dno HTTP/1.1"
    assert redact(line) == line


def test_redacted_json_stays_json() -> None:
    line = json.dumps({"event": 'GET /r?token=abc"def\\ghi', "path": "/x?t%6Fken=zz;b=1"})
    parsed = json.loads(redact(line))
    assert "abc" not in parsed["event"] and "zz" not in parsed["path"]


async def raw_request(server: ServerProcess, target: str, websocket: bool = False) -> bytes:
    """Send exactly ``target`` (HTTP clients normalise ``%65`` to ``e``); return the
    response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    if websocket:
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        head += (
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        )
    writer.write((head + "Connection: close\r\n\r\n" if not websocket else head + "\r\n").encode())
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_the_server_log_holds_no_token_however_it_was_spelled(
    server_factory: Callable[..., ServerProcess], fmt: str
) -> None:
    server = server_factory(CODEMENTOR_LOG_FORMAT=fmt)
    sent = values()
    for query, _ in sent:
        # A REST request, a page and a websocket per spelling: uvicorn logs each target.
        assert b" 404 " in await raw_request(server, f"/api/rooms/nowhere?{query}")
        assert b" 200 " in await raw_request(server, f"/healthz?{query}")
        assert b" 101 " in await raw_request(server, f"/ws/redact-room?{query}", websocket=True)

    def logged_every_target() -> bool:
        return server.log().count("/ws/redact-room?") >= len(sent)

    for _ in range(100):
        if logged_every_target():
            break
        await asyncio.sleep(0.05)
    log = server.log()
    assert logged_every_target() and log.count("[redacted]") >= 3 * len(sent)
    for _, value in sent:
        assert value not in log, f"a token value reached the log: {value}"
