"""The REST API under ``/api`` against a real server: every endpoint's success and error
paths, the error shapes, body limits, rate limits, and the OpenAPI document (which must
validate, list every route, and describe every answer the tests below received)."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import jsonschema
import jwt
import pytest
from openapi_spec_validator import validate
from pycrdt import Doc, Text

from crdt import schema
from server.app import create_app
from server.settings import Settings
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, plain, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

ADMIN = secrets.token_hex(16)
KiB = 1024
JOIN_ROLE = {"pair": "editor", "review": "reviewer", "broadcast": "viewer"}
ROLES = ("owner", "editor", "reviewer", "viewer")
PUBLIC_URL = "https://mentor.example/collab"

# (method, path template, status, content type, body) of every answer received, for the
# last test, which checks each against the OpenAPI document.
OBSERVED: list[tuple[str, str, int, str, bytes]] = []


# -- plumbing ---------------------------------------------------------------------


class Client:
    """httpx against one server; every answer is recorded in ``OBSERVED``."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server

    def request(
        self,
        method: str,
        template: str,
        token: str | None = None,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        **path: str,
    ) -> httpx.Response:
        url = self.server.http_url + template.format(
            **{k: quote(v, safe="") for k, v in path.items()}
        )
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if content is not None:
            headers["content-type"] = "application/json"
        response = httpx.request(
            method, url, params=params, json=json, content=content, headers=headers, timeout=10
        )
        OBSERVED.append(
            (
                method.lower(),
                template,
                response.status_code,
                response.headers.get("content-type", ""),
                response.content,
            )
        )
        return response

    # shorthands for the room endpoints
    def create(self, token: str | None = ADMIN, **body: Any) -> httpx.Response:
        return self.request("POST", "/api/rooms", token, json=body)

    def get(self, room: str, token: str | None) -> httpx.Response:
        return self.request("GET", "/api/rooms/{room}", token, room=room)

    def patch(self, room: str, token: str | None, **kw: Any) -> httpx.Response:
        return self.request("PATCH", "/api/rooms/{room}", token, room=room, **kw)

    def tokens(self, room: str, token: str | None, **kw: Any) -> httpx.Response:
        return self.request("POST", "/api/rooms/{room}/tokens", token, room=room, **kw)

    def role(self, room: str, user: str, token: str | None, **kw: Any) -> httpx.Response:
        template = "/api/rooms/{room}/peers/{user}/role"
        return self.request("PUT", template, token, room=room, user=user, **kw)

    def snapshot(self, room: str, token: str | None, fmt: str | None = None) -> httpx.Response:
        params = None if fmt is None else {"format": fmt}
        return self.request("GET", "/api/rooms/{room}/snapshot", token, params=params, room=room)

    def fork(self, room: str, token: str | None) -> httpx.Response:
        return self.request("POST", "/api/rooms/{room}/fork", token, room=room)

    def rotate(self, room: str, token: str | None) -> httpx.Response:
        return self.request("POST", "/api/rooms/{room}/rotate", token, room=room)

    def join(self, room: str, token: str | None, **kw: Any) -> httpx.Response:
        return self.request("POST", "/api/rooms/{room}/join", token, room=room, **kw)

    def ws(self, room: str, token: str | None) -> str:
        return self.server.ws_url(room, f"token={token}" if token else "")


