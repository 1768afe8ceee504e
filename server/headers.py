"""Security headers on every HTTP response; a Content Security Policy on HTML pages.

Join links carry tokens in the URL (``/r/{room}?token=...``): ``Referrer-Policy:
no-referrer`` keeps them out of the ``Referer`` of every request a page makes.
``nosniff`` stops a browser from running a JSON or text answer as script. Pages get
a CSP that allows scripts from the server only (the Vite build has no inline script),
styles from the server plus inline ones (CodeMirror and y-codemirror.next set ``style``
attributes on remote cursors; the people list sets colours), the websocket of the
same host, images from the server and ``data:`` (the favicon), and no framing
(``frame-ancestors 'none'``, with ``X-Frame-Options`` for older browsers).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'{sockets}; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
# A Host header is reflected into the policy only when it is a plain host[:port]: never
# a value that could end the directive and start another.
PLAIN_HOST = re.compile(rb"([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?")


def page_policy(host: bytes | None) -> bytes:
    """The CSP of a page served to ``host``. ``connect-src 'self'`` covers the same host's
    ws:/wss: in CSP 3 browsers; the explicit pair is for the ones before."""
    sockets = ""
    if host is not None and PLAIN_HOST.fullmatch(host):
        name = host.decode("ascii")
        sockets = f" ws://{name} wss://{name}"
    return PAGE_POLICY.format(sockets=sockets).encode()


class SecurityHeaders:
    """Adds the headers to every HTTP response (websockets have no response to add to)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers.extend(ALWAYS)
                if _is_html(headers):
                    host = next((v for k, v in scope["headers"] if k == b"host"), None)
                    headers.append((b"content-security-policy", page_policy(host)))
                    headers.append((b"x-frame-options", b"DENY"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
