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
from ai_assist.participant import FileMissing, Participant, find_entry
from ai_assist.policy import AIRefused
from ai_assist.settings import WorkspaceLimits
from crdt import paths, schema
from rooms.authorship import Author
from rooms.roles import Mode


@dataclass(slots=True)
class Suggestion:
    anchors: Anchors
    start: int  # snapshot code points
    end: int
    new_text: str
    old_text: str
    path: str = ""  # the file it changes ("": the entry file)
    new_file: bool = False  # applying it creates the file ``path``


class ToolRefused(ValueError):
    """A tool call that cannot be carried out; the message ends the AI's answer."""


def use_tool(
    member: Participant,
    suggestions: dict[str, Suggestion],
    request: Ask,
    name: str,
    args: dict[str, Any],
    entry_id: str,
    limits: WorkspaceLimits | None = None,
) -> str:
    """Apply or suggest the change a tool call asks for; returns the note shown at the
    end of the AI's answer (``entry_id``), empty when the entry itself shows it."""
    limits = limits or WorkspaceLimits()
    try:
        if name == "create_file":
            path = _normal(args.get("path"), name)
            content = str(args["text"])
            check_new_file(member.room.doc, path, content, limits)
            suggestion = Suggestion(
                anchors_mod.Anchors("", [0, 0]), 0, 0, content, "", path, new_file=True
            )
            where = f"new file {path}"
        elif name in ("replace_range", "insert_text"):
            path = _normal(args.get("path", request.path), name)
            view = request.view(path)
            if view is None:
                raise ToolRefused(
                    f"could not edit {path}: there is no such file (create_file makes one)"
                )
            if view.anchors is None:
                raise ToolRefused(f"could not edit {path}: its text was not shown to you")
            anchors = view.anchors
            if name == "replace_range":
                first, last = int(args["start_line"]), int(args["end_line"])
                if last < first:
                    raise ValueError("end_line before start_line")
                start, end = anchors.line_offset(first), anchors.line_offset(last + 1)
                new_text = str(args["new_text"])
                where = f"lines {first}-{last} of {path}"
            else:
                line = int(args["line"])
                start = end = anchors.line_offset(line)
                new_text = str(args["text"])
                where = f"before line {line} of {path}"
            suggestion = Suggestion(
                anchors, start, end, new_text, anchors.snapshot[start:end], path
            )
        else:
            return f"(unknown tool {name})"
    except ToolRefused as exc:
        return f"({exc})"
    except (KeyError, TypeError, ValueError) as exc:
        return f"(could not use {name}: {exc})"
    if request.mode is Mode.PAIR and request.ai_edits:
        record = (entry_id, request.asker_uid or "")
        try:
            _apply(member, suggestion, record)
        except (FileMissing, ToolRefused) as exc:
            return f"(could not change {suggestion.path}: {exc})"
        return f"(created {suggestion.path})" if suggestion.new_file else f"(edited {where})"
    anchors = suggestion.anchors
    fields: dict[str, Any] = {
        "kind": "suggestion",
        "status": "open",
        "start_line": float(anchors.snapshot.count("\n", 0, suggestion.start) + 1),
        "old_text": suggestion.old_text,
        "new_text": suggestion.new_text,
        "path": suggestion.path,
    }
    if suggestion.new_file:
        fields["new_file"] = True
    answer = find_entry(schema.chat(member.room.doc), entry_id)
    if answer is not None and answer.get("kind") != "suggestion":
        member.update_entry(entry_id, **fields)  # the answer becomes the card
        suggestions[entry_id] = suggestion
        return ""
    # A second change in one answer: a card of its own.
    suggestions[member.post(f"Another suggested edit ({where}).", **fields)] = suggestion
    return ""


def _normal(raw: Any, tool: str) -> str:
    if not isinstance(raw, str):
        raise ToolRefused(f"could not use {tool}: path must be a string")
    try:
        return paths.normalize(raw)
    except paths.PathError as exc:
        raise ToolRefused(f"could not use {tool}: the path {raw!r} is refused: {exc.rule}") from exc


