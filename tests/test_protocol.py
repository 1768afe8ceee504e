"""Bytes in, frames out: ``crdt.protocol``'s strict y-websocket codec.

Expected bytes are written out by hand from y-protocols 1.0.6 (see the module
docstring) and cross-checked against pycrdt's own builders.
"""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pycrdt import Doc, Text

from crdt.protocol import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_UNSUPPORTED_DATA,
    EMPTY_UPDATE,
    KEEPALIVE_FRAME,
    AwarenessUpdate,
    DocUpdate,
    MessageType,
    ProtocolError,
    QueryAwareness,
    Reader,
    SyncStep1,
    as_update_frame,
    awareness_frame,
    parse_frame,
    permission_denied_frame,
    save_receipt_frame,
    sync_step1,
    sync_step2,
    update_frame,
    var_bytes,
    write_var_uint,
)

MESSAGE_TYPES = (SyncStep1, DocUpdate, AwarenessUpdate, QueryAwareness)


def real_update(size: int = 300) -> bytes:
    """A genuine v1 update, long enough to need a two-byte length prefix."""
    doc: Doc[Any] = Doc(client_id=7)
    doc.get("code", type=Text).insert(0, "x" * size)
    return doc.get_update()


def refused(frame: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_frame(frame)
    return info.value


# --- parsing each message type -------------------------------------------------


def test_sync_step1_from_an_empty_client() -> None:
    # The first frame an empty yjs client sends.
    assert parse_frame(bytes.fromhex("00000100")) == SyncStep1(b"\x00")


def test_sync_step2() -> None:
    assert parse_frame(bytes.fromhex("0001020000")) == DocUpdate(b"\x00\x00", is_step2=True)


def test_update() -> None:
    update = bytes.fromhex("010101068401040720776f726c642100")
    frame = b"\x00\x02" + bytes([len(update)]) + update
    assert parse_frame(frame) == DocUpdate(update, is_step2=False)


def test_update_with_a_multibyte_length_prefix() -> None:
    update = real_update()
    assert len(update) > 127
    frame = b"\x00\x02" + write_var_uint(len(update)) + update
    assert frame[2] & 0x80  # the length really takes more than one byte
    assert parse_frame(frame) == DocUpdate(update, is_step2=False)


def test_awareness() -> None:
    payload = bytes.fromhex("01") + bytes.fromhex("8be3bfbd0a") + b"\x01\x15"
    payload += b'{"user":{"name":"x"}}'
    frame = b"\x01" + bytes([len(payload)]) + payload
    assert parse_frame(frame) == AwarenessUpdate(payload)


def test_query_awareness() -> None:
    assert parse_frame(b"\x03") == QueryAwareness()


def test_empty_payloads_are_allowed() -> None:
    assert parse_frame(b"\x00\x00\x00") == SyncStep1(b"")
    assert parse_frame(b"\x00\x02\x00") == DocUpdate(b"", is_step2=False)
    assert parse_frame(b"\x01\x00") == AwarenessUpdate(b"")


# --- builders ------------------------------------------------------------------


def test_builders_produce_the_documented_bytes() -> None:
    assert sync_step1(b"\x00") == bytes.fromhex("00000100")
    assert sync_step2(EMPTY_UPDATE) == bytes.fromhex("0001020000")
    assert update_frame(EMPTY_UPDATE) == bytes.fromhex("0002020000")
    assert awareness_frame(b"\x00") == bytes.fromhex("010100")
    assert permission_denied_frame("permission denied") == b"\x02\x00\x11permission denied"
    assert save_receipt_frame(b"\x00") == bytes.fromhex("640100")
    assert KEEPALIVE_FRAME == bytes.fromhex("010100")
    assert EMPTY_UPDATE == Doc().get_update()


def test_builders_agree_with_pycrdt() -> None:
    doc: Doc[Any] = Doc()
    doc.get("code", type=Text).insert(0, "héllo 😀" * 40)
    assert sync_step1(doc.get_state()) == pycrdt.create_sync_message(doc)
    update = doc.get_update()
    assert update_frame(update) == pycrdt.create_update_message(update)
    assert awareness_frame(update) == pycrdt.create_awareness_message(update)
    assert var_bytes(update) == pycrdt.write_message(update)


def test_builders_round_trip_through_parse_frame() -> None:
    update = real_update()
    sv = Doc().get_state()
    assert parse_frame(sync_step1(sv)) == SyncStep1(sv)
    assert parse_frame(sync_step2(update)) == DocUpdate(update, is_step2=True)
    assert parse_frame(update_frame(update)) == DocUpdate(update, is_step2=False)
    assert parse_frame(awareness_frame(update)) == AwarenessUpdate(update)
    assert parse_frame(KEEPALIVE_FRAME) == AwarenessUpdate(b"\x00")


def test_server_only_frames_are_refused_from_a_client() -> None:
    assert refused(permission_denied_frame("nope")).code == CLOSE_UNSUPPORTED_DATA
    assert refused(save_receipt_frame(b"\x00")).code == CLOSE_UNSUPPORTED_DATA


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (300, "ac02"),
        (16383, "ff7f"),
        (16384, "808001"),
        (2**53 - 1, "ffffffffffffff0f"),
    ],
)
def test_write_var_uint_known_values(value: int, encoded: str) -> None:
    assert write_var_uint(value) == bytes.fromhex(encoded)
    assert bytes(pycrdt.write_var_uint(value)) == bytes.fromhex(encoded)
    reader = Reader(bytes.fromhex(encoded))
    assert reader.read_var_uint() == value
    assert reader.at_end()


