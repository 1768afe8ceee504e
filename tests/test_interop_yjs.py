"""Interop with the real JavaScript clients: yjs 13.6 + y-websocket 3.1's stock
``WebsocketProvider`` (driven by ``tests/js/yjs_client.mjs`` in Node), next to
pycrdt's own ``Provider`` and the test ``YClient``, all on one server.

Needs Node on PATH and ``npm ci --prefix tests/js``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from httpx_ws import aconnect_ws
from pycrdt import Doc, Provider, Text
from pycrdt.websocket.websocket import HttpxWebsocket

from crdt import protocol
from crdt.awareness import decode_update
from crdt.offsets import codepoint_to_utf8
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

JS_DIR = Path(__file__).resolve().parent / "js"
TIMEOUT = 10.0


class NodeClient:
    """One ``node yjs_client.mjs`` process: commands to its stdin, events from its stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.synced = asyncio.Event()
        self.exited = asyncio.Event()
        self.errors: list[str] = []
        self.server_closes: list[dict[str, Any]] = []  # the server closed our socket
        self.stderr: list[str] = []
        self._states: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._read_events()), asyncio.create_task(self._drain())]

    async def _read_events(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            event = json.loads(line)
            kind = event["event"]
            if kind == "synced":
                self.synced.set()
            elif kind == "state":
                event["awareness"] = {int(k): v for k, v in event["awareness"].items()}
                self._states.put_nowait(event)
            elif kind == "error":
                self.errors.append(event["message"])
            elif kind == "connection-close":
                self.server_closes.append(event)
        self.exited.set()

    async def _drain(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace").rstrip())

    def diagnostics(self) -> str:
        return f"errors={self.errors} server_closes={self.server_closes} stderr={self.stderr}"

    async def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await asyncio.wait_for(self.proc.stdin.drain(), TIMEOUT)

    async def insert(self, text: str, *, index: int | str = 0, after: str | None = None) -> None:
        """``index`` is a Yjs (UTF-16) index or "end"; ``after`` inserts right after a piece."""
        if after is None:
            await self.send(op="insert", index=index, text=text)
        else:
            await self.send(op="insert", after=after, text=text)

    async def state(self) -> dict[str, Any]:
        await self.send(op="state")
        try:
            return await asyncio.wait_for(self._states.get(), TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"no state from node: {self.diagnostics()}") from None

    async def wait_state(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Poll the node client's state until ``predicate`` holds; return that state."""

        async def matching() -> dict[str, Any] | None:
            state = await self.state()
            assert not self.errors, self.diagnostics()
            return state if predicate(state) else None

        try:
            found = await eventually(matching, TIMEOUT, "node state")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.diagnostics()}") from None
        assert isinstance(found, dict)
        return found

    async def wait_synced(self) -> None:
        try:
            await asyncio.wait_for(self.synced.wait(), TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"node client never synced: {self.diagnostics()}") from None

    async def close(self) -> None:
        """``provider.destroy()`` (which announces a null awareness state) and exit."""
        await self.send(op="close")
        await asyncio.wait_for(self.exited.wait(), TIMEOUT)
        assert await asyncio.wait_for(self.proc.wait(), TIMEOUT) == 0, self.diagnostics()

    async def kill(self) -> None:
        """End the process abruptly: no close frame, no goodbye awareness."""
        if self.proc.returncode is None:
            self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), TIMEOUT)
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), TIMEOUT)


