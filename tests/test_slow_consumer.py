"""A peer that stops reading is closed once over its queue bound; nobody else waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import websockets

from crdt import protocol
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

QUEUE_FRAMES = 50
UPDATES = 400
CHUNK = "x" * 16 * 1024  # 16 KiB per update: ~6 MiB in all, past any socket buffer


@pytest.mark.serial
async def test_stalled_reader_is_closed_and_others_get_everything(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(
        CODEMENTOR_SEND_QUEUE_FRAMES=str(QUEUE_FRAMES),
        # ~6.5 MB into one file: past the 1 MiB a file may hold by default.
        CODEMENTOR_MAX_FILE_BYTES=str(16 * 1024 * 1024),
        CODEMENTOR_MAX_WORKSPACE_BYTES=str(16 * 1024 * 1024),
    )
    url = server.ws_url("slow")
    # The stalled peer: handshakes, then never reads again. websockets stops reading
    # the socket once its own small queue is full, so TCP pushes back on the server.
    stalled = await websockets.connect(url, max_size=None, max_queue=1, compression=None)
    await stalled.send(protocol.sync_step1(b"\x00"))
    async with YClient(url) as writer, YClient(url) as reader:
        await writer.wait_synced()
        await reader.wait_synced()
        for i in range(UPDATES):
            writer.text += f"{i:04d}{CHUNK}"
            if i % 10 == 0:
                await asyncio.sleep(0)
        expected_len = UPDATES * (4 + len(CHUNK))
        await eventually(lambda: len(str(reader.text)) == expected_len, timeout=60)
        assert str(reader.text) == str(writer.text)
        assert reader.close_code is None
        await eventually(
            lambda: server.metric('codementor_peers_dropped_total{reason="send_queue_full"}') >= 1
        )
    # Reading again, the stalled peer finds what the socket buffered, then the close.
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(30):
            async for _ in stalled:
                pass
    assert stalled.close_code == protocol.CLOSE_TRY_AGAIN_LATER
    assert server.alive()
