"""Only updates yrs integrates correctly reach a room's document.

Mutating real updates (the cases are kept in ``tests/corpus/yrs``) found many that pycrdt
0.14's yrs gets wrong: some panic, some raise, and some apply *without any error*
yet leave the document's text view disagreeing with its own encoding, so the
room, its store and every client would each hold a different text. What they have
in common is an update that no Yjs client writes:

- numbers past yrs's types (a client id over 53 bits, a clock past 32 bits), an
  item of length zero, bytes that do not parse;
- an item under an id the document already holds;
- a dependency the document lacks: a gap in the sender's clocks, an origin, right
  origin, parent or deleted range not yet integrated (yrs keeps such an update
  pending and later integrates it wrongly);
- origins that contradict the document: origin and right origin in different
  types, a right origin on a map entry, or one client's origin and right origin
  inside one block (which yrs would split twice) or out of order.

``UpdateCheck.admit`` answers with what to apply (an update that repeats what the
document holds is cut down to its new part by yrs's own diff, as for a client that
sends its whole state on connect) or raises ``Refused``: ``missing`` when an honest
client can be the sender (it typed while reconnecting, before its Step2 brought what
the keystroke depends on: the room holds it until then), otherwise a policy
violation.

Where the cheap checks cannot decide (an origin the index does not place, or one
client's origins whose offsets look like one block), the update is tried on a
copy of the document, a cost proportional to the document, so a room allows only
``VERIFY_BUDGET`` such tries per ``VERIFY_WINDOW`` seconds and refuses the rest.

Cost: every owner's and editor's keystroke passes here. The common shape (one
string inserted with its origins, one range deleted) is recognised by one
compiled pattern, client ids are compared as raw varint bytes, and a person who
keeps typing at one place is recognised from their previous keystroke; other
shapes are parsed whole (``crdt.structs``).
"""

from __future__ import annotations

import re
import time
from typing import Any, NamedTuple

from pycrdt import Doc, Text, get_update
from pycrdt._pycrdt import decode_sticky_index

from crdt import failures, schema, structs
from crdt.parents import Parent, ParentIndex
from crdt.protocol import ProtocolError, write_var_uint
from crdt.updates import decode_state_vector

VERIFY_BUDGET = 20
VERIFY_WINDOW = 10.0

_V53 = rb"[\x80-\xff]{0,7}+[\x00-\x7f]"  # a varint of at most 8 bytes (a client id)
_V32 = rb"[\x80-\xff]{0,4}+[\x00-\x7f]"  # a varint of at most 5 bytes (a clock)
# One string item (info 0xC4: both origins, 0x84: origin only, 0x44: right origin
# only) with a one-byte length, then (checked after the match) an empty delete set.
_INSERT = re.compile(
    rb"\x01\x01(" + _V53 + rb")(" + _V32 + rb")(?:"
    rb"\xc4(" + _V53 + rb")(" + _V32 + rb")(" + _V53 + rb")(" + _V32 + rb")"
    rb"|\x84(" + _V53 + rb")(" + _V32 + rb")"
    rb"|\x44(" + _V53 + rb")(" + _V32 + rb"))([\x01-\x7f])",
    re.S,
)
# No structs, one deleted range: a backspace.
_DELETE = re.compile(rb"\x00\x01(" + _V53 + rb")\x01(" + _V32 + rb")(" + _V32 + rb")", re.S)


