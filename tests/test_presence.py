"""Presence (awareness) against a real server, as an attacker would try it:
squatting another student's client id, posing as the AI, flooding the room, style
injection through colours, and reading the class list."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pycrdt import Doc

from crdt import protocol
from crdt.awareness import Entry, decode_update, encode_update
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio


def create_room(server: ServerProcess, mode: str) -> dict[str, Any]:
    response = httpx.post(server.http_url + "/api/rooms", json={"mode": mode}, timeout=10)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def grant(server: ServerProcess, room: str, owner: str, conn: str) -> httpx.Response:
    """The teacher's "Let edit": the connection ``conn`` becomes an editor for a minute."""
    return httpx.put(
        f"{server.http_url}/api/rooms/{room}/peers/{conn}/role",
        json={"role": "editor", "ttl": 60},
        headers={"Authorization": f"Bearer {owner}"},
        timeout=10,
    )


async def connect(server: ServerProcess, room: str, bearer: str, client_id: int = 0) -> YClient:
    doc: Doc[Any] | None = Doc(client_id=client_id) if client_id else None
    client = await YClient(server.ws_url(room), doc).connect(f"token={bearer}")
    await client.wait_synced()
    return client


def states_seen(client: YClient, client_id: int) -> list[Any]:
    """Every state for ``client_id`` in the awareness frames ``client`` received."""
    seen = []
    for frame in client.received:
        if frame[0] == protocol.MessageType.AWARENESS:
            message = protocol.parse_frame(frame)
            assert isinstance(message, protocol.AwarenessUpdate)
            for entry in decode_update(message.payload):
                if entry.client_id == client_id and entry.state != "null":
                    seen.append(json.loads(entry.state))
    return seen


async def settled(teacher: YClient, marker: int) -> None:
    """Wait until every frame the room sent ``teacher`` before now has arrived: the
    teacher changes its own state and asks for everyone's; the answer comes last."""
    await teacher.set_awareness({"user": {"name": "Ms Tan"}, "marker": marker})
    teacher.awareness.pop(teacher.doc.client_id, None)
    await teacher.send_raw(bytes([protocol.MessageType.QUERY_AWARENESS]))
    await eventually(
        lambda: teacher.awareness.get(teacher.doc.client_id, {}).get("marker") == marker
    )


@pytest.fixture
def server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory(CODEMENTOR_SECRET=SECRET, CODEMENTOR_LOG_FORMAT="json")


# -- Medium 3: presence squatting ------------------------------------------------------


async def test_a_students_client_id_cannot_be_squatted_after_they_leave(
    server: ServerProcess,
) -> None:
    created = create_room(server, "broadcast")
    room, owner = created["room"], created["owner_token"]
    sam_token = sign(room, "viewer", name="Sam", personal=True)
    mallory_token = sign(room, "viewer", name="Mallory", personal=True)
    teacher = await connect(server, room, owner)
    await teacher.set_awareness({"user": {"name": "Ms Tan"}})

    sam = await connect(server, room, sam_token, client_id=4242)
    await sam.set_awareness({"user": {"name": "Sam"}, "hand": False})
    await eventually(lambda: 4242 in teacher.awareness)
    await sam.close()
    await eventually(lambda: 4242 not in teacher.awareness)

    # Mallory announces Sam's client id with a raised hand (a newer clock, as if Sam).
    mallory = await connect(server, room, mallory_token)
    squat = encode_update([Entry(4242, 50, json.dumps({"user": {"name": "Sam"}, "hand": True}))])
    await mallory.send_raw(protocol.awareness_frame(squat))
    await mallory.set_awareness({"user": {"name": "Mallory"}, "hand": False})
    await eventually(lambda: mallory.doc.client_id in teacher.awareness)
    await settled(teacher, 1)
    assert states_seen(teacher, 4242) == [{"user": {"name": "Sam"}, "hand": False}]
    listing = server.room_details(room, owner)["peers"]["viewer"]
    assert [(p["id"], p["clients"]) for p in listing] == [("u-mallory", [mallory.doc.client_id])]

    # Sam comes back (same document, same client id) and gets the id back.
    await sam.connect(f"token={sam_token}")
    await sam.wait_synced()
    await sam.set_awareness({"user": {"name": "Sam"}, "hand": True})
    await eventually(lambda: teacher.awareness.get(4242, {}).get("hand") is True)
    listing = server.room_details(room, owner)["peers"]["viewer"]
    holder = [p for p in listing if 4242 in p["clients"]]
    assert [p["id"] for p in holder] == ["u-sam"]

    # The teacher's "Let edit" goes to the connection holding the hand: Sam's.
    granted = grant(server, room, owner, holder[0]["conn"])
    assert granted.status_code == 200, granted.text
    await eventually(lambda: [n["role"] for n in sam.role_notices] == ["editor"])
    assert mallory.role_notices == []
    for client in (sam, mallory, teacher):
        await client.close()


