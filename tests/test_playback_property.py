"""Property: replaying recorded rows gives, at every recorded ts, exactly the files the
editing documents had then, and authorship spans cover exactly each person's
surviving characters (checked against a model that tracks who typed each one)."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from crdt import schema
from crdt.offsets import utf16_len
from rooms.history import HistoryRow, Who
from rooms.playback import Playback

PEOPLE = [Who("u1", "Ann", "editor"), Who("u2", "Bob", "owner"), Who("u3", "Cy", "editor")]
CHARS = st.sampled_from(["a", "b", " ", "\n", "é", "Ж", "😀", "中"])
PATHS = st.sampled_from([None, None, "a.py", "lib/b.py"])

# (person, op, path, position fraction, text, length, coalesce with the previous row)
OPS = st.tuples(
    st.integers(0, 2),
    st.sampled_from(["insert", "insert", "insert", "delete", "new", "remove"]),
    PATHS,
    st.floats(0, 1),
    st.text(CHARS, min_size=1, max_size=6),
    st.integers(1, 4),
    st.sampled_from([False, False, True]),
)


def _target(doc: Doc[Any], path: str | None) -> Text | None:
    if path is None:
        return schema.code(doc)
    value = schema.files(doc).get(path)
    return value if isinstance(value, Text) else None


@settings(max_examples=150, deadline=None)
@given(st.lists(OPS, min_size=10, max_size=60))
def test_replay_matches_what_the_editors_saw(script: list[Any]) -> None:
    docs: list[Doc[Any]] = [Doc() for _ in PEOPLE]
    outbox: list[list[bytes]] = [[] for _ in PEOPLE]
    for doc, out in zip(docs, outbox, strict=True):
        doc.observe(lambda event, out=out: out.append(event.update))
    # the model: path (None: the entry file) -> list of (char, author index)
    model: dict[str | None, list[tuple[str, int]]] = {None: []}
    rows: list[HistoryRow] = []
    seen: list[tuple[float, dict[str, str]]] = []
    models: list[dict[str | None, list[tuple[str, int]]]] = []  # the model at each row
    clock = 0.0
    for person, op, path, where, text, length, coalesce in script:
        doc = docs[person]
        target = _target(doc, path)
        chars = model.get(path)
        if op == "new" and path is not None and target is None:
            schema.files(doc)[path] = Text(text)
            model[path] = [(c, person) for c in text]
        elif op == "remove" and path is not None and target is not None:
            del schema.files(doc)[path]
            del model[path]
        elif op == "insert" and target is not None and chars is not None:
            at = round(where * len(chars))
            current = str(target)
            target.insert(len(current[:at].encode()), text)
            chars[at:at] = [(c, person) for c in text]
        elif op == "delete" and target is not None and chars:
            at = min(round(where * len(chars)), len(chars) - 1)
            n = min(length, len(chars) - at)
            current = str(target)
            start = len(current[:at].encode())
            del target[start : start + len(current[at : at + n].encode())]
            del chars[at : at + n]
        else:
            continue
        update = outbox[person][-1]
        for other in docs:
            if other is not doc:
                other.apply_update(update)
        last = rows[-1] if rows else None
        if coalesce and last is not None and last.who == PEOPLE[person]:
            clock += 0.5
            rows[-1] = HistoryRow(
                last.seq, last.ts_first, clock, last.who, "edit", [*last.updates, update]
            )
            seen[-1] = (clock, schema.workspace(doc))
            models[-1] = {k: list(v) for k, v in model.items()}
        else:
            clock += 1.0
            rows.append(HistoryRow(len(rows) + 1, clock, clock, PEOPLE[person], "edit", [update]))
            seen.append((clock, schema.workspace(doc)))
            models.append({k: list(v) for k, v in model.items()})
    event(f"rows: {min(len(rows), 20) // 5 * 5}+")
    playback = Playback(checkpoint_every=3)
    half = len(rows) // 2
    playback.extend(rows[:half])
    playback.extend(rows[half:])  # incrementally
    for ts, files in seen:
        assert playback.files_at(ts) == files
    for (ts, _), at in zip(seen, models, strict=True):
        for path, chars in at.items():
            name = "main.py" if path is None else path
            got = playback.authorship_at(name, ts)
            assert got is not None
            assert got["text"] == "".join(c for c, _ in chars)
            assert got["spans"] == expected_spans(chars, playback)
    for path, chars in model.items():  # now, from the live replay
        name = "main.py" if path is None else path
        now = playback.authorship_at(name)
        assert now is not None and now["spans"] == expected_spans(chars, playback)


def expected_spans(chars: list[tuple[str, int]], playback: Playback) -> list[dict[str, int]]:
    """The model's authors as spans of UTF-16 offsets, adjacent ones of a person merged."""
    expected: list[dict[str, int]] = []
    pos = 0
    for c, who in chars:
        units = utf16_len(c)
        index = playback.people.index(PEOPLE[who])
        if expected and expected[-1]["who"] == index and expected[-1]["to"] == pos:
            expected[-1]["to"] += units
        else:
            expected.append({"from": pos, "to": pos + units, "who": index})
        pos += units
    return expected
