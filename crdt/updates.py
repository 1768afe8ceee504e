"""Facts about v1 updates and state vectors that the room and the stores need."""

from __future__ import annotations

from pycrdt import get_state

from crdt.protocol import Reader


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """``varUint(n) · n × (varUint client, varUint clock)`` -> {client: clock}."""
    reader = Reader(state_vector)
    return {
        reader.read_var_uint(): reader.read_var_uint() for _ in range(reader.read_var_uint())
    }


def is_integrated(update: bytes, doc_state: dict[int, int]) -> bool:
    """True when every struct ``update`` inserts is already part of a document whose
    state vector is ``doc_state``. An update whose dependencies have not arrived is
    held pending by the document and left out of ``Doc.get_update()``, so a
    snapshot built from the document alone would drop it."""
    needed = decode_state_vector(get_state(update))
    return all(doc_state.get(client, 0) >= clock for client, clock in needed.items())