def assert_error(response: httpx.Response, status: int, *fields: str) -> list[dict[str, str]]:
    """The error shape: ``{"error": message}``, plus ``fields`` naming each bad field for 422."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    if status != 422:
        assert "fields" not in body
        return []
    listed: list[dict[str, str]] = body["fields"]
    for entry in listed:
        assert set(entry) == {"field", "message"}
        assert isinstance(entry["field"], str) and isinstance(entry["message"], str)
        assert entry["message"]
    named = {entry["field"] for entry in listed}
    assert set(fields) <= named, f"expected {fields} among {named}"
    return listed


def decode(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"])
    return claims


@dataclass
class Room:
    name: str
    owner: str
    links: dict[str, str]

    def link_token(self, role: str) -> str:
        return link_token(self.links[role])


def link_token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def new_room(client: Client, token: str | None = ADMIN, **body: Any) -> Room:
    response = client.create(token, **body)
    assert response.status_code == 201, response.text
    data = response.json()
    return Room(data["room"], data["owner_token"], data["links"])


def peers(client: Client, room: str, token: str) -> dict[str, list[dict[str, Any]]]:
    response = client.get(room, token)
    assert response.status_code == 200, response.text
    result: dict[str, list[dict[str, Any]]] = response.json()["peers"]
    return result


def count(listing: dict[str, list[dict[str, str]]]) -> dict[str, int]:
    return {role: len(entries) for role, entries in listing.items()}


async def write(client: Client, room: str, token: str, text: str) -> None:
    async with YClient(client.ws(room, token)) as editor:
        await editor.wait_synced()
        editor.text += text


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    env = {
        "CODEMENTOR_SECRET": SECRET,
        "CODEMENTOR_ADMIN_TOKEN": ADMIN,
        "CODEMENTOR_API_RATE_PER_MINUTE": "100000",
    }
    with ServerProcess(tmp_path_factory.mktemp("api"), env) as proc:
        yield Client(proc)


# -- POST /api/rooms ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["pair", "review", "broadcast"])
async def test_create_room_in_each_mode(api: Client, mode: str) -> None:
    response = api.create(mode=mode, language="rust", title=f"{mode} session")
    assert response.status_code == 201, response.text
    data = response.json()
    room, owner = data["room"], data["owner_token"]
    join = JOIN_ROLE[mode]
    assert set(data["links"]) == {"owner", join}
    for role, link in data["links"].items():
        parts = urlsplit(link)
        assert f"{parts.scheme}://{parts.netloc}" == api.server.http_url
        assert parts.path == f"/r/{room}"
        claims = decode(link_token(link))
        assert (claims["room"], claims["role"]) == (room, role)
    assert link_token(data["links"]["owner"]) == owner

    details = api.get(room, owner).json()
    assert (details["mode"], details["language"], details["title"]) == (
        mode,
        "rust",
        f"{mode} session",
    )
    assert count(details["peers"]) == dict.fromkeys(ROLES, 0)

    # The link tokens work on the websocket, each with its role.
    async with (
        YClient(api.ws(room, owner)) as o,
        YClient(api.ws(room, link_token(data["links"][join]))) as j,
    ):
        await o.wait_synced()
        await j.wait_synced()
        meta = plain(schema.meta(o.doc))
        assert (meta["mode"], meta["language"], meta["title"]) == (mode, "rust", f"{mode} session")
        expected = dict.fromkeys(ROLES, 0)
        expected["owner"] += 1
        expected[join] += 1
        await eventually(lambda: count(peers(api, room, owner)) == expected)
        listing = peers(api, room, owner)
        assert listing["owner"][0]["name"] == "owner"
        assert listing[join][0]["name"] == join
        # ...and the role holds: only an editor's code edit reaches the owner.
        j.text += "from the join link;"
        if join == "editor":
            await eventually(lambda: str(o.text) == "from the join link;")
        else:
            await eventually(lambda: j.denials != [])
            o.text += "owner;"
            await eventually(lambda: "owner;" in str(j.text))
            assert str(o.text) == "owner;"


def test_create_room_defaults(api: Client) -> None:
    response = api.request("POST", "/api/rooms", ADMIN, content=b"")
    assert response.status_code == 201, response.text
    data = response.json()
    details = api.get(data["room"], data["owner_token"]).json()
    assert (details["mode"], details["language"], details["title"]) == ("pair", "python", "")
    assert set(data["links"]) == {"owner", "editor"}
    assert api.create(ADMIN).json()["room"] != data["room"]


def test_create_room_requires_the_admin_token(api: Client) -> None:
    assert_error(api.create(None, mode="pair"), 401)
    assert_error(api.create("wrong-" + ADMIN, mode="pair"), 403)
    assert_error(api.create(ADMIN[:-1], mode="pair"), 403)
    # A valid room token is not the admin token.
    owner_anywhere = sign("*", "owner")
    assert_error(api.create(owner_anywhere, mode="pair"), 403)
    # The credential is checked before the body.
    assert_error(api.create(None, mode="nonsense"), 401)
    assert api.create(ADMIN, mode="pair").status_code == 201


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"mode": "solo"}, ["mode"]),
        ({"mode": 5}, ["mode"]),
        ({"language": "Python!"}, ["language"]),
        ({"language": ""}, ["language"]),
        ({"language": "x" * 33}, ["language"]),
        ({"title": "t" * 201}, ["title"]),
        ({"title": 5}, ["title"]),
        ({"title": None}, ["title"]),
        ({"colour": "red"}, ["colour"]),
        ({"title": 5, "language": 7, "extra": 1}, ["title", "language", "extra"]),
        ([], ["(body)"]),
        ("pair", ["(body)"]),
    ],
)
def test_create_room_validation(api: Client, body: Any, fields: list[str]) -> None:
    assert_error(api.request("POST", "/api/rooms", ADMIN, json=body), 422, *fields)


@pytest.mark.parametrize("raw", [b"{", b"{'mode': 'pair'}", b"\xff\xfe", b"null", b"{} {}"])
def test_bad_json_is_422(api: Client, raw: bytes) -> None:
    assert_error(api.request("POST", "/api/rooms", ADMIN, content=raw), 422, "(body)")


def test_longest_title_is_accepted(api: Client) -> None:
    room = new_room(api, title="t" * 200, language="c++")
    assert api.get(room.name, room.owner).json()["title"] == "t" * 200


# -- GET /api/rooms/{room} -------------------------------------------------------


async def test_get_room_lists_peers_by_role_and_times(api: Client) -> None:
    room = new_room(api, mode="review", title="review me")
    reviewer = room.link_token("reviewer")
    viewer = sign(room.name, "viewer", sub="u-vera", name="Vera")
    details = api.get(room.name, reviewer).json()
    assert set(details) == {
        "room",
        "mode",
        "language",
        "title",
        "peers",
        "created_at",
        "updated_at",
        "forks",
        "reviewers_run",
        "history_viewers",
    }
    assert details["forks"] is False  # forks exist only in broadcast rooms
    assert details["history_viewers"] is True  # on but in broadcast rooms
    assert details["reviewers_run"] is True  # review rooms: on by default
    assert details["room"] == room.name
    assert abs(details["created_at"] - time.time()) < 60
    assert details["updated_at"] >= details["created_at"]
    async with (
        YClient(api.ws(room.name, room.owner)) as o,
        YClient(api.ws(room.name, reviewer)) as r1,
        YClient(api.ws(room.name, reviewer)) as r2,
        YClient(api.ws(room.name, viewer)) as v,
    ):
        for client in (o, r1, r2, v):
            await client.wait_synced()
        want = {"owner": 1, "editor": 0, "reviewer": 2, "viewer": 1}
        await eventually(lambda: count(peers(api, room.name, viewer)) == want)
        listing = peers(api, room.name, viewer)
        assert [(p["id"], p["name"]) for p in listing["viewer"]] == [("u-vera", "Vera")]
        # Two connections through one link: one user id, two connection ids.
        reviewers = listing["reviewer"]
        assert reviewers[0]["id"] == reviewers[1]["id"] == decode(reviewer)["sub"]
        assert {p["name"] for p in reviewers} == {"reviewer"}
        conns = [p["conn"] for entries in listing.values() for p in entries]
        assert len(set(conns)) == 4
        # A connection's presence leads to it: its awareness client ids are listed.
        await v.set_awareness({"user": {"name": "Vera"}, "hand": True})

        def vera_clients() -> list[int]:
            return list(peers(api, room.name, viewer)["viewer"][0]["clients"])

        await eventually(lambda: vera_clients() == [v.doc.client_id])
        assert all(p["clients"] == [] for p in peers(api, room.name, viewer)["reviewer"])
    await eventually(lambda: count(peers(api, room.name, viewer)) == dict.fromkeys(ROLES, 0))


async def test_updated_at_advances_after_an_edit_is_flushed(api: Client) -> None:
    room = new_room(api)

    def updated() -> float:
        value: float = api.get(room.name, room.owner).json()["updated_at"]
        return value

    created = api.get(room.name, room.owner).json()["created_at"]
    # The room's seed (its meta map) is flushed first; wait for that to settle.
    await eventually(lambda: updated() > created)
    before = updated()
    async with YClient(api.ws(room.name, room.owner) + "&receipts=1") as editor:
        await editor.wait_synced()
        editor.text += "x = 1\n"
        await eventually(lambda: editor.receipts != [])  # durable in the store
        await eventually(lambda: updated() > before)
    assert before < updated() <= time.time() + 1
    assert api.get(room.name, room.owner).json()["created_at"] == created


def test_get_room_needs_a_token_for_the_room(api: Client) -> None:
    room = new_room(api)
    other = new_room(api)
    assert_error(api.get(room.name, None), 401)
    assert_error(api.get(room.name, "garbage"), 401)
    assert_error(api.get(room.name, other.owner), 403)
    for role in ROLES:
        assert api.get(room.name, sign(room.name, role)).status_code == 200


# -- PATCH /api/rooms/{room} -----------------------------------------------------


async def test_patch_changes_title_and_language_and_the_meta_map(api: Client) -> None:
    room = new_room(api, title="before", language="python")
    async with YClient(api.ws(room.name, room.link_token("editor"))) as watcher:
        await watcher.wait_synced()
        meta = schema.meta(watcher.doc)
        assert plain(meta)["title"] == "before"

        response = api.patch(room.name, room.owner, json={"title": "after"})
        assert response.status_code == 200, response.text
        assert (response.json()["title"], response.json()["language"]) == ("after", "python")
        await eventually(lambda: plain(meta).get("title") == "after")
        assert plain(meta)["language"] == "python"

        response = api.patch(room.name, room.owner, json={"language": "go"})
        assert (response.json()["title"], response.json()["language"]) == ("after", "go")
        await eventually(lambda: plain(meta).get("language") == "go")

        both = api.patch(room.name, room.owner, json={"title": "", "language": "c#"})
        assert (both.json()["title"], both.json()["language"]) == ("", "c#")
        await eventually(lambda: (meta.get("title"), meta.get("language")) == ("", "c#"))
        assert plain(meta)["mode"] == "pair"

    # Nothing in the body changes nothing.
    unchanged = api.request("PATCH", "/api/rooms/{room}", room.owner, content=b"", room=room.name)
    assert unchanged.status_code == 200
    assert (unchanged.json()["title"], unchanged.json()["language"]) == ("", "c#")
    # The change is in the store, not only in memory.
    details = api.get(room.name, room.link_token("editor")).json()
    assert (details["title"], details["language"]) == ("", "c#")


async def test_patch_ai_edits_in_pair_rooms_only(api: Client) -> None:
    room = new_room(api)
    async with YClient(api.ws(room.name, room.link_token("editor"))) as watcher:
        await watcher.wait_synced()
        meta = schema.meta(watcher.doc)
        assert "ai_edits" not in plain(meta)
        on = api.patch(room.name, room.owner, json={"ai_edits": True})
        assert on.status_code == 200, on.text
        await eventually(lambda: meta.get("ai_edits") is True)
        assert api.patch(room.name, room.owner, json={"ai_edits": False}).status_code == 200
        await eventually(lambda: meta.get("ai_edits") is False)
    assert_error(api.patch(room.name, sign(room.name, "editor"), json={"ai_edits": True}), 403)
    assert_error(api.patch(room.name, room.owner, json={"ai_edits": "yes"}), 422, "ai_edits")
    for mode in ("review", "broadcast"):
        other = new_room(api, mode=mode)
        refused = api.patch(other.name, other.owner, json={"ai_edits": True})
        assert_error(refused, 409)
        assert "only in pair rooms" in refused.json()["error"]


async def test_patch_is_owner_only(api: Client) -> None:
    room = new_room(api, title="kept")
    for role in ("editor", "reviewer", "viewer"):
        assert_error(api.patch(room.name, sign(room.name, role), json={"title": "no"}), 403)
    assert_error(api.patch(room.name, None, json={"title": "no"}), 401)
    assert_error(api.patch(room.name, new_room(api).owner, json={"title": "no"}), 403)
    assert api.get(room.name, room.owner).json()["title"] == "kept"
    async with YClient(api.ws(room.name, room.owner)) as check:
        await check.wait_synced()
        assert plain(schema.meta(check.doc))["title"] == "kept"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"title": "t" * 201}, ["title"]),
        ({"language": "C++"}, ["language"]),
        ({"language": 3}, ["language"]),
        ({"mode": "broadcast"}, ["mode"]),
        ({"title": ["a"], "owner": "me"}, ["title", "owner"]),
    ],
)
def test_patch_validation(api: Client, body: dict[str, Any], fields: list[str]) -> None:
    room = new_room(api, title="kept")
    assert_error(api.patch(room.name, room.owner, json=body), 422, *fields)
    details = api.get(room.name, room.owner).json()
    assert (details["title"], details["language"], details["mode"]) == ("kept", "python", "pair")


# -- POST /api/rooms/{room}/tokens --------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_owner_issues_tokens_that_work_with_their_role(api: Client, role: str) -> None:
    room = new_room(api)
    response = api.tokens(room.name, room.owner, json={"role": role, "name": "Ada", "ttl": 600})
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    claims = decode(token)
    assert (claims["room"], claims["role"], claims["name"]) == (room.name, role, "Ada")
    assert claims["exp"] - claims["iat"] == 600
    async with YClient(api.ws(room.name, token)) as client:
        await client.wait_synced()
        await eventually(
            lambda: [p["name"] for p in peers(api, room.name, room.owner)[role]] == ["Ada"]
        )


def test_token_ttl_defaults_to_a_day_and_bounds_are_inclusive(api: Client) -> None:
    room = new_room(api)
    default = decode(
        api.tokens(room.name, room.owner, json={"role": "viewer", "name": "v"}).json()["token"]
    )
    assert default["exp"] - default["iat"] == 24 * 3600
    for ttl in (60, 30 * 24 * 3600):
        response = api.tokens(
            room.name, room.owner, json={"role": "viewer", "name": "v", "ttl": ttl}
        )
        assert response.status_code == 201, response.text
        claims = decode(response.json()["token"])
        assert claims["exp"] - claims["iat"] == ttl
    longest = api.tokens(room.name, room.owner, json={"role": "viewer", "name": "n" * 100})
    assert decode(longest.json()["token"])["name"] == "n" * 100


def test_issuing_tokens_is_owner_only(api: Client) -> None:
    room = new_room(api)
    body = {"role": "owner", "name": "Mallory"}
    for role in ("editor", "reviewer", "viewer"):
        assert_error(api.tokens(room.name, sign(room.name, role), json=body), 403)
    assert_error(api.tokens(room.name, None, json=body), 401)
    assert_error(api.tokens(room.name, new_room(api).owner, json=body), 403)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "x"}, ["role"]),
        ({"role": "viewer"}, ["name"]),
        ({"role": "admin", "name": "x"}, ["role"]),
        ({"role": "Viewer", "name": "x"}, ["role"]),
        ({"role": "viewer", "name": ""}, ["name"]),
        ({"role": "viewer", "name": "n" * 101}, ["name"]),
        ({"role": "viewer", "name": 5}, ["name"]),
        ({"role": "viewer", "name": "x", "ttl": 59}, ["ttl"]),
        ({"role": "viewer", "name": "x", "ttl": 0}, ["ttl"]),
        ({"role": "viewer", "name": "x", "ttl": -60}, ["ttl"]),
        ({"role": "viewer", "name": "x", "ttl": 30 * 24 * 3600 + 1}, ["ttl"]),
        ({"role": "viewer", "name": "x", "ttl": "600"}, ["ttl"]),
        ({"role": "viewer", "name": "x", "ttl": 600.5}, ["ttl"]),
        ({"role": "viewer", "name": "x", "room": "*"}, ["room"]),
        ({}, ["role", "name"]),
    ],
)
def test_token_validation(api: Client, body: dict[str, Any], fields: list[str]) -> None:
    room = new_room(api)
    assert_error(api.tokens(room.name, room.owner, json=body), 422, *fields)


def test_a_token_may_not_be_named_after_the_ai(api: Client) -> None:
    room = new_room(api)
    body = {"role": "viewer", "name": " codeMentor  AI"}
    assert_error(api.tokens(room.name, room.owner, json=body), 422, "name")


# -- POST /api/rooms/{room}/join ------------------------------------------------------


async def test_two_people_joining_through_one_link_get_distinct_identities(
    api: Client,
) -> None:
    room = new_room(api, mode="broadcast")
    link = room.link_token("viewer")
    first = api.join(room.name, link, json={"name": "  Sam "})
    second = api.join(room.name, link, json={"name": "Ann"})
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    sam, ann = first.json(), second.json()
    assert [(j["name"], j["role"]) for j in (sam, ann)] == [("Sam", "viewer"), ("Ann", "viewer")]
    assert len({sam["user_id"], ann["user_id"], decode(link)["sub"]}) == 3
    link_claims = decode(link)
    for joined in (sam, ann):
        claims = decode(joined["token"])
        assert claims["prs"] is True and claims["sub"] == joined["user_id"]
        assert claims["name"] == joined["name"]
        # Never longer-lived than the link, and issued when the link was (rotation).
        assert (claims["room"], claims["role"], claims["iat"], claims["exp"]) == (
            link_claims["room"], "viewer", link_claims["iat"], link_claims["exp"],
        )  # fmt: skip
    async with (
        YClient(api.ws(room.name, sam["token"])) as s,
        YClient(api.ws(room.name, ann["token"])) as a,
    ):
        await s.wait_synced()
        await a.wait_synced()
        await eventually(lambda: len(peers(api, room.name, room.owner)["viewer"]) == 2)
        listed = {(p["id"], p["name"]) for p in peers(api, room.name, room.owner)["viewer"]}
        assert listed == {(sam["user_id"], "Sam"), (ann["user_id"], "Ann")}


def test_a_personal_token_renamed_keeps_the_person(api: Client) -> None:
    room = new_room(api)
    joined = api.join(room.name, room.link_token("editor"), json={"name": "Sam"}).json()
    renamed = api.join(room.name, joined["token"], json={"name": "Samuel"})
    assert renamed.status_code == 201, renamed.text
    assert (renamed.json()["user_id"], renamed.json()["name"]) == (joined["user_id"], "Samuel")
    before, after = decode(joined["token"]), decode(renamed.json()["token"])
    assert [after[c] for c in ("sub", "iat", "exp")] == [before[c] for c in ("sub", "iat", "exp")]
    owner = api.join(room.name, room.owner, json={"name": "Ms Tan"}).json()
    assert (owner["role"], owner["user_id"]) == ("owner", decode(room.owner)["sub"])
    issued = api.tokens(room.name, room.owner, json={"role": "reviewer", "name": "Rita"})
    rita = issued.json()["token"]
    assert decode(rita)["prs"] is True
    renamed_rita = api.join(room.name, rita, json={"name": "Rita B"}).json()
    assert renamed_rita["user_id"] == decode(rita)["sub"]


@pytest.mark.parametrize(
    "name",
    ["", "   ", "n" * 41, "bell\x07", "tab\tname", "right\u202eleft", "zero\u200bwidth",
     "CodeMentor AI", " codementor  ai ", "ＣｏｄｅＭｅｎｔｏｒ ＡＩ", 5, None],
)  # fmt: skip
def test_join_names_are_checked(api: Client, name: Any) -> None:
    room = new_room(api)
    assert_error(api.join(room.name, room.owner, json={"name": name}), 422, "name")


def test_join_accepts_names_people_use(api: Client) -> None:
    room = new_room(api)
    for name in ("n" * 40, "Zoë 😀", "李小龍", "👩‍💻 dev", "AI fan", "CodeMentor"):
        response = api.join(room.name, room.owner, json={"name": name})
        assert response.status_code == 201, (name, response.text)
        assert response.json()["name"] == name


def test_join_errors(api: Client) -> None:
    room = new_room(api)
    assert_error(api.join(room.name, None, json={"name": "x"}), 401)
    assert_error(api.join(room.name, "not-a-token", json={"name": "x"}), 401)
    assert_error(api.join(room.name, new_room(api).owner, json={"name": "x"}), 403)
    assert_error(api.join("nosuchroom", sign("nosuchroom", "viewer"), json={"name": "x"}), 404)
    assert_error(api.join(room.name, room.owner, json={"name": "x", "role": "owner"}), 422)
    assert_error(api.join(room.name, room.owner, json={}), 422, "name")


def test_a_tokenless_join_in_dev_mode_is_a_personal_editor(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory()  # no secret on loopback: dev mode, anonymous joins on
    created = httpx.post(server.http_url + "/api/rooms", json={}, timeout=10).json()
    url = f"{server.http_url}/api/rooms/{created['room']}/join"
    first = httpx.post(url, json={"name": "Dev"}, timeout=10)
    second = httpx.post(url, json={"name": "Dev"}, timeout=10)
    assert first.status_code == second.status_code == 201, first.text
    secret = (server.data_dir / "secret").read_text().strip()
    claims = jwt.decode(first.json()["token"], secret, algorithms=["HS256"])
    assert (claims["role"], claims["room"], claims["prs"], claims["name"]) == (
        "editor", created["room"], True, "Dev",
    )  # fmt: skip
    assert first.json()["user_id"] != second.json()["user_id"]
    # A room opened by name before anyone made it: made by the join, as by the websocket.
    fresh = httpx.post(f"{server.http_url}/api/rooms/scratch-pad/join", json={"name": "Dev"})
    assert fresh.status_code == 201, fresh.text
    details = httpx.get(
        f"{server.http_url}/api/rooms/scratch-pad",
        headers={"Authorization": f"Bearer {fresh.json()['token']}"},
    ).json()
    assert (details["mode"], details["title"]) == ("pair", "scratch-pad")
    # A bad name is still no room, and a token never makes one.
    assert (
        httpx.post(f"{server.http_url}/api/rooms/a%20b/join", json={"name": "x"}).status_code == 404
    )
    off = server_factory(CODEMENTOR_ANONYMOUS="off")
    room = httpx.post(off.http_url + "/api/rooms", json={}, timeout=10).json()["room"]
    refused = httpx.post(f"{off.http_url}/api/rooms/{room}/join", json={"name": "x"}, timeout=10)
    assert refused.status_code == 401


# -- PUT /api/rooms/{room}/peers/{user}/role ---------------------------------------


async def test_change_role_of_one_connection(api: Client) -> None:
    room = new_room(api)
    editor_token = room.link_token("editor")
    async with (
        YClient(api.ws(room.name, editor_token)) as e,
        YClient(api.ws(room.name, room.owner)) as o,
    ):
        await e.wait_synced()
        await o.wait_synced()
        await eventually(lambda: len(peers(api, room.name, room.owner)["editor"]) == 1)
        conn = peers(api, room.name, room.owner)["editor"][0]["conn"]

        response = api.role(room.name, conn, room.owner, json={"role": "viewer"})
        assert response.status_code == 200, response.text
        assert response.json() == {"changed": 1, "role": "viewer", "expires_at": None}
        await eventually(lambda: e.role_notices == [{"role": "viewer", "expires": None}])
        listing = peers(api, room.name, room.owner)
        assert [p["conn"] for p in listing["viewer"]] == [conn]
        assert listing["editor"] == []
        # The new role holds: a viewer's edit is refused and reaches nobody.
        e.text += "not allowed"
        await eventually(lambda: e.denials != [])
        o.text += "owner;"
        await eventually(lambda: "owner;" in str(e.text))
        assert str(o.text) == "owner;"


async def test_change_role_of_every_connection_of_a_user_for_a_while(api: Client) -> None:
    room = new_room(api, mode="broadcast")
    viewer_token = room.link_token("viewer")
    user = decode(viewer_token)["sub"]
    async with (
        YClient(api.ws(room.name, viewer_token)) as a,
        YClient(api.ws(room.name, viewer_token)) as b,
    ):
        await a.wait_synced()
        await b.wait_synced()
        await eventually(lambda: len(peers(api, room.name, room.owner)["viewer"]) == 2)
        started = time.time()
        response = api.role(room.name, user, room.owner, json={"role": "editor", "ttl": 1})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["changed"], body["role"]) == (2, "editor")
        assert started + 1 - 5 <= body["expires_at"] <= time.time() + 1 + 5
        # Both connections were told of the timed grant, then of its end: back to the
        # token's role.
        for client in (a, b):
            await eventually(
                lambda c=client: [n["role"] for n in c.role_notices] == ["editor", "viewer"]
            )
            granted, reverted = client.role_notices
            assert granted["expires"] is not None and reverted["expires"] is None
        await eventually(lambda: len(peers(api, room.name, room.owner)["viewer"]) == 2)


async def test_a_timed_change_to_the_tokens_own_role_has_no_expiry(api: Client) -> None:
    """Nothing to revert to, so no timer: the answer and the notice both say so."""
    room = new_room(api)
    async with YClient(api.ws(room.name, room.link_token("editor"))) as e:
        await e.wait_synced()
        await eventually(lambda: len(peers(api, room.name, room.owner)["editor"]) == 1)
        conn = peers(api, room.name, room.owner)["editor"][0]["conn"]
        response = api.role(room.name, conn, room.owner, json={"role": "editor", "ttl": 60})
        assert response.status_code == 200, response.text
        assert response.json()["expires_at"] is None
        await eventually(lambda: e.role_notices == [{"role": "editor", "expires": None}])


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/api/nothing-here", 404), ("DELETE", "/api/rooms", 405), ("GET", "/api/rooms", 405)],
)
def test_unknown_api_paths_and_methods_answer_json(
    api: Client, method: str, path: str, status: int
) -> None:
    response = httpx.request(method, api.server.http_url + path, timeout=10)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json()["error"], str)


async def test_change_role_errors(api: Client) -> None:
    room = new_room(api)
    body = {"role": "owner"}
    # Nobody connected (room not even loaded), or nobody with that id.
    assert_error(api.role(room.name, "c999999", room.owner, json=body), 404)
    async with YClient(api.ws(room.name, room.link_token("editor"))) as e:
        await e.wait_synced()
        await eventually(lambda: len(peers(api, room.name, room.owner)["editor"]) == 1)
        conn = peers(api, room.name, room.owner)["editor"][0]["conn"]
        assert_error(api.role(room.name, "nobody", room.owner, json=body), 404)
        assert_error(api.role(room.name, "c999999", room.owner, json=body), 404)
        for role in ("editor", "reviewer", "viewer"):
            assert_error(api.role(room.name, conn, sign(room.name, role), json=body), 403)
        assert_error(api.role(room.name, conn, None, json=body), 401)
        for bad, fields in (
            ({"role": "admin"}, ["role"]),
            ({}, ["role"]),
            ({"role": "viewer", "ttl": 0}, ["ttl"]),
            ({"role": "viewer", "ttl": 24 * 3600 + 1}, ["ttl"]),
            ({"role": "viewer", "ttl": "5"}, ["ttl"]),
            ({"role": "viewer", "until": 5}, ["until"]),
        ):
            assert_error(api.role(room.name, conn, room.owner, json=bad), 422, *fields)
        assert e.role_notices == []
        assert [p["conn"] for p in peers(api, room.name, room.owner)["editor"]] == [conn]


# -- GET /api/rooms/{room}/snapshot -----------------------------------------------


async def test_snapshot_as_text_and_as_yjs(api: Client) -> None:
    room = new_room(api, title="snap", language="python")
    code = "def f():\n    return 'é😀'\n"
    await write(api, room.name, room.owner, code)
    viewer = sign(room.name, "viewer")
    await eventually(lambda: api.snapshot(room.name, viewer).text == code)

    text = api.snapshot(room.name, viewer)
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert api.snapshot(room.name, viewer, "text").text == code

    binary = api.snapshot(room.name, viewer, "yjs")
    assert binary.status_code == 200
    assert binary.headers["content-type"] == "application/octet-stream"
    doc: Doc[Any] = Doc()
    doc.apply_update(binary.content)
    assert str(doc.get("code", type=Text)) == code
    assert plain(schema.meta(doc))["title"] == "snap"


def test_snapshot_errors(api: Client) -> None:
    room = new_room(api)
    for fmt in ("bad", "", "YJS", "json"):
        listed = assert_error(api.snapshot(room.name, room.owner, fmt), 422, "format")
        assert [entry["field"] for entry in listed] == ["format"]
    assert_error(api.snapshot(room.name, None), 401)
    assert_error(api.snapshot(room.name, new_room(api).owner), 403)


# -- POST /api/rooms/{room}/fork ---------------------------------------------------


async def test_fork_a_broadcast_room(api: Client) -> None:
    room = new_room(api, mode="broadcast", title="lecture", language="go")
    code = "package main\n"
    await write(api, room.name, room.owner, code)
    viewer = room.link_token("viewer")
    await eventually(lambda: api.snapshot(room.name, viewer).text == code)

    response = api.fork(room.name, viewer)
    assert response.status_code == 201, response.text
    forked = response.json()
    assert forked["room"] != room.name
    assert set(forked["links"]) == {"owner", "editor"}
    owner_claims = decode(forked["owner_token"])
    assert (owner_claims["room"], owner_claims["role"]) == (forked["room"], "owner")
    # Owned by whoever forked: a personal token. A join link's user id is everyone's who
    # opened it, so the fork's owner gets an id of its own.
    assert owner_claims["prs"] is True and owner_claims["sub"] != decode(viewer)["sub"]
    details = api.get(forked["room"], forked["owner_token"]).json()
    assert (details["mode"], details["language"], details["title"]) == (
        "pair",
        "go",
        "lecture (fork)",
    )
    assert api.snapshot(forked["room"], forked["owner_token"]).text == code
    async with YClient(api.ws(forked["room"], forked["owner_token"])) as owner:
        await owner.wait_synced()
        assert str(owner.text) == code
        owner.text += "// mine\n"
    # The original is untouched.
    assert api.snapshot(room.name, viewer).text == code
    assert api.get(room.name, viewer).json()["mode"] == "broadcast"


def test_fork_keeps_a_long_title_within_bounds(api: Client) -> None:
    room = new_room(api, mode="broadcast", title="t" * 200)
    response = api.fork(room.name, room.owner)
    assert response.status_code == 201, response.text
    title = api.get(response.json()["room"], response.json()["owner_token"]).json()["title"]
    assert len(title) <= 200 and title.startswith("t" * 190)


@pytest.mark.parametrize("mode", ["pair", "review"])
def test_fork_is_only_for_broadcast_rooms(api: Client, mode: str) -> None:
    room = new_room(api, mode=mode)
    assert_error(api.fork(room.name, room.owner), 409)


def test_fork_needs_a_token_for_the_room(api: Client) -> None:
    room = new_room(api, mode="broadcast")
    assert_error(api.fork(room.name, None), 401)
    assert_error(api.fork(room.name, new_room(api).owner), 403)


def test_forks_count_against_a_per_user_hourly_limit(api: Client) -> None:
    """A fork makes a room without the admin token: one viewer once made five. The
    limit (CODEMENTOR_FORKS_PER_USER_PER_HOUR, 3) is per verified user id and room."""
    room = new_room(api, mode="broadcast", title="lecture")
    vera = sign(room.name, "viewer", sub="u-vera", name="Vera")
    for _ in range(3):
        assert api.fork(room.name, vera).status_code == 201
    refused = api.fork(room.name, vera)
    assert_error(refused, 429)
    assert "3 forks" in refused.json()["error"]
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    # A token with another name but the same user id is the same user.
    assert_error(api.fork(room.name, sign(room.name, "viewer", sub="u-vera", name="V2")), 429)
    # Another student, and the same student in another room, have limits of their own.
    assert api.fork(room.name, sign(room.name, "viewer", sub="u-sam")).status_code == 201
    other = new_room(api, mode="broadcast")
    assert api.fork(other.name, sign(other.name, "viewer", sub="u-vera")).status_code == 201


def test_owner_allows_or_forbids_forks(api: Client) -> None:
    room = new_room(api, mode="broadcast", title="exam")
    viewer = room.link_token("viewer")
    assert api.get(room.name, viewer).json()["forks"] is True  # on by default
    # Only the owner changes it, and only where forks exist.
    for role in ("editor", "reviewer", "viewer"):
        assert_error(api.patch(room.name, sign(room.name, role), json={"forks": False}), 403)
    assert_error(api.patch(room.name, room.owner, json={"forks": "no"}), 422, "forks")
    pair = new_room(api, mode="pair")
    assert_error(api.patch(pair.name, pair.owner, json={"forks": False}), 409)

    forbidden = api.patch(room.name, room.owner, json={"forks": False})
    assert forbidden.status_code == 200, forbidden.text
    assert forbidden.json()["forks"] is False
    assert api.get(room.name, viewer).json()["forks"] is False
    refused = api.fork(room.name, viewer)
    assert_error(refused, 403)
    assert "does not allow forks" in refused.json()["error"]
    assert api.snapshot(room.name, room.owner).status_code == 200  # the room is fine

    assert api.patch(room.name, room.owner, json={"forks": True}).json()["forks"] is True
    assert api.fork(room.name, viewer).status_code == 201


async def test_forks_setting_is_mirrored_in_meta(api: Client) -> None:
    """Students' pages hide Fork as soon as the owner forbids it: ``meta.forks``."""
    room = new_room(api, mode="broadcast")
    async with YClient(api.ws(room.name, room.link_token("viewer"))) as student:
        await student.wait_synced()
        assert api.patch(room.name, room.owner, json={"forks": False}).status_code == 200
        await eventually(lambda: plain(schema.meta(student.doc)).get("forks") is False)


