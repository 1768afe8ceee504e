"""An instance that applies another instance's update learns it (``UpdateCheck.learn``)
without parsing it whole when it is a keystroke: what it learns must be what the
accepting instance's check knew after admitting the same update, or its next own
keystroke would be checked against a different picture of the document."""

from __future__ import annotations

import random
from typing import Any

from pycrdt import Doc, Map, Text

from crdt import schema
from crdt.integrity import UpdateCheck


def keystroke(doc: Doc[Any], text: Text, at: int, chars: str) -> bytes:
    before = doc.get_state()
    text.insert(at, chars)
    return doc.get_update(before)


def test_a_learned_keystroke_is_known_as_the_admitting_check_knew_it() -> None:
    rng = random.Random(22)
    seed: Doc[Any] = Doc(client_id=7)
    seed.get(schema.CODE, type=Text).insert(0, "seed text\n")
    files = seed.get(schema.FILES, type=Map)
    files["a.py"] = Text("print(1)\n")
    base = seed.get_update()
    writers = []
    for client in (101, 2**40 + 3):  # a one-byte and a multi-byte client id
        doc: Doc[Any] = Doc(client_id=client)
        doc.apply_update(base)
        writers.append(doc)
    accepting: Doc[Any] = Doc()
    accepting.apply_update(base)
    remote: Doc[Any] = Doc()
    remote.apply_update(base)
    admitting, learning = UpdateCheck(), UpdateCheck()
    admitting.reset(accepting)
    learning.reset(remote)
    admitting.index(accepting)  # both with a parent index, which learn must keep up
    learning.index(remote)
    learned = 0
    for _ in range(400):
        doc = rng.choice(writers)
        text = (
            doc.get(schema.CODE, type=Text)
            if rng.random() < 0.7
            else doc.get(schema.FILES, type=Map)["a.py"]
        )
        at = rng.choice([0, len(text)])
        if str(text).isascii():  # pycrdt's indices are not the UTF-16 ones a Yjs client uses
            at = rng.choice([at, rng.randrange(len(text) + 1)])
        update = keystroke(doc, text, at, rng.choice(["x", "é", "😀", "ab"]))
        admitted = admitting.admit(accepting, update)
        accepting.apply_update(admitted.update)
        admitting.commit(admitted)
        remote.apply_update(update)
        learning.learn(update)
        learned += 1
        for other in writers:
            if other is not doc:
                other.apply_update(update)
    assert learned == 400
    assert learning._known == admitting._known
    ours, theirs = learning.index(remote), admitting.index(accepting)
    for client, end in admitting._known.items():
        for clock in range(end):
            assert ours.parent_of(client, clock) == theirs.parent_of(client, clock)
            assert ours.splits_a_character(None, (client, clock)) == theirs.splits_a_character(
                None, (client, clock)
            )
