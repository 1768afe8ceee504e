"""Nothing the server received is lost: not to SIGKILL after the durability window,
not to SIGTERM in the middle of a burst."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Doc

from crdt.updates import decode_state_vector
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

WINDOW_MS = 100


def covers(stored: Doc[Any], seen: Doc[Any]) -> bool:
    """Does ``stored`` hold every struct ``seen`` holds?"""
    have = decode_state_vector(stored.get_state())
    want = decode_state_vector(seen.get_state())
    return all(have.get(client, 0) >= clock for client, clock in want.items())


async def fresh_copy(server: ServerProcess, room: str) -> YClient:
    """A new client with an empty document: whatever it syncs came from the store."""
    client = await YClient(server.ws_url(room)).connect()
    await client.wait_synced()
    return client


async def test_sigkill_after_the_durability_window_loses_nothing(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_DURABILITY_WINDOW_MS=str(WINDOW_MS))
    async with (
        YClient(server.ws_url("durable")) as writer,
        YClient(server.ws_url("durable")) as observer,
    ):
        await writer.wait_synced()
        await observer.wait_synced()
        for i in range(200):
            writer.text.insert(0, f"line {i} é😀\n")
            if i % 20 == 0:
                await asyncio.sleep(0)
        expected = str(writer.text)
        await eventually(lambda: str(observer.text) == expected)
        # The server applied every edit (the observer saw them relayed); now let the
        # durability window, plus time for one flush, pass and kill without warning.
        await asyncio.sleep(WINDOW_MS / 1000 + 0.5)
        server.kill()
        await observer.wait_closed()
    restarted = server_factory(data_dir=server.data_dir)
    reader = await fresh_copy(restarted, "durable")
    try:
        assert str(reader.text) == expected
    finally:
        await reader.close()


async def test_save_receipt_means_durable_across_sigkill(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_DURABILITY_WINDOW_MS="1000")
    writer = await YClient(server.ws_url("receipts")).connect("receipts=1")
    await writer.wait_synced()
    for i in range(50):
        writer.text += f"{i},"
    mine = decode_state_vector(writer.doc.get_state())

    def durable() -> bool:
        return any(
            all(decode_state_vector(r).get(c, 0) >= k for c, k in mine.items())
            for r in writer.receipts
        )

    await eventually(durable)
    server.kill()
    await writer.wait_closed()
    restarted = server_factory(data_dir=server.data_dir)
    reader = await fresh_copy(restarted, "receipts")
    try:
        assert str(reader.text) == str(writer.text)
    finally:
        await reader.close()


async def test_stock_clients_get_no_receipts(server: ServerProcess) -> None:
    async with YClient(server.ws_url("noreceipt")) as client:
        await client.wait_synced()
        client.text += "x"
        probe = await YClient(server.ws_url("noreceipt")).connect("receipts=1")
        try:
            await eventually(lambda: len(probe.receipts) > 0 or str(probe.text) == "x")
            probe.text += "y"
            await eventually(lambda: len(probe.receipts) > 0)
        finally:
            await probe.close()
        assert client.receipts == []
        assert all(frame[0] != 100 for frame in client.received)


async def test_sigterm_mid_burst_loses_nothing(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_DURABILITY_WINDOW_MS="500")
    writer = await YClient(server.ws_url("burst")).connect()
    observer = await YClient(server.ws_url("burst")).connect()
    await writer.wait_synced()
    await observer.wait_synced()
    stop = asyncio.Event()

    async def burst() -> None:
        i = 0
        while not stop.is_set() and not writer.closed.is_set():
            writer.text += f"{i};"
            i += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(burst())
    await eventually(lambda: len(str(observer.text)) > 2000)
    server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    assert await observer.wait_closed() == 1012
    stop.set()
    await task
    # uvicorn re-raises the signal after its graceful shutdown, hence -SIGTERM.
    assert server.wait_exit() in (0, -signal.SIGTERM)
    assert "every room flushed" in server.log()
    # Everything the server relayed to the observer, it had applied: all of it
    # must come back from the store, before the writer resends anything.
    restarted = server_factory(data_dir=server.data_dir)
    reader = await fresh_copy(restarted, "burst")
    try:
        assert covers(reader.doc, observer.doc)
        assert str(reader.text).startswith(str(observer.text))
        # The writer reconnects and its Step2 brings whatever never reached the server.
        writer.url = restarted.ws_url("burst")
        await writer.connect()
        await writer.wait_synced()
        await eventually(lambda: str(reader.text) == str(writer.text))
    finally:
        await reader.close()
        await writer.close()
        await observer.close()