# -- POST /api/rooms/{room}/rotate ----------------------------------------------------


async def test_rotate_refuses_every_earlier_token_and_answers_new_links(api: Client) -> None:
    room = new_room(api, mode="broadcast", title="rotating")
    old_viewer = room.link_token("viewer")
    personal = api.tokens(room.name, room.owner, json={"role": "editor", "name": "Sam"})
    old_personal = personal.json()["token"]
    for token in (room.owner, old_viewer, old_personal):
        assert api.get(room.name, token).status_code == 200

    rotated = api.rotate(room.name, room.owner)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["room"] == room.name and set(body["links"]) == {"owner", "viewer"}
    new_owner, new_viewer = body["owner_token"], link_token(body["links"]["viewer"])
    assert link_token(body["links"]["owner"]) == new_owner
    assert decode(new_owner)["sub"] == decode(room.owner)["sub"]  # the same owner

    for token in (room.owner, old_viewer, old_personal):
        for response in (
            api.get(room.name, token),
            api.snapshot(room.name, token),
            api.fork(room.name, token),
            api.rotate(room.name, token),
        ):
            assert_error(response, 401)
            assert "rotated" in response.json()["error"]
    # The new links work at once, over REST and the websocket.
    assert api.get(room.name, new_viewer).json()["title"] == "rotating"
    assert api.tokens(room.name, new_owner, json={"role": "viewer", "name": "x"}).is_success
    async with YClient(api.ws(room.name, new_viewer)) as student:
        await student.wait_synced()


