"""Roles over real websockets: which role may change which root, and live role changes.

Every refused change is checked four ways: it is not relayed (an observer that
saw a later allowed change does not have it), not applied (a client syncing
afterwards does not have it), not stored (nor after a restart), and the sender
is told once and counted in ``codementor_writes_refused_total``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pycrdt import Array, Doc, Map, Text

from crdt import schema
from crdt.offsets import utf8_len
from rooms.roles import Role
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

ENV = {"CODEMENTOR_SECRET": SECRET}
REPEATS = 3  # refused updates per connection: the sender is still told only once
REFUSED = "codementor_writes_refused_total"
# Roots a role's update reaches but the server undoes at once (rooms/authorship.py): the
# runs and the classroom's record are the server's. Nobody else sees the change; it is not
# a refusal.
SERVER_ROOTS = frozenset({schema.RUNS, schema.CLASS})
UNDONE: dict[Role, frozenset[str]] = {
    Role.OWNER: SERVER_ROOTS,
    Role.EDITOR: SERVER_ROOTS,
    Role.REVIEWER: frozenset(),
    Role.VIEWER: frozenset(),
}

ALLOWED: dict[Role, frozenset[str]] = {
    Role.OWNER: frozenset(schema.ROOTS) - SERVER_ROOTS,
    Role.EDITOR: frozenset(schema.ROOTS) - SERVER_ROOTS,
    Role.REVIEWER: frozenset({schema.CHAT, schema.COMMENTS}),
    Role.VIEWER: frozenset(),
}


# -- changes to each root, and how to find them again ---------------------------------


def append_code(doc: Doc[Any], tag: str) -> None:
    text = schema.code(doc)
    text.insert(utf8_len(str(text)), f"# {tag}\n")


def set_meta(doc: Doc[Any], tag: str) -> None:
    schema.meta(doc)[tag] = "set"


def append_chat(doc: Doc[Any], tag: str) -> None:
    schema.chat(doc).append(Map({"id": tag, "text": "hello"}))


def add_comment(doc: Doc[Any], tag: str) -> None:
    schema.comments(doc)[tag] = Map({"body": "why?", "line": 1, "replies": Array()})


def add_run(doc: Doc[Any], tag: str) -> None:
    schema.runs(doc)[tag] = Map({"status": "done", "exit": 0})


def add_file(doc: Doc[Any], tag: str) -> None:
    schema.files(doc)[f"{tag}.py"] = Text(f"# {tag}\n")


def raise_hand(doc: Doc[Any], tag: str) -> None:
    schema.class_state(doc)[f"hand:{tag}"] = '{"raised_at": 1}'


CHANGES: dict[str, Callable[[Doc[Any], str], None]] = {
    schema.CODE: append_code,
    schema.META: set_meta,
    schema.CHAT: append_chat,
    schema.COMMENTS: add_comment,
    schema.RUNS: add_run,
    schema.FILES: add_file,
    schema.CLASS: raise_hand,
}


def present(doc: Doc[Any], root: str, tag: str) -> bool:
    if root == schema.CODE:
        return f"# {tag}\n" in schema.code_text(doc)
    if root == schema.CHAT:
        return any(isinstance(m, Map) and m.get("id") == tag for m in schema.chat(doc))
    if root == schema.FILES:
        return f"{tag}.py" in schema.files(doc)
    if root == schema.CLASS:
        return f"hand:{tag}" in schema.class_state(doc)
    kind = schema.ROOT_TYPES[root]
    return tag in doc.get(root, type=kind)


# -- server, rooms, tokens -------------------------------------------------------------


async def create_room(server: ServerProcess, mode: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        created = await http.post(
            "/api/rooms", json={"mode": mode, "language": "python", "title": "roles"}
        )
    assert created.status_code == 201, created.text
    body = created.json()
    return body["room"], body["owner_token"]


async def join(server: ServerProcess, room: str, credential: str) -> YClient:
    client = await YClient(server.ws_url(room)).connect(f"token={credential}")
    await client.wait_synced()
    return client


def refused(server: ServerProcess, role: Role) -> float:
    return server.metric(f'{REFUSED}{{role="{role.value}"}}')


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with a known secret for the tests that need no restart."""
    with ServerProcess(tmp_path_factory.mktemp("roles-data"), ENV) as proc:
        yield proc


async def assert_dropped(
    server: ServerProcess,
    role: Role,
    refused_before: float,
    count: int,
    sender: YClient,
    observer: YClient,
    marker_author: YClient,
    sent: list[tuple[str, str]],
) -> None:
    """``count`` updates of ``sender`` (holding ``sent`` = [(root, tag)]) were refused:
    counted, told once, and not relayed to ``observer`` before a later allowed change."""
    await eventually(
        lambda: (
            refused(server, role) >= refused_before + count
            or any(present(observer.doc, root, tag) for root, tag in sent)
        )
    )
    relayed = [(root, tag) for root, tag in sent if present(observer.doc, root, tag)]
    assert relayed == [], f"a {role.value}'s refused change reached another peer"
    assert refused(server, role) == refused_before + count
    marker = f"marker-{sent[0][1]}"
    set_meta(marker_author.doc, marker)
    await eventually(lambda: present(observer.doc, schema.META, marker))
    await eventually(lambda: present(sender.doc, schema.META, marker))
    relayed = [(root, tag) for root, tag in sent if present(observer.doc, root, tag)]
    assert relayed == [], f"a {role.value}'s refused change reached another peer"
    assert len(sender.denials) == 1, sender.denials
    assert "permission denied" in sender.denials[0]