async def test_a_reconnect_before_the_old_socket_closed_keeps_the_presence(
    server: ServerProcess,
) -> None:
    """The same person's new connection takes over its client id at once; the old
    connection's close, noticed later, removes nothing."""
    created = create_room(server, "broadcast")
    room, owner = created["room"], created["owner_token"]
    sam_token = sign(room, "viewer", name="Sam", personal=True)
    teacher = await connect(server, room, owner)
    old = await connect(server, room, sam_token, client_id=777)
    await old.set_awareness({"user": {"name": "Sam"}, "n": 1})
    await eventually(lambda: teacher.awareness.get(777) == {"user": {"name": "Sam"}, "n": 1})

    new = await connect(server, room, sam_token, client_id=777)
    new._clock = 1
    await new.set_awareness({"user": {"name": "Sam"}, "n": 2})
    await eventually(lambda: teacher.awareness.get(777) == {"user": {"name": "Sam"}, "n": 2})
    await old.close()
    await settled(teacher, 1)
    assert teacher.awareness.get(777) == {"user": {"name": "Sam"}, "n": 2}
    holders = [p["id"] for p in server.room_details(room, owner)["peers"]["viewer"] if p["clients"]]
    assert holders == ["u-sam"]
    await new.close()
    await teacher.close()


async def test_echoes_of_everyones_presence_are_ignored(server: ServerProcess) -> None:
    """Browsers send back every awareness change they receive (y-websocket relays all of
    awareness): a teacher echoing the class is neither closed nor taken for an owner."""
    created = create_room(server, "broadcast")
    room, owner = created["room"], created["owner_token"]
    teacher = await connect(server, room, owner)
    students = [
        await connect(server, room, sign(room, "viewer", sub=f"u-{i}", name=f"s{i}", personal=True))
        for i in range(6)
    ]
    for i, student in enumerate(students):
        await student.set_awareness({"user": {"name": f"s{i}", "color": "#1f7a3a"}})
    await eventually(lambda: len(teacher.awareness) == 6)
    echo = encode_update(
        [Entry(cid, 1, json.dumps(value)) for cid, value in teacher.awareness.items()]
        + [Entry(teacher.doc.client_id, 1, json.dumps({"user": {"name": "Ms Tan"}}))]
    )
    await teacher.send_raw(protocol.awareness_frame(echo))
    teacher._clock = 1  # the echo carried the teacher's own first state
    await settled(teacher, 2)
    assert not teacher.closed.is_set()
    listing = server.room_details(room, owner)["peers"]
    assert listing["owner"][0]["clients"] == [teacher.doc.client_id]
    for client in (*students, teacher):
        await client.close()


# -- Medium 4: AI impersonation ----------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(b'{"user":{"name":"Eve","role":"\\u0061i"}}', id="escaped role"),
        pytest.param('{"user":{"name":"ＣｏｄｅＭｅｎｔｏｒ ＡＩ"}}'.encode(), id="full width"),
        pytest.param(b'{"user":{"name":"codementor  ai","role":"viewer"}}', id="name any case"),
    ],
)
async def test_nobody_but_the_server_is_the_ai(server: ServerProcess, state: bytes) -> None:
    created = create_room(server, "pair")
    room, owner = created["room"], created["owner_token"]
    teacher = await connect(server, room, owner)
    await teacher.set_awareness({"user": {"name": "Ms Tan"}})
    eve = await connect(server, room, sign(room, "editor", name="Eve", personal=True))
    payload = b"\x01" + protocol.write_var_uint(eve.doc.client_id) + b"\x01"
    await eve.send_raw(protocol.awareness_frame(payload + protocol.var_bytes(state)))
    assert await eve.wait_closed() == protocol.CLOSE_POLICY_VIOLATION
    await settled(teacher, 1)
    assert states_seen(teacher, eve.doc.client_id) == []
    await teacher.close()


