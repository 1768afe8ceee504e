"""Reading the structs of a Yjs v1 update: ids, lengths and origins, not content.

yrs integrates some hostile updates wrongly (``tests/corpus/yrs``): numbers past its 32-bit
clocks or 53-bit client ids, and an item whose right origin lies left of its
origin inside one block of the same client, leave a document whose text view
disagrees with its own encoding, with or without a panic. Telling them apart
needs the update's struct headers, which the wire format gives in order:

    structs:    varUint groups, then per group: varUint n, varUint client, varUint clock,
                and n structs (info byte, [origin id], [right origin id], [parent], content)
    delete set: varUint clients, then per client: varUint client, varUint ranges,
                and per range: varUint clock, varUint length

(y-protocols / Yjs ``UpdateDecoderV1``.) Content is skipped, except that its
length is counted: an item takes as many clocks as its content is long.
"""

from __future__ import annotations

from dataclasses import dataclass

from crdt.protocol import CLOSE_POLICY_VIOLATION, ProtocolError, Reader

MAX_CLIENT = 2**53 - 1  # Yjs client ids are JavaScript safe integers
MAX_CLOCK = 2**32 - 1  # yrs keeps clocks in 32 bits

# The low five bits of an item's info byte: its content kind.
GC, DELETED, JSON, BINARY, STRING, EMBED, FORMAT, TYPE, ANY, DOC, SKIP = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
)  # fmt: skip
HAS_ORIGIN = 0x80
HAS_RIGHT_ORIGIN = 0x40
HAS_PARENT_SUB = 0x20
XML_ELEMENT, XML_HOOK = 3, 5  # type refs followed by a name

Id = tuple[int, int]  # (client, clock)


@dataclass(frozen=True, slots=True)
class Struct:
    client: int
    clock: int
    length: int
    origin: Id | None
    right_origin: Id | None
    # The parent, when the struct names it (no origins): a root's name or a nested
    # type's item id, with the map key for a map entry.
    named_parent: tuple[str | Id, str | None] | None = None
    kind: int = GC  # the content kind (low five bits of the info byte)
    # For a string: the offsets (in clocks) of the second halves of its surrogate
    # pairs, which no origin may split from the first.
    low_surrogates: tuple[int, ...] = ()

    @property
    def parent_item(self) -> Id | None:
        """The nested type's item this struct names as its parent, if any."""
        if self.named_parent is not None and isinstance(self.named_parent[0], tuple):
            return self.named_parent[0]
        return None


@dataclass(frozen=True, slots=True)
class Update:
    structs: list[Struct]
    deletes: list[tuple[int, int, int]]  # (client, clock, length)


def parse(update: bytes) -> Update:
    """The structs and deletions of ``update``. Raises ``ProtocolError`` (1008) for bytes
    that are not a v1 update."""
    reader = Reader(update)
    structs: list[Struct] = []
    for _ in range(reader.read_var_uint()):
        count = reader.read_var_uint()
        client = reader.read_var_uint()
        clock = reader.read_var_uint()
        for _ in range(count):
            struct = _struct(reader, client, clock)
            structs.append(struct)
            clock += struct.length
    deletes: list[tuple[int, int, int]] = []
    for _ in range(reader.read_var_uint()):
        client = reader.read_var_uint()
        for _ in range(reader.read_var_uint()):
            deletes.append((client, reader.read_var_uint(), reader.read_var_uint()))
    if not reader.at_end():
        raise ProtocolError(CLOSE_POLICY_VIOLATION, "invalid update", "trailing bytes")
    return Update(structs, deletes)


def _struct(reader: Reader, client: int, clock: int) -> Struct:
    info = reader.read_byte()
    kind = info & 0x1F
    if kind in (GC, SKIP):
        return Struct(client, clock, reader.read_var_uint(), None, None, None, kind)
    origin = _id(reader) if info & HAS_ORIGIN else None
    right = _id(reader) if info & HAS_RIGHT_ORIGIN else None
    parent: tuple[str | Id, str | None] | None = None
    if origin is None and right is None:  # the parent is named only when no origin is
        where: str | Id = reader.read_var_string() if reader.read_var_uint() == 1 else _id(reader)
        key = reader.read_var_string() if info & HAS_PARENT_SUB else None
        parent = (where, key)
    if kind == STRING:
        text = reader.read_var_string()
        lows = low_surrogates(text) if not text.isascii() else ()
        return Struct(client, clock, len(text) + len(lows), origin, right, parent, kind, lows)
    return Struct(client, clock, _content_length(reader, kind), origin, right, parent, kind)


def _id(reader: Reader) -> Id:
    return reader.read_var_uint(), reader.read_var_uint()


def _content_length(reader: Reader, kind: int) -> int:
    if kind == DELETED:
        return reader.read_var_uint()
    if kind == JSON:
        count = reader.read_var_uint()
        for _ in range(count):
            reader.read_var_string()
        return count
    if kind == BINARY:
        reader.read_var_bytes()
        return 1
    if kind == EMBED:
        reader.read_var_string()
        return 1
    if kind == FORMAT:
        reader.read_var_string()
        reader.read_var_string()
        return 1
    if kind == TYPE:
        if reader.read_var_uint() in (XML_ELEMENT, XML_HOOK):
            reader.read_var_string()
        return 1
    if kind == ANY:
        count = reader.read_var_uint()
        for _ in range(count):
            _skip_any(reader, 0)
        return count
    if kind == DOC:
        reader.read_var_string()
        _skip_any(reader, 0)
        return 1
    raise ProtocolError(CLOSE_POLICY_VIOLATION, "invalid update", f"content kind {kind}")


MAX_ANY_DEPTH = 64


def _skip_any(reader: Reader, depth: int) -> None:
    """Skip one lib0 ``any`` value (``readAny``)."""
    if depth > MAX_ANY_DEPTH:
        raise ProtocolError(CLOSE_POLICY_VIOLATION, "invalid update", "value nested too deep")
    tag = reader.read_byte()
    if tag in (127, 126, 121, 120):  # undefined, null, false, true
        return
    if tag == 125:  # signed varint
        while reader.read_byte() & 0x80:
            pass
    elif tag == 124:
        reader.skip(4)
    elif tag in (123, 122):  # float64, bigint64
        reader.skip(8)
    elif tag == 119:
        reader.read_var_string()
    elif tag == 118:  # object: key, value pairs
        for _ in range(reader.read_var_uint()):
            reader.read_var_string()
            _skip_any(reader, depth + 1)
    elif tag == 117:  # array
        for _ in range(reader.read_var_uint()):
            _skip_any(reader, depth + 1)
    elif tag == 116:
        reader.read_var_bytes()
    else:
        raise ProtocolError(CLOSE_POLICY_VIOLATION, "invalid update", f"value tag {tag}")


def low_surrogates(text: str) -> tuple[int, ...]:
    """UTF-16 offsets of the second unit of each character outside the BMP."""
    out: list[int] = []
    unit = 0
    for ch in text:
        if ord(ch) > 0xFFFF:
            out.append(unit + 1)
            unit += 2
        else:
            unit += 1
    return tuple(out)
