"""The built client is served compressed and cached: hashed assets for a year
(``immutable``) and gzip-compressed once; the page itself is revalidated every time."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator

import httpx
import pytest

from server.web import DIST, _accepts_gzip
from tests.serverproc import ServerProcess


@pytest.fixture(scope="module")
def http(module_server: ServerProcess) -> Iterator[httpx.Client]:
    # httpx would decompress on its own: read the raw bytes to see what was sent.
    with httpx.Client(base_url=module_server.http_url, timeout=10) as client:
        yield client


def bundle_path(http: httpx.Client) -> str:
    found = re.search(r'src="(/assets/[^"]+\.js)"', http.get("/").text)
    assert found is not None
    return found[1]


def test_the_bundle_is_gzipped_and_cached_for_a_year(http: httpx.Client) -> None:
    path = bundle_path(http)
    on_disk = (DIST / path.lstrip("/")).read_bytes()
    with http.stream("GET", path, headers={"Accept-Encoding": "gzip, br"}) as response:
        raw = b"".join(response.iter_raw())
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-type"].split(";")[0].endswith("javascript")
    assert gzip.decompress(raw) == on_disk
    assert len(raw) < len(on_disk) / 2


def test_without_gzip_the_bytes_are_plain(http: httpx.Client) -> None:
    path = bundle_path(http)
    for accept in ("identity", "gzip;q=0"):
        with http.stream("GET", path, headers={"Accept-Encoding": accept}) as response:
            raw = b"".join(response.iter_raw())
        assert "content-encoding" not in response.headers
        assert raw == (DIST / path.lstrip("/")).read_bytes()


def test_a_revalidation_answers_304(http: httpx.Client) -> None:
    path = bundle_path(http)
    etag = http.get(path).headers["etag"]
    again = http.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert http.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize(
    "path", ["/assets/nope.js", "/assets/..%2Findex.html", "/assets/%2E%2E/index.html"]
)
def test_only_built_assets_are_served(http: httpx.Client, path: str) -> None:
    assert http.get(path).status_code == 404


@pytest.mark.parametrize("path", ["/r/some-room", "/x/some-exercise"])
def test_the_page_is_revalidated_not_cached(http: httpx.Client, path: str) -> None:
    """A room and an exercise's grid are the same page, routed by the client."""
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("gzip", True), ("br, gzip;q=0.5", True), ("*", True), ("gzip;q=0", False),
     ("identity", False), ("", False), ("gzip;q=zero", False)],
)  # fmt: skip
def test_accept_encoding(header: str, expected: bool) -> None:
    assert _accepts_gzip(header) is expected
