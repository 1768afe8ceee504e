"""Serving the browser client built into ``web/dist`` (``make install`` builds it).

``/`` and ``/r/{room}`` answer the single page; ``/assets`` the hashed bundles.
Nothing comes from a CDN. Without a build, ``/`` says how to make one.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

DIST = Path(__file__).resolve().parent.parent / "web" / "dist"

NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>CodeMentor Collab</title>
<p>The web client is not built. Run <code>make install</code> (npm ci and vite build in
<code>web/</code>), then reload.</p>"""


def routes(dist: Path = DIST) -> list[BaseRoute]:
    index = dist / "index.html"

    async def page(request: Request) -> Response:
        if not index.exists():
            return HTMLResponse(NOT_BUILT, status_code=503)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    found: list[BaseRoute] = [Route("/", page), Route("/r/{room}", page)]
    if (dist / "assets").is_dir():
        found.append(Mount("/assets", StaticFiles(directory=dist / "assets"), name="assets"))
    return found
