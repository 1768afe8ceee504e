"""Awareness (presence) bookkeeping for a room, on raw protocol bytes.

y-protocols' awareness update is ``varUint(n)`` followed by n entries of
``varUint(clientID) varUint(clock) varString(JSON state or "null")``.

``pycrdt.Awareness`` re-encodes every state and runs its own timers; a relay
needs neither. This module keeps each state as the JSON text the client sent,
applies y-protocols' clock rule, and remembers which connection holds each
client ID so its states can be removed (and the removal broadcast) when that
connection closes.

Client IDs belong to people, not connections. A connection that names its
verified user (the token's ``sub``) binds each ID it announces to that user for
the room's lifetime (a bounded number of bindings is remembered after their
holder left): another user's entries for that ID are ignored, so a classmate can
neither erase nor take over someone's presence, even after they disconnected,
and the same user reconnecting (before or after the server noticed the old
connection die) gets the ID back.

Every state is decoded once, and refused (``ProtocolError`` 1008, the update
changes nothing) when it is too large, nested too deeply, claims to be the
server's AI (``user.role`` "ai" or ``user.name`` "CodeMentor AI", decided on the
decoded, normalised text), or carries a ``user.color``/``colorLight`` that is
not a hex colour (browsers put them in ``style`` attributes). A connection holds
a handful of IDs, and a room's live states are bounded in total.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from crdt.protocol import CLOSE_POLICY_VIOLATION, ProtocolError, Reader, var_bytes, write_var_uint

NULL_STATE = "null"
SERVER_NAME = "CodeMentor AI"  # the AI pair-programmer's name: the server's alone
SERVER_ROLE = "ai"

_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})").fullmatch
# The translucent variant may carry an alpha channel (browsers send ``#rrggbb33``).
_HEX_COLOR_LIGHT = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})").fullmatch
_INVISIBLE = frozenset(("Cc", "Cf", "Zs", "Zl", "Zp"))
_ASCII_INVISIBLE = dict.fromkeys([*range(33), 127])  # controls and the space


@dataclass(slots=True)
class Entry:
    client_id: int
    clock: int
    state: str  # JSON text; "null" marks a removed state
    size: int = field(default=0, compare=False)  # UTF-8 bytes of ``state`` when decoded


@dataclass(frozen=True, slots=True)
class AwarenessLimits:
    """What one room's presence may cost. A state over ``state_bytes``, a connection
    holding more than ``clients`` IDs, or a room whose live states would pass
    ``room_bytes`` (what every newcomer is sent) is refused with 1008."""

    state_bytes: int = 16 * 1024
    clients: int = 4
    room_bytes: int = 4 * 1024 * 1024
    remembered: int = 4096  # bindings of client IDs whose holder left, oldest dropped first


def folded(text: str) -> str:
    """``text`` as it compares for lookalikes: NFKC, casefolded, without whitespace,
    control or format characters (so ``" codeMentor\\u200bAI "`` is ``"codementorai"``)."""
    if text.isascii():  # the common case, cheaply: NFKC leaves ASCII as it is
        return text.lower().translate(_ASCII_INVISIBLE)
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in text if unicodedata.category(ch) not in _INVISIBLE)


_SERVER_NAME = folded(SERVER_NAME)


def is_server_name(name: str) -> bool:
    """Would ``name`` pass for the AI pair-programmer's?"""
    return folded(name) == _SERVER_NAME


def _refuse(reason: str) -> ProtocolError:
    return ProtocolError(CLOSE_POLICY_VIOLATION, reason)


def _check_state(value: Any, trusted: bool) -> None:
    """The parts of a state browsers trust: ``user.name``/``role`` (the AI badge) and
    ``user.color``/``colorLight`` (put into ``style`` attributes)."""
    user = value.get("user") if isinstance(value, dict) else None
    if not isinstance(user, dict):
        return
    name, role = user.get("name"), user.get("role")
    # A list ``["ai"]`` is "ai" to a JavaScript property lookup: text only.
    if not isinstance(name, str | None) or not isinstance(role, str | None):
        raise _refuse("awareness user.name and user.role must be strings")
    if not trusted and (
        (role is not None and folded(role) == SERVER_ROLE)
        or (name is not None and is_server_name(name))
    ):
        raise _refuse("awareness state claims to be the server's AI")
    color = user.get("color")
    if color is not None and not (isinstance(color, str) and _HEX_COLOR(color)):
        raise _refuse("awareness user.color is not a #rgb or #rrggbb colour")
    light = user.get("colorLight")
    if light is not None and not (isinstance(light, str) and _HEX_COLOR_LIGHT(light)):
        raise _refuse("awareness user.colorLight is not a hex colour")