def test_delete_room_answers_as_documented(api: Client) -> None:
    """``DELETE /api/rooms/{room}`` (tests/test_room_life.py has what it does): its
    answers, recorded for the OpenAPI check below."""
    room = new_room(api)
    template = "/api/rooms/{room}"
    assert_error(api.request("DELETE", template, None, room=room.name), 401)
    assert_error(api.request("DELETE", template, room.link_token("editor"), room=room.name), 403)
    assert_error(api.request("DELETE", template, ADMIN, room="no-such-room"), 404)
    deleted = api.request("DELETE", template, room.owner, room=room.name)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(api.request("DELETE", template, room.owner, room=room.name), 404)
    assert_error(api.get(room.name, room.owner), 404)
    other = new_room(api)
    assert api.request("DELETE", template, ADMIN, room=other.name).status_code == 204


def test_rotate_refuses_a_token_of_the_same_second(api: Client) -> None:
    """``iat`` counts whole seconds: a token minted in the rotation's own second, just
    before it, must not survive it; one minted after the rotation answered must work."""
    room = new_room(api)
    before = int(time.time())
    same_second = sign(room.name, "editor", name="x", iat=before)
    rotated = api.rotate(room.name, room.owner)
    assert rotated.status_code == 200, rotated.text
    assert_error(api.get(room.name, same_second), 401)
    assert api.get(room.name, sign(room.name, "editor")).status_code == 200
    # Twice in a row: the first rotation's links are refused by the second.
    first = rotated.json()["owner_token"]
    second = api.rotate(room.name, first)
    assert second.status_code == 200, second.text
    assert_error(api.get(room.name, first), 401)
    assert api.get(room.name, second.json()["owner_token"]).status_code == 200


