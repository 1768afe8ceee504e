"""Dependencies declared and locked: every package our code imports is declared in
pyproject.toml, every declared one is pinned in the lock files, and the image installs
from the lock, so what ships is what CI ran."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OURS: list[str] = PROJECT["tool"]["setuptools"]["packages"]


def declared(requirements: list[str]) -> dict[str, Requirement]:
    return {str(canonicalize_name(r.name)): r for r in map(Requirement, requirements)}


def locked(path: Path) -> dict[str, str]:
    """name -> exact version for this interpreter, from a ``uv pip compile --universal`` lock
    (a package may be pinned twice, under markers such as ``python_full_version < '3.12'``)."""
    pins = re.findall(
        r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)(?: ; ([^\\\n]+))?", path.read_text(), re.MULTILINE
    )
    return {
        str(canonicalize_name(name)): version
        for name, version, marker in pins
        if not marker or Marker(marker.strip()).evaluate()
    }


def imported_modules() -> set[str]:
    """Top-level modules our packages import (not the standard library, not ours)."""
    found: set[str] = set()
    for package in OURS:
        for file in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - set(OURS) - {"__future__"}


def test_every_imported_package_is_declared() -> None:
    runtime = declared(PROJECT["project"]["dependencies"])
    owners = packages_distributions()
    undeclared = {
        module: owners.get(module, ["(not installed)"])
        for module in imported_modules()
        if not any(canonicalize_name(d) in runtime for d in owners.get(module, []))
    }
    assert undeclared == {}, "imported but not in [project.dependencies]"


def test_every_declared_package_is_pinned_in_the_locks() -> None:
    runtime_lock = locked(ROOT / "requirements.lock")
    dev_lock = locked(ROOT / "requirements-dev.lock")
    runtime = declared(PROJECT["project"]["dependencies"])
    dev = declared(PROJECT["project"]["optional-dependencies"]["dev"])
    missing = [name for name in runtime if name not in runtime_lock]
    missing += [
        name
        for name, req in {**runtime, **dev}.items()
        if name not in dev_lock and (req.marker is None or req.marker.evaluate())
    ]
    assert missing == [], "run `make lock`"
    # Each pin satisfies pyproject's range, and both locks agree on what they share.
    for name, req in runtime.items():
        assert req.specifier.contains(runtime_lock[name], prereleases=True), (name, req)
    shared = runtime_lock.keys() & dev_lock.keys()
    assert {n: runtime_lock[n] for n in shared} == {n: dev_lock[n] for n in shared}


def test_the_environment_is_the_lock() -> None:
    """What the tests run on is what the lock says (``make install`` installs from it)."""
    from importlib.metadata import distributions

    dev_lock = locked(ROOT / "requirements-dev.lock")
    installed = {str(canonicalize_name(d.metadata["Name"])): d.version for d in distributions()}
    differs = {
        name: (version, installed[name])
        for name, version in dev_lock.items()
        if name in installed and installed[name] != version
    }
    assert differs == {}, "the venv differs from requirements-dev.lock: run `make install`"


def test_the_image_installs_from_the_lock_by_hash() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements.lock" in dockerfile
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-deps /src" in dockerfile
    lock = (ROOT / "requirements.lock").read_text()
    entries = re.findall(r"^[A-Za-z0-9_.\-]+==.*?(?=^\S|\Z)", lock, re.MULTILINE | re.DOTALL)
    assert entries and all("--hash=sha256:" in entry for entry in entries)
