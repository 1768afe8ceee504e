"""The y-websocket wire protocol: parse incoming frames, build outgoing ones.

Sans-I/O: bytes in, typed messages out, and the reverse. Every frame is one
binary websocket message (y-protocols 1.0.6):

    SyncStep1       00 00 varBuf(state vector)
    SyncStep2       00 01 varBuf(update)
    Update          00 02 varBuf(update)
    Awareness       01 varBuf(awareness update)
    Auth            02 00 varString(reason)        server -> client only
    QueryAwareness  03
    SaveReceipt     64 varBuf(state vector)         ours, opt-in, server -> client only
    RoleChanged     65 varString(JSON)              ours, server -> client, when an owner
                                                    changes the peer's role mid-session

pycrdt's own ``Decoder`` reads past the end of a truncated buffer without
complaint, so parsing here is strict: every length is checked against what is
left, and trailing bytes are an error. A frame that fails to parse raises
``ProtocolError`` carrying the websocket close code the server should use.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Websocket close codes (RFC 6455 and the ranges y-websocket understands).
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013


class MessageType(enum.IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3
    SAVE_RECEIPT = 100  # not part of y-protocols; sent only to peers that opt in
    ROLE_CHANGED = 101  # not part of y-protocols; y-websocket apps add a messageHandlers entry


class SyncType(enum.IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


class ProtocolError(Exception):
    """A frame that breaks the protocol. ``code`` is the close code to answer with;
    ``reason`` goes into the close frame (at most 123 bytes), ``detail`` only to the log."""

    def __init__(self, code: int, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class DocUpdate:
    """A SyncStep2 or an Update: both carry a v1 update and are applied alike."""

    update: bytes
    is_step2: bool


@dataclass(frozen=True, slots=True)
class AwarenessUpdate:
    payload: bytes  # the varBuf content, i.e. the encoded awareness update


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    pass


Message = SyncStep1 | DocUpdate | AwarenessUpdate | QueryAwareness


class Reader:
    """A bounds-checked cursor over a byte string."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def read_var_uint(self) -> int:
        """LEB128 of at most 53 bits, the largest integer Yjs's JavaScript numbers hold."""
        value = 0
        shift = 0
        data = self.data
        while True:
            if self.pos >= len(data):
                raise ProtocolError(CLOSE_POLICY_VIOLATION, "truncated varint")
            byte = data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 49:  # an 8th byte would carry bits past 2**53
                raise ProtocolError(CLOSE_POLICY_VIOLATION, "varint too long")

    def read_byte(self) -> int:
        if self.pos >= len(self.data):
            raise ProtocolError(CLOSE_POLICY_VIOLATION, "truncated message")
        self.pos += 1
        return self.data[self.pos - 1]

    def skip(self, count: int) -> None:
        if self.pos + count > len(self.data):
            raise ProtocolError(CLOSE_POLICY_VIOLATION, "truncated message")
        self.pos += count

    def read_var_bytes(self) -> bytes:
        length = self.read_var_uint()
        end = self.pos + length
        if end > len(self.data):
            raise ProtocolError(CLOSE_POLICY_VIOLATION, "length prefix exceeds frame")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def read_var_string(self) -> str:
        raw = self.read_var_bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(CLOSE_POLICY_VIOLATION, "invalid UTF-8 string") from exc


def parse_frame(frame: bytes) -> Message:
    """Parse one client frame. Raises ``ProtocolError`` for anything malformed."""
    if not frame:
        raise ProtocolError(CLOSE_POLICY_VIOLATION, "empty frame")
    # The common case first: a small Update (sync, update, one-byte length).
    if len(frame) > 2 and frame[0] == 0 and frame[1] == 2 and len(frame) == 3 + frame[2] < 131:
        return DocUpdate(frame[3:], is_step2=False)
    reader = Reader(frame)
    kind = reader.read_var_uint()
    message: Message
    if kind == MessageType.SYNC:
        sub = reader.read_var_uint()
        payload = reader.read_var_bytes()
        if sub == SyncType.STEP1:
            message = SyncStep1(payload)
        elif sub == SyncType.STEP2:
            message = DocUpdate(payload, is_step2=True)
        elif sub == SyncType.UPDATE:
            message = DocUpdate(payload, is_step2=False)
        else:
            raise ProtocolError(CLOSE_UNSUPPORTED_DATA, f"unknown sync message type {sub}")
    elif kind == MessageType.AWARENESS:
        message = AwarenessUpdate(reader.read_var_bytes())
    elif kind == MessageType.QUERY_AWARENESS:
        message = QueryAwareness()
    else:
        # AUTH and SAVE_RECEIPT only travel server -> client.
        raise ProtocolError(CLOSE_UNSUPPORTED_DATA, f"unknown message type {kind}")
    if not reader.at_end():
        raise ProtocolError(CLOSE_POLICY_VIOLATION, "trailing bytes after message")
    return message


def write_var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def var_bytes(payload: bytes) -> bytes:
    return write_var_uint(len(payload)) + payload


def sync_step1(state_vector: bytes) -> bytes:
    return b"\x00\x00" + var_bytes(state_vector)


def sync_step2(update: bytes) -> bytes:
    return b"\x00\x01" + var_bytes(update)


def update_frame(update: bytes) -> bytes:
    return b"\x00\x02" + var_bytes(update)


def awareness_frame(payload: bytes) -> bytes:
    return b"\x01" + var_bytes(payload)


def permission_denied_frame(reason: str) -> bytes:
    return b"\x02\x00" + var_bytes(reason.encode("utf-8"))


def save_receipt_frame(state_vector: bytes) -> bytes:
    return write_var_uint(MessageType.SAVE_RECEIPT) + var_bytes(state_vector)


def role_changed_frame(payload_json: str) -> bytes:
    return write_var_uint(MessageType.ROLE_CHANGED) + var_bytes(payload_json.encode("utf-8"))


def as_update_frame(frame: bytes, message: DocUpdate) -> bytes:
    """The frame to relay for an incoming update: the same bytes, Step2 relabelled as Update."""
    if message.is_step2:
        return update_frame(message.update)
    return frame


# An awareness update listing no clients: the cheapest frame every Yjs client
# accepts and ignores. Sent to idle peers to keep the client's 30 s watchdog quiet.
KEEPALIVE_FRAME = awareness_frame(b"\x00")

EMPTY_UPDATE = b"\x00\x00"
