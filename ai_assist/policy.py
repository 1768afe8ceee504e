"""Who may ask the AI and apply its suggestions, and the refusal the API turns into an
HTTP status."""

from __future__ import annotations

from rooms.roles import Mode, Role


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
