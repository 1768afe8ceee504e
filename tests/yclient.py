"""A minimal y-websocket client for tests: a pycrdt Doc synced over a real websocket.

It behaves like the JavaScript ``WebsocketProvider``: Step1 on open, answers the
server's Step1 with Step2, sends each local transaction as an Update, applies
remote updates without echoing them, and sends offline edits in its next Step2.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import websockets
from pycrdt import Doc, Text, TransactionEvent
from websockets.asyncio.client import ClientConnection

from crdt import protocol
from crdt.awareness import Entry, decode_update, encode_update

REMOTE = "remote"


class Notices:
    """What a client keeps of the room's messages other than the document: awareness
    states, permission denials, save receipts and role changes. Shared by this client
    and the in-process one (``tests.harness.FakeClient``)."""

    def __init__(self) -> None:
        self.awareness: dict[int, Any] = {}
        self.denials: list[str] = []
        self.receipts: list[bytes] = []
        self.role_notices: list[dict[str, Any]] = []

    def note(self, frame: bytes) -> None:
        kind = frame[0]
        if kind == protocol.MessageType.AWARENESS:
            message = protocol.parse_frame(frame)
            assert isinstance(message, protocol.AwarenessUpdate)
            for entry in decode_update(message.payload):
                if entry.state == "null":
                    self.awareness.pop(entry.client_id, None)
                else:
                    self.awareness[entry.client_id] = json.loads(entry.state)
        elif kind == protocol.MessageType.AUTH:
            self.denials.append(protocol.Reader(frame, 2).read_var_string())
        elif kind == protocol.MessageType.SAVE_RECEIPT:
            self.receipts.append(protocol.Reader(frame, 1).read_var_bytes())
        elif kind == protocol.MessageType.ROLE_CHANGED:
            self.role_notices.append(json.loads(protocol.Reader(frame, 1).read_var_string()))


class YClient(Notices):
    def __init__(self, url: str, doc: Doc[Any] | None = None) -> None:
        super().__init__()
        self.url = url
        self.doc = doc or Doc()
        self.text = self.doc.get("code", type=Text)
        self.ws: ClientConnection | None = None
        self.synced = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.received: list[bytes] = []
        self._clock = 0
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._remote = False
        self.doc.observe(self._on_local)

    async def connect(self, query: str = "") -> YClient:
        url = self.url + (f"?{query}" if query else "")
        self.synced.clear()
        self.closed.clear()
        self.close_code = None
        self.ws = await websockets.connect(url, max_size=None, compression=None)
        # A refused room (4404, 4403) may close before step 1 leaves; the reader
        # then records the close code, as a browser's provider would see it.
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(protocol.sync_step1(self.doc.get_state()))
        self._outbox = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())
        self._writer = asyncio.create_task(self._write())
        return self

    async def __aenter__(self) -> YClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _on_local(self, event: TransactionEvent) -> None:
        if self._remote or self.ws is None or self.closed.is_set():
            return
        self._outbox.put_nowait(protocol.update_frame(event.update))

    async def _write(self) -> None:
        # One writer keeps local updates in transaction order.
        assert self.ws is not None
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                frame = await self._outbox.get()
                try:
                    await self.ws.send(frame)
                finally:
                    self._outbox.task_done()

    async def _send_quietly(self, frame: bytes) -> None:
        self._outbox.put_nowait(frame)

    async def send_raw(self, frame: bytes | str) -> None:
        assert self.ws is not None
        await self.ws.send(frame)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                assert isinstance(frame, bytes)
                self.received.append(frame)
                await self._handle(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()
            if self._writer is not None:
                self._writer.cancel()

    async def _handle(self, frame: bytes) -> None:
        kind = frame[0]
        if kind == protocol.MessageType.SYNC:
            message = protocol.parse_frame(frame)
            if isinstance(message, protocol.SyncStep1):
                assert self.ws is not None
                await self._send_quietly(
                    protocol.sync_step2(self.doc.get_update(message.state_vector))
                )
            elif isinstance(message, protocol.DocUpdate):
                self._remote = True
                try:
                    self.doc.apply_update(message.update)
                finally:
                    self._remote = False
                if message.is_step2:
                    self.synced.set()
        else:
            self.note(frame)

    async def set_awareness(self, state: dict[str, Any] | None) -> None:
        self._clock += 1
        text = "null" if state is None else json.dumps(state)
        payload = encode_update([Entry(self.doc.client_id, self._clock, text)])
        await self.send_raw(protocol.awareness_frame(payload))

    async def close(self) -> None:
        """Send what is queued, then close (as a browser tab's provider would)."""
        if self._writer is not None:
            if not self._writer.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._outbox.join(), 5)
            self._writer.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader

    async def abort(self) -> None:
        """Drop the connection at once, abandoning queued frames (a network cut).
        The document keeps the edits; the next Step2 carries them."""
        if self._writer is not None:
            self._writer.cancel()
        if self.ws is not None:
            self.ws.transport.abort()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader

    async def wait_synced(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code