# -- Medium 5: unbounded awareness ---------------------------------------------------------


async def test_a_flood_of_client_ids_is_refused_and_dropped(server: ServerProcess) -> None:
    created = create_room(server, "broadcast")
    room, owner = created["room"], created["owner_token"]
    viewer_link_token = created["links"]["viewer"].split("token=", 1)[1]
    teacher = await connect(server, room, owner)
    attacker = await connect(server, room, viewer_link_token)
    flood = encode_update([Entry(10_000 + i, 1, '{"user":{"name":"x"}}') for i in range(1000)])
    await attacker.send_raw(protocol.awareness_frame(flood))
    assert await attacker.wait_closed() == protocol.CLOSE_POLICY_VIOLATION
    await settled(teacher, 1)
    assert set(teacher.awareness) == {teacher.doc.client_id}
    # A newcomer's snapshot holds the teacher's state only.
    late = await connect(server, room, owner)
    await eventually(lambda: teacher.doc.client_id in late.awareness)
    assert set(late.awareness) == {teacher.doc.client_id}
    for client in (late, teacher):
        await client.close()


async def test_an_oversize_state_is_refused_and_dropped(server: ServerProcess) -> None:
    created = create_room(server, "broadcast")
    room, owner = created["room"], created["owner_token"]
    teacher = await connect(server, room, owner)
    viewer = await connect(
        server, room, sign(room, "viewer", sub="u-v", name="Vera", personal=True)
    )
    await viewer.set_awareness({"user": {"name": "Vera"}, "pad": "x" * 16_000})  # fits 16 KiB
    await eventually(lambda: viewer.doc.client_id in teacher.awareness)
    await viewer.set_awareness({"user": {"name": "Vera"}, "pad": "x" * 16_400})
    assert await viewer.wait_closed() == protocol.CLOSE_POLICY_VIOLATION
    await eventually(lambda: viewer.doc.client_id not in teacher.awareness)
    assert all(len(s.get("pad", "")) <= 16_000 for s in states_seen(teacher, viewer.doc.client_id))
    await teacher.close()


async def test_the_rooms_presence_is_bounded(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_SECRET=SECRET, CODEMENTOR_AWARENESS_ROOM_BYTES="2000")
    created = create_room(server, "broadcast")
    room, owner = created["room"], created["owner_token"]
    teacher = await connect(server, room, owner)
    students = []
    for i in range(3):
        student = await connect(
            server, room, sign(room, "viewer", sub=f"u-{i}", name=f"s{i}", personal=True)
        )
        await student.set_awareness({"user": {"name": f"s{i}"}, "pad": "x" * 550})
        await eventually(lambda student=student: student.doc.client_id in teacher.awareness)
        students.append(student)
    fourth = await connect(server, room, sign(room, "viewer", sub="u-3", name="s3", personal=True))
    await fourth.set_awareness({"user": {"name": "s3"}, "pad": "x" * 550})
    assert await fourth.wait_closed() == protocol.CLOSE_POLICY_VIOLATION
    await settled(teacher, 1)
    assert fourth.doc.client_id not in teacher.awareness
    # Someone leaving frees room for the next.
    await students.pop().close()
    again = await connect(server, room, sign(room, "viewer", sub="u-3", name="s3", personal=True))
    await again.set_awareness({"user": {"name": "s3"}, "pad": "x" * 550})
    await eventually(lambda: again.doc.client_id in teacher.awareness)
    for client in (*students, again, teacher):
        await client.close()


