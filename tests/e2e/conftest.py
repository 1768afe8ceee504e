"""Browser tests: the built web client (web/dist) against a real server, in Chromium.

Playwright drives the system Chromium (/usr/bin/chromium, Debian's `chromium`);
it never downloads a browser. Each test writes the screenshot of what it checked to
test-output/screenshots/<test name>.png.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.anthropic_double import AnthropicDouble
from tests.judge0_double import Judge0Double
from tests.serverproc import ROOT, ServerProcess

DIST_INDEX = ROOT / "web" / "dist" / "index.html"
CHROMIUM = Path(os.environ.get("CODEMENTOR_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "test-output" / "screenshots"
SECRET = "e2e-secret-" + "0123456789abcdef" * 2
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
JUDGE0_TOKEN = "e2e-judge0-token"


@pytest.fixture(scope="session", autouse=True)
def _built_client() -> None:
    if not DIST_INDEX.exists():
        pytest.fail(
            "web/dist/index.html is missing: the browser tests need the built client. "
            "Run `make install` (npm ci and vite build in web/)."
        )


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One Chromium for the package. Package scope, not session: the sync Playwright API
    runs its own event loop in this thread, which must be gone before other packages'
    asyncio tests run."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium chromium-driver`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - dev extras not installed
        pytest.fail("playwright is not installed: run `make install` (dev extras)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def judge0() -> Iterator[Judge0Double]:
    """The Judge0 double (a real Python subprocess per run) behind ``runner_server``."""
    double = Judge0Double(auth_token=JUDGE0_TOKEN).start()
    yield double
    double.stop()


@pytest.fixture
def runner_server(
    server_factory: Callable[..., ServerProcess], judge0: Judge0Double
) -> ServerProcess:
    """A server whose runner talks to the Judge0 double."""
    return server_factory(
        CODEMENTOR_SECRET=SECRET,
        CODEMENTOR_JUDGE0_URL=judge0.url,
        CODEMENTOR_JUDGE0_TOKEN=JUDGE0_TOKEN,
    )


@pytest.fixture
def ai_server(
    server_factory: Callable[..., ServerProcess], double: AnthropicDouble
) -> ServerProcess:
    """A server whose real anthropic SDK talks to the Messages API double."""
    return server_factory(
        CODEMENTOR_SECRET=SECRET,
        ANTHROPIC_API_KEY="test-key",
        CODEMENTOR_AI_BASE_URL=double.url,
        CODEMENTOR_AI_MAX_RETRIES="0",
    )


@pytest.fixture
def e2e_server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    """A server with a known secret, so tests can also mint tokens themselves."""
    return server_factory(CODEMENTOR_SECRET=SECRET)


class People:
    """Browser contexts for one test, one per person, closed at teardown.

    A page must not log a console error: what a person does normally leaves the console
    clean. A test that provokes one on purpose (a refused link, a server stopped under
    the page) names what it expects with ``allow_console``.
    """

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.errors: list[str] = []  # uncaught exceptions in any page
        self.console: list[str] = []  # console errors not allowed by the test
        self._allowed: list[re.Pattern[str]] = []

    def allow_console(self, pattern: str) -> None:
        """Console errors matching ``pattern`` (a regex) are expected in this test."""
        self._allowed.append(re.compile(pattern))

    def _on_console(self, name: str, message: Any) -> None:
        if message.type != "error":
            return
        text = str(message.text)
        if not any(p.search(text) for p in self._allowed):
            self.console.append(f"{name}: {text}")

    def page(
        self, name: str, color: str = "#2f5bd3", viewport: dict[str, int] | None = None
    ) -> Any:
        context = self.browser.new_context(viewport=viewport or WIDE)
        identity = json.dumps({"name": name, "color": color})
        context.add_init_script(
            f"localStorage.setItem('codementor.identity', {json.dumps(identity)})"
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{name}: {error}"))
        page.on("console", lambda message: self._on_console(name, message))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def people(browser: Any) -> Iterator[People]:
    crowd = People(browser)
    yield crowd
    crowd.close()
    assert not crowd.errors, f"uncaught errors in the page: {crowd.errors}"
    assert not crowd.console, f"console errors in the page: {crowd.console}"


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """screenshot(page) -> test-output/screenshots/<test name>.png; suffix for extra views."""

    def take(page: Any, suffix: str = "", full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        path = SCREENSHOTS / f"{name}{'-' + suffix if suffix else ''}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


# -- REST helpers ------------------------------------------------------------------


def create_room(
    server: ServerProcess, mode: str = "pair", language: str = "python", title: str = "e2e"
) -> dict[str, Any]:
    response = httpx.post(
        server.http_url + "/api/rooms",
        json={"mode": mode, "language": language, "title": title},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def personal_link(server: ServerProcess, created: dict[str, Any], role: str, name: str) -> str:
    """A named token from the owner (POST /tokens), as a /r/ link."""
    response = httpx.post(
        f"{server.http_url}/api/rooms/{created['room']}/tokens",
        json={"role": role, "name": name},
        headers={"Authorization": f"Bearer {created['owner_token']}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return f"{server.http_url}/r/{created['room']}?token={response.json()['token']}"


def snapshot(server: ServerProcess, created: dict[str, Any]) -> str:
    response = httpx.get(
        f"{server.http_url}/api/rooms/{created['room']}/snapshot",
        headers={"Authorization": f"Bearer {created['owner_token']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.text


def room_details(server: ServerProcess, created: dict[str, Any]) -> dict[str, Any]:
    """The room as its owner sees it over REST."""
    return server.room_details(created["room"], created["owner_token"])
