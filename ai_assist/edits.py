"""The AI's tool calls turned into code changes. In pair rooms that allow AI edits
(``meta.ai_edits``) a change is applied at once; otherwise it becomes a suggestion that a
person applies or dismisses: the answer's own chat entry turns into the suggestion card
(``kind: "suggestion"``), so the explanation, the change and its state are one entry.
Either way the change is recorded on that entry (``changes``) so it can be undone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ai_assist import anchors as anchors_mod
from ai_assist.anchors import Anchors
from ai_assist.changes import RevertRefused
from ai_assist.context import Ask
from ai_assist.participant import Participant, find_entry
from ai_assist.policy import AIRefused
from crdt import schema
from rooms.authorship import Author
from rooms.roles import Mode


@dataclass(slots=True)
class Suggestion:
    anchors: Anchors
    start: int  # snapshot code points
    end: int
    new_text: str
    old_text: str


def use_tool(
    member: Participant,
    suggestions: dict[str, Suggestion],
    request: Ask,
    name: str,
    args: dict[str, Any],
    entry_id: str,
) -> str:
    """Apply or suggest the change a tool call asks for; returns the note shown at the
    end of the AI's answer (``entry_id``), empty when the entry itself shows it."""
    anchors = request.anchors
    try:
        if name == "replace_range":
            first, last = int(args["start_line"]), int(args["end_line"])
            if last < first:
                raise ValueError("end_line before start_line")
            start, end = anchors.line_offset(first), anchors.line_offset(last + 1)
            new_text = str(args["new_text"])
            where = f"lines {first}-{last}"
        elif name == "insert_text":
            line = int(args["line"])
            start = end = anchors.line_offset(line)
            new_text = str(args["text"])
            where = f"before line {line}"
        else:
            return f"(unknown tool {name})"
    except (KeyError, TypeError, ValueError) as exc:
        return f"(could not use {name}: {exc})"
    if request.mode is Mode.PAIR and request.ai_edits:
        member.edit(anchors, start, end, new_text, record=(entry_id, request.asker_uid or ""))
        return f"(edited {where})"
    suggestion = Suggestion(anchors, start, end, new_text, anchors.snapshot[start:end])
    fields: dict[str, Any] = {
        "kind": "suggestion",
        "status": "open",
        "start_line": float(anchors.snapshot.count("\n", 0, start) + 1),
        "old_text": suggestion.old_text,
        "new_text": new_text,
    }
    answer = find_entry(schema.chat(member.room.doc), entry_id)
    if answer is not None and answer.get("kind") != "suggestion":
        member.update_entry(entry_id, **fields)  # the answer becomes the card
        suggestions[entry_id] = suggestion
        return ""
    # A second change in one answer: a card of its own.
    suggestions[member.post(f"Another suggested edit ({where}).", **fields)] = suggestion
    return ""


def resolve(
    member: Participant,
    suggestions: dict[str, Suggestion],
    entry_id: str,
    apply: bool,
    by: Author,
) -> str:
    """Apply or dismiss a suggestion entry (``by``: who clicked); returns its new status.
    Raises AIRefused."""
    room = member.room
    entry = find_entry(schema.chat(room.doc), entry_id)
    # ``ai`` and ``kind`` are the AI's alone (a peer's are stripped: rooms.authorship).
    if entry is None or entry.get("kind") != "suggestion" or entry.get("ai") is not True:
        raise AIRefused("unknown suggestion", 404)
    if entry.get("status") != "open":
        raise AIRefused(f"the suggestion is already {entry.get('status')}", 409)
    if apply:
        suggestion = suggestions.get(entry_id)
        if suggestion is None:
            # Anchors live in memory; after a restart, find the original text instead.
            old, new = str(entry.get("old_text") or ""), str(entry.get("new_text") or "")
            current = schema.code_text(room.doc)
            if not old or current.count(old) != 1:
                raise AIRefused("the code changed too much to apply this suggestion", 409)
            at = current.index(old)
            suggestion = Suggestion(anchors_mod.capture(schema.code(room.doc)), at,
                                    at + len(old), new, old)  # fmt: skip
        member.edit(suggestion.anchors, suggestion.start, suggestion.end, suggestion.new_text,
                    record=(entry_id, by.user_id), status="applied")  # fmt: skip
    else:
        member.update_entry(entry_id, status="dismissed")
    suggestions.pop(entry_id, None)
    return "applied" if apply else "dismissed"


def undo(member: Participant, entry_id: str, by: Author) -> None:
    """Revert the AI change recorded on ``entry_id`` (``by``: who asked for it). Raises
    AIRefused: 404 for no such change, 409 when it cannot be reverted any more."""
    entry = find_entry(schema.chat(member.room.doc), entry_id)
    if entry is None or entry.get("ai") is not True or not entry.get("change"):
        raise AIRefused("unknown AI change", 404)
    if entry.get("undone") is True:
        raise AIRefused(f"it was already undone by {entry.get('undone_by')}", 409)
    try:
        member.revert(entry_id, by)
    except RevertRefused as exc:
        raise AIRefused(str(exc), 409) from exc
