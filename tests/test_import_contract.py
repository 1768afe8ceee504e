"""The import contract in pyproject.toml (``lint-imports``, part of ``make lint``).

The real tree keeps it, and a copy of the tree with one planted import breaks it: an
upward import, an import between the two independent middle packages, a cycle inside
a package, and I/O in ``crdt``. Each copy runs the real ``lint-imports`` with the real
configuration, so a contract loosened by mistake fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("crdt", "rooms", "runner", "ai_assist", "server")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports over the packages under ``tree`` (it analyses from its cwd)."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", "pyproject.toml"],
        cwd=tree,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_tree(target: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def test_the_tree_keeps_the_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("crdt/planted.py", "import rooms.room", "server > ai_assist | runner"),
        ("rooms/planted.py", "import server.settings", "server > ai_assist | runner"),
        ("rooms/planted.py", "import runner.service", "server > ai_assist | runner"),
        ("runner/planted.py", "import ai_assist.service", "server > ai_assist | runner"),
        ("ai_assist/planted.py", "import runner.judge0", "server > ai_assist | runner"),
        ("crdt/planted.py", "import redis", "crdt does no I/O"),
        ("rooms/planted.py", "import rooms.room", "no import cycles"),
    ],
)
def test_a_planted_import_breaks_the_contract(
    tmp_path: Path, module: str, planted: str, contract: str
) -> None:
    tree = copy_tree(tmp_path)
    path = tree / module
    path.write_text(f'"""Planted by a test."""\n\n{planted}\n')
    if contract == "no import cycles":
        # Close the circle: rooms.room (through rooms.broker) now imports the planted module.
        broker = tree / "rooms/broker.py"
        broker.write_text(broker.read_text() + "\nimport rooms.planted  # noqa: E402\n")

    result = lint_imports(tree)

    assert result.returncode == 1, result.stdout + result.stderr
    verdicts = [line for line in result.stdout.splitlines() if line.startswith(contract)]
    assert verdicts and " BROKEN" in verdicts[0], result.stdout
    # It is the planted import that broke it, in the copy (not the installed tree).
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert ".planted" in broken, broken
