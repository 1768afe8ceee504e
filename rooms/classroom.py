"""The classroom's rooms, and the server's record in their ``class`` root.

A class is a broadcast room. Around it the server keeps rooms of its own, named with a
"." that no created room has (``server.names.new_room_name`` never makes one), so no
one can take their names first:

- ``{class}.staff``: what the teacher and the class's editors see and students never
  do: raised hands with their questions, students' questions, who is muted. Staff
  connect to it as viewers, so only the server writes it.
- ``{exercise}.exercise``: one exercise: its definition (hidden tests included) and one
  summary per student that the server keeps up to date: the teacher's grid, one
  connection whatever the class size.
- ``{exercise}.s.{key}``: one student's own room for that exercise.

In every one of them, and in the class room itself, the ``class`` root (``crdt.schema``)
is the server's: a peer's change there is undone (``rooms.authorship``). Its entries are
``{kind}:{id}`` -> a JSON object as a string, which any Yjs client reads with
``JSON.parse(classMap.get(key))``. The kinds, by room:

| room | key | value |
|---|---|---|
| class | ``policy:chat`` | ``{"chat": "open" / "questions" / "closed"}`` |
| class | ``policy:ai`` | ``{"ai": "off" / "hints" / "full"}`` (for students' rooms) |
| class | ``hand:{key}`` | ``{"raised_at": ts}`` (no name in a broadcast class) |
| class | ``exercise:{id}`` | ``{"id", "title", "due_at"}``: what students may open |
| class | ``spotlight:current`` | a student's code on stage: room, name, files, entry |
| staff | ``hand:{key}`` | ``{"key", "user_id", "name", "question", "raised_at"}`` |
| staff | ``question:{id}`` | ``{"id", "key", "user_id", "name", "text", "ts"}`` |
| staff | ``muted:{key}`` | ``{"key", "user_id", "name", "ts"}`` |
| exercise | ``exercise:{id}`` | the definition: title, class room, tests (hidden ones too), due |
| exercise | ``student:{key}`` | the student's summary (the grid's tile) |
| student | ``exercise:{id}`` | what the student may see: title, visible tests, due, AI policy |

``{key}`` is ``person_key``: a keyed digest of the person's verified user id, the same on
every instance, that says nothing of the id itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pycrdt import Doc

from crdt import schema

STAFF_SUFFIX = ".staff"
EXERCISE_SUFFIX = ".exercise"
STUDENT_INFIX = ".s."

# Kinds of entries in the ``class`` root.
POLICY = "policy"
HAND = "hand"
QUESTION = "question"
MUTED = "muted"
EXERCISE = "exercise"
STUDENT = "student"
SPOTLIGHT = "spotlight"


def staff_room(class_room: str) -> str:
    return class_room + STAFF_SUFFIX


def exercise_room(exercise_id: str) -> str:
    return exercise_id + EXERCISE_SUFFIX


def student_room(exercise_id: str, key: str) -> str:
    return f"{exercise_id}{STUDENT_INFIX}{key}"


def is_server_room(name: str) -> bool:
    """A room the server made for a class (staff, exercise or student room)."""
    return "." in name


def person_key(secret: str | bytes, user_id: str) -> str:
    """16 hex digits naming a person in a room name or a ``class`` key, stable across
    instances (they share the secret) and revealing nothing of the user id."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, b"person:" + user_id.encode(), hashlib.sha256).hexdigest()[:16]


def entry_key(kind: str, entry_id: str) -> str:
    return f"{kind}:{entry_id}"


def put(doc: Doc[Any], kind: str, entry_id: str, value: dict[str, Any] | None) -> None:
    """Write (or, with None, remove) one entry. Call inside ``Room.edit``: the room
    stores, relays and records the change as a server edit."""
    root = schema.class_state(doc)
    key = entry_key(kind, entry_id)
    if value is None:
        if key in root:
            del root[key]
        return
    encoded = json.dumps(value, separators=(",", ":"), sort_keys=True)
    if root.get(key) != encoded:
        root[key] = encoded


def get(doc: Doc[Any], kind: str, entry_id: str) -> dict[str, Any] | None:
    """One entry, or None (also for one that is not a JSON object)."""
    return _decoded(schema.class_state(doc).get(entry_key(kind, entry_id)))


def entries(doc: Doc[Any], kind: str) -> dict[str, dict[str, Any]]:
    """Every entry of ``kind``: id -> value. An entry that is not a JSON object (it
    cannot be: only the server writes here) is skipped rather than trusted."""
    prefix = kind + ":"
    out: dict[str, dict[str, Any]] = {}
    for key, raw in schema.class_state(doc).items():
        if key.startswith(prefix):
            value = _decoded(raw)
            if value is not None:
                out[key[len(prefix) :]] = value
    return out


def _decoded(raw: object) -> dict[str, Any] | None:
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
