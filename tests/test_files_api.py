"""``/api/rooms/{room}/files`` on a real server: list, read, write and delete files, as
server edits every connected peer sees; roles, bad paths and limits refused clearly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pycrdt import Text

from crdt import schema
from crdt.offsets import utf8_len
from rooms.roles import Role
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

ENV = {
    "CODEMENTOR_SECRET": SECRET,
    "CODEMENTOR_MAX_FILES": "5",
    "CODEMENTOR_MAX_FILE_BYTES": "1000",
    "CODEMENTOR_MAX_WORKSPACE_BYTES": "3000",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("files-data"), ENV) as proc:
        yield proc


async def new_room(server: ServerProcess, language: str = "python") -> str:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        created = await http.post("/api/rooms", json={"language": language, "title": "files"})
    assert created.status_code == 201, created.text
    room: str = created.json()["room"]
    return room


def auth(room: str, role: Role = Role.EDITOR) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign(room, role)}"}


async def call(
    server: ServerProcess, method: str, url: str, room: str, role: Role = Role.EDITOR, **kw: Any
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        return await http.request(method, url, headers=auth(room, role), **kw)


async def test_config_names_the_limits_set(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        limits = (await http.get("/api/config")).json()["limits"]
    assert limits == {"max_files": 5, "max_file_bytes": 1000, "max_workspace_bytes": 3000}


async def test_put_get_list_delete(server: ServerProcess) -> None:
    room = await new_room(server)
    base = f"/api/rooms/{room}/files"
    put = await call(server, "PUT", f"{base}/src/util.py", room, content="def f():\n    pass\n")
    assert put.status_code == 201, put.text
    assert put.json() == {"path": "src/util.py", "bytes": 18, "created": True}
    await call(server, "PUT", f"{base}/main.py", room, content="print('héllo')\n")
    await call(server, "PUT", f"{base}/README", room, content="hi\n")
    listed = await call(server, "GET", base, room, Role.VIEWER)
    assert listed.json() == [
        {"path": "main.py", "bytes": 16, "language": "python"},
        {"path": "README", "bytes": 3, "language": "python"},
        {"path": "src/util.py", "bytes": 18, "language": "python"},
    ]
    got = await call(server, "GET", f"{base}/src/util.py", room, Role.REVIEWER)
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/plain")
    assert got.text == "def f():\n    pass\n"
    entry = await call(server, "GET", f"{base}/main.py", room, Role.VIEWER)
    assert entry.text == "print('héllo')\n"
    snapshot = await call(server, "GET", f"/api/rooms/{room}/snapshot", room)
    assert snapshot.text == "print('héllo')\n", "snapshot stays the entry file"
    replaced = await call(server, "PUT", f"{base}/src/util.py", room, content="x = 2\n")
    assert replaced.status_code == 200 and replaced.json()["created"] is False
    deleted = await call(server, "DELETE", f"{base}/src/util.py", room, Role.OWNER)
    assert deleted.status_code == 204
    gone = await call(server, "GET", f"{base}/src/util.py", room)
    assert gone.status_code == 404 and gone.json() == {"error": "unknown file"}
    again = await call(server, "DELETE", f"{base}/src/util.py", room)
    assert again.status_code == 404


async def test_deleting_the_entry_file_is_a_conflict(server: ServerProcess) -> None:
    room = await new_room(server, "java")
    answer = await call(server, "DELETE", f"/api/rooms/{room}/files/Main.java", room)
    assert answer.status_code == 409
    assert "Main.java is the entry file" in answer.json()["error"]


async def test_roles_tokens_and_rooms(server: ServerProcess) -> None:
    room = await new_room(server)
    url = f"/api/rooms/{room}/files/a.py"
    for role in (Role.VIEWER, Role.REVIEWER):
        for method in ("PUT", "DELETE"):
            answer = await call(server, method, url, room, role, content="x")
            assert answer.status_code == 403, (role, method)
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        bad = await http.get(f"/api/rooms/{room}/files", headers={"Authorization": "Bearer x"})
        assert bad.status_code == 401
        unknown = await http.get(
            "/api/rooms/nosuchroom1/files", headers=auth("nosuchroom1", Role.OWNER)
        )
        assert unknown.status_code == 404
    listed = await call(server, "GET", f"/api/rooms/{room}/files", room)
    assert [f["path"] for f in listed.json()] == ["main.py"], "a refused PUT wrote nothing"


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("a//b.py", "empty segments"),
        ("src/%2E/a.py", ". or .. segments"),
        ("src/%2E%2E/a.py", ". or .. segments"),
        ("a\\b.py", "use / to separate"),
        ("cafe%CC%81.py", "normal form"),
        ("/".join("d" * 9) + ".py", "levels deep"),
    ],
)
async def test_bad_paths_are_422_naming_path_and_rule(
    server: ServerProcess, path: str, rule: str
) -> None:
    room = await new_room(server)
    answer = await call(server, "PUT", f"/api/rooms/{room}/files/{path}", room, content="x")
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert rule in body["error"]
    assert body["fields"][0]["field"] == "path"
    assert rule in body["fields"][0]["message"]


async def test_limits_are_422(server: ServerProcess) -> None:
    room = await new_room(server)
    base = f"/api/rooms/{room}/files"
    big = await call(server, "PUT", f"{base}/big.py", room, content="é" * 501)
    assert big.status_code == 422, big.text  # 1002 bytes of UTF-8
    assert big.json()["fields"] == [
        {"field": "path", "path": "big.py", "message": "a file may be at most 1000 bytes of UTF-8"}
    ]
    for n in range(4):
        ok = await call(server, "PUT", f"{base}/f{n}.py", room, content="x" * 700)
        assert ok.status_code == 201, ok.text
    over = await call(server, "PUT", f"{base}/f0.py", room, content="x" * 1000)
    assert over.status_code == 422
    assert over.json()["fields"][0]["path"] == "f0.py"
    assert "3000 bytes" in over.json()["error"]
    many = await call(server, "PUT", f"{base}/f9.py", room, content="")
    assert many.status_code == 422
    assert "at most 5 files" in many.json()["error"]
    not_utf8 = await call(server, "PUT", f"{base}/f0.py", room, content=b"\xff\xfe")
    assert not_utf8.status_code == 422


async def test_a_put_is_a_server_edit_every_peer_sees_keeping_the_rest(
    server: ServerProcess,
) -> None:
    """A connected peer sees the PUT; text outside the changed middle keeps its items
    (a position anchored after the change still points at the same character)."""
    room = await new_room(server)
    base = f"/api/rooms/{room}/files"
    await call(server, "PUT", f"{base}/lib.py", room, content="head\nmiddle\ntail\n")
    peer = await YClient(server.ws_url(room)).connect(f"token={sign(room, Role.EDITOR)}")
    try:
        await peer.wait_synced()
        await eventually(lambda: "lib.py" in schema.files(peer.doc))
        lib = schema.files(peer.doc)["lib.py"]
        assert isinstance(lib, Text)
        tail_at = utf8_len("head\nmiddle\n")
        sticky = lib.sticky_index(tail_at)
        await call(server, "PUT", f"{base}/lib.py", room, content="head\nMIDDLE changed\ntail\n")
        await eventually(lambda: str(lib) == "head\nMIDDLE changed\ntail\n")
        assert sticky.get_index() == utf8_len("head\nMIDDLE changed\n")
        await call(server, "PUT", f"{base}/main.py", room, content="print(1)\n")
        await eventually(lambda: str(schema.code(peer.doc)) == "print(1)\n")
    finally:
        await peer.close()


async def test_a_fork_copies_every_file_and_the_entry(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        created = await http.post("/api/rooms", json={"mode": "broadcast", "title": "class"})
        room = created.json()["room"]
        owner = {"Authorization": f"Bearer {created.json()['owner_token']}"}
        await http.put(f"/api/rooms/{room}/files/app.py", content="print('app')\n", headers=owner)
        await http.put(f"/api/rooms/{room}/files/lib/x.py", content="X = 'ö'\n", headers=owner)
        forked = await http.post(
            f"/api/rooms/{room}/fork", headers=auth(room, Role.VIEWER), json={}
        )
        assert forked.status_code == 201, forked.text
        fork = forked.json()["room"]
        mine = {"Authorization": f"Bearer {forked.json()['owner_token']}"}
        listed = await http.get(f"/api/rooms/{fork}/files", headers=mine)
        assert [f["path"] for f in listed.json()] == ["main.py", "app.py", "lib/x.py"]
        got = await http.get(f"/api/rooms/{fork}/files/lib/x.py", headers=mine)
        assert got.text == "X = 'ö'\n"
