"""The AI in a workspace of several files: a real server (subprocess) whose real
``anthropic`` SDK talks to the Messages API double; peers edit through real websockets.

It is shown the file list and the files that fit its budget (the current file first,
then the files referred to, then the rest by size; the others listed as not shown), its
tools take a ``path`` (edit a file, create a file, a bad path refused with its rule),
suggestions name their file and apply to it, and undo works in that file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map, Text

from ai_assist.edits import ToolRefused, check_new_file
from ai_assist.settings import WorkspaceLimits
from ai_assist.workspace_view import choose
from crdt import schema
from tests.anthropic_double import AnthropicDouble, Reply
from tests.support import eventually, sign
from tests.test_ai import Server, ai_entries, finished, peer, set_code
from tests.test_ai import start as start  # noqa: F401 - the fixture
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

MAIN = "import helpers\nprint(helpers.double(2))\n"
B = "def f():\n    return 1\n"
HELPERS = "def double(x):\n    return 2 * x\n"


async def workspace(server: Server, room: str, client: YClient, files: dict[str, str]) -> None:
    await set_code(server, room, client, MAIN)
    with client.doc.transaction():
        for path, text in files.items():
            schema.files(client.doc)[path] = Text(text)
    # A fresh client syncing from the server sees every file: the server has them.
    async with peer(server, room, "viewer", "Probe") as probe:
        await eventually(
            lambda: all(str(schema.files(probe.doc).get(p)) == t for p, t in files.items()),
            15,
        )


def file_of(client: YClient, path: str) -> str:
    text = schema.file_text(client.doc, path)
    return "" if text is None else str(text)


def allow_edits(client: YClient) -> None:
    with client.doc.transaction():
        schema.meta(client.doc)["ai_edits"] = True


def undo(server: Server, room: str, entry_id: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/rooms/{room}/ai/changes/{entry_id}/undo",
        headers={"authorization": f"Bearer {sign(room, 'owner')}"},
        timeout=10,
    )


def prompt_of(double: AnthropicDouble) -> tuple[str, str, str]:
    body = double.requests[-1]["body"]
    document, volatile = body["messages"][0]["content"]
    return str(body["system"]), str(document["text"]), str(volatile["text"])


async def test_prompt_lists_every_file_current_first_and_marks_over_budget_not_shown(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start()
    room = server.room()
    big = "x = 1\n" * 20_000  # 120,000 characters: over the 100,000 budget
    double.script(Reply([("text", "See `b.py`.")]), Reply([("text", "ok")]))
    async with peer(server, room) as ada:
        await workspace(server, room, ada, {"b.py": B, "helpers.py": HELPERS, "big.py": big})
        r = server.ask(room, "what does f return?", path="b.py")
        assert r.status_code == 202, r.text
        assert await finished(ada) == "See `b.py`."
        system, document, volatile = prompt_of(double)
        assert "cite its path" in system
        listing = document.split("<file", 1)[0]
        # every file listed with bytes and language, the current one first
        order = [line.split(" ")[1] for line in listing.splitlines() if line.startswith("- ")]
        assert order[0] == "b.py" and set(order) == {"b.py", "main.py", "helpers.py", "big.py"}
        assert f"- b.py ({len(B)} bytes, python; current file)" in listing
        assert "- big.py (120000 bytes, python; not shown: over the budget)" in listing
        # texts: the current file first, the big one not at all
        assert document.index('<file path="b.py"') < document.index('<file path="main.py"')
        assert '<file path="big.py"' not in document
        assert "2|     return 1" in document
        assert "current file: b.py" in volatile
        # Without a path: the file the asker has open (awareness), here helpers.py; the
        # question names main.py: it comes next, before the smaller b.py.
        await ada.set_awareness({"user": {"name": "Ada"}, "file": "helpers.py"})
        assert server.ask(room, "does main.py call it?").status_code == 202
        await eventually(lambda: len(double.requests) == 2)
        _, document, volatile = prompt_of(double)
        assert "current file: helpers.py" in volatile
        assert document.index('<file path="helpers.py"') < document.index('<file path="main.py"')
        assert document.index('<file path="main.py"') < document.index('<file path="b.py"')


async def test_ask_with_a_bad_or_unknown_path_is_refused_with_the_rule(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start()
    room = server.room()
    bad = server.ask(room, "hi", path="../etc/passwd")
    assert bad.status_code == 422, bad.text
    assert "must not contain . or .. segments" in bad.text
    unknown = server.ask(room, "hi", path="nope.py")
    assert unknown.status_code == 404 and "nope.py" in unknown.text
    assert double.requests == []


async def test_edit_tool_with_a_path_changes_that_file_only_and_undo_puts_it_back(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start()
    room = server.room()
    edit = {"path": "b.py", "start_line": 2, "end_line": 2, "new_text": "    return 2\n"}
    double.script(Reply([("text", "Fixing `b.py`."), ("tool", "replace_range", edit)]))
    async with peer(server, room) as ada:
        allow_edits(ada)  # before the files: the server has it once it has them
        await workspace(server, room, ada, {"b.py": B})
        assert server.ask(room, "return 2").status_code == 202  # asked about main.py
        text = await finished(ada)
        assert "(edited lines 2-2 of b.py)" in text
        await eventually(lambda: file_of(ada, "b.py") == "def f():\n    return 2\n")
        assert str(ada.text) == MAIN  # the entry file is untouched
        [entry] = [m for m in ai_entries(ada) if m.get("change")]
        assert entry.get("path") == "b.py"
        # someone types in main.py meanwhile: the undo in b.py leaves it alone
        with ada.doc.transaction():
            ada.text.insert(0, "# hi\n")
        r = undo(server, room, str(entry.get("id")))
        assert r.status_code == 200, r.text
        await eventually(lambda: file_of(ada, "b.py") == B)
        assert str(ada.text) == "# hi\n" + MAIN


async def test_create_file_adds_a_file_and_a_bad_path_is_refused_with_its_rule(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start()
    room = server.room()
    make = {"path": "utils/math.py", "text": "def add(a, b):\n    return a + b\n"}
    escape = {"path": "../evil.py", "text": "x"}
    taken = {"path": "main.py", "text": "x"}
    double.script(
        Reply([("text", "Here."), ("tool", "create_file", make),
               ("tool", "create_file", escape), ("tool", "create_file", taken)])
    )  # fmt: skip
    async with peer(server, room) as ada:
        allow_edits(ada)  # before the code: the server has it once it has the code
        await set_code(server, room, ada, MAIN)
        assert server.ask(room, "make a math module").status_code == 202
        text = await finished(ada)
        await eventually(lambda: file_of(ada, "utils/math.py") == make["text"])
        assert "(created utils/math.py)" in text
        assert "the path '../evil.py' is refused: a path must not contain . or .. segments" in text
        assert "could not create main.py: it exists already" in text
        assert set(schema.files(ada.doc).keys()) == {"utils/math.py"}
        assert str(ada.text) == MAIN
        # undoing the creation removes the file
        [entry] = [m for m in ai_entries(ada) if m.get("change")]
        assert entry.get("path") == "utils/math.py"
        assert undo(server, room, str(entry.get("id"))).status_code == 200
        await eventually(lambda: "utils/math.py" not in schema.files(ada.doc))


def test_create_file_keeps_the_workspace_limits() -> None:
    doc: Doc[Any] = Doc()
    schema.code(doc).insert(0, "x = 1\n")
    schema.files(doc)["a.py"] = Text("a = 1\n")
    limits = WorkspaceLimits(max_files=3, max_file_bytes=10, max_workspace_bytes=25)
    check_new_file(doc, "b.py", "b = 2\n", limits)  # fits
    refusals = {
        "a.py": ("x", "it exists already"),
        "main.py": ("x", "it exists already"),  # the entry file
        "big.py": ("x" * 11, "a file may be at most 10 bytes"),
        "full.py": ("x" * 10 + "é", "a file may be at most 10 bytes"),  # UTF-8 bytes
    }
    for path, (content, rule) in refusals.items():
        with pytest.raises(ToolRefused, match=rule):
            check_new_file(doc, path, content, limits)
    schema.files(doc)["b.py"] = Text("b = 2\n")
    with pytest.raises(ToolRefused, match="at most 3 files"):
        check_new_file(doc, "c.py", "c", limits)
    with pytest.raises(ToolRefused, match="at most 25 bytes"):
        check_new_file(doc, "c.py", "c" * 8, WorkspaceLimits(4, 10, 25))


async def test_a_suggestion_names_its_file_applies_there_and_undoes_there(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start()
    room = server.room()
    tool = {"path": "b.py", "line": 1, "text": "import os\n"}
    new_file = {"path": "c.py", "text": "C = 3\n"}
    double.script(
        Reply([("text", "Import os in `b.py`."), ("tool", "insert_text", tool),
               ("tool", "create_file", new_file)])
    )  # fmt: skip
    async with peer(server, room) as ada:
        await workspace(server, room, ada, {"b.py": B})
        assert server.ask(room, "imports?").status_code == 202
        await eventually(lambda: sum(m.get("kind") == "suggestion" for m in ai_entries(ada)) == 2)
        await eventually(lambda: ai_entries(ada)[0].get("pending") is False)
        card, create_card = [m for m in ai_entries(ada) if m.get("kind") == "suggestion"]
        assert card.get("path") == "b.py" and card.get("start_line") == 1
        assert create_card.get("path") == "c.py" and create_card.get("new_file") is True
        assert file_of(ada, "b.py") == B and "c.py" not in schema.files(ada.doc)
        url = f"{server.url}/api/rooms/{room}/ai/suggestions/{card.get('id')}"
        applied = server.suggest(url, "apply", sign(room, "owner"))
        assert applied.status_code == 200, applied.text
        await eventually(lambda: file_of(ada, "b.py") == "import os\n" + B)
        assert str(ada.text) == MAIN
        url = f"{server.url}/api/rooms/{room}/ai/suggestions/{create_card.get('id')}"
        assert server.suggest(url, "apply", sign(room, "editor")).status_code == 200
        await eventually(lambda: file_of(ada, "c.py") == "C = 3\n")
        assert undo(server, room, str(card.get("id"))).status_code == 200
        await eventually(lambda: file_of(ada, "b.py") == B)
        assert file_of(ada, "c.py") == "C = 3\n" and str(ada.text) == MAIN


async def test_peers_cannot_forge_a_chat_entrys_path_but_comments_keep_theirs(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start()
    room = server.room()
    async with peer(server, room, "editor", "Bob") as bob, peer(server, room) as ada:
        with bob.doc.transaction():
            schema.chat(bob.doc).append(
                Map({"id": "m1", "author": "Bob", "text": "hi", "ts": 1.0, "path": "b.py",
                     "new_file": True, "kind": "suggestion"})
            )  # fmt: skip
            schema.comments(bob.doc)["c1"] = Map({"id": "c1", "text": "look", "path": "b.py"})

        def corrected() -> bool:
            entries = [m for m in schema.chat(ada.doc) if isinstance(m, Map)]
            comment = schema.comments(ada.doc).get("c1")
            return (
                len(entries) == 1
                and entries[0].get("author_id") is not None
                and isinstance(comment, Map)
                and comment.get("author_id") is not None
            )

        await eventually(corrected)
        [entry] = [m for m in schema.chat(ada.doc) if isinstance(m, Map)]
        assert "path" not in entry and "new_file" not in entry and "kind" not in entry
        comment = schema.comments(ada.doc).get("c1")
        assert isinstance(comment, Map) and comment.get("path") == "b.py"


def test_choose_orders_current_referred_then_by_size_within_the_budget() -> None:
    texts = {
        "main.py": "from utils.math import add\n",
        "z.py": "z" * 10,
        "utils/math.py": "m" * 50,
        "notes.py": "n" * 20,
        "big.py": "b" * 1000,
        "lib/strings.py": "s" * 30,
    }
    chosen = choose("main.py", texts, "why is strings.py slow?", budget=200)
    assert chosen.order[0] == "main.py"
    # referred to: utils/math.py (imported), lib/strings.py (named), smaller first
    assert chosen.order[1:3] == ["lib/strings.py", "utils/math.py"]
    assert chosen.order[3:] == ["z.py", "notes.py", "big.py"]
    assert chosen.shown == frozenset(texts) - {"big.py"}
    # the current file is shown even alone over the budget; nothing else then
    tiny = choose("big.py", texts, "", budget=100)
    assert tiny.shown == frozenset({"big.py"})
