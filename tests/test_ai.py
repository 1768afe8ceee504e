"""The AI pair-programmer end to end: a real server (subprocess) whose real ``anthropic``
SDK talks to the Messages API double (``tests/anthropic_double.py``) over HTTP; peers
watch the answer through real websockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pycrdt import Map

from ai_assist.anchors import rebase
from crdt import schema
from tests.anthropic_double import AnthropicDouble, Reply
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

AI = "CodeMentor AI"


class Server:
    def __init__(self, proc: ServerProcess) -> None:
        self.proc = proc
        self.url = proc.http_url

    def room(self, mode: str = "pair", code: str = "") -> str:
        r = httpx.post(self.url + "/api/rooms", json={"mode": mode, "language": "python"})
        assert r.status_code == 201, r.text
        name: str = r.json()["room"]
        return name

    def suggest(self, url: str, action: str, token: str) -> httpx.Response:
        return _suggest(url, action, token)

    def ask(
        self, room: str, prompt: str, role: str = "owner", name: str = "Ada", **extra: Any
    ) -> httpx.Response:
        return httpx.post(
            f"{self.url}/api/rooms/{room}/ai",
            json={"prompt": prompt, **extra},
            headers={"authorization": f"Bearer {sign(room, role, name=name)}"},
            timeout=10,
        )


def _suggest(url: str, action: str, token: str) -> httpx.Response:
    return httpx.post(
        url, json={"action": action}, headers={"authorization": f"Bearer {token}"}, timeout=10
    )


@pytest.fixture
def start(
    server_factory: Callable[..., ServerProcess], double: AnthropicDouble
) -> Callable[..., Server]:
    def run(**env: str) -> Server:
        settings = {
            "CODEMENTOR_SECRET": SECRET,
            "CODEMENTOR_API_RATE_PER_MINUTE": "100000",
            "ANTHROPIC_API_KEY": "test-key",
            "CODEMENTOR_AI_BASE_URL": double.url,
            "CODEMENTOR_AI_MAX_RETRIES": "0",
            **env,
        }
        return Server(server_factory(**settings))

    return run


@asynccontextmanager
async def peer(
    server: Server, room: str, role: str = "owner", name: str = "Ada"
) -> AsyncIterator[YClient]:
    client = YClient(server.proc.ws_url(room))
    await client.connect(f"token={sign(room, role, name=name)}")
    await client.wait_synced()
    try:
        yield client
    finally:
        await client.close()


def ai_entries(client: YClient) -> list[Map[Any]]:
    chat = schema.chat(client.doc)
    return [m for m in chat if isinstance(m, Map) and m.get("author") == AI]


def last_ai_text(client: YClient) -> str:
    entries = [m for m in ai_entries(client) if m.get("kind") != "suggestion"]
    return str(entries[-1].get("text")) if entries else ""


async def finished(client: YClient, timeout: float = 15.0) -> str:
    def done() -> bool:
        entries = [m for m in ai_entries(client) if m.get("kind") != "suggestion"]
        return bool(entries) and entries[-1].get("pending") is not True

    await eventually(done, timeout)
    return last_ai_text(client)


async def set_code(server: Server, room: str, client: YClient, code: str) -> None:
    """Type ``code`` and wait until the server's copy has it (the AI reads that copy)."""
    with client.doc.transaction():
        client.text.insert(0, code)
    expected = str(client.text)

    def server_has_it() -> bool:
        r = httpx.get(
            f"{server.url}/api/rooms/{room}/snapshot",
            headers={"authorization": f"Bearer {sign(room, 'owner')}"},
            timeout=5,
        )
        return r.status_code == 200 and r.text == expected

    await eventually(server_has_it)