def test_only_the_owner_rotates(api: Client) -> None:
    room = new_room(api)
    for role in ("editor", "reviewer", "viewer"):
        assert_error(api.rotate(room.name, sign(room.name, role)), 403)
    assert_error(api.rotate(room.name, None), 401)
    assert_error(api.rotate(room.name, new_room(api).owner), 403)
    assert_error(api.rotate("no-such-room", sign("*", "owner")), 404)
    assert api.get(room.name, room.owner).status_code == 200  # nothing was rotated


# -- GET /api/config ------------------------------------------------------------------


def test_config(api: Client) -> None:
    for token in (None, "garbage", ADMIN):
        response = api.request("GET", "/api/config", token)
        assert response.status_code == 200
        body = response.json()
        limits = body.pop("limits")
        assert set(body) == {"ai", "runner", "multi_instance", "anonymous"}
        assert all(isinstance(v, bool) for v in body.values())
        assert body["anonymous"] is False  # a secret is configured
        # The defaults of the settings, so a browser can check an upload before sending it.
        assert limits == {
            "max_files": 200,
            "max_file_bytes": 1024 * 1024,
            "max_workspace_bytes": 8 * 1024 * 1024,
        }


# -- unknown rooms, bodies, rate limits -------------------------------------------


@pytest.mark.parametrize("name", ["no-such-room", "bad name", "x" * 129, "*"])
def test_unknown_room_is_404_with_a_star_token(api: Client, name: str) -> None:
    star = sign("*", "owner")
    assert_error(api.get(name, star), 404)
    assert_error(api.patch(name, star, json={"title": "x"}), 404)
    assert_error(api.tokens(name, star, json={"role": "viewer", "name": "x"}), 404)
    assert_error(api.role(name, "c1", star, json={"role": "viewer"}), 404)
    assert_error(api.snapshot(name, star), 404)
    assert_error(api.snapshot(name, star, "yjs"), 404)
    assert_error(api.fork(name, star), 404)
    assert_error(api.rotate(name, star), 404)


