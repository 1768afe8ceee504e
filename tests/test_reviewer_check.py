"""``rooms.roles.touched_roots`` and ``reviewer_may_apply`` on pycrdt documents (no server).

Each update is made the way a browser makes it: a replica synced with the room's
document changes something, and the update is the replica's diff since its sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt import schema
from crdt.offsets import utf8_len
from rooms.roles import REVIEWER_ROOTS, ReviewerCheck, reviewer_may_apply, touched_roots

Change = Callable[[Doc[Any]], None]


def room_doc() -> Doc[Any]:
    """A room's document with something in every root."""
    doc: Doc[Any] = Doc()
    with doc.transaction():
        schema.code(doc).insert(0, "def main():\n    return 42\n")
        schema.meta(doc)["title"] = "warm-up"
        schema.chat(doc).append(Map({"id": "m0", "text": "hi"}))
        schema.comments(doc)["c1"] = Map({"body": "why 42?", "replies": Array()})
        schema.runs(doc)["r1"] = Map({"status": "ok", "output": "42"})
    return doc


def replica(doc: Doc[Any]) -> Doc[Any]:
    copy: Doc[Any] = Doc()
    copy.apply_update(doc.get_update())
    return copy


def diff(client: Doc[Any], change: Change) -> bytes:
    """The update ``change`` makes on ``client``."""
    before = client.get_state()
    change(client)
    return client.get_update(before)


def update_for(doc: Doc[Any], change: Change) -> bytes:
    return diff(replica(doc), change)


def append_code(doc: Doc[Any]) -> None:
    text = schema.code(doc)
    text.insert(utf8_len(str(text)), "# more\n")


def set_meta(doc: Doc[Any]) -> None:
    schema.meta(doc)["language"] = "rust"


def append_chat(doc: Doc[Any]) -> None:
    schema.chat(doc).append(Map({"id": "m1", "text": "looks good"}))


def add_comment(doc: Doc[Any]) -> None:
    schema.comments(doc)["c2"] = Map({"body": "rename main", "replies": Array()})


def add_run(doc: Doc[Any]) -> None:
    schema.runs(doc)["r2"] = Map({"status": "running"})


def add_file(doc: Doc[Any]) -> None:
    schema.files(doc)["util.py"] = Text("x = 1\n")


def raise_hand(doc: Doc[Any]) -> None:
    schema.class_state(doc)["hand:0123456789abcdef"] = '{"raised_at": 1}'


CHANGES: dict[str, Change] = {
    schema.CODE: append_code,
    schema.META: set_meta,
    schema.CHAT: append_chat,
    schema.COMMENTS: add_comment,
    schema.RUNS: add_run,
    schema.FILES: add_file,
    schema.CLASS: raise_hand,
}


@pytest.mark.parametrize("root", schema.ROOTS)
def test_each_root_is_detected(root: str) -> None:
    doc = room_doc()
    update = update_for(doc, CHANGES[root])
    assert touched_roots(doc, update) == {root}
    assert reviewer_may_apply(doc, update) is (root in REVIEWER_ROOTS)


def test_the_check_leaves_the_document_unchanged() -> None:
    doc = room_doc()
    before = doc.get_update()
    touched_roots(doc, update_for(doc, append_code))
    assert doc.get_update() == before


def test_a_reply_nested_in_a_comment_counts_as_comments() -> None:
    doc = room_doc()

    def reply(client: Doc[Any]) -> None:
        schema.comments(client)["c1"]["replies"].append(Map({"body": "the answer"}))

    update = update_for(doc, reply)
    assert touched_roots(doc, update) == {schema.COMMENTS}
    assert reviewer_may_apply(doc, update)


def test_editing_a_field_of_an_existing_chat_message_counts_as_chat() -> None:
    doc = room_doc()
    update = update_for(doc, lambda client: schema.chat(client)[0].__setitem__("text", "edited"))
    assert touched_roots(doc, update) == {schema.CHAT}
    assert reviewer_may_apply(doc, update)


def test_deleting_code_text_is_detected() -> None:
    doc = room_doc()
    update = update_for(doc, lambda client: schema.code(client).__delitem__(slice(0, 4)))
    assert touched_roots(doc, update) == {schema.CODE}
    assert not reviewer_may_apply(doc, update)


def test_formatting_code_text_is_detected() -> None:
    doc = room_doc()
    update = update_for(doc, lambda client: schema.code(client).format(0, 3, {"bold": True}))
    assert touched_roots(doc, update) == {schema.CODE}
    assert not reviewer_may_apply(doc, update)


