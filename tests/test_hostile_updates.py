"""Hostile updates against a real server: refused with 1008, logged as one JSON event,
and the room's document always agrees with its own encoding, before and after a
restart. The updates come from ``tests/corpus/yrs`` (found by
``tests/fuzz_yrs.py``), from a reported reproducer, and from hypothesis mutating
and forging real updates."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from crdt import protocol
from crdt.protocol import write_var_uint
from tests import fuzz_yrs
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

CORPUS = Path(__file__).parent / "corpus" / "yrs"
REPRO = CORPUS / "repro-reported.hex"
_rooms = itertools.count()
# Rooms a test left behind, with the text they must still hold after a restart.
_expected: dict[str, str] = {}


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # The checks poll the REST API far past the default 120 requests a minute.
    env = {"CODEMENTOR_API_RATE_PER_MINUTE": "100000"}
    with ServerProcess(tmp_path_factory.mktemp("hostile"), env) as proc:
        yield proc


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def case(path: Path) -> tuple[bytes, bytes]:
    seed, bad = path.read_text().split()
    return bytes.fromhex(seed), bytes.fromhex(bad)


async def send(url: str, update: bytes, timeout: float = 10.0) -> int | None:
    """Send ``update`` as a sync update from a fresh connection; the close code, or
    None when the server kept the connection (the update was accepted, or waits).

    A Step1 follows the update on the same socket: the room handles a peer's frames in
    order, so its Step2 answer means the update was handled and kept, at once (waiting
    for a close that never comes cost 3 s per accepted update)."""
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.send(protocol.update_frame(update))
        await ws.send(protocol.sync_step1(b"\x00"))
        try:
            async with asyncio.timeout(timeout):
                async for frame in ws:
                    message = protocol.parse_frame(frame) if isinstance(frame, bytes) else None
                    if isinstance(message, protocol.DocUpdate) and message.is_step2:
                        return None
        except websockets.ConnectionClosed:
            pass
        return ws.close_code


def views(server: ServerProcess, room: str) -> tuple[str, str]:
    """The room's code as the server reads it, and as a fresh document built from the
    server's encoded state reads it."""
    base = f"{server.http_url}/api/rooms/{room}/snapshot"
    text = httpx.get(base, timeout=10).raise_for_status().text
    encoded = httpx.get(base, params={"format": "yjs"}, timeout=10).raise_for_status().content
    fresh: Doc[Any] = Doc()
    fresh.apply_update(encoded)
    return text, str(fresh.get("code", type=Text))


def assert_consistent(server: ServerProcess, room: str) -> str:
    text, decoded = views(server, room)
    assert text == decoded, f"room {room}: the text view and the encoded state differ"
    return text


def non_json_lines(server: ServerProcess) -> list[str]:
    out = []
    for line in server.log().splitlines():
        try:
            json.loads(line)
        except ValueError:
            out.append(line)
    return out


async def hostile_round(server: ServerProcess, seed: bytes, bad: list[bytes]) -> tuple[str, str]:
    """An honest editor puts ``seed`` in a new room; a second connection sends each of
    ``bad``. After every step the room agrees with its encoding and the honest editor,
    still connected, holds the same text. Returns (room, text)."""
    room = f"hostile-{next(_rooms)}"
    url = server.ws_url(room)
    async with YClient(url) as honest:
        await honest.wait_synced()
        await honest.send_raw(protocol.update_frame(seed))
        honest.doc.apply_update(seed)
        expected = str(honest.text)
        await eventually(lambda: views(server, room)[0] == expected)
        for update in bad:
            code = await send(url, update)
            assert code in (None, 1008, 1013), f"closed with {code}"
            text = assert_consistent(server, room)
            # The honest peer still agrees with the room (it got whatever was accepted).
            await eventually(lambda: str(honest.text) == views(server, room)[0])  # noqa: B023
        honest.text += "after;"
        await eventually(lambda: views(server, room)[0].endswith("after;"))
        assert honest.close_code is None
        text = assert_consistent(server, room)
    return room, text


def test_the_reported_update_is_refused_and_the_room_stays_whole(
    hostile_server: ServerProcess,
) -> None:
    seed, bad = case(REPRO)
    room, text = run(hostile_round(hostile_server, seed, [bad]))
    assert "XYZXYZ" not in text  # the phantom text of the report
    _expected[room] = text
    refused = [
        e
        for e in hostile_server.events()
        if e.get("event") == "frame_rejected" and e.get("room") == room
    ]
    assert len(refused) == 1 and refused[0]["reason"] == "invalid update"
    assert "out of range" in refused[0]["detail"]
    assert non_json_lines(hostile_server) == []


