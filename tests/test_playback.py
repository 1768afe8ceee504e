"""rooms.playback: events, authorship, summary, checkpoints and bases, on real pycrdt
documents recorded as history rows."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Doc, Map, Text

from bench.history_seek import session
from crdt import schema
from rooms.history import AI_WHO, SERVER, HistoryRow, Who
from rooms.playback import Playback

ANN = Who("u-ann", "Ann", "editor")
BOB = Who("u-bob", "Bob", "owner")


class Session:
    """Edits on a real document, each recorded as a history row."""

    def __init__(self) -> None:
        self.doc: Doc[Any] = Doc()
        self.updates: list[bytes] = []
        self.doc.observe(lambda event: self.updates.append(event.update))
        self.rows: list[HistoryRow] = []
        self.seen: list[dict[str, str]] = []
        self.clock = 1000.0

    def edit(self, who: Who, change: Callable[[Doc[Any]], None], kind: str = "edit") -> float:
        before = len(self.updates)
        with self.doc.transaction():
            change(self.doc)
        self.clock += 1.0
        self.rows.append(
            HistoryRow(len(self.rows) + 1, self.clock, self.clock, who, kind, self.updates[before:])
        )
        self.seen.append(schema.workspace(self.doc))
        return self.clock


def insert(path: str | None, index: int, text: str) -> Callable[[Doc[Any]], None]:
    def change(doc: Doc[Any]) -> None:
        target = schema.code(doc) if path is None else schema.files(doc)[path]
        target.insert(len(str(target)[:index].encode()), text)

    return change


def test_events_count_code_points_and_name_files() -> None:
    s = Session()
    s.edit(ANN, insert(None, 0, "héllo😀"))
    s.edit(BOB, lambda d: schema.files(d).__setitem__("lib/a.py", Text("abc")))
    s.edit(ANN, lambda d: schema.code(d).__delitem__(slice(1, 3)))  # the é (2 bytes)
    s.edit(BOB, lambda d: schema.files(d).pop("lib/a.py"))
    p = Playback()
    events = [e.as_json() for e in p.extend(s.rows)]
    assert [(e["chars_added"], e["chars_removed"], e["files"]) for e in events] == [
        (6, 0, ["main.py"]),
        (3, 0, ["lib/a.py"]),
        (0, 1, ["main.py"]),
        (0, 3, ["lib/a.py"]),
    ]
    assert events[0]["who"] == ANN.as_json() and events[1]["seq"] == 2
    assert p.extend(s.rows) == []  # rows already seen are skipped


def test_authorship_spans_are_utf16_offsets_per_person() -> None:
    s = Session()
    s.edit(ANN, insert(None, 0, "a😀b"))
    s.edit(BOB, insert(None, 2, "XY"))  # after the emoji: UTF-16 offset 3
    p = Playback()
    p.extend(s.rows)
    got = p.authorship_at("main.py")
    assert got is not None and got["text"] == "a😀XYb"
    people = [Who(**w) for w in got["people"]]
    spans = [(sp["from"], sp["to"], people[sp["who"]]) for sp in got["spans"]]
    assert spans == [(0, 3, ANN), (3, 5, BOB), (5, 6, ANN)]
    assert p.authorship_at("nope.py") is None


def test_summary_judges_each_update_and_the_ai_apart() -> None:
    s = Session()
    s.edit(ANN, insert(None, 0, "x" * 10))
    # one row of two updates: a paste and a keystroke, each judged on its own
    before = len(s.updates)
    schema.code(s.doc).insert(0, "p" * 250)
    schema.code(s.doc).insert(0, "k")
    s.clock += 1
    s.rows.append(HistoryRow(2, s.clock, s.clock, BOB, "edit", s.updates[before:]))
    s.edit(AI_WHO, insert(None, 0, "ai" * 150), kind="ai")
    p = Playback(large_insert=200)
    events = p.extend(s.rows)
    assert events[1].large == 250 and events[0].large == 0 and events[2].large == 300
    summary = {tuple(x["who"].values()): x for x in p.summary()["people"]}
    assert summary[("u-ann", "Ann", "editor")]["typed"] == 10
    bob = summary[("u-bob", "Bob", "owner")]
    assert (bob["typed"], bob["pasted"], bob["edits"]) == (1, 250, 2)
    assert summary[("ai", "AI", "ai")]["ai"] == 300
    large = p.summary()["large_inserts"]
    assert [(x["chars"], x["who"]["id"], x["path"]) for x in large] == [
        (250, "u-bob", "main.py"),
        (300, "ai", "main.py"),
    ]


def test_authors_come_from_the_first_struct_of_each_client() -> None:
    ann_doc: Doc[Any] = Doc()
    bob_doc: Doc[Any] = Doc()
    rows: list[HistoryRow] = []
    for i, (doc, who) in enumerate([(ann_doc, ANN), (bob_doc, BOB), (ann_doc, BOB)]):
        other = bob_doc if doc is ann_doc else ann_doc
        before = doc.get_state()
        schema.code(doc).insert(0, "z")
        update = doc.get_update(before)
        other.apply_update(update)
        rows.append(HistoryRow(i + 1, i + 1.0, i + 1.0, who, "edit", [update]))
    p = Playback()
    p.extend(rows)
    # the third row is Ann's client again (clock 1), attributed to whoever wrote clock 0
    assert p.authors_json() == {
        str(ann_doc.client_id): ANN.as_json(),
        str(bob_doc.client_id): BOB.as_json(),
    }


def test_run_rows_name_the_run_and_its_status() -> None:
    s = Session()

    def run(status: str) -> Callable[[Doc[Any]], None]:
        def change(doc: Doc[Any]) -> None:
            runs = schema.runs(doc)
            if "r1" not in runs:
                runs["r1"] = Map({"id": "r1", "status": status, "ts": 5.0})
            else:
                runs["r1"]["status"] = status
                runs["r1"]["stdout"] = "hi\n"

        return change

    s.edit(SERVER, run("queued"), kind="run")
    s.edit(SERVER, run("accepted"), kind="run")
    p = Playback()
    events = p.extend(s.rows)
    assert [e.run for e in events] == [
        {"id": "r1", "status": "queued"},
        {"id": "r1", "status": "accepted"},
    ]
    at = p.at_json(s.rows[0].ts)
    assert at["run"]["status"] == "queued" and at["run"]["stdout"] is None
    assert p.at_json(s.rows[1].ts)["run"]["stdout"] == "hi\n"


def test_at_json_has_chat_up_to_the_moment_and_nothing_before_the_first_row() -> None:
    s = Session()
    t1 = s.edit(ANN, insert(None, 0, "print(1)"))
    t2 = s.edit(
        ANN,
        lambda d: schema.chat(d).append(Map({"author": "Ann", "text": "hi", "ts": 1.0})),
        kind="chat",
    )
    p = Playback()
    p.extend(s.rows)
    assert p.at_json(t1)["chat"] == []
    assert p.at_json(t2)["chat"] == [
        {"author": "Ann", "author_role": "", "text": "hi", "ts": 1.0, "ai": False}
    ]
    assert p.at_json(t1 - 5)["files"] == {"main.py": ""}
    assert p.at_json(t1)["files"] == {"main.py": "print(1)"}


def test_base_keeps_state_authorship_and_summary() -> None:
    s = Session()
    s.edit(ANN, insert(None, 0, "ann wrote this "))
    s.edit(BOB, lambda d: schema.files(d).__setitem__("b.py", Text("bob´s")))
    s.edit(BOB, insert(None, 0, "Bob: "))
    s.edit(ANN, insert("b.py", 0, "€"))
    full = Playback(checkpoint_every=3)
    full.extend(s.rows)
    base = full.base_at(3)
    assert base.seq == 3 and base.ts == s.rows[2].ts
    pruned = Playback(base, checkpoint_every=3)
    pruned.extend(s.rows)  # rows up to the base are skipped
    assert pruned.files_at(None) == full.files_at(None) == s.seen[-1]
    for path in ("main.py", "b.py"):
        assert pruned.authorship_at(path) == full.authorship_at(path)
    assert pruned.summary() == full.summary()
    assert pruned.authors_json() == full.authors_json()
    assert pruned.files_at(s.rows[3].ts) == s.seen[3]
    assert pruned.files_at(0) == s.seen[2]  # before the remaining rows: the base


@pytest.mark.slow
def test_seeking_anywhere_in_a_36000_update_session_is_exact() -> None:
    """Two people typing for an hour (36,000 updates, bench/history_seek.py's session).
    How long a seek takes is measured there, not here."""
    rows = session(36_000)
    p = Playback()
    p.extend(rows)
    typed: Doc[Any] = Doc()
    for row in rows:
        for update in row.updates:
            typed.apply_update(update)
    assert p.files_at(None) == {"main.py": schema.code_text(typed)}
    rng = random.Random(5)
    for index in [0, len(rows) - 1, *(rng.randrange(len(rows)) for _ in range(6))]:
        upto: Doc[Any] = Doc()
        for row in rows[: index + 1]:
            for update in row.updates:
                upto.apply_update(update)
        assert p.files_at(rows[index].ts) == {"main.py": schema.code_text(upto)}


def test_checkpoints_thin_out_on_a_long_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_CHECKPOINTS every other one goes and the spacing doubles; seeks stay exact."""
    monkeypatch.setattr("rooms.playback.MAX_CHECKPOINTS", 8)
    s = Session()
    for i in range(200):
        s.edit(ANN if i % 3 else BOB, insert(None, i % 7, f"{i % 10}é"))
    p = Playback(checkpoint_every=2)
    p.extend(s.rows)
    assert len(p._checkpoints) <= 9 and p.checkpoint_every > 2
    for index in (0, 57, 123, 199):
        assert p.files_at(s.rows[index].ts) == s.seen[index]


def test_a_row_read_again_after_it_grew_adds_only_its_new_updates() -> None:
    """The store appends a flush to the room's last row: playback reads that row again
    and replays only what it gained."""
    s = Session()
    s.edit(ANN, insert(None, 0, "ab"))
    s.edit(ANN, insert(None, 2, "cd"))
    s.edit(BOB, insert(None, 4, "ef"))
    first, second, third = s.rows
    p = Playback()
    p.extend([first, HistoryRow(2, second.ts_first, second.ts, ANN, "edit", second.updates)])
    parts = ((ANN, "edit", len(second.updates)), (BOB, "edit", len(third.updates)))
    updates = [*second.updates, *third.updates]
    grown = HistoryRow(2, second.ts_first, third.ts, ANN, "edit", updates, parts)
    [event] = p.extend([grown])
    assert (event.seq, event.who, event.chars_added) == (2, BOB, 2)
    assert p.files_at(None) == {"main.py": "abcdef"}
    assert p.files_at(second.ts) == {"main.py": "abcd"}


def test_a_tidied_row_merging_seen_rows_adds_only_its_new_updates() -> None:
    s = Session()
    s.edit(ANN, insert(None, 0, "ab"))
    s.edit(ANN, insert(None, 2, "cd"))
    s.edit(ANN, insert(None, 4, "ef"))
    p = Playback()
    p.extend(s.rows[:2])
    first, second, third = s.rows
    merged = HistoryRow(3, first.ts_first, third.ts, ANN, "edit", [
        *first.updates, *second.updates, *third.updates])  # fmt: skip
    [event] = p.extend([merged])
    assert event.chars_added == 2
    assert p.files_at(None) == {"main.py": "abcdef"}
    assert p.summary()["people"][0]["typed"] == 6


def test_a_renamed_file_keeps_its_authors() -> None:
    s = Session()
    s.edit(ANN, lambda d: schema.files(d).__setitem__("old.py", Text("ann's")))
    s.edit(BOB, insert("old.py", 5, " bob"))

    def rename(doc: Doc[Any]) -> None:  # as web/src/workspace.ts renameFile does
        files = schema.files(doc)
        files["new.py"] = Text(str(files["old.py"]))
        del files["old.py"]

    s.edit(ANN, rename)
    s.edit(BOB, lambda d: schema.files(d).__setitem__("x.py", Text("x")))
    s.edit(BOB, lambda d: schema.files(d).pop("x.py"))
    p = Playback()
    events = p.extend(s.rows)
    assert (events[2].chars_added, events[2].chars_removed) == (0, 0)
    assert events[2].files == ["new.py", "old.py"]
    assert (events[4].chars_removed, events[4].files) == (1, ["x.py"])
    got = p.authorship_at("new.py")
    assert got is not None and got["text"] == "ann's bob"
    assert [(sp["from"], sp["to"], got["people"][sp["who"]]["id"]) for sp in got["spans"]] == [
        (0, 5, "u-ann"),
        (5, 9, "u-bob"),
    ]
    assert p.authorship_at("old.py") is None
    assert p.authorship_at("new.py", s.rows[1].ts) is None
