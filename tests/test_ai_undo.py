"""Undoing the AI's code changes as one unit: a real server (subprocess) whose real
``anthropic`` SDK talks to the Messages API double; peers type through real websockets.

``POST /api/rooms/{room}/ai/changes/{entry_id}/undo`` reverts an AI edit or an applied
suggestion wherever its text has moved, refuses (409) once the AI's text was edited or
the change already undone, and the record survives a restart with the document."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map

from ai_assist import changes
from crdt import offsets, schema
from crdt.updates import decode_state_vector
from tests.anthropic_double import AnthropicDouble, Reply
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.test_ai import Server, ai_entries, finished, peer, set_code

pytestmark = pytest.mark.anyio

ENV = {
    "CODEMENTOR_SECRET": SECRET,
    "CODEMENTOR_API_RATE_PER_MINUTE": "100000",
    "ANTHROPIC_API_KEY": "test-key",
    "CODEMENTOR_AI_MAX_RETRIES": "0",
}


@pytest.fixture
def start(
    server_factory: Callable[..., ServerProcess], double: AnthropicDouble
) -> Callable[..., Server]:
    def run(**kwargs: Any) -> Server:
        return Server(server_factory(**kwargs, **ENV, CODEMENTOR_AI_BASE_URL=double.url))

    return run


def undo(server: Server, room: str, entry_id: str, role: str = "owner", name: str = "Ada",
         user: str | None = None) -> httpx.Response:  # fmt: skip
    token = sign(room, role, name=name, sub=user)
    return httpx.post(
        f"{server.url}/api/rooms/{room}/ai/changes/{entry_id}/undo",
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )


def replace(first: int, last: int, new_text: str, intro: str = "Fixing it.") -> Reply:
    edit = {"start_line": first, "end_line": last, "new_text": new_text}
    return Reply([("text", intro), ("tool", "replace_range", edit)])


def changed_entry(client: Any) -> Map[Any] | None:
    entries = [m for m in ai_entries(client) if m.get("change")]
    return entries[-1] if entries else None


async def test_ai_edit_is_undone_as_one_unit_wherever_the_text_moved(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start()
    room = server.room()
    double.script(replace(2, 2, "    return 2  # ✓ fixed\n"))
    async with peer(server, room, name="Ada") as ada:
        with ada.doc.transaction():
            schema.meta(ada.doc)["ai_edits"] = True
        code = "def f():\n    return 1\nprint(f())\n"
        await set_code(server, room, ada, code)
        assert server.ask(room, "return 2 please").status_code == 202
        await finished(ada)
        await eventually(lambda: changed_entry(ada) is not None)
        entry = changed_entry(ada)
        assert entry is not None
        edited = "def f():\n    return 2  # ✓ fixed\nprint(f())\n"
        assert str(ada.text) == edited
        # The question is the asker's own chat message, before the answer.
        chat = [m for m in schema.chat(ada.doc) if isinstance(m, Map)]
        question = chat[-2]
        assert question.get("text") == "return 2 please" and question.get("author") == "Ada"
        assert question.get("author_role") == "owner" and question.get("ai") is None
        assert entry.get("change_for") == question.get("author_id")
        [record] = changes.load(entry.get("change"))
        assert record.inserted == "    return 2  # ✓ fixed\n" and record.removed == "    return 1\n"

        # People type around it (non-ASCII, above and below): the AI's text moves.
        with ada.doc.transaction():
            ada.text.insert(0, "# 😀 é\n")
            ada.text += "# après\n"
        await set_code(server, room, ada, "")

        # A reviewer or a viewer may not undo; an unknown entry is 404.
        assert undo(server, room, str(entry.get("id")), role="viewer").status_code == 403
        assert undo(server, room, "nope").status_code == 404
        done = undo(server, room, str(entry.get("id")), role="editor", name="Bob")
        assert done.status_code == 200, done.text
        expected = "# 😀 é\n" + code + "# après\n"
        await eventually(lambda: str(ada.text) == expected)
        await eventually(lambda: entry.get("undone") is True)
        assert entry.get("undone_by") == "Bob"
        again = undo(server, room, str(entry.get("id")))
        assert again.status_code == 409 and "already undone by Bob" in again.json()["error"]


async def test_applied_suggestion_undo_refuses_after_someone_edited_the_ai_text(
    start: Callable[..., Server], double: AnthropicDouble
) -> None:
    server = start()
    room = server.room("review")
    double.script(replace(2, 2, "    return 2\n", "Return 2 instead."), replace(1, 1, ""))
    async with peer(server, room, name="Olga") as olga:
        await set_code(server, room, olga, "def f():\n    return 1\n")
        assert server.ask(room, "should it be 2?", role="reviewer", name="Rita").status_code == 202
        # One entry: the explanation and the suggestion together, no note, no second entry.
        await eventually(lambda: any(m.get("kind") == "suggestion" for m in ai_entries(olga)))
        await eventually(lambda: ai_entries(olga)[-1].get("pending") is not True)
        [card] = ai_entries(olga)
        assert card.get("kind") == "suggestion" and card.get("text") == "Return 2 instead."
        url = f"{server.url}/api/rooms/{room}/ai/suggestions/{card.get('id')}"
        owner = sign(room, "owner", name="Olga", sub="olga-id")
        applied = server.suggest(url, "apply", owner)
        assert applied.status_code == 200, applied.text
        await eventually(lambda: str(olga.text) == "def f():\n    return 2\n")
        await eventually(lambda: card.get("change_for") == "olga-id")
        assert card.get("status") == "applied"

        # Someone types inside the AI's text: undoing would delete their typing.
        with olga.doc.transaction():
            olga.text.insert(len("def f():\n    return 2"), "0")
        await set_code(server, room, olga, "")
        refused = undo(server, room, str(card.get("id")))
        assert refused.status_code == 409 and "edited since" in refused.json()["error"]
        assert str(olga.text) == "def f():\n    return 20\n"
        assert card.get("undone") is None

        # A pure deletion (a suggestion with empty new text) is put back where it was.
        assert server.ask(room, "drop line 1", role="owner", name="Olga").status_code == 202
        await eventually(lambda: sum(m.get("kind") == "suggestion" for m in ai_entries(olga)) == 2)
        second = ai_entries(olga)[-1]
        url = f"{server.url}/api/rooms/{room}/ai/suggestions/{second.get('id')}"
        assert server.suggest(url, "apply", owner).status_code == 200
        await eventually(lambda: str(olga.text) == "    return 20\n")
        with olga.doc.transaction():
            olga.text += "x = 1\n"
        await set_code(server, room, olga, "")
        assert undo(server, room, str(second.get("id"))).status_code == 200
        await eventually(lambda: str(olga.text) == "def f():\n    return 20\nx = 1\n")


async def test_the_record_survives_a_restart_and_peers_cannot_forge_it(
    server_factory: Callable[..., ServerProcess], double: AnthropicDouble
) -> None:
    env = {**ENV, "CODEMENTOR_AI_BASE_URL": double.url}
    first = Server(server_factory(**env))
    room = first.room()
    double.script(replace(1, 1, "print('hi')\n"))
    async with peer(first, room) as ada:
        with ada.doc.transaction():
            schema.meta(ada.doc)["ai_edits"] = True
        await set_code(first, room, ada, "pass\n")
        assert first.ask(room, "say hi").status_code == 202
        await eventually(lambda: changed_entry(ada) is not None)
        entry_id = str(changed_entry(ada).get("id"))  # type: ignore[union-attr]
        await eventually(lambda: str(ada.text) == "print('hi')\n")
        # A peer's own entry shaped like an AI change loses those fields; a change to
        # the AI's record is put back.
        with ada.doc.transaction():
            forged = {"id": "f1", "author": "Ada", "text": "x", "ts": 1.0, "ai": True,
                      "change": json.dumps([]), "undone": True}  # fmt: skip
            schema.chat(ada.doc).append(Map(forged))
            entry = changed_entry(ada)
            assert entry is not None
            record = entry.get("change")
            entry["change"] = "[]"
            entry["undone"] = True
        await eventually(lambda: changed_entry(ada) is not None
                         and changed_entry(ada).get("change") == record)  # type: ignore[union-attr]  # fmt: skip
        await eventually(lambda: changed_entry(ada).get("undone") is None)  # type: ignore[union-attr]
        mine = next(m for m in schema.chat(ada.doc) if isinstance(m, Map) and m.get("id") == "f1")
        await eventually(lambda: mine.get("change") is None and mine.get("ai") is None)
        assert undo(first, room, "f1").status_code == 404
    first.proc.stop()
    second = Server(server_factory(data_dir=first.proc.data_dir, **env))
    done = undo(second, room, entry_id)
    assert done.status_code == 200, done.text
    assert snapshot(second, room) == "pass\n"


def snapshot(server: Server, room: str) -> str:
    response = httpx.get(
        f"{server.url}/api/rooms/{room}/snapshot",
        headers={"authorization": f"Bearer {sign(room, 'owner')}"},
        timeout=5,
    )
    return response.text


def test_locating_the_ai_text_inside_merged_non_ascii_blocks() -> None:
    """Two adjacent AI insertions in one answer can merge into one Yjs block; both are
    found (pycrdt's sticky index is only exact at a block's start) and reverted."""
    people: Doc[Any] = Doc(client_id=11)
    ai: Doc[Any] = Doc(client_id=22)
    text = schema.code(people)
    text.insert(0, "é😀 start\nend ü\n")
    ai.apply_update(people.get_update())
    ai_text = schema.code(ai)
    recorded: list[changes.Edit] = []
    for at, new in ((len("é😀 start\n"), "αβ😀\n"), (len("é😀 start\nαβ😀\n"), "γδ ✓\n")):
        current = str(ai_text)
        clock = _next_clock(ai, 22)
        ai_text.insert(offsets.codepoint_to_utf8(current, at), new)
        recorded.append(changes.Edit(22, clock, offsets.utf16_len(new), new, ""))
    people.apply_update(ai.get_update(people.get_state()))
    merged = [b for b in changes.Locator(people).structs if b.client == 22]
    assert len(merged) == 1  # one block: the second edit's start is inside it
    with people.transaction():
        text.insert(0, "# ñ 😀\n")  # people type above and below
        text += "tail ✓\n"
    assert str(text) == "# ñ 😀\né😀 start\nαβ😀\nγδ ✓\nend ü\ntail ✓\n"
    steps = changes.plan(people, recorded)
    with people.transaction():
        changes.apply(text, steps)
    assert str(text) == "# ñ 😀\né😀 start\nend ü\ntail ✓\n"


def _next_clock(doc: Doc[Any], client: int) -> int:
    return decode_state_vector(doc.get_state()).get(client, 0)
