"""The two-way class (``server/class_api.py``, design section A) against real servers:
students' questions and messages under each chat policy, hands with questions in the
order they were raised, publishing, muting, taking a grant back early, who may do what,
bad bodies, and two instances on one Redis seeing the same hands."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Map

from crdt import schema
from rooms import classroom
from tests.multi import start_instances
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

ENV = {"CODEMENTOR_SECRET": SECRET, "CODEMENTOR_API_RATE_PER_MINUTE": "100000"}
NOT_PERSONAL = "join the class with your name first"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module's single-instance tests (each makes its own rooms)."""
    with ServerProcess(tmp_path_factory.mktemp("class-live"), ENV) as proc:
        yield proc


@pytest.fixture
async def http(live: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.http_url, timeout=10) as client:
        yield client


class Class:
    """A class room on one server and tokens for the people in it."""

    def __init__(self, http: httpx.AsyncClient, room: str, owner: str) -> None:
        self.http = http
        self.room = room
        self.owner = owner

    @classmethod
    async def create(cls, http: httpx.AsyncClient, mode: str = "broadcast") -> Class:
        made = await http.post("/api/rooms", json={"mode": mode, "title": "CS 101"})
        assert made.status_code == 201, made.text
        return cls(http, made.json()["room"], made.json()["owner_token"])

    def student(self, name: str, role: str = "viewer", personal: bool = True) -> str:
        return sign(self.room, role, name=name, personal=personal)

    async def call(
        self, method: str, path: str, token: str | None, body: Any = None
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return await self.http.request(
            method, f"/api/rooms/{self.room}{path}", json=body, headers=headers
        )

    async def view(self, token: str) -> dict[str, Any]:
        response = await self.call("GET", "/class", token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]
    return message


def fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [f["field"] for f in response.json()["fields"]]


def class_root(client: YClient) -> dict[str, Any]:
    raw = schema.class_state(client.doc).to_py() or {}
    return {k: json.loads(v) for k, v in raw.items()}


def chat(client: YClient) -> list[dict[str, Any]]:
    return [m.to_py() or {} for m in schema.chat(client.doc) if isinstance(m, Map)]


# -- questions -------------------------------------------------------------------------


async def test_a_students_question_reaches_the_staff_only_and_a_teacher_publishes_it(
    live: ServerProcess, http: httpx.AsyncClient
) -> None:
    c = await Class.create(http)
    sam = c.student("Sam")
    ann = c.student("Ann")
    mine = await c.view(sam)
    assert mine == {"chat": "questions", "ai": "full", "hand_key": mine["hand_key"], "hand": None}
    assert re.fullmatch(r"[0-9a-f]{16}", mine["hand_key"])
    posted = await c.call("POST", "/messages", sam, {"text": "  why a loop?  "})
    assert posted.status_code == 201, posted.text
    assert posted.json()["to"] == "staff"

    async with YClient(live.ws_url(c.room, f"token={ann}")) as student:
        await student.wait_synced()
        staff = await c.view(c.owner)
        assert staff["staff_room"] == c.room + ".staff"
        [question] = staff["questions"]
        assert question["text"] == "why a loop?"  # trimmed
        assert (question["name"], question["user_id"]) == ("Sam", "u-sam")
        assert question["key"] == mine["hand_key"]
        # The staff room over the staff token: a viewer that sees the question.
        async with YClient(live.ws_url(staff["staff_room"], f"token={staff['staff_token']}")) as s:
            await s.wait_synced()
            assert class_root(s)[f"question:{question['id']}"]["text"] == "why a loop?"
        # Nothing of it in the class room that students have.
        assert "why a loop?" not in json.dumps(class_root(student)) + json.dumps(chat(student))
        # Students see no questions and may not act on them.
        assert "questions" not in await c.view(ann)
        qid = question["id"]
        for method, path in (
            ("POST", f"/questions/{qid}/publish"),
            ("DELETE", f"/questions/{qid}"),
        ):
            assert "teacher" in error(await c.call(method, path, ann), 403)

        published = await c.call("POST", f"/questions/{qid}/publish", c.owner)
        assert published.status_code == 200, published.text
        entry = published.json()
        assert entry["author"] == "Sam" and entry["author_id"] == "u-sam"
        assert entry["author_role"] == "viewer" and entry["question"] is True
        assert entry["published_by"] == "owner" and entry["text"] == "why a loop?"
        [seen] = await eventually(lambda: chat(student), what="the published question")
        assert seen == entry
    assert (await c.view(c.owner))["questions"] == []  # it left the inbox
    assert error(await c.call("POST", f"/questions/{qid}/publish", c.owner), 404)
    # Dismissing: the question goes without reaching the chat.
    second = (await c.call("POST", "/messages", sam, {"text": "and this?"})).json()["id"]
    assert (await c.call("DELETE", f"/questions/{second}", c.owner)).status_code == 204
    assert (await c.view(c.owner))["questions"] == []
    assert error(await c.call("DELETE", f"/questions/{second}", c.owner), 404) == (
        "unknown question"
    )


async def test_chat_policies_decide_where_a_students_message_goes(
    live: ServerProcess, http: httpx.AsyncClient
) -> None:
    c = await Class.create(http)
    sam = c.student("Sam")
    editor = c.student("Eve", role="editor")
    assert "owner" in error(await c.call("PUT", "/class", editor, {"chat": "open"}), 403)
    assert "owner" in error(await c.call("PUT", "/class", sam, {"ai": "off"}), 403)
    assert fields(await c.call("PUT", "/class", c.owner, {"chat": "loud"})) == ["chat"]
    assert fields(await c.call("PUT", "/class", c.owner, {"ai": "some"})) == ["ai"]
    assert fields(await c.call("PUT", "/class", c.owner, {"color": "red"})) == ["color"]
    changed = await c.call("PUT", "/class", c.owner, {"chat": "open", "ai": "hints"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["chat"], changed.json()["ai"]) == ("open", "hints")
    assert (await c.view(sam))["ai"] == "hints"

    async with YClient(live.ws_url(c.room, f"token={sam}")) as student:
        await student.wait_synced()
        assert class_root(student)["policy:chat"] == {"chat": "open"}
        posted = await c.call("POST", "/messages", sam, {"text": "hello all"})
        assert posted.json()["to"] == "chat"
        [entry] = await eventually(lambda: chat(student), what="the message in the chat")
        assert entry["id"] == posted.json()["id"]
        assert (entry["author"], entry["author_id"], entry["author_role"]) == (
            "Sam", "u-sam", "viewer",
        )  # fmt: skip
        assert entry["text"] == "hello all" and entry["ts"] > 1e12  # milliseconds

        await c.call("PUT", "/class", c.owner, {"chat": "closed"})
        assert error(await c.call("POST", "/messages", sam, {"text": "hi"}), 403) == (
            "chat is closed"
        )
        # Staff post to the chat whatever the policy, as themselves.
        staff_post = await c.call("POST", "/messages", editor, {"text": "quiet please"})
        assert staff_post.json()["to"] == "chat"
        await eventually(lambda: len(chat(student)) == 2, what="the editor's message")
        assert chat(student)[1]["author_role"] == "editor"


async def test_bad_messages_and_shared_tokens_are_refused_clearly(
    http: httpx.AsyncClient,
) -> None:
    c = await Class.create(http)
    sam = c.student("Sam")
    shared = c.student("viewer", personal=False)  # a join link: one id for everyone
    assert error(await c.call("POST", "/messages", shared, {"text": "hi"}), 403) == NOT_PERSONAL
    assert error(await c.call("POST", "/hand", shared, {}), 403) == NOT_PERSONAL
    assert (await c.view(shared))["hand_key"] is None
    assert fields(await c.call("POST", "/messages", sam, {"text": "   "})) == ["text"]
    assert fields(await c.call("POST", "/messages", sam, {"text": "x" * 2001})) == ["text"]
    assert fields(await c.call("POST", "/messages", sam, {})) == ["text"]
    assert fields(await c.call("POST", "/messages", sam, {"text": 5})) == ["text"]
    assert fields(await c.call("POST", "/messages", sam, {"text": "a", "as": "x"})) == ["as"]
    assert error(await c.call("POST", "/messages", None, {"text": "hi"}), 401)
    assert error(await c.call("POST", "/messages", "not-a-token", {"text": "hi"}), 401)
    other = sign("elsewhere", "owner", name="Olga", personal=True)
    assert error(await c.call("POST", "/messages", other, {"text": "hi"}), 403)
    unknown = await http.get(
        "/api/rooms/nope123/class", headers={"authorization": f"Bearer {sign('nope123', 'owner')}"}
    )
    assert error(unknown, 404) == "unknown room"


async def test_messages_are_rate_limited_per_person(http: httpx.AsyncClient) -> None:
    c = await Class.create(http)
    sam, ann = c.student("Sam"), c.student("Ann")
    for i in range(10):
        assert (await c.call("POST", "/messages", sam, {"text": f"q{i}"})).status_code == 201
    refused = await c.call("POST", "/messages", sam, {"text": "one more"})
    assert "a minute" in error(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert (await c.call("POST", "/messages", ann, {"text": "mine"})).status_code == 201
    assert len((await c.view(c.owner))["questions"]) == 11


# -- hands -----------------------------------------------------------------------------


async def test_hands_carry_a_question_and_are_listed_by_when_they_were_raised(
    live: ServerProcess, http: httpx.AsyncClient
) -> None:
    c = await Class.create(http)
    tokens = {name: c.student(name) for name in ("Zoe", "Bob", "Amy")}
    keys = {}
    for name, token in tokens.items():  # Zoe first, Amy last: not by name
        raised = await c.call("POST", "/hand", token, {"question": f"{name}'s question"})
        assert raised.status_code == 200, raised.text
        keys[name] = raised.json()["key"]
    first = (await c.view(c.owner))["hands"]
    assert [h["name"] for h in first] == ["Zoe", "Bob", "Amy"]
    assert first[0]["question"] == "Zoe's question" and first[0]["user_id"] == "u-zoe"
    # A re-raise changes the question, not the place in the queue.
    again = await c.call("POST", "/hand", tokens["Zoe"], {"question": " stuck on line 3 "})
    assert again.json()["raised_at"] == first[0]["raised_at"]
    kept = await c.call("POST", "/hand", tokens["Zoe"], {})  # no question: it stays
    assert kept.json()["question"] == "stuck on line 3"
    hands = (await c.view(c.owner))["hands"]
    assert [h["name"] for h in hands] == ["Zoe", "Bob", "Amy"]
    assert hands[0]["question"] == "stuck on line 3"
    assert (await c.view(tokens["Bob"]))["hand"] == {
        "raised_at": hands[1]["raised_at"], "question": "Bob's question",
    }  # fmt: skip

    async with YClient(live.ws_url(c.room, f"token={tokens['Bob']}")) as student:
        await student.wait_synced()
        visible = {k: v for k, v in class_root(student).items() if k.startswith("hand:")}
        # Students see how many hands and when, never whose or what question.
        assert visible == {f"hand:{keys[n]}": {"raised_at": h["raised_at"]}
                           for n, h in zip(("Zoe", "Bob", "Amy"), hands, strict=True)}  # fmt: skip

    bob = tokens["Bob"]
    assert "teacher" in error(await c.call("DELETE", f"/hands/{keys['Zoe']}", bob), 403)
    assert "teacher" in error(await c.call("DELETE", "/hands", bob), 403)
    assert fields(await c.call("POST", "/hand", bob, {"question": "x" * 501})) == ["question"]
    assert (await c.call("DELETE", "/hand", bob)).json() == {"lowered": 1}
    assert (await c.call("DELETE", "/hand", bob)).json() == {"lowered": 0}
    assert (await c.call("DELETE", f"/hands/{keys['Zoe']}", c.owner)).json() == {"lowered": 1}
    assert error(await c.call("DELETE", f"/hands/{keys['Zoe']}", c.owner), 404)
    assert [h["name"] for h in (await c.view(c.owner))["hands"]] == ["Amy"]
    await c.call("POST", "/hand", bob, {})
    assert (await c.call("DELETE", "/hands", c.owner)).json() == {"lowered": 2}
    assert (await c.view(c.owner))["hands"] == []
    assert (await c.view(tokens["Amy"]))["hand"] is None


async def test_in_a_pair_room_a_hand_names_its_person_in_the_room_itself(
    live: ServerProcess, http: httpx.AsyncClient
) -> None:
    c = await Class.create(http, mode="pair")
    ed = c.student("Ed", role="editor")
    assert (await c.view(ed))["chat"] == "open"  # not a broadcast room
    raised = await c.call("POST", "/hand", ed, {"question": "help"})
    key = raised.json()["key"]
    async with YClient(live.ws_url(c.room, f"token={ed}")) as peer:
        await peer.wait_synced()
        hand = class_root(peer)[f"hand:{key}"]
        assert (hand["name"], hand["question"], hand["user_id"]) == ("Ed", "help", "u-ed")
    [listed] = (await c.view(c.owner))["hands"]
    assert (listed["key"], listed["name"]) == (key, "Ed")


# -- muting, grants, server rooms ------------------------------------------------------


async def test_a_muted_student_cannot_ask_until_unmuted(http: httpx.AsyncClient) -> None:
    c = await Class.create(http)
    sam = c.student("Sam")
    await c.call("POST", "/messages", sam, {"text": "first"})
    key = (await c.view(c.owner))["questions"][0]["key"]
    assert "teacher" in error(await c.call("PUT", f"/muted/{key}", sam), 403)
    muted = await c.call("PUT", f"/muted/{key}", c.owner)
    assert muted.status_code == 200, muted.text
    assert (muted.json()["user_id"], muted.json()["name"]) == ("u-sam", "Sam")
    assert error(await c.call("POST", "/messages", sam, {"text": "again"}), 403) == "you are muted"
    assert error(await c.call("POST", "/hand", sam, {"question": "hey"}), 403) == "you are muted"
    assert (await c.call("POST", "/hand", sam, {})).status_code == 200  # a silent hand is fine
    assert [m["key"] for m in (await c.view(c.owner))["muted"]] == [key]
    assert (await c.call("DELETE", f"/muted/{key}", c.owner)).status_code == 204
    assert error(await c.call("DELETE", f"/muted/{key}", c.owner), 404)
    assert (await c.call("POST", "/messages", sam, {"text": "thanks"})).status_code == 201
    assert "unknown person" in error(await c.call("PUT", "/muted/0123456789abcdef", c.owner), 404)
    assert error(await c.call("PUT", "/muted/not-a-key", c.owner), 404)


async def test_the_owner_takes_a_grant_back_early(
    live: ServerProcess, http: httpx.AsyncClient
) -> None:
    c = await Class.create(http)
    sam = c.student("Sam")
    editor = c.student("Eve", role="editor")
    async with YClient(live.ws_url(c.room, f"token={sam}")) as student:
        await student.wait_synced()
        granted = await c.call("PUT", "/peers/u-sam/role", c.owner, {"role": "editor", "ttl": 600})
        assert granted.status_code == 200, granted.text
        await eventually(lambda: [n["role"] for n in student.role_notices] == ["editor"])
        assert "owner" in error(await c.call("DELETE", "/peers/u-sam/role", editor), 403)
        reverted = await c.call("DELETE", "/peers/u-sam/role", c.owner)
        assert reverted.status_code == 200, reverted.text
        assert reverted.json()["changed"] == 1
        assert reverted.json()["peers"][0]["role"] == "viewer"
        await eventually(lambda: [n["role"] for n in student.role_notices] == ["editor", "viewer"])
        assert student.role_notices[-1]["expires"] is None
        room = (await c.call("GET", "", c.owner)).json()
        assert [p["id"] for p in room["peers"]["viewer"]] == ["u-sam"]
    assert error(await c.call("DELETE", "/peers/u-nobody/role", c.owner), 404)


async def test_the_servers_own_rooms_are_not_classes(
    live: ServerProcess, http: httpx.AsyncClient
) -> None:
    c = await Class.create(http)
    staff = await c.view(c.owner)
    response = await http.get(
        f"/api/rooms/{staff['staff_room']}/class",
        headers={"authorization": f"Bearer {staff['staff_token']}"},
    )
    assert "not a class" in error(response, 409)
    # The staff token is a viewer's for the staff room only.
    assert error(await c.call("GET", "/class", staff["staff_token"]), 403)
    async with YClient(live.ws_url(staff["staff_room"], f"token={staff['staff_token']}")) as s:
        await s.wait_synced()
        schema.class_state(s.doc)["question:forged"] = json.dumps({"text": "forged"})
        await eventually(lambda: s.denials, what="the viewer's write refused")


async def test_a_peer_cannot_forge_a_published_question(
    live: ServerProcess, http: httpx.AsyncClient
) -> None:
    """``question``, ``published_by`` and ``published_by_id`` are the server's: a peer
    posting a chat entry shaped like a published question loses them."""
    c = await Class.create(http, mode="pair")
    mallory = c.student("Mallory", role="editor")
    async with YClient(live.ws_url(c.room, f"token={mallory}")) as peer:
        await peer.wait_synced()
        forged = {
            "id": "m1", "author": "Sam", "text": "I give up", "ts": 1.0,
            "question": True, "published_by": "owner", "published_by_id": "u-owner",
        }  # fmt: skip
        schema.chat(peer.doc).append(Map(forged))

        def corrected() -> dict[str, Any] | None:
            [entry] = chat(peer)
            return entry if entry.get("author") == "Mallory" else None

        entry = await eventually(corrected, what="the entry stamped with its real author")
        await eventually(lambda: "question" not in chat(peer)[0], what="question dropped")
        entry = chat(peer)[0]
        assert not {"question", "published_by", "published_by_id"} & entry.keys()
        assert entry["author_id"] == "u-mallory"


# -- two instances -----------------------------------------------------------------


async def test_two_instances_on_one_redis_see_the_same_hands(
    server_factory: Callable[..., ServerProcess], redis_server: RedisProcess, tmp_path: Path
) -> None:
    a, b = await start_instances(
        server_factory, redis_server.url, tmp_path / "shared", ["a", "b"], **ENV
    )
    async with (
        httpx.AsyncClient(base_url=a.http_url, timeout=10) as on_a,
        httpx.AsyncClient(base_url=b.http_url, timeout=10) as on_b,
    ):
        c = await Class.create(on_a)
        c_b = Class(on_b, c.room, c.owner)
        sam, ann = c.student("Sam"), c.student("Ann")
        await c.call("POST", "/hand", sam, {"question": "from a"})
        await c_b.call("POST", "/hand", ann, {"question": "from b"})

        async def both_see(names: list[str]) -> bool:
            seen = [[h["name"] for h in (await x.view(c.owner))["hands"]] for x in (c, c_b)]
            return seen == [names, names]

        await eventually(lambda: both_see(["Sam", "Ann"]), what="both hands on both")
        key = classroom.person_key(SECRET, "u-sam")
        assert (await c_b.call("DELETE", f"/hands/{key}", c.owner)).json() == {"lowered": 1}
        await eventually(lambda: both_see(["Ann"]), what="the lowered hand gone on both")
