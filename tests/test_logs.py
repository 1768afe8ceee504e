"""Structured logs: one JSON object per line from our code and from uvicorn, carrying
request, room and peer ids; never secrets, tokens or document contents."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pycrdt import Map

from crdt import protocol, schema
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

CONTENT = "print('classified-" + secrets.token_hex(8) + "')"
CHAT = "chat-" + secrets.token_hex(8)


def lines_of(server: ServerProcess) -> list[dict[str, Any]]:
    out = []
    for line in server.log().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON log line: {line!r}") from None
    return out


async def test_json_lines_with_request_room_and_peer_ids(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_SECRET=SECRET, CODEMENTOR_LOG_FORMAT="json")
    async with httpx.AsyncClient(base_url=server.http_url, timeout=5) as http:
        created = await http.post("/api/rooms", json={"mode": "pair"})
        room = created.json()["room"]
        token = sign(room, "owner")
        # A caller's request id is kept and echoed; a malformed one is replaced.
        ok = await http.get(f"/api/rooms/{room}", headers={
            "authorization": f"Bearer {token}", "x-request-id": "trace-42"})  # fmt: skip
        assert ok.status_code == 200 and ok.headers["x-request-id"] == "trace-42"
        forged = await http.get("/healthz", headers={"x-request-id": 'x" level=error'})
        generated = forged.headers["x-request-id"]
        assert generated != 'x" level=error' and len(generated) == 16
        fresh = (await http.get("/healthz")).headers["x-request-id"]
        assert fresh != generated

    # A peer edits the code and chats, then sends a malformed frame.
    client = await YClient(server.ws_url(room)).connect(f"token={token}")
    await client.wait_synced()
    with client.doc.transaction():
        client.text += CONTENT
        schema.chat(client.doc).append(Map({"id": "m1", "author": "Ada", "text": CHAT}))
    watcher = await YClient(server.ws_url(room)).connect(f"token={sign(room, 'viewer', name='Vi')}")
    await watcher.wait_synced()
    await eventually(lambda: str(watcher.text) == CONTENT)
    await client.send_raw(bytes([protocol.MessageType.SYNC, 9]))  # an unknown sync step
    assert await client.wait_closed() == 1008
    await watcher.close()

    def logged(event: str) -> bool:
        return any(e.get("event") == event for e in lines_of(server))

    await eventually(lambda: logged("frame_rejected"))
    events = lines_of(server)
    for entry in events:
        assert {"timestamp", "level", "logger", "event"} <= entry.keys(), entry
    access = [e for e in events if e["logger"] == "uvicorn.access"]
    assert any(e.get("request_id") == "trace-42" and f"/api/rooms/{room}" in e["event"]
               for e in access)  # fmt: skip
    assert any(e.get("request_id") == generated for e in access)
    rejected = next(e for e in events if e["event"] == "frame_rejected")
    assert rejected["room"] == room and rejected["user"] == "u-ada"
    assert rejected["peer"].startswith("c")  # the connection id REST answers use
    assert len(rejected["request_id"]) == 16
    assert rejected["level"] == "info" and rejected["logger"] == "codementor.ws"

    text = server.log()
    for secret in (SECRET, token, token.rsplit(".", 1)[1], CONTENT, CHAT, "classified"):
        assert secret not in text


async def test_text_format_for_people(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(CODEMENTOR_LOG_FORMAT="text")
    async with YClient(server.ws_url("texty")) as client:
        await client.wait_synced()
        await client.send_raw(bytes([protocol.MessageType.SYNC, 9]))
        assert await client.wait_closed() == 1008
    await eventually(lambda: "frame_rejected" in server.log())
    line = next(x for x in server.log().splitlines() if "frame_rejected" in x)
    assert not line.startswith("{")
    assert "room=texty" in line and "request_id=" in line and "peer=" in line


@pytest.mark.parametrize(
    ("trusted", "seen"), [("127.0.0.1", "203.0.113.9"), ("10.9.9.9", "127.0.0.1")]
)
async def test_forwarded_for_is_trusted_only_from_configured_proxies(
    server_factory: Callable[..., ServerProcess], trusted: str, seen: str
) -> None:
    server = server_factory(CODEMENTOR_FORWARDED_ALLOW_IPS=trusted)
    async with httpx.AsyncClient(base_url=server.http_url, timeout=5) as http:
        r = await http.get("/healthz", headers={"x-forwarded-for": "203.0.113.9"})
        request_id = r.headers["x-request-id"]

    def access_line() -> dict[str, Any] | None:
        return next((e for e in lines_of(server) if e.get("request_id") == request_id
                     and e["logger"] == "uvicorn.access"), None)  # fmt: skip

    await eventually(lambda: access_line() is not None)
    line = access_line()
    assert line is not None and line["event"].startswith(seen + ":")