def check_new_file(doc: Any, path: str, content: str, limits: WorkspaceLimits) -> None:
    """Raise ``ToolRefused`` unless ``path`` may be added with ``content`` now."""
    if schema.file_text(doc, path) is not None or path in schema.files(doc):
        raise ToolRefused(f"could not create {path}: it exists already (edit it instead)")
    files = schema.workspace(doc)
    if len(files) + 1 > limits.max_files:
        raise ToolRefused(
            f"could not create {path}: a workspace may have at most {limits.max_files} files"
        )
    size = len(content.encode("utf-8"))
    if size > limits.max_file_bytes:
        raise ToolRefused(
            f"could not create {path}: a file may be at most {limits.max_file_bytes} bytes"
        )
    total = sum(len(t.encode("utf-8")) for t in files.values()) + size
    if total > limits.max_workspace_bytes:
        raise ToolRefused(
            f"could not create {path}: the workspace may hold at most "
            f"{limits.max_workspace_bytes} bytes"
        )


def _apply(
    member: Participant,
    suggestion: Suggestion,
    record: tuple[str, str],
    limits: WorkspaceLimits | None = None,
    **entry_values: Any,
) -> None:
    """Carry out a change in its file. Raises ``FileMissing`` or ``ToolRefused``."""
    if suggestion.new_file:
        check_new_file(member.room.doc, suggestion.path, suggestion.new_text,
                       limits or WorkspaceLimits())  # fmt: skip
        member.create_file(suggestion.path, suggestion.new_text, record, **entry_values)
        return
    member.edit(suggestion.anchors, suggestion.start, suggestion.end, suggestion.new_text,
                record=record, path=suggestion.path or None, **entry_values)  # fmt: skip


def resolve(
    member: Participant,
    suggestions: dict[str, Suggestion],
    entry_id: str,
    apply: bool,
    by: Author,
    limits: WorkspaceLimits | None = None,
) -> str:
    """Apply or dismiss a suggestion entry (``by``: who clicked) in the file it names;
    returns its new status. Raises AIRefused."""
    room = member.room
    entry = find_entry(schema.chat(room.doc), entry_id)
    # ``ai``, ``kind`` and ``path`` are the AI's alone (a peer's are stripped:
    # rooms.authorship).
    if entry is None or entry.get("kind") != "suggestion" or entry.get("ai") is not True:
        raise AIRefused("unknown suggestion", 404)
    if entry.get("status") != "open":
        raise AIRefused(f"the suggestion is already {entry.get('status')}", 409)
    if apply:
        suggestion = suggestions.get(entry_id) or _from_entry(room.doc, entry)
        try:
            _apply(member, suggestion, (entry_id, by.user_id), limits, status="applied")
        except (FileMissing, ToolRefused) as exc:
            raise AIRefused(str(exc), 409) from exc
    else:
        member.update_entry(entry_id, status="dismissed")
    suggestions.pop(entry_id, None)
    return "applied" if apply else "dismissed"


def _from_entry(doc: Any, entry: Any) -> Suggestion:
    """A suggestion rebuilt from its entry (anchors live in memory; after a restart,
    find the original text in its file instead). Raises AIRefused."""
    old, new = str(entry.get("old_text") or ""), str(entry.get("new_text") or "")
    path = entry.get("path")
    path = path if isinstance(path, str) and paths.is_normal(path) else schema.entry_path(doc)
    if entry.get("new_file") is True:
        return Suggestion(anchors_mod.Anchors("", [0, 0]), 0, 0, new, "", path, new_file=True)
    text = schema.file_text(doc, path)
    if text is None:
        raise AIRefused(f"the file {path} is gone", 409)
    current = str(text)
    if not old or current.count(old) != 1:
        raise AIRefused("the code changed too much to apply this suggestion", 409)
    at = current.index(old)
    return Suggestion(anchors_mod.capture(text), at, at + len(old), new, old, path)


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
