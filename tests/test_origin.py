"""Browser pages of other sites can neither open a websocket nor change anything over
REST: an ``Origin`` header must be the server's own (the host and port the request came
to, or ``CODEMENTOR_PUBLIC_URL``) or listed in ``CODEMENTOR_ALLOWED_ORIGINS``; a request
without one (not a browser) goes on. A refused upgrade is HTTP 403 before the upgrade.

Upgrades are written on raw sockets: the test chooses ``Host`` and ``Origin`` exactly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.serverproc import ROOT, ServerProcess
from tests.support import free_port

pytestmark = pytest.mark.anyio

EVIL = "http://evil.example"


async def upgrade(server: ServerProcess, room: str, **headers: str) -> int:
    """The HTTP status a websocket upgrade to ``/ws/{room}`` gets (101: accepted)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    fields = {
        "Host": f"127.0.0.1:{server.port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(secrets.token_bytes(16)).decode(),
        "Sec-WebSocket-Version": "13",
        **headers,
    }
    head = f"GET /ws/{room} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    writer.write((head + "\r\n").encode())
    try:
        status = await asyncio.wait_for(reader.readline(), 5)
        return int(status.split()[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_dev_mode_refuses_sockets_from_other_sites(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory()  # dev mode: anonymous editors, rooms made by joining
    own = f"http://127.0.0.1:{server.port}"
    assert await upgrade(server, "attacked", Origin=EVIL) == 403
    assert await upgrade(server, "attacked", Origin="null") == 403  # sandboxed frame, file:
    assert await upgrade(server, "attacked", Origin=f"http://127.0.0.1:{free_port()}") == 403
    # DNS rebinding: the page's host resolves to 127.0.0.1, so Host and Origin agree.
    rebound = f"evil.example:{server.port}"
    assert await upgrade(server, "attacked", Host=rebound, Origin=f"http://{rebound}") == 403
    async with httpx.AsyncClient(base_url=server.http_url, timeout=5) as http:
        # Nothing was made: the anonymous join that would create the room never happened.
        assert (await http.get("/api/rooms/attacked")).status_code == 404
    assert server.metric("codementor_auth_refused_total") == 4
    refused = [e for e in server.events() if e.get("reason") == "origin not allowed"]
    assert len(refused) == 4 and refused[0]["origin"] == EVIL

    # The server's own pages, under any loopback name, and clients that are not browsers.
    assert await upgrade(server, "mine", Origin=own) == 101
    assert await upgrade(server, "mine", Origin=own.upper()) == 101
    local = f"localhost:{server.port}"
    assert await upgrade(server, "mine", Host=local, Origin=f"http://{local}") == 101
    assert await upgrade(server, "mine") == 101


async def test_allowed_origins_and_the_public_url(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(
        CODEMENTOR_ALLOWED_ORIGINS="http://localhost:5173, https://ide.example.org",
        CODEMENTOR_PUBLIC_URL="https://code.example.com/",
    )
    for origin in ("http://localhost:5173", "https://ide.example.org",
                   "https://code.example.com", "https://code.example.com:443"):  # fmt: skip
        assert await upgrade(server, "listed", Origin=origin) == 101, origin
    for origin in ("http://localhost:5174", "http://ide.example.org", "https://example.org"):
        assert await upgrade(server, "listed", Origin=origin) == 403, origin


async def test_with_a_secret_the_own_host_is_any_host(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """Behind a proxy the Host is the public name: with a secret (no anonymous access,
    nothing to gain by rebinding) it need not be a loopback name."""
    server = server_factory(CODEMENTOR_SECRET=secrets.token_hex(32))
    public = "code.example.com:8443"
    # Accepted, then closed 4401 for want of a token: the origin passed.
    assert await upgrade(server, "r", Host=public, Origin=f"http://{public}") == 101
    assert await upgrade(server, "r", Host=public, Origin=EVIL) == 403


async def test_rest_changes_from_other_sites_are_refused(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory()
    own = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=server.http_url, timeout=5) as http:
        # A cross-site form POST (no preflight): refused before anything is created.
        refused = await http.post(
            "/api/rooms", content=b"{}", headers={"origin": EVIL, "content-type": "text/plain"}
        )
        assert refused.status_code == 403
        assert refused.json() == {"error": "origin not allowed"}
        made = await http.post("/api/rooms", json={}, headers={"origin": own})
        assert made.status_code == 201
        room = made.json()["room"]
        patch = await http.patch(
            f"/api/rooms/{room}", json={"title": "x"}, headers={"origin": EVIL}
        )
        assert patch.status_code == 403
        assert (await http.post("/api/rooms", json={})).status_code == 201  # no Origin: curl
        # Reads go on: without CORS headers a foreign page cannot read the answer anyway.
        assert (await http.get("/api/config", headers={"origin": EVIL})).status_code == 200
        details = await http.get(f"/api/rooms/{room}")
        assert details.json()["title"] == ""


def test_a_bad_allowed_origin_refuses_to_start(tmp_path: Path) -> None:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CODEMENTOR_")}
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--data-dir", str(tmp_path)],
        cwd=ROOT,
        env={
            **inherited,
            "CODEMENTOR_PORT": str(free_port()),
            "CODEMENTOR_ALLOWED_ORIGINS": "http://ok.example,evil.example/path",
        },  # fmt: skip
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("codementor: CODEMENTOR_ALLOWED_ORIGINS: 'evil.example/path'")
    assert len(result.stderr.splitlines()) == 1