# -- the matrix -----------------------------------------------------------------------


@dataclass
class Cell:
    relayed: bool  # every one of the REPEATS changes reached the observer
    refused: float  # the counter's increase
    denials: int  # permission-denied messages the sender got


async def change_root(
    server: ServerProcess,
    role: Role,
    root: str,
    tags: list[str],
    actor: YClient,
    observer: YClient,
    owner: YClient,
) -> Cell:
    """``actor`` changes ``root`` once per tag; what became of those changes?"""
    before = refused(server, role)
    for tag in tags:
        CHANGES[root](actor.doc, tag)  # one transaction, so one update, each

    def relayed() -> list[str]:
        return [t for t in tags if present(observer.doc, root, t)]

    def undone() -> bool:
        return root in UNDONE[role] and not any(present(actor.doc, root, t) for t in tags)

    await eventually(
        lambda: refused(server, role) >= before + REPEATS or relayed() == tags or undone()
    )
    marker = f"marker-{role.value}-{root}"
    set_meta(owner.doc, marker)  # a later allowed change, seen after any relay
    await eventually(lambda: present(observer.doc, schema.META, marker))
    await eventually(lambda: present(actor.doc, schema.META, marker))
    seen = relayed()
    assert seen in ([], tags), f"only some of {tags} were relayed: {seen}"
    return Cell(
        relayed=seen == tags,
        refused=refused(server, role) - before,
        denials=len(actor.denials),
    )


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
async def test_role_matrix(server_factory: Callable[..., ServerProcess], role: Role) -> None:
    server = server_factory(**ENV)
    room, owner_token = await create_room(server, "pair")
    credential = owner_token if role is Role.OWNER else sign(room, role, name=role.value)
    observer = await join(server, room, sign(room, Role.EDITOR, name="editor", sub="observer"))
    owner = await join(server, room, owner_token)

    tags = {root: [f"{role.value}-{root}-{i}" for i in range(REPEATS)] for root in schema.ROOTS}
    cells: dict[str, Cell] = {}
    for root in schema.ROOTS:
        # A fresh connection per root: a client whose change was dropped holds a clock
        # the room lacks, so every later update of that client would be pending.
        actor = await join(server, room, credential)
        cells[root] = await change_root(server, role, root, tags[root], actor, observer, owner)
        await actor.close()

    expected = {
        root: Cell(relayed=True, refused=0, denials=0)
        if root in ALLOWED[role]
        else Cell(relayed=False, refused=0, denials=0)
        if root in UNDONE[role]
        else Cell(relayed=False, refused=REPEATS, denials=1)
        for root in schema.ROOTS
    }
    assert cells == expected
    refusals = len(schema.ROOTS) - len(ALLOWED[role]) - len(UNDONE[role])
    assert server.metric(REFUSED) == REPEATS * refusals

    def holdings(client: YClient) -> dict[str, bool]:
        return {root: all(present(client.doc, root, t) for t in tags[root]) for root in tags}

    def held_tags(client: YClient) -> list[str]:
        return [t for root in tags for t in tags[root] if present(client.doc, root, t)]

    wanted = {root: root in ALLOWED[role] for root in schema.ROOTS}
    fresh = await join(server, room, sign(room, Role.EDITOR, name="editor"))
    assert holdings(fresh) == wanted
    assert sorted(held_tags(fresh)) == sorted(t for root in ALLOWED[role] for t in tags[root]), (
        "a refused change was applied to the room's document"
    )
    for client in (fresh, observer, owner):
        await client.close()

    server.stop()
    restarted = server_factory(data_dir=server.data_dir, **ENV)
    reloaded = await join(restarted, room, sign(room, Role.EDITOR, name="editor"))
    assert holdings(reloaded) == wanted
    assert sorted(held_tags(reloaded)) == sorted(t for root in ALLOWED[role] for t in tags[root]), (
        "a refused change was stored"
    )
    await reloaded.close()


async def test_a_reviewer_update_touching_chat_and_code_is_dropped_whole(
    shared: ServerProcess,
) -> None:
    room, owner_token = await create_room(shared, "review")
    observer = await join(shared, room, sign(room, Role.EDITOR, name="editor"))
    owner = await join(shared, room, owner_token)
    reviewer = await join(shared, room, sign(room, Role.REVIEWER, name="reviewer"))
    before = refused(shared, Role.REVIEWER)
    with reviewer.doc.transaction():  # one update touching both roots
        append_chat(reviewer.doc, "mixed-chat")
        append_code(reviewer.doc, "mixed-code")
    sent = [(schema.CHAT, "mixed-chat"), (schema.CODE, "mixed-code")]
    await assert_dropped(shared, Role.REVIEWER, before, 1, reviewer, observer, owner, sent)
    fresh = await join(shared, room, sign(room, Role.EDITOR, name="editor"))
    assert not present(fresh.doc, schema.CHAT, "mixed-chat")
    assert not present(fresh.doc, schema.CODE, "mixed-code")
    for client in (fresh, reviewer, owner, observer):
        await client.close()