@contextlib.asynccontextmanager
async def node_client(server: ServerProcess, room: str) -> AsyncIterator[NodeClient]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node 20 to run the yjs interop tests")
    if not (JS_DIR / "node_modules").is_dir():
        pytest.fail("tests/js/node_modules is missing: run `npm ci --prefix tests/js`")
    proc = await asyncio.create_subprocess_exec(
        node, str(JS_DIR / "yjs_client.mjs"), server.ws_base, room,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    client = NodeClient(proc)
    try:
        yield client
    finally:
        await client.kill()


@contextlib.asynccontextmanager
async def pycrdt_provider(server: ServerProcess, room: str) -> AsyncIterator[Text]:
    """pycrdt's own, unmodified ``Provider`` over httpx-ws; yields its ``code`` text."""
    doc: Doc[Any] = Doc()
    text = doc.get("code", type=Text)
    async with (
        aconnect_ws(server.ws_url(room)) as ws,  # type: ignore[var-annotated]
        Provider(doc, HttpxWebsocket(ws, room)) as provider,
    ):
        await asyncio.wait_for(provider.synced.wait(), TIMEOUT)
        yield text


def insert_py(text: Text, piece: str, *, at: str = "start", after: str | None = None) -> None:
    """Insert into a pycrdt ``Text`` at the start, the end, or right after ``after``,
    converting the code-point position to the byte index pycrdt 0.14 expects."""
    current = str(text)
    if after is not None:
        found = current.find(after)
        assert found >= 0, f"{after!r} not in {current!r}"
        index = found + len(after)
    else:
        index = 0 if at == "start" else len(current)
    text.insert(codepoint_to_utf8(current, index), piece)


async def test_yjs_and_pycrdt_clients_converge(server: ServerProcess) -> None:
    room = "interop-edit"
    async with (
        node_client(server, room) as js,
        pycrdt_provider(server, room) as prov,
        YClient(server.ws_url(room)) as yc,
    ):
        await js.wait_synced()
        await yc.wait_synced()
        pieces: list[str] = []

        def texts_seen(*wanted: str) -> Callable[[], bool]:
            return lambda: all(w in str(prov) and w in str(yc.text) for w in wanted)

        # Round 1, concurrent: nobody waits for anybody.
        round1 = ["«js1 é😀»", "«pv1 ü🎉»", "«yc1 ñ€🙂»"]
        await js.insert(round1[0], index=0)
        insert_py(prov, round1[1], at="end")
        insert_py(yc.text, round1[2], at="start")
        pieces += round1
        await eventually(texts_seen(*round1))
        await js.wait_state(lambda s: all(p in s["text"] for p in round1))

        # Round 2: each inserts right after another client's emoji-bearing piece,
        # so the JS side counts UTF-16 units and the pycrdt side UTF-8 bytes.
        round2 = ["«js2 ç🚀»", "«pv2 ø🌍»", "«yc2 å💡»"]
        await js.insert(round2[0], after=round1[1])
        insert_py(prov, round2[1], after=round1[2])
        insert_py(yc.text, round2[2], after=round1[0])
        pieces += round2
        await eventually(texts_seen(*round2))
        await js.wait_state(lambda s: all(p in s["text"] for p in round2))

        # Round 3, concurrent and interleaved: two pieces each, in turn, at the same
        # spots (after one shared piece, and at both ends) before anyone syncs.
        round3 = [
            ("js", "«js3 ß😎»", {"after": round2[0]}),
            ("pv", "«pv3 þ🐍»", {"after": round2[0]}),
            ("yc", "«yc3 ð🦀»", {"after": round2[0]}),
            ("js", "«js4 æ»", {"index": "end"}),
            ("pv", "«pv4 😀😀»", {"at": "start"}),
            ("yc", "«yc4 é»", {"at": "end"}),
        ]
        for who, piece, where in round3:
            if who == "js":
                await js.insert(piece, **where)
            else:
                insert_py(prov if who == "pv" else yc.text, piece, **where)
            pieces.append(piece)

        def converged(js_text: str) -> bool:
            return js_text == str(prov) == str(yc.text)

        state = await js.wait_state(
            lambda s: converged(s["text"]) and all(p in s["text"] for p in pieces)
        )
        final = state["text"]
        assert len(final) == sum(len(p) for p in pieces), final
        for piece in pieces:
            assert final.count(piece) == 1, (piece, final)

        # The server's copy is the same: a fresh client gets exactly this text.
        async with YClient(server.ws_url(room)) as late:
            await late.wait_synced()
            assert str(late.text) == final
        assert not js.server_closes and not js.errors, js.diagnostics()


@pytest.mark.parametrize("ending", ["close", "kill"])
async def test_awareness_between_yjs_and_pycrdt(server: ServerProcess, ending: str) -> None:
    room = f"interop-awareness-{ending}"
    node_user = {"user": {"name": "node", "color": "#f00"}}
    py_user = {"user": {"name": "py", "color": "#0f0"}}
    async with YClient(server.ws_url(room)) as early, node_client(server, room) as js:
        await early.wait_synced()
        await js.wait_synced()
        js_id = (await js.state())["clientId"]

        # yjs -> pycrdt
        await js.send(op="awareness", field="user", value=node_user["user"])
        await eventually(lambda: early.awareness.get(js_id) == node_user)

        # pycrdt -> yjs
        await early.set_awareness(py_user)
        await js.wait_state(lambda s: s["awareness"].get(early.doc.client_id) == py_user)

        # A late joiner gets everyone's state in the join snapshot, without asking.
        async with YClient(server.ws_url(room)) as late:
            await eventually(
                lambda: (
                    late.awareness.get(js_id) == node_user
                    and late.awareness.get(early.doc.client_id) == py_user
                )
            )
            snapshot = next(f for f in late.received if f[0] == protocol.MessageType.AWARENESS)
            message = protocol.parse_frame(snapshot)
            assert isinstance(message, protocol.AwarenessUpdate)
            assert {e.client_id for e in decode_update(message.payload)} == {
                js_id,
                early.doc.client_id,
            }

            # The node client leaves: politely (null state) or by dying (the server
            # must remove the state of the connection that owned it).
            if ending == "close":
                await js.close()
            else:
                await js.kill()
            await eventually(lambda: js_id not in early.awareness and js_id not in late.awareness)
            assert late.awareness.get(early.doc.client_id) == py_user
        assert not js.server_closes and not js.errors, js.diagnostics()


async def test_late_yjs_client_receives_full_text(server: ServerProcess) -> None:
    room = "interop-late"
    async with YClient(server.ws_url(room)) as yc, node_client(server, room) as first:
        await yc.wait_synced()
        await first.wait_synced()
        insert_py(yc.text, "def héllo():  # 😀\n")
        insert_py(yc.text, "    return '🎉'\n", at="end")
        await first.wait_state(lambda s: s["text"] == str(yc.text))

        await first.insert("# ünïcode 🚀\n", index=0)
        expected = "# ünïcode 🚀\ndef héllo():  # 😀\n    return '🎉'\n"
        await eventually(lambda: str(yc.text) == expected)

        async with node_client(server, room) as second:
            await second.wait_synced()
            state = await second.state()
            assert state["text"] == expected
        assert not first.server_closes and not first.errors, first.diagnostics()
