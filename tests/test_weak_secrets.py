"""A short HS256 key falls to brute force from any token it signed (a viewer link is
enough): ``CODEMENTOR_SECRET`` and ``CODEMENTOR_ADMIN_TOKEN`` under 32 bytes are refused
at start with one line on stderr that names the variable, never its value, and says how
to make a good one; ``codementor token`` refuses to sign with such a secret too."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.serverproc import ROOT, ServerProcess
from tests.support import free_port

SHORT = "weak-" + "s" * 26  # 31 bytes
assert len(SHORT.encode()) == 31


def codementor(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CODEMENTOR_")}
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env={**inherited, "CODEMENTOR_DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], variable: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"codementor: {variable} is 31 bytes"), line
    assert "at least 32" in line and "secrets.token_hex(32)" in line
    assert SHORT not in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_a_short_secret_refuses_to_start(tmp_path: Path, host: str) -> None:
    result = codementor(
        tmp_path, "serve", CODEMENTOR_HOST=host, CODEMENTOR_PORT=str(free_port()),
        CODEMENTOR_SECRET=SHORT,
    )  # fmt: skip
    assert_one_line_refusal(result, "CODEMENTOR_SECRET")


def test_the_one_byte_secret_of_the_report_refuses_to_start(tmp_path: Path) -> None:
    result = codementor(
        tmp_path, "serve", CODEMENTOR_HOST="0.0.0.0", CODEMENTOR_PORT=str(free_port()),
        CODEMENTOR_SECRET="x",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("codementor: CODEMENTOR_SECRET is 1 bytes")


def test_a_short_admin_token_refuses_to_start(tmp_path: Path) -> None:
    result = codementor(
        tmp_path, "serve", CODEMENTOR_PORT=str(free_port()),
        CODEMENTOR_SECRET=secrets.token_hex(32), CODEMENTOR_ADMIN_TOKEN=SHORT,
    )  # fmt: skip
    assert_one_line_refusal(result, "CODEMENTOR_ADMIN_TOKEN")


def test_the_token_command_refuses_a_short_secret(tmp_path: Path) -> None:
    result = codementor(
        tmp_path, "token", "--room", "r", "--role", "viewer", "--name", "Sam",
        CODEMENTOR_SECRET=SHORT,
    )  # fmt: skip
    assert_one_line_refusal(result, "CODEMENTOR_SECRET")


def test_a_32_byte_secret_and_admin_token_start(
    server_factory: Callable[..., ServerProcess],
) -> None:
    admin = secrets.token_hex(16)  # 32 characters
    server = server_factory(CODEMENTOR_SECRET="s" * 32, CODEMENTOR_ADMIN_TOKEN=admin)
    created = httpx.post(
        server.http_url + "/api/rooms", json={}, headers={"authorization": f"Bearer {admin}"}
    )
    assert created.status_code == 201