async def test_every_role_has_awareness_in_a_pair_room(shared: ServerProcess) -> None:
    room, owner_token = await create_room(shared, "pair")
    clients: dict[Role, YClient] = {}
    for role in Role:
        credential = owner_token if role is Role.OWNER else sign(room, role, name=role.value)
        clients[role] = await join(shared, room, credential)
        await clients[role].set_awareness({"user": {"name": role.value}})
    for role, client in clients.items():
        others = {
            other.doc.client_id: {"user": {"name": other_role.value}}
            for other_role, other in clients.items()
            if other_role is not role
        }
        await eventually(lambda client=client, others=others: client.awareness == others)
    # Explicitly: the owner sees the viewer's state.
    viewer_id = clients[Role.VIEWER].doc.client_id
    assert clients[Role.OWNER].awareness[viewer_id] == {"user": {"name": "viewer"}}
    await clients[Role.VIEWER].close()
    await eventually(lambda: viewer_id not in clients[Role.OWNER].awareness)
    for role in (Role.OWNER, Role.EDITOR, Role.REVIEWER):
        await clients[role].close()


async def test_a_timed_promotion_of_a_connected_viewer(shared: ServerProcess) -> None:
    room, owner_token = await create_room(shared, "broadcast")
    owner = await join(shared, room, owner_token)
    observer = await join(shared, room, sign(room, Role.EDITOR, name="editor", sub="helper"))
    viewer = await join(shared, room, sign(room, Role.VIEWER, name="viewer", sub="student-1"))
    auth = {"Authorization": f"Bearer {owner_token}"}
    async with httpx.AsyncClient(base_url=shared.http_url, headers=auth, timeout=10) as http:

        async def conns(role: Role) -> list[str]:
            details = await http.get(f"/api/rooms/{room}")
            assert details.status_code == 200, details.text
            return [p["conn"] for p in details.json()["peers"][role.value]]

        [conn] = await conns(Role.VIEWER)
        changed = await http.put(
            f"/api/rooms/{room}/peers/{conn}/role", json={"role": "editor", "ttl": 2}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["changed"] == 1 and changed.json()["expires_at"] is not None

        await eventually(lambda: len(viewer.role_notices) >= 1)
        assert viewer.role_notices[0]["role"] == "editor"
        assert viewer.role_notices[0]["expires"] is not None
        assert conn in await conns(Role.EDITOR) and await conns(Role.VIEWER) == []

        # Same connection, no reconnect: the next edit is applied and relayed.
        append_code(viewer.doc, "while-promoted")
        await eventually(lambda: present(observer.doc, schema.CODE, "while-promoted"))
        assert viewer.denials == []

        # The grant runs out: a notice with the token's role, and writes are dropped again.
        await eventually(lambda: len(viewer.role_notices) >= 2, timeout=10)
        assert viewer.role_notices[1] == {"role": "viewer", "expires": None}
        assert await conns(Role.VIEWER) == [conn] and conn not in await conns(Role.EDITOR)

    before = refused(shared, Role.VIEWER)
    append_code(viewer.doc, "after-revert")
    sent = [(schema.CODE, "after-revert")]
    await assert_dropped(shared, Role.VIEWER, before, 1, viewer, observer, owner, sent)
    fresh = await join(shared, room, owner_token)
    assert present(fresh.doc, schema.CODE, "while-promoted")
    assert not present(fresh.doc, schema.CODE, "after-revert")
    for client in (fresh, viewer, observer, owner):
        await client.close()


async def test_edits_refused_before_a_promotion_arrive_after_it(shared: ServerProcess) -> None:
    """A viewer's refused edit stays in its document, and its later updates depend on
    it. On promotion the server asks for the peer's state (Step1), so the refused edit
    arrives, now allowed, and the room holds nothing pending: everyone converges."""
    room, owner_token = await create_room(shared, "broadcast")
    owner = await join(shared, room, owner_token)
    viewer = await join(shared, room, sign(room, Role.VIEWER, name="viewer", sub="student-2"))
    append_code(viewer.doc, "before-promotion")
    await eventually(lambda: len(viewer.denials) == 1)
    auth = {"Authorization": f"Bearer {owner_token}"}
    async with httpx.AsyncClient(base_url=shared.http_url, headers=auth, timeout=10) as http:
        changed = await http.put(f"/api/rooms/{room}/peers/student-2/role", json={"role": "editor"})
        assert changed.status_code == 200, changed.text
    await eventually(lambda: len(viewer.role_notices) == 1)
    append_code(viewer.doc, "after-promotion")
    await eventually(lambda: str(schema.code(owner.doc)) == str(schema.code(viewer.doc)))
    assert present(owner.doc, schema.CODE, "before-promotion")
    assert present(owner.doc, schema.CODE, "after-promotion")
    await owner.close()
    await viewer.close()
