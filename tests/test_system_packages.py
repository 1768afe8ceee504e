"""``.ci/system-packages``, which ``make run`` and ``make test`` call first: nothing to do
when everything is there; a user who cannot install gets the exact command at once."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "system-packages"


def run(
    profile: str, *, as_user: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(SCRIPT), profile]
    if as_user is not None:
        command = ["runuser", "-u", as_user, "--", "env", *(f"{k}={v}" for k, v in env.items()),
                   *command]  # fmt: skip
        env = {}
    return subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


def test_nothing_is_done_when_everything_is_there() -> None:
    # `make test` installed what the suite needs before the suite ran.
    done = run("test")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root to act as another user"
)
def test_a_user_who_cannot_install_is_told_the_command() -> None:
    # A browser that is not there, for a user without root or passwordless sudo.
    missing = run("test", as_user="nobody", CODEMENTOR_CHROMIUM="/nonexistent/chromium")
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        "make test needs these Debian packages: chromium",
        "install them, then run make test again:",
        "    sudo apt-get update && sudo apt-get install -y chromium",
    ]
    # `make run` needs no browser.
    assert run("run", as_user="nobody", CODEMENTOR_CHROMIUM="/nonexistent").returncode == 0