def decode_update(payload: bytes) -> list[Entry]:
    """Decode an awareness update; refuse one that is malformed or whose states are
    not JSON as browsers read it (every browser in the room would choke on it)."""
    entries = [Entry(cid, clock, _text(raw), len(raw)) for cid, clock, raw in _entries(payload)]
    for entry in entries:
        if entry.state != NULL_STATE:
            _parse(entry.state)
    return entries


def _entries(payload: bytes, max_count: int | None = None) -> list[tuple[int, int, bytes]]:
    """The (client ID, clock, raw state) triples of an update, refused whole when
    malformed or (``max_count``) listing more clients than it could honestly hold."""
    reader = Reader(payload)
    count = reader.read_var_uint()
    if max_count is not None and count > max_count:
        raise _refuse("too many awareness clients")
    triples = []
    for _ in range(count):
        client_id = reader.read_var_uint()
        clock = reader.read_var_uint()
        triples.append((client_id, clock, reader.read_var_bytes()))
    if not reader.at_end():
        raise _refuse("trailing bytes in awareness update")
    return triples


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse("invalid UTF-8 string") from exc


def _parse(state: str) -> Any:
    try:
        return _DECODER.decode(state)
    except ValueError as exc:
        raise _refuse("awareness state is not JSON") from exc
    except RecursionError as exc:
        raise _refuse("awareness state nested too deeply") from exc


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


# NaN and Infinity are Python's, not JSON: JSON.parse refuses them. One decoder, made
# once (``json.loads`` with an option builds a new one per call).
_DECODER = json.JSONDecoder(parse_constant=_not_json)


def encode_update(entries: list[Entry]) -> bytes:
    parts = [write_var_uint(len(entries))]
    for entry in entries:
        parts.append(write_var_uint(entry.client_id))
        parts.append(write_var_uint(entry.clock))
        parts.append(var_bytes(entry.state.encode("utf-8")))
    return b"".join(parts)