def test_code_text_inserted_and_deleted_in_one_update_is_detected() -> None:
    """Nothing visible changes, but the update still writes items into ``code``."""
    doc = room_doc()

    def insert_then_delete(client: Doc[Any]) -> None:
        with client.transaction():
            text = schema.code(client)
            text.insert(0, "xyz")
            del text[0:3]

    update = update_for(doc, insert_then_delete)
    assert touched_roots(doc, update) == {schema.CODE}
    assert not reviewer_may_apply(doc, update)


def test_a_mixed_update_reports_both_roots() -> None:
    doc = room_doc()

    def chat_and_code(client: Doc[Any]) -> None:
        with client.transaction():
            append_chat(client)
            append_code(client)

    update = update_for(doc, chat_and_code)
    assert touched_roots(doc, update) == {schema.CHAT, schema.CODE}
    assert not reviewer_may_apply(doc, update)


def test_chat_and_comments_together_are_allowed() -> None:
    doc = room_doc()

    def both(client: Doc[Any]) -> None:
        with client.transaction():
            append_chat(client)
            add_comment(client)

    update = update_for(doc, both)
    assert touched_roots(doc, update) == {schema.CHAT, schema.COMMENTS}
    assert reviewer_may_apply(doc, update)


def test_a_pending_update_returns_none() -> None:
    doc = room_doc()
    client = replica(doc)
    diff(client, append_chat)  # never reaches the room
    later = diff(client, add_comment)  # its clock follows the missing update's
    assert touched_roots(doc, later) is None
    assert not reviewer_may_apply(doc, later)


def test_a_delete_of_unknown_items_returns_none() -> None:
    doc = room_doc()
    client = replica(doc)
    diff(client, append_chat)  # the room never gets these items...
    delete_only = diff(client, lambda c: schema.chat(c).__delitem__(1))  # ...only their deletion
    assert touched_roots(doc, delete_only) is None
    assert not reviewer_may_apply(doc, delete_only)


def test_an_update_creating_a_new_root_counts_that_root() -> None:
    doc = room_doc()
    update = update_for(doc, lambda client: client.get("notes", type=Text).insert(0, "psst"))
    assert touched_roots(doc, update) == {"notes"}
    assert not reviewer_may_apply(doc, update)


def test_a_schema_root_written_with_another_type_still_counts() -> None:
    """A client that reads ``code`` as a Map writes map entries into the code root."""
    doc = room_doc()
    update = update_for(doc, lambda client: client.get("code", type=Map).__setitem__("x", 1))
    assert touched_roots(doc, update) == {schema.CODE}
    assert not reviewer_may_apply(doc, update)


def test_a_change_to_an_existing_non_schema_root_counts_that_root() -> None:
    """An editor created ``notes`` earlier; a reviewer writing to it is outside chat/comments."""
    doc = room_doc()
    doc.get("notes", type=Text).insert(0, "editor's notes")
    update = update_for(doc, lambda client: client.get("notes", type=Text).insert(0, "psst "))
    assert touched_roots(doc, update) == {"notes"}
    assert not reviewer_may_apply(doc, update)


def test_an_empty_update_touches_nothing() -> None:
    doc = room_doc()
    update = update_for(doc, lambda client: None)
    assert touched_roots(doc, update) == set()
    assert reviewer_may_apply(doc, update)


# -- the room's kept check: its copy follows the document between checks ---------------


def test_a_kept_check_follows_the_document_between_checks() -> None:
    doc = room_doc()
    check = ReviewerCheck(doc)
    reviewer, editor = replica(doc), replica(doc)

    chat_update = diff(reviewer, append_chat)
    assert check.allows(chat_update)
    doc.apply_update(chat_update)

    # The document moves on without the check: an editor's code and a new root.
    editor.apply_update(doc.get_update(editor.get_state()))
    editor_update = diff(editor, append_code)
    notes_update = diff(editor, lambda c: c.get("notes", type=Text).insert(0, "todo"))
    doc.apply_update(editor_update)
    doc.apply_update(notes_update)
    reviewer.apply_update(doc.get_update(reviewer.get_state()))

    comment_update = diff(reviewer, add_comment)
    assert check.allows(comment_update)  # still only comments, after catching up
    doc.apply_update(comment_update)

    # Deleting the editor's new line is a code change; writing to notes is outside too.
    line = "# more\n"
    start = utf8_len(schema.code_text(reviewer)) - utf8_len(line)
    assert not check.allows(
        update_for(doc, lambda c: schema.code(c).__delitem__(slice(start, start + len(line))))
    )
    assert not check.allows(update_for(doc, lambda c: c.get("notes", type=Text).insert(0, "x")))
    # After refusals the check starts over from the document and still allows chat.
    assert check.allows(update_for(doc, lambda c: append_chat(c)))
