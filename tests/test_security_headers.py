"""Every response carries ``nosniff`` and ``no-referrer`` (join links hold tokens); pages
carry the CSP, which reflects the Host only when it is a plain host[:port]. The browser
walk under the CSP is tests/e2e/test_csp.py."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.serverproc import ServerProcess

PATHS = ["/", "/r/some-room", "/healthz", "/readyz", "/metrics", "/api/config",
         "/api/rooms/nowhere", "/no/such/page", "/api/openapi.json"]  # fmt: skip


@pytest.fixture(scope="module")
def http(module_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=module_server.http_url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("path", PATHS)
def test_every_response_has_nosniff_and_no_referrer(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    is_page = response.headers["content-type"].startswith("text/html")
    assert ("content-security-policy" in response.headers) == is_page
    assert is_page == (path in ("/", "/r/some-room"))


def test_assets_and_errors_too(http: httpx.Client) -> None:
    asset = re.search(r'src="(/assets/[^"]+\.js)"', http.get("/").text)
    assert asset is not None
    for response in (http.get(asset[1]), http.post("/api/rooms", content=b"{")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_the_page_policy(http: httpx.Client, module_server: ServerProcess) -> None:
    response = http.get("/r/some-room")
    policy = dict(
        (part.split(" ", 1) + [""])[:2]
        for part in (p.strip() for p in response.headers["content-security-policy"].split(";"))
    )
    host = f"127.0.0.1:{module_server.port}"
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["connect-src"] == f"'self' ws://{host} wss://{host}"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert response.headers["x-frame-options"] == "DENY"


def test_a_host_that_is_not_plain_is_not_reflected(http: httpx.Client) -> None:
    response = http.get("/", headers={"host": "evil.example; script-src *"})
    policy = response.headers["content-security-policy"]
    assert "evil" not in policy and "script-src 'self';" in policy
    assert "connect-src 'self';" in policy
