from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import settings

from tests.anthropic_double import AnthropicDouble
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess

# CI runs the same examples every time, so a red run is reproducible and not luck.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with custom settings; every one is stopped at teardown."""
    with ExitStack() as started:

        def start(data_dir: Path | None = None, **env: str) -> ServerProcess:
            return started.enter_context(ServerProcess(data_dir or tmp_path / "data", env))

        yield start


@pytest.fixture
def server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server shared by a module's tests (hypothesis examples cannot use per-test fixtures)."""
    with ServerProcess(tmp_path_factory.mktemp("module-data")) as proc:
        yield proc


@pytest.fixture
def double() -> Iterator[AnthropicDouble]:
    """The Anthropic Messages API double (tests/anthropic_double.py), for the AI tests."""
    fake = AnthropicDouble().start()
    yield fake
    fake.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    proc = RedisProcess(tmp_path / "redis").start()
    yield proc
    proc.stop()