def test_body_over_64_kib_is_413(api: Client) -> None:
    room = new_room(api, title="kept")
    big = json.dumps({"title": "t" * (64 * KiB)}).encode()
    assert len(big) > 64 * KiB
    assert_error(api.request("POST", "/api/rooms", ADMIN, content=big), 413)
    assert_error(
        api.request("PATCH", "/api/rooms/{room}", room.owner, content=big, room=room.name), 413
    )
    assert_error(
        api.request("POST", "/api/rooms/{room}/tokens", room.owner, content=big, room=room.name),
        413,
    )
    template = "/api/rooms/{room}/peers/{user}/role"
    assert_error(
        api.request("PUT", template, room.owner, content=big, room=room.name, user="u"), 413
    )
    assert api.get(room.name, room.owner).json()["title"] == "kept"


def test_body_limit_is_exactly_64_kib(api: Client) -> None:
    def body_of(size: int) -> bytes:
        padding = size - len(json.dumps({"title": ""}))
        raw = json.dumps({"title": "t" * padding}).encode()
        assert len(raw) == size
        return raw

    # At the limit the body is read (and refused for its too long title); one byte more is 413.
    assert_error(api.request("POST", "/api/rooms", ADMIN, content=body_of(64 * KiB)), 422, "title")
    assert_error(api.request("POST", "/api/rooms", ADMIN, content=body_of(64 * KiB + 1)), 413)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    env = {
        "CODEMENTOR_SECRET": SECRET,
        "CODEMENTOR_API_RATE_PER_MINUTE": "5",
        "CODEMENTOR_PUBLIC_URL": PUBLIC_URL + "/",
    }
    with ServerProcess(tmp_path_factory.mktemp("api-limited"), env) as proc:
        yield Client(proc)


