"""Review rooms end to end with the stock yjs ``WebsocketProvider`` (Node): a reviewer
anchors comments to code containing non-ASCII text, the owner edits around and inside
the range, and every client (including one joining after a restart) resolves the
anchors to the same code.

Anchors are Yjs relative positions made and resolved in JavaScript
(``tests/js/yjs_client.mjs``); the server only stores them. pycrdt's ``StickyIndex``
is wrong for non-ASCII text (docs: research/pycrdt.md §1.4), so nothing here resolves
them in Python.

Needs Node on PATH and ``npm ci --prefix tests/js``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from crdt.offsets import codepoint_to_utf8, codepoint_to_utf16, utf16_len
from tests.serverproc import ServerProcess
from tests.test_interop_yjs import JS_DIR, TIMEOUT, NodeClient
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

LINE = '    return "héllo 😀"'
HEAD = "def greet(name: str) -> str:\n    # grüße 🎉\n"
CODE = HEAD + LINE + "\nprint(greet('ü'))\n"
ABOVE = "# ünïcode header 🚀\nimport os  # ß\n"  # inserted above the range, later deleted
INSIDE = " wörld 🌍"  # inserted inside the range, right after "héllo"
STRING = '"héllo 😀"'  # the second comment's range: inside the line, quotes included


@contextlib.asynccontextmanager
async def node_client(server: ServerProcess, room: str, token: str) -> AsyncIterator[NodeClient]:
    """``node yjs_client.mjs`` joined to ``room`` with ``token``; killed on exit."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node 20 to run the yjs review tests")
    if not (JS_DIR / "node_modules").is_dir():
        pytest.fail("tests/js/node_modules is missing: run `npm ci --prefix tests/js`")
    proc = await asyncio.create_subprocess_exec(
        node, str(JS_DIR / "yjs_client.mjs"), server.ws_base, room, token,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    client = None
    try:
        client = NodeClient(proc)
        yield client
    finally:
        if client is not None:
            await client.kill()
        elif proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), TIMEOUT)


async def create_review_room(server: ServerProcess) -> tuple[str, str, str]:
    """``POST /api/rooms`` for a review room: (room, owner token, reviewer token)."""
    async with httpx.AsyncClient(base_url=server.http_url, timeout=TIMEOUT) as http:
        response = await http.post(
            "/api/rooms", json={"mode": "review", "language": "python", "title": "t"}
        )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body["links"]) == {"owner", "reviewer"}, body

    def token_of(link: str) -> str:
        return parse_qs(urlsplit(link).query)["token"][0]

    assert token_of(body["links"]["owner"]) == body["owner_token"]
    return body["room"], body["owner_token"], token_of(body["links"]["reviewer"])


