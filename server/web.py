"""Serving the browser client built into ``web/dist`` (``make install`` builds it).

``/``, ``/r/{room}`` and ``/x/{exercise}`` answer the single page; ``/assets`` the hashed bundles.
Nothing comes from a CDN. Without a build, ``/`` says how to make one.

Vite names every asset by a hash of its content, so an asset never changes under its
name: it is cached by browsers for a year (``immutable``) and compressed once, then kept
compressed in memory. Compressing per request would put tens of milliseconds of CPU on
the event loop for each student of a class that opens the page at once.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
# Below this, gzip's framing costs more than it saves.
MIN_COMPRESS = 1024
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")

NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>CodeMentor Collab</title>
<p>The web client is not built. Run <code>make install</code> (npm ci and vite build in
<code>web/</code>), then reload.</p>"""


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


class Assets:
    """``/assets/{name}``: only files the build put there (no path is ever joined from
    the request), each read and compressed once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.names = {p.name for p in directory.iterdir() if p.is_file()}
        self._cache: dict[str, Asset] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        name = request.path_params["name"]
        if request.method not in ("GET", "HEAD"):
            response: Response = PlainTextResponse("Method Not Allowed", 405)
        elif name not in self.names:
            response = PlainTextResponse("Not Found", 404)
        else:
            asset = self._cache.get(name)
            if asset is None:
                asset = await run_in_threadpool(self._load, name)
            response = self._respond(asset, request.headers)
        await response(scope, receive, send)

    def _load(self, name: str) -> Asset:
        body = (self.directory / name).read_bytes()
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        gzipped = None
        if len(body) >= MIN_COMPRESS and media_type.startswith(COMPRESSIBLE):
            # mtime=0: the same bytes on every instance, so caches agree.
            gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        asset = self._cache[name] = Asset(body, gzipped, media_type, etag)
        return asset

    @staticmethod
    def _respond(asset: Asset, headers: Headers) -> Response:
        common = {"Cache-Control": IMMUTABLE, "ETag": asset.etag, "Vary": "Accept-Encoding"}
        if asset.etag in headers.get("if-none-match", ""):
            return Response(status_code=304, headers=common)
        if asset.gzipped is not None and _accepts_gzip(headers.get("accept-encoding", "")):
            return Response(
                asset.gzipped, media_type=asset.media_type,
                headers={**common, "Content-Encoding": "gzip"},
            )  # fmt: skip
        return Response(asset.body, media_type=asset.media_type, headers=common)


def _accepts_gzip(accept_encoding: str) -> bool:
    """``gzip`` (or ``*``) listed without ``q=0``."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().lower().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


def routes(dist: Path = DIST) -> list[BaseRoute]:
    index = dist / "index.html"

    async def page(request: Request) -> Response:
        if not index.exists():
            return HTMLResponse(NOT_BUILT, status_code=503)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    # ``/x/{id}``: an exercise's grid (the teacher's), the same page routed by the client.
    found: list[BaseRoute] = [Route("/", page), Route("/r/{room}", page), Route("/x/{id}", page)]
    if (dist / "assets").is_dir():
        found.append(Route("/assets/{name}", Assets(dist / "assets"), methods=["GET", "HEAD"]))
    return found