async def test_streamed_text_reaches_two_peers_incrementally(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start()
    room = server.room()
    steps: list[tuple[Any, ...]] = []
    for word in ("The ", "bug ", "is ", "on ", "line ", "two."):
        steps += [("text", word), ("sleep", 0.15)]
    double.script(Reply(steps, cache_write=30))
    async with peer(server, room, name="Ada") as ada, peer(server, room, "editor", "Bob") as bob:
        await set_code(server, room, ada, "def f():\n    return 1\n")
        seen: dict[str, list[str]] = {"ada": [], "bob": []}

        async def watch() -> None:
            while True:
                for who, client in (("ada", ada), ("bob", bob)):
                    text = last_ai_text(client)
                    if text and (not seen[who] or seen[who][-1] != text):
                        seen[who].append(text)
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        r = server.ask(room, "what is wrong?", selection={"anchor": 9, "head": 21})
        assert r.status_code == 202, r.text
        assert await finished(ada) == "The bug is on line two."
        await eventually(lambda: last_ai_text(bob) == "The bug is on line two.")
        watcher.cancel()
        for who in ("ada", "bob"):
            assert len(seen[who]) >= 4, seen[who]  # grew delta by delta
            assert all(b.startswith(a) for a, b in zip(seen[who], seen[who][1:], strict=False))
        # the AI is present with its own client id, like a person
        names = [s.get("user", {}).get("name") for s in bob.awareness.values()]
        assert AI in names
    request = double.requests[-1]
    assert request["headers"]["authorization"] == "Bearer test-key"
    body = request["body"]
    assert body["stream"] is True and body["model"] == "claude-sonnet-4-6"
    document, volatile = body["messages"][0]["content"]
    assert document["cache_control"] == {"type": "ephemeral"}
    assert "2|     return 1" in document["text"]
    assert "selection" in volatile["text"] and "what is wrong?" in volatile["text"]
    assert {t["name"] for t in body["tools"]} == {"replace_range", "insert_text", "create_file"}


@pytest.mark.parametrize("typed", ["# note\n", "# 😀 é\n"], ids=["ascii", "non-ascii"])
async def test_tool_edit_lands_right_while_a_human_types_above(
    start: Callable[..., Server], double: AnthropicDouble, typed: str
) -> None:
    server = start()
    room = server.room()
    double.script(
        Reply(
            [
                ("text", "Fixing it."),
                ("sleep", 1.0),
                (
                    "tool",
                    "replace_range",
                    {"start_line": 2, "end_line": 2, "new_text": "    return 2\n"},
                ),
            ]
        )  # fmt: skip
    )
    async with peer(server, room) as ada:
        with ada.doc.transaction():
            schema.meta(ada.doc)["ai_edits"] = True
        await set_code(server, room, ada, "def f():\n    return 1\nprint(f())\n")
        assert server.ask(room, "return 2 please").status_code == 202
        await eventually(lambda: last_ai_text(ada).startswith("Fixing"))
        with ada.doc.transaction():
            ada.text.insert(0, typed)  # while the AI is still answering
        await finished(ada)
        await eventually(lambda: "return 2" in str(ada.text))
        assert str(ada.text) == typed + "def f():\n    return 2\nprint(f())\n"
        assert "(edited lines 2-2 of main.py)" in last_ai_text(ada)


async def test_review_mode_yields_a_suggestion_not_an_edit(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start()
    room = server.room("review")
    tool = ("tool", "insert_text", {"line": 1, "text": "import os\n"})
    double.script(Reply([("text", "Add an import."), tool]), Reply([tool]))
    async with peer(server, room) as ada:
        await set_code(server, room, ada, "x = 1\n")
        assert server.ask(room, "imports?", role="reviewer").status_code == 202
        await eventually(lambda: any(m.get("kind") == "suggestion" for m in ai_entries(ada)))
        await eventually(lambda: ai_entries(ada)[-1].get("pending") is False)
        assert str(ada.text) == "x = 1\n"  # nothing applied
        # One entry: the answer is the suggestion card (no second entry, no note).
        [entry] = ai_entries(ada)
        assert entry.get("kind") == "suggestion" and entry.get("text") == "Add an import."
        assert entry.get("status") == "open" and entry.get("new_text") == "import os\n"
        url = f"{server.url}/api/rooms/{room}/ai/suggestions/{entry.get('id')}"
        refused = server.suggest(url, "apply", sign(room, "reviewer"))
        assert refused.status_code == 403
        applied = server.suggest(url, "apply", sign(room, "owner"))
        assert applied.status_code == 200, applied.text
        await eventually(lambda: str(ada.text) == "import os\nx = 1\n")
        again = server.suggest(url, "dismiss", sign(room, "owner"))
        assert again.status_code == 409
        # a second suggestion, dismissed
        assert server.ask(room, "again", role="owner").status_code == 202
        await eventually(lambda: sum(m.get("kind") == "suggestion" for m in ai_entries(ada)) == 2)
        second = [m for m in ai_entries(ada) if m.get("kind") == "suggestion"][-1]
        url = f"{server.url}/api/rooms/{room}/ai/suggestions/{second.get('id')}"
        dismissed = server.suggest(url, "dismiss", sign(room, "reviewer"))
        assert dismissed.status_code == 200
        await eventually(lambda: second.get("status") == "dismissed")
        assert str(ada.text) == "import os\nx = 1\n"
    # an editor may not ask in a review room; a viewer never
    assert server.ask(room, "hi", role="editor").status_code == 403
    assert server.ask(room, "hi", role="viewer").status_code == 403


async def test_errors_and_timeouts_end_with_a_chat_message_and_free_the_room(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start(CODEMENTOR_AI_TIMEOUT_SECONDS="1.5", CODEMENTOR_AI_MAX_RETRIES="1",
                   CODEMENTOR_AI_BREAKER_FAILURES="10")  # fmt: skip
    room = server.room()
    async with peer(server, room) as ada:
        # error event mid-stream
        double.script(Reply([("text", "Let me "), ("error", "overloaded_error")]))
        assert server.ask(room, "q1").status_code == 202
        text = await finished(ada)
        assert text.startswith("Let me ") and "unavailable" in text
        # 429 with retry-after, then success: the SDK retries
        double.script(Reply(status=429, retry_after="0"), Reply([("text", "after 429")]))
        assert server.ask(room, "q2").status_code == 202
        await eventually(lambda: last_ai_text(ada) == "after 429", 15)
        # 529 twice: retries exhausted
        double.script(Reply(status=529), Reply(status=529))
        assert server.ask(room, "q3").status_code == 202
        await eventually(lambda: "unavailable" in last_ai_text(ada) and len(ai_entries(ada)) == 3)
        # a hang: the request timeout answers
        double.script(Reply([("text", "slow"), ("sleep", 5)]))
        assert server.ask(room, "q4").status_code == 202
        await eventually(lambda: "timed out" in last_ai_text(ada), 15)
        # the room is free again
        double.script(Reply([("text", "fine now")]))
        assert server.ask(room, "q5").status_code == 202
        await eventually(lambda: last_ai_text(ada) == "fine now", 15)


async def test_breaker_budget_and_queue(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start(CODEMENTOR_AI_ROOM_TOKENS_PER_HOUR="100", CODEMENTOR_AI_QUEUE="1")
    room = server.room()
    async with peer(server, room) as ada:
        double.script(Reply([("text", "one"), ("sleep", 1.0)], input_tokens=80, output_tokens=30))
        assert server.ask(room, "q1").status_code == 202
        assert server.ask(room, "q2").status_code == 202  # queued
        busy = server.ask(room, "q3")
        assert busy.status_code == 429
        await eventually(
            lambda: any("still working" in str(m.get("text")) for m in ai_entries(ada))
        )
        await eventually(lambda: "budget" in last_ai_text(ada), 15)  # q2: 110 tokens used
        calls = len(double.requests)
        assert server.ask(room, "q4").status_code == 202
        await eventually(lambda: sum("budget" in str(m.get("text")) for m in ai_entries(ada)) == 2)
        assert len(double.requests) == calls  # no call made over budget
    other = server.room()  # another room has its own budget
    double.script(Reply([("text", "hello other")]))
    async with peer(server, other) as bob:
        assert server.ask(other, "hi").status_code == 202
        await eventually(lambda: last_ai_text(bob) == "hello other")


async def answered(server: Server, room: str, client: YClient, question: str) -> str:
    """Ask in ``room`` and wait for the AI's next entry there to be final."""
    before = len(ai_entries(client))

    def done() -> bool:
        entries = ai_entries(client)
        return len(entries) > before and entries[-1].get("pending") is not True

    assert server.ask(room, question).status_code == 202
    await eventually(done, 15)
    return str(ai_entries(client)[-1].get("text"))


async def test_after_the_cool_down_one_probe_decides(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    """Half-open: one question probes Claude; while it is out, other rooms are told
    the AI is unavailable; its failure opens the breaker again at once (closed, it takes
    two failures), its success closes it."""
    cooldown = 2.0
    server = start(CODEMENTOR_AI_BREAKER_FAILURES="2",
                   CODEMENTOR_AI_BREAKER_COOLDOWN_SECONDS=str(cooldown))  # fmt: skip
    room, other = server.room(), server.room()
    unavailable = "AI is unavailable right now."
    async with peer(server, room) as ada, peer(server, other, name="Bob") as bob:
        double.script(Reply(status=529), Reply(status=529))
        assert await answered(server, room, ada, "q1") == unavailable
        assert await answered(server, room, ada, "q2") == unavailable
        calls = len(double.requests)
        assert await answered(server, room, ada, "q3") == unavailable  # open
        assert len(double.requests) == calls
        # The probe fails: open again after one failure.
        await asyncio.sleep(cooldown + 0.1)
        double.script(Reply(status=529))
        assert await answered(server, room, ada, "q4") == unavailable
        assert len(double.requests) == calls + 1
        assert await answered(server, room, ada, "q5") == unavailable
        assert len(double.requests) == calls + 1
        # The next probe succeeds; while it is out, nobody else gets through.
        await asyncio.sleep(cooldown + 0.1)
        double.script(Reply([("text", "probing "), ("sleep", 1.5), ("text", "done")]))
        assert server.ask(room, "q6").status_code == 202
        await eventually(lambda: last_ai_text(ada).startswith("probing"))
        assert await answered(server, other, bob, "q7") == unavailable
        assert len(double.requests) == calls + 2
        assert await finished(ada) == "probing done"
        # Closed: questions go through again.
        double.script(Reply([("text", "hello Bob")]))
        assert await answered(server, other, bob, "q8") == "hello Bob"
        assert len(double.requests) == calls + 3


async def test_chat_mention_asks_the_ai(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start()
    room = server.room()
    double.script(Reply([("text", "Hi Ada!")]))
    async with peer(server, room, name="Ada") as ada:
        with ada.doc.transaction():
            schema.chat(ada.doc).append(
                Map({"id": "m1", "author": "Ada", "text": "@ai hello?", "ts": 1.0})
            )
        await eventually(lambda: last_ai_text(ada) == "Hi Ada!")
        assert "hello?" in double.requests[-1]["body"]["messages"][0]["content"][1]["text"]


async def test_the_askers_questions_go_when_the_asker_leaves(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start(CODEMENTOR_AI_QUEUE="2")
    room = server.room()
    slow = Reply([("text", "Thinking "), ("sleep", 1.0), ("text", "more."), ("sleep", 3.0),
                  ("text", " never shown")])  # fmt: skip
    double.script(slow, Reply([("text", "for Bob")]))

    def owners_connected() -> int:
        r = httpx.get(
            f"{server.url}/api/rooms/{room}",
            headers={"authorization": f"Bearer {sign(room, 'owner')}"},
            timeout=5,
        )
        return len(r.json()["peers"]["owner"])

    async with peer(server, room, "editor", "Bob") as bob:
        async with peer(server, room, name="Ada") as ada:
            async with peer(server, room, name="Ada"):  # Ada's second tab
                assert server.ask(room, "q1", name="Ada").status_code == 202
                assert server.ask(room, "q2", name="Ada").status_code == 202  # queued
                assert server.ask(room, "q3", "editor", name="Bob").status_code == 202
                await eventually(lambda: last_ai_text(ada).startswith("Thinking"))
            # One of Ada's two connections left (the server has seen it): the answer
            # goes on.
            await eventually(lambda: owners_connected() == 1)
            await eventually(lambda: last_ai_text(bob) == "Thinking more.")
        # Ada's last connection left: her answer stops, her queued question goes,
        # Bob's question is answered next.
        await eventually(lambda: last_ai_text(bob) == "for Bob")
        answered = [str(m.get("text")) for m in ai_entries(bob)]
        assert answered == ["Thinking more.\n\n(stopped: Ada left the room)", "for Bob"]
        prompts = [r["body"]["messages"][0]["content"][1]["text"] for r in double.requests]
        assert [p.rsplit("asks: ", 1)[1] for p in prompts] == ["q1", "q3"]
        # A question asked from outside the room (no connection) is not tied to presence.
        double.script(Reply([("text", "to nobody "), ("sleep", 0.5), ("text", "done")]))
        assert server.ask(room, "q4", name="Cy").status_code == 202
        await eventually(lambda: last_ai_text(bob) == "to nobody done")


def test_without_a_key_the_ai_is_off(server_factory: Callable[..., ServerProcess]) -> None:
    server = Server(server_factory(CODEMENTOR_SECRET=SECRET, ANTHROPIC_API_KEY=""))
    assert httpx.get(server.url + "/api/config").json()["ai"] is False
    room = server.room()
    r = server.ask(room, "hello")
    assert r.status_code == 503 and "ANTHROPIC_API_KEY" in r.json()["error"]


def test_rebase_moves_positions_with_the_text() -> None:
    assert rebase("abc\ndef\n", "# 😀\nabc\ndef\n", 4) == 8
    assert rebase("abc", "abXc", 2) == 3
    assert rebase("abc", "abXc", 2, before=True) == 2
    assert rebase("abc\n", "abc\nmore", 4) == 8