async def peers_by_role(server: ServerProcess, room: str, token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=TIMEOUT) as http:
        response = await http.get(
            f"/api/rooms/{room}", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200, response.text
    peers: dict[str, Any] = response.json()["peers"]
    return peers


def comments_cover(
    code: str, covered: dict[str, str], **fields: Any
) -> Callable[[dict[str, Any]], bool]:
    """A node state predicate: the code is ``code`` and every comment ``id`` resolves to
    the range ``covered[id]``, which must be where the text says it is (so a range of
    the right text at the wrong place does not pass); ``fields`` must match too."""

    def check(state: dict[str, Any]) -> bool:
        if state["text"] != code:
            return False
        for cid, piece in covered.items():
            comment = state["comments"].get(cid)
            if comment is None or comment["covered"] != piece:
                return False
            start = codepoint_to_utf16(code, code.index(piece))
            if (comment["from"], comment["to"]) != (start, start + utf16_len(piece)):
                return False
            if any(comment.get(k) != v for k, v in fields.get(cid, {}).items()):
                return False
        return True

    return check


async def both_see(
    clients: list[NodeClient], code: str, covered: dict[str, str], **fields: Any
) -> list[dict[str, Any]]:
    """Wait until every client has ``code`` and resolves each comment to its piece."""
    check = comments_cover(code, covered, **fields)
    states = [await client.wait_state(check) for client in clients]
    first = states[0]["comments"]
    for state in states[1:]:
        assert state["comments"] == first, (state["comments"], first)
    return states


async def test_reviewer_comment_anchors_follow_the_owners_edits(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory()
    room, owner_token, reviewer_token = await create_review_room(server)

    async with (
        node_client(server, room, owner_token) as owner,
        node_client(server, room, reviewer_token) as reviewer,
    ):
        await owner.wait_synced()
        await reviewer.wait_synced()
        peers = await peers_by_role(server, room, owner_token)
        assert (len(peers["owner"]), len(peers["reviewer"])) == (1, 1), peers

        code = CODE
        await owner.insert(code, index=0)
        await reviewer.wait_state(lambda s: s["text"] == code)

        # The reviewer anchors two comments: the whole line (JSON anchors) and the
        # string literal inside it (encoded-bytes anchors).
        await reviewer.send(op="comment", id="line", covering=LINE, text="why é? 🤔")
        await reviewer.send(
            op="comment", id="string", covering=STRING, text="constant?", encoding="bytes"
        )
        covered = {"line": LINE, "string": STRING}
        states = await both_see(
            [reviewer, owner],
            code,
            covered,
            line={"author": "reviewer", "text": "why é? 🤔", "resolved": False, "replies": []},
            string={"encoding": "bytes", "text": "constant?", "resolved": False},
        )
        assert states[0]["comments"]["line"]["encoding"] == "json"

        # 1. The owner inserts lines above the range: the anchors move with the code.
        await owner.insert(ABOVE, index=0)
        code = ABOVE + code
        await both_see([owner, reviewer], code, covered)

        # 2. The owner inserts inside the range: both ranges grow by the inserted text.
        await owner.insert(INSIDE, after='"héllo')
        code = code.replace('"héllo', '"héllo' + INSIDE, 1)
        covered = {
            "line": LINE.replace("héllo", "héllo" + INSIDE),
            "string": STRING.replace("héllo", "héllo" + INSIDE),
        }
        await both_see([owner, reviewer], code, covered)

        # 3. The owner deletes lines above the range (its own inserted lines and the
        # first line of the original code): the ranges still cover the same code.
        deleted = ABOVE + HEAD.splitlines(keepends=True)[0]
        assert code.startswith(deleted)
        await owner.send(op="delete", index=0, length=utf16_len(deleted))
        code = code[len(deleted) :]
        await both_see([owner, reviewer], code, covered)

        # A reply and a resolve from the reviewer reach the owner.
        await reviewer.send(op="reply", id="line", text="ok, ñ fixed 👍")
        await reviewer.send(op="resolve", id="line")
        # Stamped by the server with the reviewer's verified identity (rooms/authorship.py).
        sub = jwt.decode(reviewer_token, options={"verify_signature": False})["sub"]
        reply = {
            "author": "reviewer", "author_id": sub, "author_role": "reviewer",
            "text": "ok, ñ fixed 👍",
        }  # fmt: skip
        await both_see(
            [owner, reviewer],
            code,
            covered,
            line={"resolved": True, "replies": [reply]},
            string={"resolved": False, "replies": []},
        )
        before_restart = (await owner.state())["comments"]
        for client in (owner, reviewer):
            assert not client.server_closes and not client.errors, client.diagnostics()

    # Restart the server on the same data dir: a client joining later resolves the
    # anchors to the same code.
    server.stop()
    server = server_factory(data_dir=server.data_dir)
    async with node_client(server, room, reviewer_token) as newcomer:
        await newcomer.wait_synced()
        state = await newcomer.wait_state(comments_cover(code, covered))
        assert state["comments"] == before_restart
        assert not newcomer.server_closes and not newcomer.errors, newcomer.diagnostics()


async def test_reviewer_code_edit_is_dropped(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory()
    room, owner_token, reviewer_token = await create_review_room(server)
    async with (
        node_client(server, room, owner_token) as owner,
        node_client(server, room, reviewer_token) as reviewer,
    ):
        await owner.wait_synced()
        await reviewer.wait_synced()
        code = CODE
        await owner.insert(code, index=0)
        await reviewer.wait_state(lambda s: s["text"] == code)
        # A reviewer may comment: that reaches the owner.
        await reviewer.send(op="comment", id="line", covering=LINE, text="why é? 🤔")
        await owner.wait_state(comments_cover(code, {"line": LINE}))

        # The reviewer edits the code (its own copy changes: the client does not know).
        refused_before = server.metric("codementor_writes_refused_total")
        await reviewer.insert("EVIL ", after="return ")
        await reviewer.wait_state(lambda s: "EVIL" in s["text"])

        # Wait for whichever comes first: the server's permission-denied answer to the
        # reviewer, or the edit showing up at the owner.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            owner_text = (await owner.state())["text"]
            denied = any("Permission denied" in line for line in reviewer.stderr)
            if denied or "EVIL" in owner_text or loop.time() > deadline:
                break
            await asyncio.sleep(0.02)
        assert "EVIL" not in owner_text, (
            "the server relayed the reviewer's edit of `code` to the owner: "
            f"{owner_text!r}; writes refused: "
            f"{server.metric('codementor_writes_refused_total') - refused_before}"
        )
        assert denied, f"no permission-denied answer to the reviewer: {reviewer.diagnostics()}"
        assert server.metric("codementor_writes_refused_total") == refused_before + 1

        # The server's copy lacks the edit (a fresh owner-token client gets the old code),
        # and that client's own edit, relayed after anything the server could have
        # relayed from the reviewer, reaches the owner, who never saw the edit.
        async with YClient(server.ws_url(room, f"token={owner_token}")) as late:
            await late.wait_synced()
            assert str(late.text) == code
            late.text.insert(codepoint_to_utf8(code, len(code)), "# sentinel\n")
        code += "# sentinel\n"
        state = await owner.wait_state(comments_cover(code, {"line": LINE}))
        assert "EVIL" not in state["text"]
        assert not owner.server_closes and not owner.errors, owner.diagnostics()
