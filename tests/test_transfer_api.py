"""REST export and import of whole rooms against a real server: the owner exports (with
what peers sent a moment ago), whoever may create rooms imports, everybody else is
refused, and a bad file is refused with nothing written."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rooms import room_file
from server.settings import SettingsError, from_env
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

ADMIN = secrets.token_hex(16)
MAX_IMPORT = 64 * 1024
# Every answer received, checked against the OpenAPI document by the last test.
OBSERVED: list[tuple[str, str, int, str]] = []


class Client:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server

    def request(
        self,
        method: str,
        template: str,
        token: str | None = None,
        *,
        content: bytes | Iterator[bytes] | None = None,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        **path: str,
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = httpx.request(
            method,
            self.server.http_url + template.format(**path),
            headers=headers,
            content=content,
            json=json_body,
            params=params,
            timeout=30,
        )
        OBSERVED.append(
            (method.lower(), template, response.status_code, response.headers["content-type"])
        )
        return response

    def export(self, room: str, token: str | None) -> httpx.Response:
        return self.request("GET", "/api/rooms/{room}/export", token, room=room)

    def import_(
        self, data: bytes | Iterator[bytes], token: str | None = ADMIN, as_name: str | None = None
    ) -> Any:
        params = None if as_name is None else {"as": as_name}
        return self.request("POST", "/api/rooms/import", token, content=data, params=params)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    env = {
        "CODEMENTOR_SECRET": SECRET,
        "CODEMENTOR_ADMIN_TOKEN": ADMIN,
        "CODEMENTOR_API_RATE_PER_MINUTE": "100000",
        "CODEMENTOR_MAX_IMPORT_BYTES": str(MAX_IMPORT),
        # Long: an export right after an edit finds it unflushed, unless it flushes.
        "CODEMENTOR_DURABILITY_WINDOW_MS": "5000",
    }
    with ServerProcess(tmp_path_factory.mktemp("transfer"), env) as proc:
        yield Client(proc)


def new_room(api: Client, **body: Any) -> tuple[str, str]:
    response = api.request("POST", "/api/rooms", ADMIN, json_body=body)
    assert response.status_code == 201, response.text
    return response.json()["room"], response.json()["owner_token"]


def assert_error(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["error"], response.json()


async def test_the_owner_exports_and_a_creator_imports_it_as_a_new_room(api: Client) -> None:
    name, owner = new_room(api, mode="review", language="go", title="Gophers")
    async with YClient(api.server.ws_url(name, f"token={owner}")) as client:
        await client.wait_synced()
        client.text += "package main\n"

        def live() -> str:
            return api.request("GET", "/api/rooms/{room}/snapshot", owner, room=name).text

        await eventually(lambda: live() == "package main\n")
        # Within the durability window: nothing of the edit is in the store yet.
        response = api.export(name, owner)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == room_file.MEDIA_TYPE
    disposition = response.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="{name}-')
    assert disposition.endswith('.cmroom"')
    room = room_file.read(response.content)
    assert (room.info.name, room.info.mode, room.info.title) == (name, "review", "Gophers")
    assert room.history, "the flush before the export wrote the edit's history"

    imported = api.import_(response.content, as_name=f"{name}-copy")
    assert imported.status_code == 201, imported.text
    body = imported.json()
    assert body["room"] == f"{name}-copy" and set(body["links"]) == {"owner", "reviewer"}
    details = api.request("GET", "/api/rooms/{room}", body["owner_token"], room=f"{name}-copy")
    assert details.status_code == 200, details.text
    assert (details.json()["mode"], details.json()["title"]) == ("review", "Gophers")
    text = api.request("GET", "/api/rooms/{room}/snapshot", body["owner_token"], room=body["room"])
    assert text.text == "package main\n"
    # The file's own name is taken by the original.
    assert_error(api.import_(response.content), 409, "already exists")


async def test_only_the_owner_may_export(api: Client) -> None:
    name, _ = new_room(api)
    for role in ("editor", "reviewer", "viewer"):
        assert_error(api.export(name, sign(name, role)), 403, "owner")
    assert_error(api.export(name, None), 401, "token")
    assert_error(api.export("no-such-room", sign("no-such-room", "owner")), 404, "unknown room")


async def test_import_needs_the_admin_token_when_one_is_configured(api: Client) -> None:
    name, owner = new_room(api)
    data = api.export(name, owner).content
    assert_error(api.import_(data, token=None, as_name="x1"), 401, "admin token")
    assert_error(api.import_(data, token="wrong" * 8, as_name="x1"), 403, "admin token")
    assert_error(api.import_(data, token=sign(name, "owner"), as_name="x1"), 403, "admin token")
    never = api.request("GET", "/api/rooms/{room}", sign("x1", "owner"), room="x1")
    assert never.status_code == 404


def newer(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(out, "w") as new:
        for member in old.namelist():
            blob = old.read(member)
            if member == room_file.MANIFEST:
                blob = json.dumps({**json.loads(blob), "version": 2}).encode()
            new.writestr(member, blob)
    return out.getvalue()


async def test_bad_files_are_refused_and_nothing_is_written(api: Client) -> None:
    name, owner = new_room(api)
    data = api.export(name, owner).content
    target = "never-made"
    assert_error(api.import_(b"", as_name=target), 400, "no room file")
    assert_error(api.import_(b"hello, world", as_name=target), 400, "not a zip")
    assert_error(api.import_(data[: len(data) // 2], as_name=target), 400, "room file")
    assert_error(api.import_(newer(data), as_name=target), 400, "need a newer codementor")
    assert_error(api.import_(b"PK" + b"\x00" * MAX_IMPORT, as_name=target), 413, "larger than")
    # Chunked, without a Content-Length: refused as the body passes the limit.
    chunked = (b"\x00" * 8192 for _ in range(MAX_IMPORT // 8192 + 2))
    assert_error(api.import_(chunked, as_name=target), 413, "larger than")
    bad_name = api.import_(data, as_name="no/slashes")
    assert_error(bad_name, 422, "invalid room name")
    assert bad_name.json()["fields"][0]["field"] == "as"
    server_owned = api.import_(data, as_name=f"{name}.staff")
    assert_error(server_owned, 422, "the server's own")
    for never in (target, f"{name}.staff"):
        gone = api.request("GET", "/api/rooms/{room}", sign(never, "owner"), room=never)
        assert gone.status_code == 404


def test_openapi_describes_every_answer_received(api: Client) -> None:
    """Every answer the tests above received (run alone: a few of its own) is documented."""
    name, owner = new_room(api)
    data = api.export(name, owner).content
    api.export(name, sign(name, "viewer"))
    api.import_(data, as_name=f"{name}-again")
    api.import_(b"junk", as_name=f"{name}-junk")
    document = api.request("GET", "/api/openapi.json").json()
    for method, template, status, content_type in OBSERVED:
        if template == "/api/openapi.json":
            continue
        responses = document["paths"][template][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {template} answered {status}"
        media = content_type.split(";")[0].strip()
        assert media in responses[str(status)].get("content", {}), (template, status, media)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_max_import_bytes_must_be_positive(value: str) -> None:
    settings = from_env({"CODEMENTOR_MAX_IMPORT_BYTES": value})
    with pytest.raises(SettingsError, match="CODEMENTOR_MAX_IMPORT_BYTES must be positive"):
        settings.validate()
    assert from_env({"CODEMENTOR_MAX_IMPORT_BYTES": "1"}).max_import_bytes == 1
