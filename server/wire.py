"""What the websocket endpoint and the fast transport agree on, and nothing private.

The transport (``server.uvicorn_fast``) offers the endpoint two ASGI extensions in the
connection's scope; the endpoint (``server.websocket``) uses them when they are there and
the plain ASGI ``send``/``receive`` when they are not (stock uvicorn, hypercorn):

- ``DIRECT_EXTENSION``: ``write(payload: bytes) -> bool`` writes one binary message now;
  False means not now (before the handshake, while closing, under backpressure), and the
  caller falls back to the ASGI send.
- ``RECEIVE_EXTENSION``: ``set_receiver(callback) -> bool`` hands each binary message to
  ``callback`` as it is parsed instead of queueing it for ``receive``; False means messages
  are still queued, to be read first.
"""

from __future__ import annotations

import struct

DIRECT_EXTENSION = "codementor.direct"
RECEIVE_EXTENSION = "codementor.receive"

_last_payload: bytes | None = None
_last_frame = b""


def binary_frame(payload: bytes) -> bytes:
    """An unmasked, final, binary websocket frame (RFC 6455 §5.2; server to client).
    The last one is remembered, so a broadcast serialises its frame once."""
    global _last_payload, _last_frame
    if payload is _last_payload:
        return _last_frame
    size = len(payload)
    if size < 126:
        header = bytes((0x82, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x82, 126, size)
    else:
        header = struct.pack("!BBQ", 0x82, 127, size)
    _last_payload, _last_frame = payload, header + payload
    return _last_frame