class Refused(Exception):
    """The update must not be applied (now). ``missing``: it depends on what the room
    does not have yet, as an honest client's keystroke made while it reconnects does
    until its Step2 arrives: worth holding. ``busy``: the room's verifications are
    spent for now (close with 1013; the client resends later). Otherwise: no client
    writes this (1008)."""

    def __init__(self, reason: str, missing: bool = False, busy: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing
        self.busy = busy


class Admitted(NamedTuple):
    """What ``admit`` decided (a tuple: made on every keystroke)."""

    update: bytes  # what to apply: the update, or its new part
    # The cheap checks could not decide: once applied, the document must be found to
    # agree with its own encoding (``consistent``), or be rebuilt without it.
    verify: bool
    # (client, first clock, end clock, parent, second halves of surrogate pairs) of
    # each struct, for ``commit``
    items: tuple[tuple[int, int, int, Parent | None, tuple[int, ...]], ...]
    # (client, first clock, length) of each range the update deletes
    deletes: tuple[tuple[int, int, int], ...] = ()


class UpdateCheck:
    """One room's check: the document's clocks, which type each item belongs to, and
    where each client's last keystroke went (the next one at that place needs no
    lookup). Fed with everything the document applies (``commit``, ``learn``)."""

    __slots__ = ("_known", "_parents", "_typing", "_verified")

    def __init__(self) -> None:
        self._known: dict[int, int] = {}  # client -> next clock
        self._parents: ParentIndex | None = None  # read from the document when first needed
        # Where each client's last keystroke went: client varint -> (next clock, client,
        # right origin's client and clock varints, parent).
        self._typing: dict[bytes, tuple[int, int, bytes | None, bytes | None, Parent | None]] = {}
        self._verified: list[float] = []  # times of copy tries, for the budget

    def reset(self, doc: Doc[Any]) -> None:
        """Start from ``doc`` (a room loaded or rebuilt)."""
        self._known = decode_state_vector(doc.get_state())
        self._parents = None
        self._typing.clear()

    def failed(self) -> None:
        """An admitted update was not applied after all: forget where typing was."""
        self._typing.clear()

    def learn(self, update: bytes) -> None:
        """``update`` was applied by other means (a server edit, another instance). A
        keystroke (another instance's, mostly: that instance admitted it) is read from
        its bytes, as ``admit`` reads one, rather than parsed whole."""
        match = _INSERT.match(update)
        if match is not None and match.end() + match[11][0] + 1 == len(update) and not update[-1]:
            client, clock, oc, ok, rc, rk, oc1, ok1, rc1, rk1, size = match.groups()
            if oc is None and rc is None:
                oc, ok, rc, rk = oc1, ok1, rc1, rk1
            sender, first = _value(client), _value(clock)
            length, lows = _string(update, match.end(), size[0], first)
            if self._parents is not None:
                # Where it went: its origin's parent, else its right origin's (the
                # pattern holds at least one of them).
                ref = (_value(oc), _value(ok)) if oc is not None else (_value(rc), _value(rk))
                self._parents.add(sender, first, first + length, self._parents.parent_of(*ref))
                self._parents.add_low_surrogates(sender, list(lows))
            if first + length > self._known.get(sender, 0):
                self._known[sender] = first + length
            return
        try:
            parsed = structs.parse(update)
        except ProtocolError:
            return
        if self._parents is not None:
            self._parents.learn(parsed)
        for struct in parsed.structs:
            end = struct.clock + struct.length
            if end > self._known.get(struct.client, 0):
                self._known[struct.client] = end

    def commit(self, admitted: Admitted) -> None:
        """``admitted`` was applied: its items are in the document now."""
        known = self._known
        parents = self._parents
        for client, start, end, parent, lows in admitted.items:
            if parents is not None:
                parents.add(client, start, end, parent)
                if lows:
                    parents.add_low_surrogates(client, list(lows))
            if end > known.get(client, 0):
                known[client] = end

    def admit(self, doc: Doc[Any], update: bytes) -> Admitted:
        """What to apply for ``update`` from a peer; raises ``Refused``."""
        match = _INSERT.match(update)
        if match is not None and match.end() + match[11][0] + 1 == len(update) and not update[-1]:
            return self._keystroke(doc, update, match)
        match = _DELETE.fullmatch(update)
        if match is not None:
            client, clock, length = match.groups()
            if not (_client_ok(client) and _clock_ok(clock, _value(length))):
                raise Refused("number out of range")
            start, end = _value(clock), _value(clock) + _value(length)
            if end > self._known.get(_value(client), 0):
                raise Refused("deletes what the room does not have yet", missing=True)
            if self._index(doc).splits_a_character(None, (_value(client), start)) or (
                self._index(doc).splits_a_character(None, (_value(client), end))
            ):
                raise Refused("deletes half a character")
            return Admitted(update, False, (), ((_value(client), start, _value(length)),))
        return self._whole(doc, update, trimmed=False)

    # -- the common shape -------------------------------------------------------

    def _keystroke(self, doc: Doc[Any], update: bytes, match: re.Match[bytes]) -> Admitted:
        client, clock, oc, ok, rc, rk, oc1, ok1, rc1, rk1, size = match.groups()
        if oc is None and rc is None:
            oc, ok, rc, rk = oc1, ok1, rc1, rk1
        last = self._typing.get(client)
        if last is not None and oc == client and rc == last[2] and rk == last[3]:
            # Perhaps the next keystroke at the place of the last one: the same right
            # origin (checked then), its origin that keystroke's last item. Nothing to
            # look up; ids compared as bytes, clocks read only when short.
            first = clock[0] if len(clock) == 1 else _value(clock)
            if first == last[0] and (ok[0] if len(ok) == 1 else _value(ok)) == first - 1:
                if len(clock) < 5 or first + size[0] <= structs.MAX_CLOCK:
                    length, lows = _string(update, match.end(), size[0], first)
                    self._typing[client] = (first + length, last[1], rc, rk, last[4])
                    return Admitted(
                        update, False, ((last[1], first, first + length, last[4], lows),)
                    )
        if not (_client_ok(client) and _clock_ok(clock, size[0])):
            raise Refused("number out of range")
        if (oc is not None and not (_client_ok(oc) and _clock_ok(ok))) or (
            rc is not None and not (_client_ok(rc) and _clock_ok(rk))
        ):
            raise Refused("number out of range")
        first = _value(clock)
        sender = _value(client)
        expected = self._known.get(sender, 0)
        if first != expected:
            if first < expected:  # repeats what the document holds: the general way
                return self._whole(doc, update, trimmed=False)
            raise Refused("skips clocks the room does not have yet", missing=True)
        origin = (_value(oc), _value(ok)) if oc is not None else None
        right = (_value(rc), _value(rk)) if rc is not None else None
        for ref in (origin, right):
            if ref is not None and ref[1] >= self._known.get(ref[0], 0):
                raise Refused("depends on what the room does not have yet", missing=True)
        parent, verify = self._placed(doc, origin, right, string=True)
        if verify:
            self._may_verify()
        length, lows = _string(update, match.end(), size[0], first)
        if not verify:
            self._typing[client] = (first + length, sender, rc, rk, parent)
        return Admitted(update, verify, ((sender, first, first + length, parent, lows),))

    def _placed(
        self,
        doc: Doc[Any],
        origin: tuple[int, int] | None,
        right: tuple[int, int] | None,
        string: bool,
        parents: ParentIndex | None = None,
    ) -> tuple[Parent | None, bool]:
        """The type the item's origins put it in, and whether the document must be
        verified once the item is in (the origins could not be placed, or are not
        neighbours). Raises ``Refused`` for origins no client writes."""
        if origin is not None and origin == right:
            raise Refused("origin and right origin are one item")
        index = parents if parents is not None else self._index(doc)
        if index.splits_a_character(origin, right):
            raise Refused("origins split a character")
        of_origin = index.parent_of(*origin) if origin is not None else None
        of_right = index.parent_of(*right) if right is not None else None
        if of_origin is not None and of_right is not None and of_origin != of_right:
            raise Refused("origins in different types")
        parent = of_origin if origin is not None else of_right
        if parent is not None and parent[1] is not None and (right is not None or string):
            raise Refused("a map entry with a right origin, or text in a map")
        if parent is None or (origin is not None and right is not None and of_right is None):
            return parent, True  # an origin the index cannot place
        if not self._in_document(origin) or not self._in_document(right):
            return parent, True  # an origin in the same update: no offset to compare yet
        return parent, right is not None and not _neighbours(doc, origin, right)

    def _in_document(self, item: tuple[int, int] | None) -> bool:
        return item is None or item[1] < self._known.get(item[0], 0)

    def _may_verify(self) -> bool:
        """Spend one of the room's verifications (each reads the whole document)."""
        now = time.monotonic()
        self._verified = [t for t in self._verified if now - t < VERIFY_WINDOW]
        if len(self._verified) >= VERIFY_BUDGET:
            raise Refused("too many updates to verify; retry shortly", busy=True)
        self._verified.append(now)
        return True

    def index(self, doc: Doc[Any]) -> ParentIndex:
        """Which type each item of ``doc`` belongs to (``crdt.parents``)."""
        return self._index(doc)

    def _index(self, doc: Doc[Any]) -> ParentIndex:
        """The parent index, read from the whole document the first time it is needed
        (a room that only ever sees keystrokes at one place never pays for it)."""
        if self._parents is None:
            self._parents = ParentIndex()
            try:
                self._parents.learn(structs.parse(doc.get_update()))
            except ProtocolError:
                pass  # a shape this reader does not know: nothing placed, copies decide
        return self._parents

    # -- everything else --------------------------------------------------------

    def _whole(self, doc: Doc[Any], update: bytes, trimmed: bool) -> Admitted:
        try:
            parsed = structs.parse(update)
        except ProtocolError as exc:
            raise Refused(exc.detail or exc.reason) from exc
        known = self._known
        added: dict[int, int] = {}  # client -> next clock once this update is applied
        repeats = False
        for struct in parsed.structs:
            if struct.length <= 0:
                raise Refused("empty item")
            ids = [(struct.client, struct.clock + struct.length)]
            ids += [r for r in (struct.origin, struct.right_origin, struct.parent_item) if r]
            if any(c > structs.MAX_CLIENT or k > structs.MAX_CLOCK for c, k in ids):
                raise Refused("number out of range")
            have = added.get(struct.client, known.get(struct.client, 0))
            if struct.clock > have:
                raise Refused("skips clocks the room does not have yet", missing=True)
            repeats = repeats or struct.clock < have
            added[struct.client] = max(have, struct.clock + struct.length)
        for client, clock, length in parsed.deletes:
            if client > structs.MAX_CLIENT or clock + length > structs.MAX_CLOCK:
                raise Refused("number out of range")
        if repeats:
            if trimmed:
                raise Refused("repeats known clocks after trimming")
            return self._whole(doc, _new_part(doc, update), trimmed=True)

        def integrated(ref: tuple[int, int]) -> bool:
            return ref[1] < added.get(ref[0], known.get(ref[0], 0))

        for struct in parsed.structs:
            for ref in (struct.origin, struct.right_origin, struct.parent_item):
                if ref is not None and not integrated(ref):
                    raise Refused("depends on what the room does not have yet", missing=True)
        for client, clock, length in parsed.deletes:
            if length and not integrated((client, clock + length - 1)):
                raise Refused("deletes what the room does not have yet", missing=True)
        own = _Overlay(self._index(doc))
        for struct in parsed.structs:
            if struct.low_surrogates:
                own.add_low_surrogates(
                    struct.client, [struct.clock + o for o in struct.low_surrogates]
                )
        for client, clock, length in parsed.deletes:
            if own.splits_a_character(None, (client, clock)) or own.splits_a_character(
                None, (client, clock + length)
            ):
                raise Refused("deletes half a character")
        items: list[tuple[int, int, int, Parent | None, tuple[int, ...]]] = []
        verify = False
        for struct in parsed.structs:
            parent = own.parent_for(struct)
            if struct.named_parent is None and (struct.origin or struct.right_origin):
                parent, check = self._placed(
                    doc, struct.origin, struct.right_origin,
                    string=struct.kind == structs.STRING, parents=own,
                )  # fmt: skip
                verify = verify or check
            end = struct.clock + struct.length
            own.add(struct.client, struct.clock, end, parent)
            lows = tuple(struct.clock + o for o in struct.low_surrogates)
            items.append((struct.client, struct.clock, end, parent, lows))
        if verify:
            self._may_verify()  # once for the whole update, however many items it holds
        return Admitted(update, verify, tuple(items), tuple(parsed.deletes))


class _Overlay(ParentIndex):
    """The room's index, plus the items of the update being checked."""

    __slots__ = ("_base",)

    def __init__(self, base: ParentIndex) -> None:
        super().__init__()
        self._base = base

    def parent_of(self, client: int, clock: int) -> Parent | None:
        mine = super().parent_of(client, clock)
        return mine if mine is not None else self._base.parent_of(client, clock)


NEAR = 4  # offsets apart that neighbours can be (see ``_neighbours``)


def _neighbours(doc: Doc[Any], origin: tuple[int, int] | None, right: tuple[int, int]) -> bool:
    """Do ``origin`` and ``right`` (of one sequence) sit next to each other, as an honest
    client's did when it typed? False when the document must be verified after the
    update: they are further apart (another person typing at that place at the same
    moment does that too, rarely), or one client's origins look like one block.

    yrs's sticky index gives an item's offset as the whole blocks before it in UTF-8
    bytes plus its place inside its block in clocks, and a deleted item the offset of
    the next visible one. Both grow left to right, so the right origin of neighbours
    is at most ``NEAR`` right of the origin (more than one only when the origin's
    block holds characters of several bytes), or at the same offset when the origin
    is deleted (but not at 0, where entries of one map all are); inside one block
    offsets are exactly as far apart as clocks."""
    with doc.transaction() as txn:
        raw = txn._txn
        assert raw is not None
        at_right = _offset(raw, right)
        if origin is None:
            return at_right == 0  # no origin: the right origin was the first item
        at_origin = _offset(raw, origin)
    if at_origin is None or at_right is None:
        return False
    apart = at_right - at_origin
    if apart == 0:
        return at_origin > 0
    if not 1 <= apart <= NEAR:
        return False
    if origin[0] == right[0] and right[1] != origin[1] + 1 and apart == right[1] - origin[1]:
        return False  # looks like one block: yrs would split it twice
    return True


def _offset(raw: Any, item: tuple[int, int]) -> int | None:
    """The offset of an item in its sequence (None for an id the document lacks)."""
    try:
        sticky = decode_sticky_index(
            b"\x00" + write_var_uint(item[0]) + write_var_uint(item[1]) + b"\x00"
        )
        offset = sticky.get_offset(raw)
    except BaseException as exc:
        if not failures.is_yrs_failure(exc):
            raise
        return None
    return offset if isinstance(offset, int) else None


def _new_part(doc: Doc[Any], update: bytes) -> bytes:
    """What of ``update`` the document does not hold yet (yrs's own diff)."""
    try:
        return bytes(get_update(update, doc.get_state()))
    except BaseException as exc:
        if not failures.is_yrs_failure(exc):
            raise
        raise Refused("undecodable update") from exc


def consistent(doc: Doc[Any]) -> bool:
    """Does ``doc`` agree with its own encoding (each root of the schema reads the same
    in a fresh document built from it)? Costs a copy of the document."""
    try:
        fresh: Doc[Any] = Doc()
        fresh.apply_update(doc.get_update())
        return all(
            _view(doc, name, kind) == _view(fresh, name, kind)
            for name, kind in schema.ROOT_TYPES.items()
        )
    except BaseException as exc:
        if not failures.is_yrs_failure(exc):
            raise
        return False


def _view(doc: Doc[Any], name: str, kind: type) -> Any:
    root = doc.get(name, type=kind)
    return str(root) if kind is Text else root.to_py()


def _string(update: bytes, start: int, size: int, first: int) -> tuple[int, tuple[int, ...]]:
    """Clocks a string item takes (UTF-16 code units) and the clocks of the second
    halves of its surrogate pairs."""
    raw = update[start : start + size]
    if raw.isascii():
        return size, ()
    text = raw.decode("utf-8", "replace")
    lows = structs.low_surrogates(text)
    return len(text) + len(lows), tuple(first + offset for offset in lows)


def _value(varint: bytes) -> int:
    value = 0
    for shift, byte in enumerate(varint):
        value |= (byte & 0x7F) << (7 * shift)
    return value


def _client_ok(varint: bytes) -> bool:
    """At most 53 bits, written the short way (Yjs never pads a varint)."""
    return (len(varint) < 8 or varint[7] <= 0x0F) and (len(varint) == 1 or varint[-1] != 0)


def _clock_ok(varint: bytes, length: int = 0) -> bool:
    if len(varint) > 1 and varint[-1] == 0:
        return False
    return len(varint) < 5 or _value(varint) + length <= structs.MAX_CLOCK
