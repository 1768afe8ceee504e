"""bench/run.py --pin (bench/procs.py): the server under test gets the last CPU, the
generators and the driver the others, and a child started with ``on_cpus`` really runs
only there."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Literal

import pytest

from bench import procs


def test_split_gives_the_server_the_last_cpu_and_the_load_the_rest() -> None:
    split = procs.split_cpus({3, 0, 2, 1})
    assert split.server == {3}
    assert split.load == {0, 1, 2}
    assert "servers on CPU 3" in split.describe()


def test_split_refuses_a_single_cpu() -> None:
    with pytest.raises(SystemExit, match="at least 2 CPUs"):
        procs.split_cpus({5})


def test_unpinned_children_get_no_preexec() -> None:
    assert procs.PIN is None
    assert procs.on_cpus("server") is None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to split")
def test_pinned_children_run_on_their_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    split = procs.split_cpus(os.sched_getaffinity(0))
    monkeypatch.setattr(procs, "PIN", split)
    probe = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
    roles: list[tuple[Literal["server", "load"], frozenset[int]]] = [
        ("server", split.server),
        ("load", split.load),
    ]
    for role, want in roles:
        out = subprocess.run(
            probe, preexec_fn=procs.on_cpus(role), capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == str(sorted(want)), role
