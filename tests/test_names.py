"""Generated room names: valid, unguessable, and usable as a command-line argument."""

from __future__ import annotations

from server.names import new_room_name, valid_room_name


def test_new_room_names_are_valid_distinct_and_never_look_like_options() -> None:
    # One token_urlsafe(9) in 64 starts with "-": 3,000 names would all but surely
    # include some, which `codementor token --room <name>` takes for an option.
    names = [new_room_name() for _ in range(3000)]
    assert len(set(names)) == len(names)
    assert all(valid_room_name(n) and len(n) == 12 for n in names)
    assert not [n for n in names if n.startswith("-")]