@given(st.integers(min_value=0, max_value=2**53 - 1))
def test_var_uint_round_trip(value: int) -> None:
    reader = Reader(write_var_uint(value))
    assert reader.read_var_uint() == value
    assert reader.at_end()


# --- Step2 relabelled as Update ------------------------------------------------


def test_as_update_frame_relabels_step2() -> None:
    update = real_update()
    frame = sync_step2(update)
    message = parse_frame(frame)
    assert isinstance(message, DocUpdate)
    relayed = as_update_frame(frame, message)
    assert relayed == update_frame(update)
    assert relayed[:2] == b"\x00\x02"
    assert parse_frame(relayed) == DocUpdate(update, is_step2=False)


def test_as_update_frame_relays_an_update_unchanged() -> None:
    update = real_update()
    frame = update_frame(update)
    message = parse_frame(frame)
    assert isinstance(message, DocUpdate)
    assert as_update_frame(frame, message) == frame


# --- malformed frames: 1008 ----------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(b"", id="empty frame"),
        pytest.param(b"\x80", id="truncated type varint"),
        pytest.param(b"\xff\xff", id="truncated multibyte type varint"),
        pytest.param(b"\x00", id="sync without subtype"),
        pytest.param(b"\x00\x80", id="truncated subtype varint"),
        pytest.param(b"\x00\x00", id="step1 without payload"),
        pytest.param(b"\x00\x02\x80", id="truncated length varint"),
        pytest.param(b"\x00\x02\x05\x00\x00", id="length prefix exceeds frame"),
        pytest.param(b"\x00\x00\x01", id="length 1 with nothing after"),
        pytest.param(b"\x00\x02\xff\xff\xff\xff\x0f\x00", id="huge length prefix"),
        pytest.param(b"\x01", id="awareness without payload"),
        pytest.param(b"\x01\x7f\x00", id="awareness length exceeds frame"),
        pytest.param(b"\x00\x00\x01\x00\xff", id="trailing byte after step1"),
        pytest.param(b"\x00\x02\x02\x00\x00\x00", id="trailing byte after update"),
        pytest.param(b"\x01\x01\x00\x00", id="trailing byte after awareness"),
        pytest.param(b"\x03\x00", id="trailing byte after query awareness"),
        pytest.param(b"\x00\x00\x01\x00" * 2, id="two frames in one"),
        pytest.param(b"\xff" * 10 + b"\x00", id="varint far too long"),
    ],
)
def test_malformed_frames_close_with_1008(frame: bytes) -> None:
    error = refused(frame)
    assert error.code == CLOSE_POLICY_VIOLATION == 1008
    assert error.reason
    assert str(error) == error.reason


