"""Workspace paths: one normal form, and every rule named when broken."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Doc, Text

from crdt import paths, schema


@pytest.mark.parametrize(
    ("given", "normal"),
    [("main.py", "main.py"), ("src/app/util.py", "src/app/util.py"),
     ("cafe\u0301.py", "caf\u00e9.py"), ("a/" * 7 + "b.c", "a/" * 7 + "b.c")],
)  # fmt: skip
def test_normal_forms(given: str, normal: str) -> None:
    assert paths.normalize(given) == normal
    assert paths.is_normal(normal)


@pytest.mark.parametrize(
    ("bad", "rule"),
    [("", "empty"), ("/etc/passwd", "relative"), ("a//b", "empty segments"),
     ("a/", "empty segments"), ("../x", ". or .."), ("a/./b", ". or .."),
     ("a\\b", "use /"), ("a\x00b", "control"), ("a\nb", "control"), (" a", "spaces"),
     ("a/" * 8 + "b", "levels deep"), ("x" * 256, "bytes"), ("é" * 128, "bytes")],
)  # fmt: skip
def test_rules_are_named(bad: str, rule: str) -> None:
    with pytest.raises(paths.PathError) as caught:
        paths.normalize(bad)
    assert rule in caught.value.rule
    assert not paths.is_normal(bad)


def test_language_by_extension_else_the_rooms() -> None:
    assert paths.language_for("src/Main.java", "python") == "java"
    assert paths.language_for("util.H", "python") == "c"
    assert paths.language_for("README.md", "go") == "go"
    assert paths.default_entry("java") == "Main.java"
    assert paths.default_entry(None) == "main.py"


def test_a_room_from_before_workspaces_has_its_code_as_the_entry_file() -> None:
    doc: Doc[Any] = Doc()
    schema.code(doc).insert(0, "print(1)\n")
    schema.meta(doc)["language"] = "go"
    assert schema.entry_path(doc) == "main.go"
    assert schema.workspace(doc) == {"main.go": "print(1)\n"}
    schema.meta(doc)["entry"] = "cmd/main.go"
    schema.files(doc)["util/strings.go"] = Text("package util\n")
    assert schema.workspace(doc) == {
        "cmd/main.go": "print(1)\n",
        "util/strings.go": "package util\n",
    }
    assert str(schema.file_text(doc, "util/strings.go")) == "package util\n"
    entry = schema.file_text(doc, "cmd/main.go")
    assert entry is not None and str(entry) == "print(1)\n"
    assert schema.file_text(doc, "nope.go") is None
    schema.meta(doc)["entry"] = "../escape.go"  # not a normal path: the default again
    assert schema.entry_path(doc) == "main.go"
