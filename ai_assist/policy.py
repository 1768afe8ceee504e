"""Who may ask the AI and apply its suggestions, what the AI may do in a classroom's
rooms (its policy: off, hints or full), and the refusal the API turns into an HTTP
status."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pycrdt import Doc

from rooms import classroom
from rooms.roles import Mode, Role

Policy = Literal["off", "hints", "full"]
OFF: Policy = "off"
HINTS: Policy = "hints"
FULL: Policy = "full"
POLICIES: tuple[Policy, ...] = (OFF, HINTS, FULL)


class AIRefused(Exception):
    status = 400

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def may_ask(mode: Mode, role: Role) -> bool:
    """pair: editors and owners; review: owner and reviewers; broadcast: the owner."""
    if mode is Mode.BROADCAST:
        return role is Role.OWNER
    if mode is Mode.REVIEW:
        return role in (Role.OWNER, Role.REVIEWER)
    return role in (Role.OWNER, Role.EDITOR)


def may_apply(mode: Mode, role: Role) -> bool:
    """Applying a suggestion writes code: owners, and editors outside broadcast rooms."""
    return role is Role.OWNER or (role is Role.EDITOR and mode is not Mode.BROADCAST)


def is_student_room(room: str) -> bool:
    """``{exercise}.s.{key}``: one student's room for an exercise (``rooms.classroom``)."""
    return classroom.STUDENT_INFIX in room


def ai_policy(doc: Doc[Any], room: str, role: Role) -> Policy:
    """What the AI may do for ``role`` asking in ``room`` (its document ``doc``), read
    from the server-owned ``class`` root (peers cannot write it).

    - A student's exercise room: its ``exercise:{id}`` entry's ``ai``, for whoever asks
      there (a teacher visiting asks in the student's chat too: the student reads every
      answer, so a full answer there would give the solution away).
    - Any other room (a class room): ``policy:ai``'s ``ai`` for viewers (students);
      owners, editors and reviewers are not students and keep the full AI.
    - No entry, or no ``ai`` field: ``full`` (rooms outside a class, today's behaviour).
      A value this server does not know: ``off`` (refuse rather than guess)."""
    if is_student_room(room):
        found = [e.get("ai") for e in classroom.entries(doc, classroom.EXERCISE).values()]
        return strictest(_parse(value) for value in found) if found else FULL
    if role is not Role.VIEWER:
        return FULL
    entry = classroom.get(doc, classroom.POLICY, "ai")
    return FULL if entry is None else _parse(entry.get("ai"))


def strictest(policies: Iterable[Policy]) -> Policy:
    """The most restrictive of ``policies`` (``full`` for none)."""
    return min(policies, key=POLICIES.index, default=FULL)


def off_message(room: str) -> str:
    """The refusal for a room whose AI is off (REST 403, the chat notice)."""
    return "the AI is off for this " + ("exercise" if is_student_room(room) else "class")


def _parse(value: object) -> Policy:
    if value is None:
        return FULL
    for policy in POLICIES:
        if value == policy:
            return policy
    return OFF