def test_rate_limit_answers_429_with_retry_after(limited: Client) -> None:
    room = new_room(limited, None)  # no admin token here: from the address's bucket
    # Join links are built on CODEMENTOR_PUBLIC_URL (its trailing slash dropped).
    for role, link in room.links.items():
        assert link == f"{PUBLIC_URL}/r/{room.name}?token={room.link_token(role)}"
    first = sign(room.name, "viewer", sub="u-first")
    second = sign(room.name, "viewer", sub="u-second")
    for _ in range(5):
        assert limited.get(room.name, first).status_code == 200
    refused = limited.get(room.name, first)
    assert_error(refused, 429)
    retry_after = refused.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
    # Every endpoint draws from the same bucket, and refusals do not refill it.
    assert_error(limited.request("GET", "/api/config", first), 429)
    assert_error(limited.snapshot(room.name, first), 429)
    # Another token has its own bucket.
    assert limited.get(room.name, second).status_code == 200
    # Requests without a token share their address's bucket (the room creation took one).
    for _ in range(4):
        assert limited.request("GET", "/api/config").status_code == 200
    anonymous = limited.request("GET", "/api/config")
    assert_error(anonymous, 429)
    assert anonymous.headers["retry-after"].isdigit()
    assert_error(limited.create(None), 429)