def test_a_varint_longer_than_eight_bytes_is_refused() -> None:
    # Reader.read_var_uint documents "LEB128, at most 8 bytes"; lib0 likewise refuses
    # anything above 2**53 - 1. A 9-byte varint must not be accepted.
    nine = b"\x80" * 8 + b"\x01"  # value 2**56
    with pytest.raises(ProtocolError) as info:
        Reader(nine).read_var_uint()
    assert info.value.code == CLOSE_POLICY_VIOLATION
    # As a length prefix it is refused either way; as a message type it must be 1008 too.
    assert refused(nine).code == CLOSE_POLICY_VIOLATION


def test_eight_byte_varint_is_accepted() -> None:
    eight = b"\xff" * 7 + b"\x0f"  # 2**53 - 1, the largest safe JS integer
    assert Reader(eight).read_var_uint() == 2**53 - 1


# --- unknown types: 1003 -------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(b"\x02\x00\x00", id="auth from a client"),
        pytest.param(b"\x04", id="type 4"),
        pytest.param(b"\x05\xff\xff", id="type 5 with junk"),
        pytest.param(b"\x64\x01\x00", id="save receipt from a client"),
        pytest.param(b"\xff\x01", id="type 255 (two-byte varint)"),
        pytest.param(b"\x00\x03\x00", id="sync subtype 3"),
        pytest.param(b"\x00\x7f\x02\x00\x00", id="sync subtype 127"),
        pytest.param(b"\x00\x80\x01\x00", id="sync subtype 128"),
    ],
)
def test_unknown_types_close_with_1003(frame: bytes) -> None:
    error = refused(frame)
    assert error.code == CLOSE_UNSUPPORTED_DATA == 1003
    assert "unknown" in error.reason


def test_message_type_values() -> None:
    assert [int(t) for t in MessageType] == [0, 1, 2, 3, 100, 101]


# --- fuzzing -------------------------------------------------------------------


@given(st.binary(max_size=64))
@example(b"")
@example(b"\x00\x01\x00")
@example(b"\x80" * 20)
def test_fuzz_random_bytes_parse_or_protocol_error(frame: bytes) -> None:
    try:
        message = parse_frame(frame)
    except ProtocolError as exc:
        assert exc.code in (CLOSE_POLICY_VIOLATION, CLOSE_UNSUPPORTED_DATA)
    else:
        assert isinstance(message, MESSAGE_TYPES)


# Random bytes rarely form a valid frame; these start from valid ones.
valid_frames = st.one_of(
    st.binary(max_size=200).map(sync_step1),
    st.binary(max_size=200).map(sync_step2),
    st.binary(max_size=200).map(update_frame),
    st.binary(max_size=200).map(awareness_frame),
    st.just(b"\x03"),
)


@given(valid_frames)
def test_fuzz_valid_frames_round_trip(frame: bytes) -> None:
    message = parse_frame(frame)
    if isinstance(message, SyncStep1):
        assert sync_step1(message.state_vector) == frame
    elif isinstance(message, DocUpdate):
        rebuilt = sync_step2 if message.is_step2 else update_frame
        assert rebuilt(message.update) == frame
        assert parse_frame(as_update_frame(frame, message)) == DocUpdate(message.update, False)
    elif isinstance(message, AwarenessUpdate):
        assert awareness_frame(message.payload) == frame
    else:
        assert frame == b"\x03"


@given(valid_frames, st.data())
def test_fuzz_truncated_valid_frames_are_malformed(frame: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    assert refused(frame[:cut]).code == CLOSE_POLICY_VIOLATION


@given(valid_frames, st.binary(min_size=1, max_size=16))
def test_fuzz_trailing_bytes_are_malformed(frame: bytes, tail: bytes) -> None:
    assert refused(frame + tail).code == CLOSE_POLICY_VIOLATION


@given(valid_frames, st.data())
def test_fuzz_mutated_valid_frames_parse_or_protocol_error(
    frame: bytes, data: st.DataObject
) -> None:
    mutated = bytearray(frame)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        pos = data.draw(st.integers(min_value=0, max_value=len(mutated) - 1))
        mutated[pos] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        message = parse_frame(bytes(mutated))
    except ProtocolError as exc:
        assert exc.code in (CLOSE_POLICY_VIOLATION, CLOSE_UNSUPPORTED_DATA)
    else:
        assert isinstance(message, MESSAGE_TYPES)
