"""The two-way class's pure logic: policies, hands, questions and muting as entries of
the ``class`` root (``rooms.classroom``), and the chat entries the server posts.

Nothing here awaits or talks to a store: ``server.class_api`` reads a room's document
with these helpers and writes through ``Room.edit`` with the ``change_*`` functions,
so every write is one server edit (stored, relayed to other instances, recorded).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

from pycrdt import Doc, Map

from crdt import schema
from rooms import classroom
from rooms.classroom import MUTED, POLICY, QUESTION

ChatPolicy = Literal["open", "questions", "closed"]
AiPolicy = Literal["off", "hints", "full"]
CHAT_POLICIES: tuple[ChatPolicy, ...] = ("open", "questions", "closed")
AI_POLICIES: tuple[AiPolicy, ...] = ("off", "hints", "full")
CHAT = "chat"
AI = "ai"


def is_staff_room(name: str) -> bool:
    return name.endswith(classroom.STAFF_SUFFIX)


def is_exercise_room(name: str) -> bool:
    return name.endswith(classroom.EXERCISE_SUFFIX)


def is_student_room(name: str) -> bool:
    return classroom.STUDENT_INFIX in name and not (is_staff_room(name) or is_exercise_room(name))


# -- policies ------------------------------------------------------------------------


def chat_policy(doc: Doc[Any], broadcast: bool) -> ChatPolicy:
    """The class's chat policy; unset: ``questions`` in a broadcast room, else ``open``."""
    value = (classroom.get(doc, POLICY, CHAT) or {}).get(CHAT)
    for policy in CHAT_POLICIES:
        if value == policy:
            return policy
    return "questions" if broadcast else "open"


def ai_policy(doc: Doc[Any]) -> AiPolicy:
    """The AI policy for the class's students; unset: ``full``."""
    value = (classroom.get(doc, POLICY, AI) or {}).get(AI)
    for policy in AI_POLICIES:
        if value == policy:
            return policy
    return "full"


def set_policies(chat: str | None, ai: str | None) -> Callable[[Doc[Any]], None]:
    def change(doc: Doc[Any]) -> None:
        if chat is not None:
            classroom.put(doc, POLICY, CHAT, {CHAT: chat})
        if ai is not None:
            classroom.put(doc, POLICY, AI, {AI: ai})

    return change


# -- hands ---------------------------------------------------------------------------


def hands_in_order(hands: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Hands with their ``key``, the oldest raised first (ties: by key, stable)."""
    listed = [{**value, "key": key} for key, value in hands.items()]
    return sorted(listed, key=lambda h: (_number(h.get("raised_at")), h["key"]))


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("inf")


def raised_at(
    class_hand: dict[str, Any] | None, staff_hand: dict[str, Any] | None, now: float
) -> float:
    """A re-raised hand keeps the time it was first raised."""
    for entry in (staff_hand, class_hand):
        if entry is not None and isinstance(entry.get("raised_at"), int | float):
            return float(entry["raised_at"])
    return now


def put_entry(kind: str, entry_id: str, value: dict[str, Any] | None) -> Callable[[Doc[Any]], None]:
    """One entry written (None: removed) as a ``Room.edit`` change."""

    def change(doc: Doc[Any]) -> None:
        classroom.put(doc, kind, entry_id, value)

    return change


def remove_all(kind: str) -> Callable[[Doc[Any]], None]:
    def change(doc: Doc[Any]) -> None:
        for entry_id in list(classroom.entries(doc, kind)):
            classroom.put(doc, kind, entry_id, None)

    return change


# -- questions and chat ----------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}{int(time.time() * 1000):x}{secrets.token_hex(3)}"


def questions_in_order(doc: Doc[Any]) -> list[dict[str, Any]]:
    listed = list(classroom.entries(doc, QUESTION).values())
    return sorted(listed, key=lambda q: (_number(q.get("ts")), str(q.get("id"))))


def muted_in_order(doc: Doc[Any]) -> list[dict[str, Any]]:
    listed = list(classroom.entries(doc, MUTED).values())
    return sorted(listed, key=lambda m: (_number(m.get("ts")), str(m.get("key"))))


def chat_entry(fields: dict[str, Any]) -> Callable[[Doc[Any]], None]:
    """Append one chat entry (a Y.Map like a peer's) as a server edit."""

    def change(doc: Doc[Any]) -> None:
        schema.chat(doc).append(Map(dict(fields)))

    return change


def chat_ts() -> float:
    """The chat's own clock: milliseconds, as the browser and the AI write it."""
    return float(int(time.time() * 1000))


def known_person(key: str, *sources: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The ``user_id`` and ``name`` of the person ``key`` from the first entry naming it
    (a hand, a question, a muted entry): how staff name someone by key."""
    for entries in sources:
        for entry_id, value in entries.items():
            if (value.get("key") or entry_id) == key and isinstance(value.get("user_id"), str):
                return {"user_id": value["user_id"], "name": str(value.get("name", ""))}
    return None
