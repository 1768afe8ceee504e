"""``crdt.awareness.AwarenessStates``: the clock rule, ownership, validation, removal."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Awareness, Doc

from crdt.awareness import (
    NULL_STATE,
    AwarenessLimits,
    AwarenessStates,
    Entry,
    decode_update,
    encode_update,
)
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
    doc: Doc[Any] = Doc()
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
    """One client ID, one owner: a random walk of clocks and removals against a model.
    A removal of a state the room never had is nothing to relay."""
    states = AwarenessStates()
    model: tuple[int, str] | None = None
    for n, (clock, remove) in enumerate(steps):
        s = NULL_STATE if remove else state(f"v{n}")
        accept = (
            (model is None and not remove)
            or (model is not None and model[0] < clock)
            or (
                model is not None
                and model[0] == clock
                and s == NULL_STATE
                and model[1] != NULL_STATE
            )
        )
        payload = update((9, clock, s))
        assert states.apply(payload, A) == (payload if accept else None)
        if accept:
            model = (clock, s)
        live = {} if model is None or model[1] == NULL_STATE else {9: model}
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
        json.dumps({"user": {"name": "CodeMentor AIs", "role": "viewer"}}),
        json.dumps(["user", "ai"]),
    ]
    states = AwarenessStates()
    with pytest.raises(ProtocolError) as info:
        states.apply(update((1, 1, ai), (2, 1, state("bob"))), A)
    assert info.value.code == CLOSE_POLICY_VIOLATION
    assert snapshot_of(states) == {}  # refused whole: bob's entry did not slip through
    for i, text in enumerate(lookalikes, start=3):
        assert triples(states.apply(update((i, 1, text)), A)) == [(i, 1, text)]
        states.remove_owner(A)
    assert triples(states.apply(update((9, 1, ai)), "server", trusted=True)) == [(9, 1, ai)]
    assert 1 not in snapshot_of(states) and 9 in snapshot_of(states)


# The state is decided as browsers decode it: JSON escapes, case, spacing, invisible
# characters and compatibility forms of "CodeMentor AI" and "ai" are all the AI's.
AI_IMPERSONATIONS = [
    pytest.param('{"user":{"name":"Eve","role":"\\u0061i"}}', id="escaped role"),
    pytest.param('{"user":{"name":"Eve","role":"\\u0061\\u0069"}}', id="all escaped"),
    pytest.param('{"user":{"name":"Eve","role":"AI"}}', id="role upper case"),
    pytest.param('{"user":{"name":"Eve","role":" ai "}}', id="role spaced"),
    pytest.param('{"user":{"name":"Eve","role":"\uff41\uff49"}}', id="role full width"),
    pytest.param('{"user":{"name":"Eve","role":["ai"]}}', id="role as a list"),
    pytest.param('{"user":{"name":"codementor ai"}}', id="name lower case"),
    pytest.param('{"user":{"name":"  CodeMentor   AI "}}', id="name spaced"),
    pytest.param('{"user":{"name":"CodeMentor\\u200bAI"}}', id="name zero-width space"),
    pytest.param(
        '{"user":{"name":"\uff23\uff4f\uff44\uff45\uff2d\uff45\uff4e\uff54\uff4f\uff52 '
        '\uff21\uff29"}}',
        id="name full width",
    ),
    pytest.param('{"user":{"name":"CODEMENTOR\\u00a0AI"}}', id="name no-break space"),
    pytest.param('{"user":{"name":["CodeMentor AI"]}}', id="name as a list"),
]


@pytest.mark.parametrize("text", AI_IMPERSONATIONS)
def test_ai_impersonation_is_refused_on_the_decoded_state(text: str) -> None:
    states = AwarenessStates()
    states.apply(update((7, 1, state("existing"))), A)
    with pytest.raises(ProtocolError) as info:
        states.apply(update((1, 1, text)), B, user="u-eve")
    assert info.value.code == CLOSE_POLICY_VIOLATION
    assert snapshot_of(states) == {7: (1, state("existing"))}
    assert states.client_ids(B) == []


def user_state(**user: object) -> str:
    return json.dumps({"user": {"name": "Ann", **user}})


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(user_state(color="red"), id="named colour"),
        pytest.param(user_state(color="#12345"), id="five digits"),
        pytest.param(user_state(color="#1234567"), id="seven digits"),
        pytest.param(user_state(color="#12345678"), id="alpha in color"),
        pytest.param(user_state(color="#fff;background:url(//evil/x)"), id="style injection"),
        pytest.param(user_state(color="#fff\n"), id="trailing newline"),
        pytest.param(user_state(color="url(x)"), id="url"),
        pytest.param(user_state(color=255), id="number"),
        pytest.param(user_state(color="#abcdef", colorLight="#abc;x:y"), id="colorLight"),
        pytest.param(user_state(color="#abcdef", colorLight="rgba(0,0,0,.2)"), id="rgba"),
    ],
)
def test_colours_that_are_not_hex_are_refused(text: str) -> None:
    states = AwarenessStates()
    with pytest.raises(ProtocolError) as info:
        states.apply(update((1, 1, text)), A, user="u-ann")
    assert info.value.code == CLOSE_POLICY_VIOLATION
    assert states.snapshot() is None


@pytest.mark.parametrize(
    "text",
    [
        user_state(color="#abc"),
        user_state(color="#A1b2C3", colorLight="#A1b2C333"),
        user_state(color="#a1b2c3", colorLight="#a1b2c3"),
        user_state(colorLight="#abc"),
        json.dumps({"user": "just a string", "color": "not checked outside user"}),
    ],
)
def test_hex_colours_pass(text: str) -> None:
    states = AwarenessStates()
    payload = update((1, 1, text))
    assert states.apply(payload, A, user="u-ann") == payload


def test_echoes_of_other_peoples_states_are_ignored_not_refused() -> None:
    """y-websocket clients send back every awareness change they receive: a teacher's
    browser echoes the AI's state and the whole class's. None of it is the teacher's,
    so none of it is checked, counted or relayed, and the teacher is not closed."""
    states = AwarenessStates()
    ai = json.dumps({"user": {"name": "CodeMentor AI", "role": "ai", "color": "#8b5cf6"}})
    states.apply(update((1, 3, ai)), "ai", trusted=True)
    class_states = [(100 + i, 2, state(f"s{i}")) for i in range(10)]
    for i, entry in enumerate(class_states):
        states.apply(update(entry), f"student{i}", user=f"u-s{i}", personal=True)
    states.remove_owner("student9")  # its removal is echoed too
    echo = update((1, 3, ai), *class_states[:9], (109, 3, NULL_STATE), (7, 1, state("teacher")))
    relayed = states.apply(echo, "teacher", user="u-t", personal=True)
    assert triples(relayed) == [(7, 1, state("teacher"))]
    assert states.client_ids("teacher") == [7]
    assert len(states) == 11


def test_an_update_listing_more_clients_than_the_room_knows_is_refused() -> None:
    states = AwarenessStates(AwarenessLimits(clients=2))
    states.apply(update((1, 1, "{}")), "a", user="u-a")
    # Known: 1 ID, plus 2 of the sender's own: 3 entries could be honest, 4 cannot.
    fine = update((1, 1, "{}"), (5, 1, "{}"), (6, 1, "{}"))
    assert triples(states.apply(fine, "b", user="u-b")) == [(5, 1, "{}"), (6, 1, "{}")]
    flood = update(*((i, 1, "{}") for i in range(10, 14)))
    with pytest.raises(ProtocolError) as info:
        states.apply(flood, "c", user="u-c")
    assert info.value.code == CLOSE_POLICY_VIOLATION
    assert sorted(snapshot_of(states)) == [1, 5, 6]


def test_a_removal_of_a_state_the_room_never_had_changes_nothing() -> None:
    states = AwarenessStates()
    assert states.apply(update((1, 4, NULL_STATE)), A, user="u-a") is None
    assert states.client_ids(A) == []


# --- bounds --------------------------------------------------------------------

SMALL = AwarenessLimits(state_bytes=200, clients=2, room_bytes=500, remembered=3)


def sized(n: int) -> str:
    """A state of exactly ``n`` UTF-8 bytes."""
    text = json.dumps({"pad": ""})
    return json.dumps({"pad": "x" * (n - len(text))})


def test_a_state_over_the_size_bound_is_refused() -> None:
    states = AwarenessStates(SMALL)
    assert states.apply(update((1, 1, sized(200))), A, user="u-a") is not None
    with pytest.raises(ProtocolError) as info:
        states.apply(update((1, 2, sized(201))), A, user="u-a")
    assert info.value.code == CLOSE_POLICY_VIOLATION
    assert snapshot_of(states) == {1: (1, sized(200))}


def test_a_connection_holds_a_handful_of_client_ids() -> None:
    states = AwarenessStates(SMALL)
    with pytest.raises(ProtocolError):  # one update listing too many
        states.apply(update((1, 1, "{}"), (2, 1, "{}"), (3, 1, "{}")), A, user="u-a")
    assert states.snapshot() is None
    states.apply(update((1, 1, "{}"), (2, 1, "{}")), A, user="u-a")
    with pytest.raises(ProtocolError):  # or one more, later
        states.apply(update((3, 1, "{}")), A, user="u-a")
    assert sorted(snapshot_of(states)) == [1, 2] and states.client_ids(A) == [1, 2]
    payload = update((1, 2, "[]"))  # its own IDs keep working
    assert states.apply(payload, A, user="u-a") == payload
    # Trusted holders (another instance, the server's AI) relay many people's IDs.
    many = update(*((i, 1, "{}") for i in range(10, 20)))
    assert states.apply(many, "remote:x", trusted=True) == many


def test_the_rooms_live_states_are_bounded() -> None:
    states = AwarenessStates(SMALL)
    states.apply(update((1, 1, sized(200))), A, user="u-a")
    states.apply(update((2, 1, sized(200))), B, user="u-b")
    assert states.live_bytes == 400
    with pytest.raises(ProtocolError) as info:
        states.apply(update((3, 1, sized(101))), C, user="u-c")
    assert info.value.code == CLOSE_POLICY_VIOLATION
    assert sorted(snapshot_of(states)) == [1, 2]
    payload = update((3, 1, sized(100)))
    assert states.apply(payload, C, user="u-c") == payload
    # A state that shrinks, and a removal, always pass; leaving frees the room.
    assert states.apply(update((1, 2, sized(150))), A, user="u-a") is not None
    assert states.live_bytes == 450
    states.remove_owner(B)
    assert states.live_bytes == 250
    assert states.apply(update((4, 1, sized(200))), B, user="u-b") is not None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 5000 + "]" * 5000, id="arrays"),
        pytest.param('{"a":' * 5000 + "1" + "}" * 5000, id="objects"),
    ],
)
def test_deeply_nested_json_is_refused_as_a_policy_violation(text: str) -> None:
    states = AwarenessStates(AwarenessLimits(state_bytes=1 << 20))
    with pytest.raises(ProtocolError) as info:
        states.apply(update((1, 1, text)), A, user="u-a")
    assert info.value.code == CLOSE_POLICY_VIOLATION
    assert "nested" in info.value.reason


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_that_browsers_refuse_is_refused(constant: str) -> None:
    with pytest.raises(ProtocolError):
        AwarenessStates().apply(update((1, 1, f'{{"x": {constant}}}')), A)


# --- client IDs belong to people -------------------------------------------------


def test_a_client_id_is_never_handed_to_another_user() -> None:
    """Presence squatting: Sam leaves, Mallory announces Sam's client ID with a raised
    hand. Ignored; Sam reconnecting gets the ID back."""
    states = AwarenessStates()
    sam = json.dumps({"user": {"name": "Sam"}, "hand": False})
    states.apply(update((42, 3, sam)), "c1", user="u-sam", personal=True)
    removal = states.remove_owner("c1")
    assert triples(removal) == [(42, 4, NULL_STATE)]

    squat = update((42, 99, json.dumps({"user": {"name": "Sam"}, "hand": True})))
    assert states.apply(squat, "c2", user="u-mallory", personal=True) is None
    assert states.snapshot() is None and states.client_ids("c2") == []
    # Nor with an old clock, nor in a mixed update, nor as a removal.
    assert states.apply(update((42, 1, NULL_STATE)), "c2", user="u-mallory") is None
    mixed = states.apply(update((42, 100, "{}"), (43, 1, "{}")), "c2", user="u-mallory")
    assert triples(mixed) == [(43, 1, "{}")]

    back = update((42, 3, sam))
    assert states.apply(back, "c3", user="u-sam", personal=True) == back
    assert states.client_ids("c3") == [42]
    assert snapshot_of(states)[42] == (3, sam)


def test_a_reconnect_the_server_has_not_noticed_takes_the_id_over() -> None:
    states = AwarenessStates()
    states.apply(update((42, 3, state("sam"))), "old", user="u-sam", personal=True)
    # The old socket is half-dead; the same person reconnects (same doc, same clock).
    moved = update((42, 4, state("sam again")))
    assert states.apply(moved, "new", user="u-sam", personal=True) == moved
    assert states.client_ids("new") == [42] and states.client_ids("old") == []
    # The old connection's close no longer removes the state.
    assert states.remove_owner("old") is None
    assert snapshot_of(states) == {42: (4, state("sam again"))}
    # Another user cannot take it over while it is held, personal or not.
    assert states.apply(update((42, 9, "{}")), "x", user="u-eve", personal=True) is None


def test_a_shared_identity_does_not_take_over_a_held_id() -> None:
    """Everyone who opened one join link shares its user id: they may not take each
    other's live IDs (a stock client's reconnect waits for the old socket's close)."""
    states = AwarenessStates()
    states.apply(update((42, 3, state("one"))), "c1", user="u-link")
    assert states.apply(update((42, 9, NULL_STATE)), "c2", user="u-link") is None
    assert snapshot_of(states) == {42: (3, state("one"))}
    states.remove_owner("c1")
    payload = update((42, 1, state("back")))
    assert states.apply(payload, "c3", user="u-link") == payload


def test_remembered_bindings_are_bounded() -> None:
    states = AwarenessStates(SMALL)  # remembers 3 vacated IDs
    for cid in range(1, 6):
        states.apply(update((cid, 1, "{}")), f"c{cid}", user=f"u-{cid}")
        states.remove_owner(f"c{cid}")
    # IDs 1 and 2 were forgotten first; 3-5 still belong to their users.
    assert states.apply(update((1, 1, "{}")), "x", user="u-x") is not None
    assert states.apply(update((3, 1, "{}")), "y", user="u-y") is None
    assert states.apply(update((5, 1, "{}")), "z", user="u-5") is not None


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