def test_a_panic_in_the_reviewer_check_is_caught_and_logged_once(
    hostile_server: ServerProcess,
) -> None:
    """A reviewer's update is first applied to a copy of the document (the reviewer
    check), before any other check: the reported update panics yrs there. The reviewer
    is closed with 1008, one event says so, and Rust's panic report never reaches
    stderr as text."""
    created = httpx.post(
        f"{hostile_server.http_url}/api/rooms", json={"mode": "review"}, timeout=10
    ).json()
    room = created["room"]
    reviewer = created["links"]["reviewer"].split("token=")[1]
    seed, bad = case(REPRO)

    async def scenario() -> int | None:
        owner_url = hostile_server.ws_url(room, f"token={created['owner_token']}")
        async with YClient(owner_url) as owner:
            await owner.wait_synced()
            await owner.send_raw(protocol.update_frame(seed))
            owner.doc.apply_update(seed)
            await eventually(lambda: "hello" in httpx.get(
                f"{hostile_server.http_url}/api/rooms/{room}/snapshot",
                headers={"Authorization": f"Bearer {created['owner_token']}"}, timeout=10,
            ).text)  # fmt: skip
            code = await send(hostile_server.ws_url(room, f"token={reviewer}"), bad)
            owner.text += "!"
            await eventually(lambda: str(owner.text).endswith("!"))
            assert owner.close_code is None
            return code

    assert run(scenario()) == 1008
    refused = [
        e
        for e in hostile_server.events()
        if e.get("event") == "frame_rejected" and e.get("room") == room
    ]
    assert len(refused) == 1 and "panic" in refused[0]["detail"]
    assert non_json_lines(hostile_server) == [], "Rust's panic report reached stderr as text"


def test_an_update_yrs_would_take_wrongly_is_refused_and_the_room_rebuilt(
    hostile_server: ServerProcess,
) -> None:
    """One person's text as one block; an item whose right origin lies left of its
    origin inside that block. yrs applies it without an error but its text view and
    its encoding disagree afterwards: the room refuses it (1008) and rebuilds its
    document from what it had accepted."""
    writer: Doc[Any] = Doc(client_id=111)
    writer.get("code", type=Text).insert(0, "hello world\n" * 3)
    seed = writer.get_update()
    forged = (
        b"\x01\x01" + write_var_uint(222) + b"\x00\xc4"
        + write_var_uint(111) + write_var_uint(33) + write_var_uint(111) + write_var_uint(3)
        + b"\x03XYZ\x00"
    )  # fmt: skip
    before = hostile_server.metric("codementor_document_rebuilds_total")
    room, text = run(hostile_round(hostile_server, seed, [forged]))
    assert "XYZ" not in text
    assert hostile_server.metric("codementor_document_rebuilds_total") > before
    _expected[room] = text


@pytest.mark.parametrize(
    "path", sorted(p for p in CORPUS.glob("*.hex") if p != REPRO), ids=lambda p: p.stem
)
def test_every_case_of_the_corpus_leaves_the_room_consistent(
    hostile_server: ServerProcess, path: Path
) -> None:
    seed, bad = case(path)
    room, text = run(hostile_round(hostile_server, seed, [bad]))
    _expected[room] = text


@st.composite
def hostile_updates(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A seeded document (several people, text, chat, meta) and 1-3 updates made from
    its real updates by byte mutations, or forged with origins among its ids."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    doc, updates = fuzz_yrs.seeded(rng)
    bad = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            bad.append(fuzz_yrs.forged(rng, doc))
        else:
            bad.append(fuzz_yrs.mutated(rng, rng.choice(updates)))
    return doc.get_update(), bad


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(example=hostile_updates())
def test_mutated_and_forged_updates_never_break_the_room(
    hostile_server: ServerProcess, example: tuple[bytes, list[bytes]]
) -> None:
    seed, bad = example
    room, text = run(hostile_round(hostile_server, seed, bad))
    _expected[room] = text


def test_after_a_restart_every_room_reads_the_same(hostile_server: ServerProcess) -> None:
    """Runs last in this module: every room the tests above left reads, after a
    restart, what it read before, and still agrees with its encoding."""
    assert _expected, "the tests above left no rooms"
    hostile_server.stop()
    hostile_server.start()
    for room, text in _expected.items():
        assert assert_consistent(hostile_server, room) == text
    assert non_json_lines(hostile_server) == []
