"""``crdt.awareness.AwarenessStates``: the clock rule, ownership, validation, removal."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Awareness, Doc

from crdt.awareness import NULL_STATE, AwarenessStates, Entry, decode_update, encode_update
from crdt.protocol import CLOSE_POLICY_VIOLATION, ProtocolError, var_bytes

A = "conn-a"
B = "conn-b"
C = "conn-c"


def state(name: str) -> str:
    return json.dumps({"user": {"name": name}, "cursor": None})


def update(*entries: tuple[int, int, str]) -> bytes:
    return encode_update([Entry(cid, clock, s) for cid, clock, s in entries])


def triples(payload: bytes | None) -> list[tuple[int, int, str]]:
    assert payload is not None
    return [(e.client_id, e.clock, e.state) for e in decode_update(payload)]


def snapshot_of(states: AwarenessStates) -> dict[int, tuple[int, str]]:
    snap = states.snapshot()
    return {} if snap is None else {cid: (clock, s) for cid, clock, s in triples(snap)}


# --- encoding ------------------------------------------------------------------


def test_encoding_matches_y_protocols_bytes() -> None:
    payload = update((2813325707, 1, '{"user":{"name":"x"}}'))
    assert payload == bytes.fromhex("01 8be3bfbd0a 01 15") + b'{"user":{"name":"x"}}'


def test_interoperates_with_pycrdt_awareness() -> None:
    doc = Doc()
    theirs = Awareness(doc)
    theirs.set_local_state({"user": {"name": "ü😀"}, "cursor": None})
    payload = theirs.encode_awareness_update([doc.client_id])
    [entry] = decode_update(payload)
    assert entry.client_id == doc.client_id
    assert json.loads(entry.state) == {"user": {"name": "ü😀"}, "cursor": None}

    states = AwarenessStates()
    assert states.apply(payload, A) == payload
    removal = states.remove_owner(A)
    assert removal is not None
    other = Awareness(Doc())
    other.apply_awareness_update(payload, "server")
    assert doc.client_id in other.states
    other.apply_awareness_update(removal, "server")
    assert doc.client_id not in other.states


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2**53 - 1),
            st.integers(min_value=0, max_value=2**53 - 1),
            st.one_of(st.just(NULL_STATE), st.dictionaries(st.text(), st.text()).map(json.dumps)),
        ),
        max_size=5,
    )
)
def test_encode_decode_round_trip(entries: list[tuple[int, int, str]]) -> None:
    assert triples(update(*entries)) == entries


# --- the clock rule ------------------------------------------------------------


def test_first_state_is_accepted_and_relayed_as_is() -> None:
    states = AwarenessStates()
    payload = update((1, 1, state("ann")))
    assert states.apply(payload, A) == payload
    assert len(states) == 1
    assert snapshot_of(states) == {1: (1, state("ann"))}


def test_newer_clock_is_accepted() -> None:
    states = AwarenessStates()
    states.apply(update((1, 1, state("old"))), A)
    newer = update((1, 2, state("new")))
    assert states.apply(newer, A) == newer
    assert snapshot_of(states) == {1: (2, state("new"))}


@pytest.mark.parametrize("clock", [0, 4, 5])
def test_older_or_equal_clock_is_ignored(clock: int) -> None:
    states = AwarenessStates()
    states.apply(update((1, 5, state("kept"))), A)
    assert states.apply(update((1, clock, state("stale"))), A) is None
    assert snapshot_of(states) == {1: (5, state("kept"))}


def test_equal_clock_null_removal_is_accepted() -> None:
    states = AwarenessStates()
    states.apply(update((1, 5, state("ann"))), A)
    removal = update((1, 5, NULL_STATE))
    assert states.apply(removal, A) == removal
    assert len(states) == 0
    assert states.snapshot() is None


def test_equal_clock_null_after_null_is_ignored() -> None:
    states = AwarenessStates()
    states.apply(update((1, 5, state("ann"))), A)
    states.apply(update((1, 5, NULL_STATE)), A)
    assert states.apply(update((1, 5, NULL_STATE)), A) is None


def test_state_can_return_after_removal_with_a_newer_clock() -> None:
    states = AwarenessStates()
    states.apply(update((1, 5, state("ann"))), A)
    states.apply(update((1, 6, NULL_STATE)), A)
    back = update((1, 7, state("ann again")))
    assert states.apply(back, A) == back
    assert snapshot_of(states) == {1: (7, state("ann again"))}


def test_partially_accepted_update_relays_only_accepted_entries() -> None:
    states = AwarenessStates()
    states.apply(update((1, 5, state("ann"))), A)
    payload = update((1, 3, state("stale")), (2, 1, state("bob")), (1, 6, state("fresh")))
    relayed = states.apply(payload, A)
    assert relayed != payload
    assert triples(relayed) == [(2, 1, state("bob")), (1, 6, state("fresh"))]
    assert snapshot_of(states) == {1: (6, state("fresh")), 2: (1, state("bob"))}


def test_empty_update_changes_nothing() -> None:
    states = AwarenessStates()
    assert states.apply(b"\x00", A) is None
    assert states.snapshot() is None


@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=30))
def test_clock_rule_matches_a_model(steps: list[tuple[int, bool]]) -> None:
    """One client ID, one owner: a random walk of clocks and removals against a model."""
    states = AwarenessStates()
    model: tuple[int, str] | None = None
    for n, (clock, remove) in enumerate(steps):
        s = NULL_STATE if remove else state(f"v{n}")
        accept = (
            model is None
            or model[0] < clock
            or (model[0] == clock and s == NULL_STATE and model[1] != NULL_STATE)
        )
        payload = update((9, clock, s))
        assert states.apply(payload, A) == (payload if accept else None)
        if accept:
            model = (clock, s)
        assert model is not None
        live = {} if model[1] == NULL_STATE else {9: model}
        assert snapshot_of(states) == live
        assert len(states) == len(live)


# --- ownership -----------------------------------------------------------------


def test_another_owner_cannot_overwrite() -> None:
    states = AwarenessStates()
    states.apply(update((1, 1, state("ann"))), A)
    assert states.apply(update((1, 99, state("impostor"))), B) is None
    assert snapshot_of(states) == {1: (1, state("ann"))}


def test_another_owner_cannot_remove() -> None:
    states = AwarenessStates()
    states.apply(update((1, 1, state("ann"))), A)
    assert states.apply(update((1, 1, NULL_STATE)), B) is None
    assert states.apply(update((1, 2, NULL_STATE)), B) is None
    assert len(states) == 1
    # B's removal did not make B the owner: A's connection closing still removes the ID.
    assert triples(states.remove_owner(A)) == [(1, 2, NULL_STATE)]
    assert states.remove_owner(B) is None


def test_foreign_entries_are_dropped_from_a_mixed_update() -> None:
    states = AwarenessStates()
    states.apply(update((1, 1, state("ann"))), A)
    relayed = states.apply(update((1, 5, state("impostor")), (2, 1, state("bob"))), B)
    assert triples(relayed) == [(2, 1, state("bob"))]
    assert snapshot_of(states) == {1: (1, state("ann")), 2: (1, state("bob"))}


def test_only_the_server_may_announce_the_ai() -> None:
    ai = json.dumps({"user": {"name": "CodeMentor AI", "role": "ai"}})
    lookalikes = [
        json.dumps({"user": {"name": "Ann", "role": "editor", "note": "ai"}}),
        json.dumps({"user": {"name": "ai", "role": "owner"}}),
        json.dumps(["user", "ai"]),
    ]
    states = AwarenessStates()
    relayed = states.apply(update((1, 1, ai), (2, 1, state("bob"))), A)
    assert triples(relayed) == [(2, 1, state("bob"))]  # the impostor entry is dropped
    for i, text in enumerate(lookalikes, start=3):
        assert triples(states.apply(update((i, 1, text)), A)) == [(i, 1, text)]
    assert triples(states.apply(update((9, 1, ai)), "server", trusted=True)) == [(9, 1, ai)]
    assert 1 not in snapshot_of(states) and 9 in snapshot_of(states)


def test_owner_keeps_control_of_its_ids() -> None:
    states = AwarenessStates()
    states.apply(update((1, 1, state("ann"))), A)
    states.apply(update((1, 2, state("x"))), B)
    payload = update((1, 3, state("ann moved")))
    assert states.apply(payload, A) == payload


# --- validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(update((1, 1, "{not json")), id="bad JSON"),
        pytest.param(update((1, 1, "")), id="empty state"),
        pytest.param(update((1, 1, "undefined")), id="undefined"),
        pytest.param(
            update((1, 1, state("ok")), (2, 1, "{oops")), id="bad JSON after a good entry"
        ),
        pytest.param(b"\x01\x01\x01" + var_bytes(b"\xff\xfe"), id="invalid UTF-8"),
        pytest.param(b"\x01\x01", id="truncated entry"),
        pytest.param(b"\x02" + update((1, 1, state("ok")))[1:], id="count exceeds entries"),
        pytest.param(update((1, 1, state("ok"))) + b"\x00", id="trailing bytes"),
        pytest.param(b"", id="empty payload"),
    ],
)
def test_malformed_updates_raise_1008_and_change_nothing(payload: bytes) -> None:
    states = AwarenessStates()
    states.apply(update((7, 1, state("existing"))), A)
    with pytest.raises(ProtocolError) as info:
        states.apply(payload, A)
    assert info.value.code == CLOSE_POLICY_VIOLATION
    assert snapshot_of(states) == {7: (1, state("existing"))}
    assert states.remove_owner(A) is not None  # A still owns only ID 7
    assert states.snapshot() is None


@pytest.mark.parametrize("json_text", ['"a string"', "42", "[1, 2]", "true", "{}"])
def test_any_json_value_is_accepted(json_text: str) -> None:
    states = AwarenessStates()
    payload = update((1, 1, json_text))
    assert states.apply(payload, A) == payload


# --- snapshot and removal ------------------------------------------------------


def test_snapshot_lists_every_live_state_from_every_owner() -> None:
    states = AwarenessStates()
    assert states.snapshot() is None
    states.apply(update((1, 3, state("ann")), (2, 1, state("ann-tab2"))), A)
    states.apply(update((5, 9, state("bob"))), B)
    states.apply(update((6, 1, state("gone"))), C)
    states.apply(update((6, 2, NULL_STATE)), C)
    assert snapshot_of(states) == {
        1: (3, state("ann")),
        2: (1, state("ann-tab2")),
        5: (9, state("bob")),
    }
    assert len(states) == 3


def test_remove_owner_broadcasts_nulls_with_clock_plus_one_and_forgets() -> None:
    states = AwarenessStates()
    states.apply(update((1, 3, state("ann")), (2, 5, state("ann-tab2"))), A)
    states.apply(update((3, 4, state("ann-tab3"))), A)
    states.apply(update((3, 4, NULL_STATE)), A)  # already removed: nothing to broadcast
    states.apply(update((9, 1, state("bob"))), B)

    removal = states.remove_owner(A)
    assert sorted(triples(removal)) == [(1, 4, NULL_STATE), (2, 6, NULL_STATE)]
    assert snapshot_of(states) == {9: (1, state("bob"))}
    assert len(states) == 1
    assert states.remove_owner(A) is None

    # The IDs are forgotten: a new connection may claim them, even with an old clock.
    payload = update((1, 1, state("ann reconnected")), (3, 1, state("tab3 back")))
    assert states.apply(payload, C) == payload
    assert snapshot_of(states) == {
        1: (1, state("ann reconnected")),
        3: (1, state("tab3 back")),
        9: (1, state("bob")),
    }


def test_removal_is_accepted_by_a_peer_holding_the_old_state() -> None:
    """The null entries must win the clock rule at every other replica."""
    server = AwarenessStates()
    peer = AwarenessStates()
    announce = update((1, 3, state("ann")))
    server.apply(announce, A)
    peer.apply(announce, "server")
    removal = server.remove_owner(A)
    assert removal is not None
    assert peer.apply(removal, "server") == removal
    assert peer.snapshot() is None


def test_remove_unknown_owner() -> None:
    states = AwarenessStates()
    states.apply(update((1, 1, state("ann"))), A)
    assert states.remove_owner(B) is None
    assert len(states) == 1


def test_owner_with_only_null_states_is_forgotten_silently() -> None:
    states = AwarenessStates()
    states.apply(update((1, 1, NULL_STATE)), A)
    assert states.remove_owner(A) is None
    payload = update((1, 1, state("b")))
    assert states.apply(payload, B) == payload
