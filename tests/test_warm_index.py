"""The integrity check's parent index of a big loaded document is read in a thread.

Reading it on first need costs ~6 µs a struct on the event loop (240 ms for a 2 MB
document), so a room's first write stalled every room of the instance. ``Room.start``
now has it built away from the loop (``UpdateCheck.prepare``/``install``); what the
document takes meanwhile is replayed into it, and it must answer exactly as an index
read from the document then would.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from crdt import integrity, schema, structs
from crdt.integrity import UpdateCheck
from crdt.parents import ParentIndex
from rooms.room import WARM_INDEX_BYTES
from tests.harness import FakeClient, pump_all, started
from tests.support import eventually

pytestmark = pytest.mark.anyio


def big_doc(inserts: int = 3000, seed: int = 7) -> Doc[Any]:
    """A document of many scattered inserts (many structs) in ``code`` and two files."""
    rng = random.Random(seed)
    doc: Doc[Any] = Doc()
    texts = [schema.code(doc)]
    for path in ("a.py", "pkg/b.py"):
        schema.files(doc)[path] = Text()
        texts.append(schema.files(doc)[path])
    for _ in range(inserts):
        text = rng.choice(texts)
        text.insert(rng.randint(0, len(text)), "x" * rng.randint(20, 40))
    return doc


def same_answers(index: ParentIndex, doc: Doc[Any]) -> None:
    """``index`` places every item of ``doc`` where an index read from it now does."""
    fresh = integrity.build_index(doc.get_update())
    assert fresh is not None
    parsed = structs.parse(doc.get_update())
    for struct in parsed.structs:
        for clock in (struct.clock, struct.clock + struct.length - 1):
            assert index.parent_of(struct.client, clock) == fresh.parent_of(struct.client, clock), (
                struct.client,
                clock,
            )


def edit_elsewhere(doc: Doc[Any], text: str) -> bytes:
    """An edit made by other means (a server edit, another instance): its update."""
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    with doc.transaction():
        schema.files(doc)["pkg/b.py"].insert(3, text)
        schema.files(doc)["new.py"] = Text(text)
    doc.unobserve(subscription)
    assert len(updates) == 1
    return updates[0]


def test_an_index_built_elsewhere_with_what_came_since_answers_as_a_fresh_one() -> None:
    doc = big_doc()
    check = UpdateCheck()
    check.reset(doc)
    prepared = check.prepare(doc)
    assert prepared is not None
    update, ticket = prepared
    # While it is built, the document takes an edit made by other means.
    check.learn(edit_elsewhere(doc, "late = 1\n"))
    built = integrity.build_index(update)  # what the thread does
    assert check.install(built, ticket)
    assert built is not None
    same_answers(built, doc)
    assert check.index(doc) is built  # adopted: not read again


def test_an_index_that_comes_too_late_is_dropped() -> None:
    doc = big_doc(300)
    check = UpdateCheck()
    check.reset(doc)
    prepared = check.prepare(doc)
    assert prepared is not None
    update, ticket = prepared
    own = check.index(doc)  # a write needed it first: read on the spot
    assert not check.install(integrity.build_index(update), ticket)
    assert check.index(doc) is own
    # A reset (the document rebuilt) also voids the ticket.
    again = UpdateCheck()
    again.reset(doc)
    prepared = again.prepare(doc)
    assert prepared is not None
    again.reset(doc)
    assert not again.install(integrity.build_index(prepared[0]), prepared[1])


def test_a_small_document_is_read_when_needed() -> None:
    doc = big_doc(20)
    check = UpdateCheck()
    check.reset(doc)
    assert len(doc.get_update()) < WARM_INDEX_BYTES
    assert check.prepare(doc, WARM_INDEX_BYTES) is None


async def test_a_big_room_loaded_has_its_index_before_the_first_write(tmp_path: Path) -> None:
    source = big_doc()
    assert len(source.get_update()) >= WARM_INDEX_BYTES
    async with started(tmp_path) as registry:
        ada = await FakeClient(name="Ada").join(registry, "big")
        ada.doc.apply_update(source.get_update())  # sent to the room as one update
        pump_all(ada)
        assert ada.room is not None
        assert str(schema.code(ada.room.doc)) == str(schema.code(source))
    async with started(tmp_path) as registry:
        bob = await FakeClient(name="Bob").join(registry, "big")
        room = bob.room
        assert room is not None
        check = room._check
        await eventually(lambda: check._parents is not None, what="index installed")
        installed = check._parents
        assert installed is not None
        same_answers(installed, room.doc)
        # The first keystroke, at a place nobody typed before, uses it and is applied.
        bob.text.insert(len(bob.text) // 2, "!")
        pump_all(bob)
        assert check.index(room.doc) is installed
        assert str(schema.code(room.doc)) == str(bob.text)