class AwarenessStates:
    """The awareness states of one room, who holds each client ID, and whose it is."""

    def __init__(self, limits: AwarenessLimits | None = None) -> None:
        self.limits = limits or AwarenessLimits()
        self._entries: dict[int, Entry] = {}
        self._owners: dict[int, Hashable] = {}  # the connection (or instance) holding each ID
        self._held: dict[Hashable, set[int]] = {}  # the reverse: IDs each holder holds
        self._users: dict[int, Hashable] = {}  # the verified user each ID is bound to
        self._vacant: OrderedDict[int, None] = OrderedDict()  # bound IDs nobody holds
        self._refreshed: dict[int, float] = {}  # monotonic time of each ID's last update
        self._bytes = 0  # UTF-8 bytes of the live states: the size of a newcomer's snapshot

    def __len__(self) -> int:
        return sum(1 for e in self._entries.values() if e.state != NULL_STATE)

    @property
    def live_bytes(self) -> int:
        return self._bytes

    def apply(
        self,
        payload: bytes,
        owner: Hashable,
        trusted: bool = False,
        user: Hashable | None = None,
        personal: bool = False,
    ) -> bytes | None:
        """Apply an update sent by ``owner`` (a connection) on behalf of ``user`` (its
        verified identity, which IDs get bound to). Returns the awareness payload to
        relay (the same bytes when every entry was accepted), or None if nothing
        changed. Raises ``ProtocolError`` (and changes nothing) for a refused state.

        A ``personal`` user (one person's token) takes over its IDs from another of
        its connections: a reconnect the server has not noticed yet must not leave
        the person invisible. A shared identity (a link many people opened) does not:
        its IDs stay with the connection holding them until it closes.

        Only a ``trusted`` owner (this server, another instance) may announce the
        server's own participants (``user.role == "ai"``): clients show them with an
        AI badge and highlight their edits, so a person may not pose as one. Trusted
        owners are not bound by the per-connection and per-room limits either: what
        they relay was checked where it came from."""
        limits = self.limits
        # Browsers echo every change they receive (y-websocket relays all of awareness),
        # so an honest update may list every ID in the room, each once, plus its own.
        known = len(self._owners) + len(self._vacant) + limits.clients
        triples = _entries(payload, None if trusted else known)
        accepted: list[Entry] = []
        taken: list[int] = []  # IDs this update moves to ``owner``
        growth = 0
        for cid, clock, raw in triples:
            holder = self._owners.get(cid)
            current = self._entries.get(cid)
            if holder is not None and holder != owner:
                # Held by another connection (an echo, or an impostor): only that ID's
                # own person, reconnecting before the server noticed the old connection
                # die, takes it over; a late frame of the old connection never does.
                if (
                    trusted
                    or not personal
                    or user is None
                    or self._users.get(cid) != user
                    or (current is not None and clock < current.clock)
                ):
                    continue
                taken.append(cid)
            elif holder is None:
                if raw == b"null":
                    continue  # nothing here to remove
                bound = self._users.get(cid)
                if not trusted and bound is not None and bound != user:
                    continue  # someone else's ID, its holder gone: never handed on
                taken.append(cid)
            # This owner's entry: decided on its decoded content.
            if len(raw) > limits.state_bytes:
                raise _refuse("awareness state too large")
            state = _text(raw)
            if state != NULL_STATE:
                _check_state(_parse(state), trusted)
            entry = Entry(cid, clock, state, len(raw))
            if current is not None and not (
                current.clock < entry.clock
                or (
                    current.clock == entry.clock
                    and entry.state == NULL_STATE
                    and current.state != NULL_STATE
                )
            ):
                continue
            growth += _live_size(entry) - (_live_size(current) if current is not None else 0)
            accepted.append(entry)
        if not trusted:
            held = self._held.get(owner, ())
            if taken and len(held) + len({c for c in taken if c not in held}) > limits.clients:
                raise _refuse("too many awareness clients on one connection")
            if growth > 0 and self._bytes + growth > limits.room_bytes:
                raise _refuse("the room's awareness is full")
        for cid in taken:
            self._hold(cid, owner, user)
        if not accepted:
            return None
        now = time.monotonic()
        for entry in accepted:
            self._entries[entry.client_id] = entry
            self._refreshed[entry.client_id] = now
        self._bytes += growth
        if len(accepted) == len(triples):
            return payload
        return encode_update(accepted)

    def _hold(self, cid: int, owner: Hashable, user: Hashable | None) -> None:
        previous = self._owners.get(cid)
        if previous is not None:
            self._release(previous, cid)
        self._owners[cid] = owner
        self._held.setdefault(owner, set()).add(cid)
        if user is not None:
            self._users[cid] = user
            self._vacant.pop(cid, None)
        self._refreshed.setdefault(cid, time.monotonic())

    def _release(self, owner: Hashable, cid: int) -> None:
        held = self._held.get(owner)
        if held is not None:
            held.discard(cid)
            if not held:
                del self._held[owner]

    def client_ids(self, owner: Hashable) -> list[int]:
        """The awareness client IDs ``owner`` holds (for example, one browser tab's doc)."""
        return sorted(self._held.get(owner, ()))

    def snapshot(self, include: Callable[[Hashable, int], bool] | None = None) -> bytes | None:
        """Every live state (only those for which ``include(owner, client_id)`` holds,
        if given), for a peer that just joined or asked (QueryAwareness)."""
        live = [
            e
            for e in self._entries.values()
            if e.state != NULL_STATE
            and (include is None or include(self._owners[e.client_id], e.client_id))
        ]
        return encode_update(live) if live else None

    def expire(self, owners: Callable[[Hashable], bool], max_age: float) -> bytes | None:
        """Remove states of matching owners not refreshed for ``max_age`` seconds (clients
        renew every 15 s; a state from a dead instance stops being renewed). Returns the
        removal to broadcast."""
        cutoff = time.monotonic() - max_age
        stale = [
            cid
            for cid, refreshed in self._refreshed.items()
            if refreshed < cutoff and owners(self._owners[cid])
        ]
        removed: list[Entry] = []
        for cid in stale:
            entry = self._forget(cid)
            if entry is not None and entry.state != NULL_STATE:
                removed.append(Entry(cid, entry.clock + 1, NULL_STATE))
        return encode_update(removed) if removed else None

    def _forget(self, client_id: int) -> Entry | None:
        """Drop the ID's state and holder; its user binding is kept (bounded)."""
        owner = self._owners.pop(client_id)
        self._release(owner, client_id)
        self._refreshed.pop(client_id, None)
        entry = self._entries.pop(client_id, None)
        if entry is not None:
            self._bytes -= _live_size(entry)
        if client_id in self._users:
            self._vacant[client_id] = None
            while len(self._vacant) > self.limits.remembered:
                oldest, _ = self._vacant.popitem(last=False)
                del self._users[oldest]
        return entry

    def remove_owner(self, owner: Hashable) -> bytes | None:
        """Forget every client ID ``owner`` holds; return the removal to broadcast.
        The IDs stay bound to their user: only that user may announce them again."""
        removed: list[Entry] = []
        for cid in sorted(self._held.get(owner, ())):
            entry = self._forget(cid)
            if entry is not None and entry.state != NULL_STATE:
                removed.append(Entry(cid, entry.clock + 1, NULL_STATE))
        return encode_update(removed) if removed else None


def _live_size(entry: Entry) -> int:
    return 0 if entry.state == NULL_STATE else entry.size or len(entry.state.encode("utf-8"))