async def test_deeply_nested_json_closes_1008_and_is_logged_once(
    server_factory: Callable[..., ServerProcess],
) -> None:
    # A state bound large enough to let 100k levels through to the JSON decoder.
    server = server_factory(
        CODEMENTOR_SECRET=SECRET,
        CODEMENTOR_LOG_FORMAT="json",
        CODEMENTOR_AWARENESS_STATE_BYTES=str(1 << 20),
    )
    created = create_room(server, "pair")
    room, owner = created["room"], created["owner_token"]
    attacker = await connect(server, room, sign(room, "editor", name="X", personal=True))
    nested = ("[" * 100_000 + "]" * 100_000).encode()
    frame = protocol.awareness_frame(
        b"\x01" + protocol.write_var_uint(attacker.doc.client_id) + b"\x01"
        + protocol.var_bytes(nested)
    )  # fmt: skip
    for _ in range(5):
        await attacker.send_raw(frame)
    assert await attacker.wait_closed() == protocol.CLOSE_POLICY_VIOLATION
    # The room still works for everyone else.
    other = await connect(server, room, owner)
    other.text += "still here"
    await other.close()
    rejected = [e for e in server.events() if e.get("event") == "frame_rejected"]
    assert [e.get("reason") for e in rejected] == ["awareness state nested too deeply"]
    assert "Traceback" not in server.log()
    assert not [e for e in server.events() if e.get("event") == "peer_failed"]


# -- Low: CSS injection through colours ------------------------------------------------------


@pytest.mark.parametrize(
    "user",
    [
        pytest.param({"name": "Eve", "color": "red;background:url(//evil.example/x)"}, id="color"),
        pytest.param(
            {"name": "Eve", "color": "#30bced", "colorLight": "#fff;position:fixed"},
            id="colorLight",
        ),
    ],
)
async def test_colours_that_are_not_hex_never_reach_other_browsers(
    server: ServerProcess, user: dict[str, str]
) -> None:
    created = create_room(server, "pair")
    room, owner = created["room"], created["owner_token"]
    teacher = await connect(server, room, owner)
    await teacher.set_awareness({"user": {"name": "Ms Tan", "color": "#b85300"}})
    eve = await connect(server, room, sign(room, "editor", name="Eve", personal=True))
    await eve.set_awareness({"user": user})
    assert await eve.wait_closed() == protocol.CLOSE_POLICY_VIOLATION
    await settled(teacher, 1)
    assert states_seen(teacher, eve.doc.client_id) == []
    await teacher.close()


# -- Low: the class list ---------------------------------------------------------------


async def test_students_see_only_the_stage_and_themselves(server: ServerProcess) -> None:
    created = create_room(server, "broadcast")
    room, owner = created["room"], created["owner_token"]
    link = created["links"]["viewer"].split("token=", 1)[1]
    sam = sign(room, "viewer", name="Sam", personal=True)
    ann = sign(room, "viewer", name="Ann", personal=True)
    helper = sign(room, "editor", name="Helper", personal=True)
    clients = [await connect(server, room, t) for t in (owner, helper, sam, ann, link, link)]

    def names(bearer: str) -> dict[str, list[str]]:
        listing = server.room_details(room, bearer)["peers"]
        return {role: sorted(p["name"] for p in entries) for role, entries in listing.items()}

    stage = {"owner": ["owner"], "editor": ["Helper"], "reviewer": []}
    await eventually(lambda: len(names(owner)["viewer"]) == 4)
    assert names(owner)["viewer"] == ["Ann", "Sam", "viewer", "viewer"]
    assert names(helper)["viewer"] == ["Ann", "Sam", "viewer", "viewer"]
    assert names(sam) == {**stage, "viewer": ["Sam"]}
    assert names(ann) == {**stage, "viewer": ["Ann"]}
    # A join link's user id is everyone's who opened it: it lists nobody, not the class.
    assert names(link) == {**stage, "viewer": []}
    for client in clients:
        await client.close()


async def test_in_pair_rooms_everyone_is_listed(server: ServerProcess) -> None:
    created = create_room(server, "pair")
    room, owner = created["room"], created["owner_token"]
    ann = sign(room, "editor", name="Ann", personal=True)
    bob = sign(room, "editor", name="Bob", personal=True)
    clients = [await connect(server, room, t) for t in (owner, ann, bob)]
    await eventually(lambda: len(server.room_details(room, ann)["peers"]["editor"]) == 2)
    for client in clients:
        await client.close()
