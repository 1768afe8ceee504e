"""Awareness (presence) bookkeeping for a room, on raw protocol bytes.

y-protocols' awareness update is ``varUint(n)`` followed by n entries of
``varUint(clientID) varUint(clock) varString(JSON state or "null")``.

``pycrdt.Awareness`` re-encodes every state and runs its own timers; a relay
needs neither. This module keeps each state as the JSON text the client sent,
applies y-protocols' clock rule, and remembers which connection announced each
client ID so its states can be removed (and the removal broadcast) when that
connection closes. A client ID belongs to the first connection that announced
it: entries for an ID owned by another connection are ignored, so one peer
cannot erase or impersonate another's cursor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from crdt.protocol import CLOSE_POLICY_VIOLATION, ProtocolError, Reader, var_bytes, write_var_uint

NULL_STATE = "null"


@dataclass(slots=True)
class Entry:
    client_id: int
    clock: int
    state: str  # JSON text; "null" marks a removed state


def decode_update(payload: bytes) -> list[Entry]:
    """Decode and validate an awareness update. Bad JSON is refused: every
    browser in the room would otherwise choke on it."""
    reader = Reader(payload)
    count = reader.read_var_uint()
    entries: list[Entry] = []
    for _ in range(count):
        client_id = reader.read_var_uint()
        clock = reader.read_var_uint()
        state = reader.read_var_string()
        if state != NULL_STATE:
            try:
                json.loads(state)
            except ValueError as exc:
                raise ProtocolError(CLOSE_POLICY_VIOLATION, "awareness state is not JSON") from exc
        entries.append(Entry(client_id, clock, state))
    if not reader.at_end():
        raise ProtocolError(CLOSE_POLICY_VIOLATION, "trailing bytes in awareness update")
    return entries


SERVER_ROLE = '"ai"'


def _claims_server_role(state: str) -> bool:
    value = json.loads(state)
    user = value.get("user") if isinstance(value, dict) else None
    return isinstance(user, dict) and user.get("role") == "ai"


def encode_update(entries: list[Entry]) -> bytes:
    parts = [write_var_uint(len(entries))]
    for entry in entries:
        parts.append(write_var_uint(entry.client_id))
        parts.append(write_var_uint(entry.clock))
        parts.append(var_bytes(entry.state.encode("utf-8")))
    return b"".join(parts)


class AwarenessStates:
    """The awareness states of one room and who owns each client ID."""

    def __init__(self) -> None:
        self._entries: dict[int, Entry] = {}
        self._owners: dict[int, Hashable] = {}
        self._refreshed: dict[int, float] = {}  # monotonic time of each ID's last update

    def __len__(self) -> int:
        return sum(1 for e in self._entries.values() if e.state != NULL_STATE)

    def apply(self, payload: bytes, owner: Hashable, trusted: bool = False) -> bytes | None:
        """Apply an update sent by ``owner``. Returns the awareness payload to relay
        (the same bytes when every entry was accepted), or None if nothing changed.
        Only a ``trusted`` owner (this server, another instance) may announce the
        server's own participants (``user.role == "ai"``): clients show them with
        an AI badge and highlight their edits, so a person may not pose as one."""
        entries = decode_update(payload)
        accepted: list[Entry] = []
        for entry in entries:
            if not trusted and SERVER_ROLE in entry.state and _claims_server_role(entry.state):
                continue
            current_owner = self._owners.get(entry.client_id)
            if current_owner is not None and current_owner != owner:
                continue
            current = self._entries.get(entry.client_id)
            if current is not None and not (
                current.clock < entry.clock
                or (
                    current.clock == entry.clock
                    and entry.state == NULL_STATE
                    and current.state != NULL_STATE
                )
            ):
                continue
            self._owners[entry.client_id] = owner
            self._entries[entry.client_id] = entry
            self._refreshed[entry.client_id] = time.monotonic()
            accepted.append(entry)
        if not accepted:
            return None
        if len(accepted) == len(entries):
            return payload
        return encode_update(accepted)

    def client_ids(self, owner: Hashable) -> list[int]:
        """The awareness client IDs ``owner`` announced (for example, one browser tab's doc)."""
        return [cid for cid, o in self._owners.items() if o == owner]

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
            if entry.state != NULL_STATE:
                removed.append(Entry(cid, entry.clock + 1, NULL_STATE))
        return encode_update(removed) if removed else None

    def _forget(self, client_id: int) -> Entry:
        del self._owners[client_id]
        del self._refreshed[client_id]
        return self._entries.pop(client_id)

    def remove_owner(self, owner: Hashable) -> bytes | None:
        """Forget every client ID ``owner`` announced; return the removal to broadcast."""
        ids = [cid for cid, o in self._owners.items() if o == owner]
        removed: list[Entry] = []
        for cid in ids:
            entry = self._forget(cid)
            if entry.state != NULL_STATE:
                removed.append(Entry(cid, entry.clock + 1, NULL_STATE))
        return encode_update(removed) if removed else None
