"""Facts about v1 updates and state vectors that the room and the stores need."""

from __future__ import annotations

from pycrdt import get_update

from crdt.protocol import EMPTY_UPDATE, Reader


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """``varUint(n) · n × (varUint client, varUint clock)`` -> {client: clock}."""
    reader = Reader(state_vector)
    return {reader.read_var_uint(): reader.read_var_uint() for _ in range(reader.read_var_uint())}


def uncovered(update: bytes, state_vector: bytes) -> bytes | None:
    """The part of ``update`` a document at ``state_vector`` may not hold, or None.

    A document keeps an update whose dependencies have not arrived as pending and
    leaves it out of ``Doc.get_update()``, so a snapshot built from the document
    alone would drop it. The structs past ``state_vector`` are exactly what is
    missing. Deletions cannot be told apart (a pending delete looks like an
    applied one), so an update's delete set always counts as uncovered: keeping
    an applied deletion twice is harmless, dropping a pending one is not.
    """
    diff = get_update(update, state_vector)
    return None if diff == EMPTY_UPDATE else diff
