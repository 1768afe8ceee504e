"""Bad input closes only the offending socket, with the right code, and changes nothing."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdt import protocol
from server.settings import SettingsError, from_env
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

MAX_FRAME = 64 * 1024
# 1013: an update that depends on data the room lacks is refused as a client behind
# (it resends everything in its next Step2), which a mutation can look like.
ERROR_CODES = {1003, 1008, 1009, 1013}


@pytest.fixture(scope="module")
def small_frames_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"CODEMENTOR_MAX_FRAME_BYTES": str(MAX_FRAME)}
    with ServerProcess(tmp_path_factory.mktemp("bad-input"), env) as proc:
        yield proc


async def send_and_wait_close(url: str, frame: bytes | str, timeout: float = 5.0) -> int | None:
    """Send one frame; return the close code, or None if the server kept the socket open."""
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.send(frame)
        # A valid frame is answered or ignored; a bad one closes. Drain until we know.
        try:
            async with asyncio.timeout(timeout):
                async for _ in ws:
                    pass
        except websockets.ConnectionClosed:
            pass
        except TimeoutError:
            return None
        return ws.close_code


async def probe(server: ServerProcess, frame: bytes | str) -> int | None:
    """Two peers edit a room while a third sends ``frame``. Returns the close code the
    third got; asserts the others kept working and a rejected frame changed nothing."""
    room = f"bad-{next(_rooms)}"
    async with YClient(server.ws_url(room)) as a, YClient(server.ws_url(room)) as b:
        await a.wait_synced()
        await b.wait_synced()
        a.text += "before;"
        await eventually(lambda: str(b.text) == "before;")
        code = await send_and_wait_close(server.ws_url(room), frame, timeout=1.0)
        if code in ERROR_CODES:
            async with YClient(server.ws_url(room)) as fresh:
                await fresh.wait_synced()
                assert str(fresh.text) == "before;", "a rejected frame changed the document"
        b.text += "after;"
        if code in ERROR_CODES:
            await eventually(lambda: str(a.text) == "before;after;")
        else:
            # The frame was a valid update (a mutation can produce one): it may have
            # changed the text, but the room goes on and both peers agree.
            await eventually(lambda: "after;" in str(a.text) and str(a.text) == str(b.text))
        assert a.close_code is None and b.close_code is None
    assert server.alive()
    return code


_rooms = itertools.count()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b"", 1008),  # empty
        (b"\x00", 1008),  # truncated varint
        (b"\x00\x02", 1008),  # update without payload
        (b"\x00\x02\x05ab", 1008),  # length prefix exceeds the frame
        (b"\x00\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff", 1008),  # varint too long
        (b"\x00\x07\x00", 1003),  # unknown sync type
        (b"\x09", 1003),  # unknown message type
        (b"\x02\x00\x00", 1003),  # auth is server -> client only
        (b"\x64\x00", 1003),  # save receipts are server -> client only
        (protocol.update_frame(b"\x01\x02garbage"), 1008),  # undecodable update
        (protocol.update_frame(b"\x00\x00") + b"\x00", 1008),  # trailing bytes
        (protocol.sync_step1(b"\xff"), 1008),  # undecodable state vector
        (protocol.awareness_frame(b"\x01\x01\x01\x03{x}"), 1008),  # awareness not JSON
        ("a text frame", 1003),
        (b"\x00\x02" + b"\x00" * (MAX_FRAME + 1), 1009),  # oversize
    ],
)
def test_bad_frame_closes_with_the_right_code(
    small_frames_server: ServerProcess, frame: bytes | str, expected: int
) -> None:
    assert run(probe(small_frames_server, frame)) == expected


def test_rejections_are_counted(small_frames_server: ServerProcess) -> None:
    before = small_frames_server.metric("codementor_frames_rejected_total")
    run(send_and_wait_close(small_frames_server.ws_url("counted"), b"\x09"))
    assert small_frames_server.metric("codementor_frames_rejected_total") == before + 1


valid_prefixes = st.sampled_from([b"", b"\x00", b"\x00\x00", b"\x00\x01", b"\x00\x02", b"\x01"])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(prefix=valid_prefixes, body=st.binary(max_size=64))
def test_generated_frames_never_hurt_the_room(
    small_frames_server: ServerProcess, prefix: bytes, body: bytes
) -> None:
    code = run(probe(small_frames_server, prefix + body))
    assert code is None or code in ERROR_CODES


@pytest.mark.parametrize("name", ["", "a/b", "x" * 129, "bad name", "emoji😀", "..%2f"])
def test_bad_room_names_are_refused_before_upgrade(
    small_frames_server: ServerProcess, name: str
) -> None:
    async def attempt() -> None:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(small_frames_server.ws_url(name)):
                pass
        assert 400 <= info.value.response.status_code < 500

    run(attempt())


def test_unknown_http_paths_get_404(small_frames_server: ServerProcess) -> None:
    assert httpx.get(small_frames_server.http_url + "/nope").status_code == 404


def test_bad_setting_values_are_refused(
    server_factory: Callable[..., ServerProcess],
) -> None:
    with pytest.raises(RuntimeError, match="CODEMENTOR_SEND_QUEUE_FRAMES"):
        server_factory(CODEMENTOR_SEND_QUEUE_FRAMES="many")
    with pytest.raises(RuntimeError, match="must be positive"):
        server_factory(CODEMENTOR_MAX_FRAME_BYTES="0")
    with pytest.raises(RuntimeError, match="CODEMENTOR_LOG_FORMAT must be auto, json or text"):
        server_factory(CODEMENTOR_LOG_FORMAT="xml")
    with pytest.raises(RuntimeError, match="CODEMENTOR_LOG_LEVEL must be"):
        server_factory(CODEMENTOR_LOG_LEVEL="loud")
    with pytest.raises(RuntimeError, match="CODEMENTOR_DRAIN_SECONDS must be positive"):
        server_factory(CODEMENTOR_DRAIN_SECONDS="0")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CODEMENTOR_PING_SECONDS": "-1"}, "CODEMENTOR_PING_SECONDS must be 0 (off) or more"),
        (
            {"CODEMENTOR_PING_TIMEOUT_SECONDS": "0"},
            "CODEMENTOR_PING_TIMEOUT_SECONDS must be positive",
        ),
    ],
)
def test_bad_ping_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        from_env(env).validate()
    from_env({"CODEMENTOR_PING_SECONDS": "0"}).validate()  # 0 turns pings off: allowed


def test_non_loopback_host_without_secret_refuses_to_start(
    server_factory: Callable[..., ServerProcess],
) -> None:
    with pytest.raises(RuntimeError, match="without CODEMENTOR_SECRET"):
        server_factory(CODEMENTOR_HOST="0.0.0.0")


async def _impossible_update_is_refused(server: ServerProcess) -> None:
    # Found by mutating real updates: yrs raises RuntimeError ("block parent must be
    # deleted or shared ref type") instead of ValueError for this one.
    from pycrdt import Doc, Text

    author: Doc[Any] = Doc(client_id=4242)
    text = author.get("code", type=Text)
    room = "impossible"
    async with YClient(server.ws_url(room), doc=author) as a, YClient(server.ws_url(room)) as b:
        await a.wait_synced()
        for i in range(30):
            text.insert(0, f"ab😀{i}")
        del text[2:10]
        expected = str(text)
        await eventually(lambda: str(b.text) == expected)
        bad = protocol.update_frame(bytes.fromhex("01010f9221144492210f076162f09f98803400"))
        assert await send_and_wait_close(server.ws_url(room), bad) == 1008
        async with YClient(server.ws_url(room)) as fresh:
            await fresh.wait_synced()
            assert str(fresh.text) == expected
        text.insert(0, "still ")
        await eventually(lambda: str(b.text) == "still " + expected)


def test_structurally_impossible_update_is_refused(small_frames_server: ServerProcess) -> None:
    run(_impossible_update_is_refused(small_frames_server))


def _mutations() -> st.SearchStrategy[bytes]:
    from pycrdt import Doc, Text

    doc: Doc[Any] = Doc(client_id=7)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    text = doc.get("code", type=Text)
    for i in range(5):
        text.insert(0, f"é{i}😀")
    del text[0:3]
    base = st.sampled_from(updates)
    edit = st.tuples(st.integers(0, 200), st.integers(0, 255))

    def mutate(args: tuple[bytes, list[tuple[int, int]]]) -> bytes:
        data = bytearray(args[0])
        for pos, value in args[1]:
            data[pos % len(data)] = value
        return bytes(data)

    return st.tuples(base, st.lists(edit, min_size=1, max_size=3)).map(mutate)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(update=_mutations())
def test_mutated_updates_never_hurt_the_room(
    small_frames_server: ServerProcess, update: bytes
) -> None:
    code = run(probe(small_frames_server, protocol.update_frame(update)))
    assert code is None or code in ERROR_CODES
