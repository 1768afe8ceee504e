"""Property: restore's edit (``server.history_api._Moment.apply``) turns any workspace
into the one at the chosen moment exactly (texts, files made or deleted since, the
entry file and the language), as one transaction whose update a replica applies to
the same result (no index inside a multi-byte character)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from crdt import schema
from server.history_api import _moment

CHARS = st.sampled_from(["a", "b", "\n", "é", "😀", "中", " "])
PATHS = st.sampled_from(["main.py", "a.py", "lib/b.py", "c.py"])
OPS = st.lists(
    st.tuples(
        st.sampled_from(["type", "type", "delete", "new", "remove", "entry", "language"]),
        PATHS,
        st.floats(0, 1),
        st.text(CHARS, min_size=1, max_size=5),
    ),
    max_size=15,
)


def edit(doc: Doc[Any], ops: list[tuple[str, str, float, str]]) -> None:
    for op, path, where, text in ops:
        entry = schema.entry_path(doc)
        target = schema.file_text(doc, path)
        current = str(target) if target is not None else ""
        at = round(where * len(current))
        if op == "type" and target is not None:
            target.insert(len(current[:at].encode()), text)
        elif op == "delete" and target is not None and current:
            at = min(at, len(current) - 1)
            start = len(current[:at].encode())
            del target[start : start + len(current[at].encode())]
        elif op == "new" and target is None:
            schema.files(doc)[path] = Text(text)
        elif op == "remove" and target is not None and path != entry:
            del schema.files(doc)[path]
        elif op == "entry" and target is None:
            # as the browser: the entry file's text stays in code, under a new name
            schema.meta(doc)[schema.ENTRY] = path
        elif op == "language":
            schema.meta(doc)["language"] = "python" if where < 0.5 else "javascript"


@settings(max_examples=200, deadline=None)
@given(OPS, OPS)
def test_restore_gives_back_the_workspace_at_the_moment(
    before: list[Any], since: list[Any]
) -> None:
    doc: Doc[Any] = Doc()
    edit(doc, before)
    moment = _moment(doc)
    edit(doc, since)
    replica: Doc[Any] = Doc()
    replica.apply_update(doc.get_update())
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    with doc.transaction():
        moment.apply(doc)
    assert len(updates) <= 1  # one edit
    for update in updates:
        replica.apply_update(update)
    for restored in (doc, replica):
        assert schema.workspace(restored) == moment.files
        assert schema.entry_path(restored) == moment.entry
        if moment.language:  # (a moment before the room's seed has none: left as it is)
            assert schema.meta(restored).get("language") == moment.language
