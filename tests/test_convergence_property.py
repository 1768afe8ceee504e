"""Random edit scripts from three clients, with random disconnects and reconnects,
converge: every client ends with the same text as the server's document."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdt.offsets import codepoint_to_utf8
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

ALPHABET = st.sampled_from(list("ab \n{}éß中😀"))
insert = st.tuples(st.just("insert"), st.floats(0, 1), st.text(ALPHABET, min_size=1, max_size=5))
delete = st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 4))
toggle = st.tuples(st.just("toggle"), st.just(0.0), st.just(0))
step = st.tuples(st.integers(0, 2), st.one_of(insert, insert, delete, toggle))
_rooms = itertools.count()


def apply_edit(client: YClient, op: str, where: float, arg: str | int) -> None:
    text = str(client.text)
    at = int(where * len(text))
    if op == "insert":
        assert isinstance(arg, str)
        client.text.insert(codepoint_to_utf8(text, at), arg)
    elif op == "delete" and text:
        assert isinstance(arg, int)
        at = min(at, len(text) - 1)
        end = min(len(text), at + arg)
        del client.text[codepoint_to_utf8(text, at) : codepoint_to_utf8(text, end)]


async def run_script(
    server: ServerProcess, script: list[tuple[int, tuple[str, float, object]]]
) -> None:
    url = server.ws_url(f"prop-{next(_rooms)}")
    clients = [YClient(url) for _ in range(3)]
    for c in clients:
        await c.connect()
        await c.wait_synced()
    online = [True, True, True]
    try:
        for i, (who, (op, where, arg)) in enumerate(script):
            client = clients[who]
            if op == "toggle":
                if online[who]:
                    await client.abort()
                else:
                    await client.connect()
                online[who] = not online[who]
            else:
                apply_edit(client, op, where, arg)  # type: ignore[arg-type]
            if i % 3 == 0:
                await asyncio.sleep(0.002)
        for who, client in enumerate(clients):
            if not online[who]:
                await client.connect()
        for c in clients:
            await c.wait_synced()
        await eventually(lambda: len({str(c.text) for c in clients}) == 1, timeout=15)
        async with YClient(url) as server_copy:
            await server_copy.wait_synced()
            await eventually(lambda: str(server_copy.text) == str(clients[0].text), timeout=15)
    finally:
        for c in clients:
            await c.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=st.lists(step, min_size=1, max_size=40))
def test_random_scripts_converge(
    module_server: ServerProcess, script: list[tuple[int, tuple[str, float, object]]]
) -> None:
    asyncio.run(run_script(module_server, script))