def test_invalid_tokens_do_not_escape_the_rate_limit(limited: Client) -> None:
    """The limit is per token, so a token that does not verify cannot claim a bucket of
    its own: if it could, sending a different made-up token with each request would get
    a fresh burst every time and the limit would never apply."""
    room = "limited-room"
    statuses = [limited.get(room, f"made-up-{i}").status_code for i in range(12)]
    assert set(statuses) <= {401, 429}
    assert 429 in statuses, f"12 requests at 5 per minute were never limited: {statuses}"


# -- the OpenAPI document (keep last: it checks every answer recorded above) ----------


def openapi(client: Client) -> dict[str, Any]:
    response = client.request("GET", "/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = response.json()
    return document


def served_api_routes() -> dict[str, set[str]]:
    app = create_app(Settings(secret=SECRET))
    routes: dict[str, set[str]] = {}
    for route in app.routes:
        # Starlette's {name:converter} is OpenAPI's {name}.
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", getattr(route, "path", ""))
        methods = getattr(route, "methods", None)
        if path.startswith("/api") and methods:
            routes.setdefault(path, set()).update(m.lower() for m in methods if m != "HEAD")
    return routes


def test_openapi_document_validates(api: Client) -> None:
    document = openapi(api)
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_openapi_lists_every_api_route(api: Client) -> None:
    document = openapi(api)
    served = served_api_routes()
    # The document does not describe itself.
    assert served.pop("/api/openapi.json") == {"get"}
    documented = {
        path: {m for m in item if m in {"get", "put", "post", "patch", "delete"}}
        for path, item in document["paths"].items()
    }
    assert documented == served
    for path, item in document["paths"].items():
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == {part[1:-1] for part in path.split("/") if part.startswith("{")}
            assert "429" in operation["responses"], (method, path)


def test_openapi_describes_every_answer_received(api: Client) -> None:
    """Every status the tests above got is documented for its operation, and every JSON
    body conforms to the documented schema."""
    document = openapi(api)
    checked: set[tuple[str, str, int]] = set()
    for method, template, status, content_type, body in OBSERVED:
        if template == "/api/openapi.json":
            continue
        responses = document["paths"][template][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {template} answered {status}"
        if status == 204:  # no content, none to describe
            assert not body and "content" not in responses["204"]
            checked.add((method, template, status))
            continue
        media = content_type.split(";")[0].strip()
        content = responses[str(status)].get("content", {})
        assert media in content, f"{method.upper()} {template} {status} answered {media}"
        if media == "application/json":
            schema_ = {**content[media]["schema"], "components": document["components"]}
            jsonschema.validate(json.loads(body), schema_)
        checked.add((method, template, status))


async def test_history_viewers_is_off_in_broadcast_rooms_until_the_owner_opens_it(
    api: Client,
) -> None:
    room = new_room(api, mode="broadcast", title="class")
    assert api.get(room.name, room.owner).json()["history_viewers"] is False
    viewer = room.link_token("viewer")
    refused = api.patch(room.name, viewer, json={"history_viewers": True})
    assert refused.status_code == 403, refused.text
    response = api.patch(room.name, room.owner, json={"history_viewers": True})
    assert response.status_code == 200, response.text
    assert response.json()["history_viewers"] is True
    assert api.get(room.name, room.owner).json()["history_viewers"] is True
    bad = api.patch(room.name, room.owner, json={"history_viewers": "yes please"})
    assert bad.status_code == 422, bad.text
