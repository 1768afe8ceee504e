"""Several server processes share rooms through a real redis-server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.yclient import YClient, wait_for

pytestmark = pytest.mark.anyio


async def test_two_instances_share_a_room(
    server_factory: Callable[..., ServerProcess], redis_server: RedisProcess, tmp_path
) -> None:
    env = {"CODEMENTOR_REDIS_URL": redis_server.url}
    a = server_factory(data_dir=tmp_path / "shared", CODEMENTOR_INSTANCE_ID="a", **env)
    b = server_factory(data_dir=tmp_path / "shared", CODEMENTOR_INSTANCE_ID="b", **env)
    async with YClient(a.ws_url("r1")) as ca, YClient(b.ws_url("r1")) as cb:
        await ca.wait_synced()
        await cb.wait_synced()
        ca.text += "from a;"
        await wait_for(lambda: str(cb.text) == "from a;")
        cb.text += "from b;"
        await wait_for(lambda: str(ca.text) == "from a;from b;")
        await ca.set_awareness({"user": {"name": "alice"}})
        await wait_for(lambda: ca.doc.client_id in cb.awareness)
