from __future__ import annotations

import pytest

from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

pytestmark = pytest.mark.anyio


async def test_two_clients_share_a_room(server: ServerProcess) -> None:
    async with YClient(server.ws_url("pair")) as a, YClient(server.ws_url("pair")) as b:
        await a.wait_synced()
        await b.wait_synced()
        a.text += "héllo 😀 "
        await eventually(lambda: str(b.text) == "héllo 😀 ")
        b.text.insert(0, "// ")
        await eventually(lambda: str(a.text) == "// héllo 😀 ")
