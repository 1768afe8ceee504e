"""The workspace's rules on peers' updates (``rooms.workspace``), in a real room.

An owner's or editor's update that would break a rule is refused whole, like a
reviewer's: not applied, not relayed, the sender told "permission denied" once. A
keystroke inside an existing file never goes through a copy of the document.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Map, Text

from crdt import schema
from crdt.offsets import utf8_len
from rooms.registry import RegistrySettings
from rooms.roles import Role
from rooms.workspace import WorkspaceError, WorkspaceLimits, WorkspaceRules, check_document
from tests.harness import FakeClient, pump_all, settings, started

pytestmark = pytest.mark.anyio

LIMITS = WorkspaceLimits(max_files=4, max_file_bytes=200, max_workspace_bytes=500)


def config(limits: WorkspaceLimits = LIMITS) -> RegistrySettings:
    base = settings()
    return RegistrySettings(
        idle_unload_seconds=base.idle_unload_seconds,
        persistence=base.persistence,
        workspace=limits,
    )


def add(path: str, text: str = "x = 1\n") -> Callable[[Doc[Any]], None]:
    def change(doc: Doc[Any]) -> None:
        schema.files(doc)[path] = Text(text)

    return change


def set_entry(value: object) -> Callable[[Doc[Any]], None]:
    def change(doc: Doc[Any]) -> None:
        schema.meta(doc)[schema.ENTRY] = value

    return change


def not_text(doc: Doc[Any]) -> None:
    schema.files(doc)["data.py"] = Map({"a": 1})


def entry_is_a_file(doc: Doc[Any]) -> None:
    schema.files(doc)["lib.py"] = Text("")
    schema.meta(doc)[schema.ENTRY] = "lib.py"


def append(path: str, text: str) -> Callable[[Doc[Any]], None]:
    def change(doc: Doc[Any]) -> None:
        target = schema.code(doc) if path == "main.py" else schema.files(doc)[path]
        target.insert(utf8_len(str(target)), text)

    return change


REFUSED: dict[str, Callable[[Doc[Any]], None]] = {
    "a path with ..": add("../evil.py"),
    "a path with a leading /": add("/etc/passwd"),
    "a path not NFC": add("cafe\u0301.py"),
    "a path with a backslash": add("src\\a.py"),
    "a value that is not a Text": not_text,
    "a file over its byte limit": add("big.py", "é" * 101),
    "meta.entry not normal": set_entry("./main.py"),
    "meta.entry not a string": set_entry(7),
    "meta.entry naming a key of files": entry_is_a_file,
    "the entry file's path added to files": add("main.py"),
}


async def two_editors(registry: Any, room: str) -> tuple[FakeClient, FakeClient]:
    ada = await FakeClient(Role.EDITOR, name="Ada").join(registry, room)
    bob = await FakeClient(Role.EDITOR, name="Bob").join(registry, room)
    pump_all(ada, bob)
    return ada, bob


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_an_update_breaking_a_rule_is_refused_whole(tmp_path: Path, case: str) -> None:
    async with started(tmp_path, config=config()) as registry:
        ada, bob = await two_editors(registry, "rules")
        assert ada.room is not None
        before = ada.room.doc.get_update()
        with ada.doc.transaction():
            ada.type("print('kept out')\n")  # the same transaction: refused with it
            REFUSED[case](ada.doc)
        pump_all(ada, bob)
        assert ada.room.doc.get_update() == before, "the refused update reached the document"
        assert "kept out" not in str(bob.text)
        assert ada.denials == ["permission denied"]
        # The room goes on: the other editor's allowed change is applied and relayed.
        add("ok.py")(bob.doc)
        pump_all(ada, bob)
        assert "ok.py" in schema.files(ada.room.doc)
        assert bob.denials == []


async def test_allowed_changes_pass(tmp_path: Path) -> None:
    async with started(tmp_path, config=config()) as registry:
        ada, bob = await two_editors(registry, "ok")
        assert ada.room is not None
        add("src/util.py", "def f():\n    return 1\n")(ada.doc)
        set_entry("app.py")(ada.doc)
        append("src/util.py", "# ünïcode\n")(ada.doc)
        del schema.files(ada.doc)["src/util.py"]
        add("src/util.py", "again\n")(ada.doc)
        pump_all(ada, bob)
        assert ada.denials == []
        assert dict(schema.workspace(bob.doc)) == {"app.py": "", "src/util.py": "again\n"}
        check_document(ada.room.doc, LIMITS)


async def test_deleting_meta_entry_onto_a_file_is_refused(tmp_path: Path) -> None:
    """An update that only deletes carries no new item: the delete of ``meta.entry`` is
    what would put the entry file (then ``main.py``, the default) onto ``files/main.py``."""
    async with started(tmp_path, config=config()) as registry:
        ada, bob = await two_editors(registry, "delete-entry")
        assert ada.room is not None
        set_entry("app.py")(ada.doc)
        add("main.py", "other\n")(ada.doc)
        pump_all(ada, bob)
        assert ada.denials == []
        before = ada.room.doc.get_update()
        del schema.meta(ada.doc)[schema.ENTRY]
        pump_all(ada, bob)
        assert ada.denials == ["permission denied"]
        assert ada.room.doc.get_update() == before
        assert schema.meta(bob.doc)[schema.ENTRY] == "app.py"
        # Without the clash, deleting it is allowed: the entry file becomes main.py again.
        del schema.files(bob.doc)["main.py"]
        pump_all(ada, bob)
        del schema.meta(bob.doc)[schema.ENTRY]
        pump_all(ada, bob)
        assert bob.denials == []
        assert schema.ENTRY not in schema.meta(ada.room.doc)


async def test_too_many_files_is_refused(tmp_path: Path) -> None:
    async with started(tmp_path, config=config()) as registry:
        ada, bob = await two_editors(registry, "many")
        assert ada.room is not None
        for n in range(3):  # with the entry file: 4, the limit
            add(f"f{n}.py")(ada.doc)
        pump_all(ada, bob)
        assert ada.denials == []
        add("one-too-many.py")(ada.doc)
        pump_all(ada, bob)
        assert ada.denials == ["permission denied"]
        assert "one-too-many.py" not in schema.files(bob.doc)
        assert len(schema.files(ada.room.doc)) == 3


async def test_typing_past_a_file_limit_is_refused(tmp_path: Path) -> None:
    """Keystrokes are checked against running bounds; the one that would pass the file
    limit is measured exactly and refused, in ``code`` and in a file of ``files``."""
    async with started(tmp_path, config=config()) as registry:
        ada, bob = await two_editors(registry, "grow")
        assert ada.room is not None
        add("lib.py", "")(ada.doc)
        pump_all(ada, bob)
        # A refused update leaves a gap in its sender's clocks (its later updates wait
        # for it, as a reviewer's do): each file gets a typist of its own.
        for path, typist in (("main.py", ada), ("lib.py", bob)):
            for _ in range(190):
                append(path, "a")(typist.doc)
            pump_all(ada, bob)
            assert typist.denials == [], path
            append(path, "b" * 11)(typist.doc)  # 201 bytes: one over
            pump_all(ada, bob)
            room_doc = ada.room.doc
            text = schema.code(room_doc) if path == "main.py" else schema.files(room_doc)[path]
            assert str(text) == "a" * 190, path
            assert typist.denials == ["permission denied"], path


async def test_the_workspace_limit_counts_every_file(tmp_path: Path) -> None:
    async with started(tmp_path, config=config()) as registry:
        ada, bob = await two_editors(registry, "total")
        assert ada.room is not None
        add("a.py", "a" * 150)(ada.doc)
        add("b.py", "b" * 150)(ada.doc)
        add("c.py", "c" * 150)(ada.doc)
        pump_all(ada, bob)
        assert ada.denials == []
        append("main.py", "m" * 49)(ada.doc)  # 499 bytes in all
        pump_all(ada, bob)
        assert ada.denials == []
        append("a.py", "zz")(ada.doc)  # 501
        pump_all(ada, bob)
        assert ada.denials == ["permission denied"]
        assert str(schema.files(ada.room.doc)["a.py"]) == "a" * 150


async def test_a_keystroke_in_a_file_takes_no_copy(tmp_path: Path) -> None:
    """The fast path: typing in ``code`` or in a file of ``files`` costs no copy of the
    document (``WorkspaceRules.copies`` counts them); adding a file does."""
    big = WorkspaceLimits()
    async with started(tmp_path, config=config(big)) as registry:
        ada, bob = await two_editors(registry, "fast")
        room = ada.room
        assert room is not None
        add("lib.py", "# lib\n")(ada.doc)
        pump_all(ada, bob)
        assert room.workspace.copies == 1
        started_at = time.perf_counter()
        for n in range(500):
            append("lib.py" if n % 2 else "main.py", "x")(ada.doc)
        elapsed = time.perf_counter() - started_at
        pump_all(ada, bob)
        assert room.workspace.copies == 1, "a keystroke went through a copy"
        assert str(schema.files(bob.doc)["lib.py"]).count("x") == 250
        assert ada.denials == []
        print(f"500 keystrokes in two files: {elapsed * 1e6 / 500:.1f} µs each, 0 copies")


def typed(doc: Doc[Any], text: str) -> bytes:
    """The update a replica of ``doc`` makes typing ``text`` at the end of ``code``."""
    replica: Doc[Any] = Doc()
    replica.apply_update(doc.get_update())
    before = replica.get_state()
    append("main.py", text)(replica)
    return replica.get_update(before)


def no_index() -> Any:
    raise AssertionError("a keystroke in code needs no parent index")


def test_server_edits_keep_the_bounds_upper_bounds() -> None:
    """A text grown by other means (``learn``) is measured again before a keystroke
    could pass the limit."""
    limits = WorkspaceLimits(max_files=4, max_file_bytes=40, max_workspace_bytes=100)
    rules = WorkspaceRules(limits)
    doc: Doc[Any] = Doc()
    schema.code(doc).insert(0, "abc")
    rules.check(doc, typed(doc, "xyz"), [(1, 0, 3, ("code", None), ())], no_index)
    assert rules.copies == 0
    before = doc.get_state()
    schema.code(doc).insert(3, "d" * 35)  # a server edit: 38 bytes now
    rules.learn(doc.get_update(before))
    with pytest.raises(WorkspaceError, match="at most 40 bytes"):
        rules.check(doc, typed(doc, "xyz"), [(1, 0, 3, ("code", None), ())], no_index)
