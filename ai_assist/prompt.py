"""What Claude is sent: the system prompt, the tools (edit a file, create a file), and
one user message built from a question (``context.Ask``). The workspace comes first and
is marked for prompt caching: it is the large part that follow-up questions share. It
lists every file (path, bytes, language), then the text of each file that fit the
budget, numbered, the asker's current file first; the others are marked not shown."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ai_assist.context import Ask
from ai_assist.policy import HINTS, Policy
from rooms.roles import Mode

if TYPE_CHECKING:
    from anthropic.types import MessageParam, ToolParam

SYSTEM = (
    "You are CodeMentor AI, a pair-programmer inside a shared, live code editor used by "
    "students and teachers. The room is a workspace of one or more files. Answer briefly "
    "and concretely in plain text (your answer is shown in the room's chat while you type "
    "it). When you mention a file, cite its path in backticks, e.g. `utils/math.py`. When "
    "a change to the code is needed, call a tool: replace_range or insert_text, with the "
    "file's path and line numbers of that file as you were shown it (you can only edit "
    "files whose text you were shown), or create_file for a new file. Keep edits minimal."
)

# Added to SYSTEM under the ``hints`` policy (a classroom's students): the model is also
# given no tools, and a tool call it makes anyway is not used (``service``).
HINTS_RULES = (
    "\n\nHINTS ONLY: you are helping a student with an exercise they must solve "
    "themselves, and you cannot change their code. Explain the concept or the error, ask "
    "guiding questions, and point to the relevant file and line. Never write a full or "
    "near-complete solution, nor the corrected code of their exercise; at most a few lines "
    "of illustrative code about a different example, unrelated to the exercise's answer."
)


def system_for(policy: Policy) -> str:
    """The system prompt under ``policy`` (``off`` never gets this far)."""
    return SYSTEM + HINTS_RULES if policy == HINTS else SYSTEM


_PATH = {
    "type": "string",
    "description": "the file's path as listed in the workspace (default: the current file)",
}

TOOLS: list[ToolParam] = [
    {
        "name": "replace_range",
        "description": "Replace lines start_line..end_line (1-based, inclusive) of the file "
        "`path` (default: the current file) with new_text (which should end with a newline).",
        "input_schema": {
            "type": "object",
            "properties": {
                "path": _PATH,
                "start_line": {"type": "integer"},
                "end_line": {"type": "integer"},
                "new_text": {"type": "string"},
            },
            "required": ["start_line", "end_line", "new_text"],
        },
    },
    {
        "name": "insert_text",
        "description": "Insert text before line `line` (1-based; one past the last line "
        "appends at the end) of the file `path` (default: the current file).",
        "input_schema": {
            "type": "object",
            "properties": {"path": _PATH, "line": {"type": "integer"}, "text": {"type": "string"}},
            "required": ["line", "text"],
        },
    },
    {
        "name": "create_file",
        "description": "Create a new file at `path` (relative, / between folders, no . or .. "
        "segments) with the content `text`. It must not exist yet.",
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "the new file's path, e.g. utils/math.py",
                },
                "text": {"type": "string"},
            },
            "required": ["path", "text"],
        },
    },
]


def tools_for(policy: Policy) -> list[ToolParam]:
    """The tools the model is given: none under ``hints``."""
    return [] if policy == HINTS else TOOLS


def messages_for(request: Ask, max_code_chars: int) -> list[MessageParam]:
    """The conversation: one user turn, the cached workspace and then the rest."""
    return [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": workspace_text(request, max_code_chars),
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "text", "text": "\n\n".join(_volatile(request))},
            ],  # fmt: skip
        }
    ]


def workspace_text(request: Ask, max_code_chars: int) -> str:
    """The file list, then each shown file numbered in ``<file>`` tags."""
    listing = []
    for view in request.files:
        notes = []
        if view.path == request.path:
            notes.append("current file")
        if view.anchors is None:
            notes.append("not shown: over the budget")
        extra = f"; {'; '.join(notes)}" if notes else ""
        listing.append(f"- {view.path} ({view.bytes} bytes, {view.language}{extra})")
    parts = [
        f"Room language: {request.language}",
        f"Files in the workspace ({len(request.files)}), the current file first:\n"
        + "\n".join(listing),
    ]
    for view in request.files:
        if view.anchors is not None:
            parts.append(_numbered(view.path, view.language, view.anchors.snapshot, max_code_chars))
    not_shown = [v.path for v in request.files if v.anchors is None]
    if not_shown:
        parts.append("Not shown (over the budget): " + ", ".join(not_shown))
    return "\n\n".join(parts)


def _numbered(path: str, language: str, code: str, max_code_chars: int) -> str:
    cut = len(code) > max_code_chars
    lines = code[:max_code_chars].split("\n")
    width = len(str(len(lines)))
    numbered = "\n".join(f"{i + 1:>{width}}| {line}" for i, line in enumerate(lines))
    return f'<file path="{path}" language="{language}"{" cut" if cut else ""}>\n{numbered}\n</file>'


def _volatile(request: Ask) -> list[str]:
    """The parts that change from one question to the next."""
    code = request.anchors.snapshot
    out = [f"Room mode: {request.mode.value}.", f"{request.asker}'s current file: {request.path}"]
    if request.policy == HINTS:
        out.append("Hints only: you cannot edit the code here.")
    elif request.mode is Mode.PAIR and request.ai_edits:
        out.append("Your edits are applied directly.")
    else:
        out.append("Your edits become suggestions a person applies or dismisses.")
    if request.selection is not None:
        a, b = request.selection
        line_a, col_a = _line_col(code, a)
        if a == b:
            out.append(
                f"{request.asker}'s cursor in {request.path}: line {line_a}, column {col_a}."
            )
        else:
            line_b, col_b = _line_col(code, b)
            out.append(
                f"{request.asker}'s selection in {request.path}: line {line_a} column {col_a} "
                f"to line {line_b} column {col_b}:\n<selection>\n{code[a:b]}\n</selection>"
            )
    if request.last_run:
        out.append("Last run: " + json.dumps(request.last_run)[:4000])
    if request.chat:
        out.append(
            "Recent chat:\n" + "\n".join(f"{who}: {text[:500]}" for who, text in request.chat)
        )
    out.append(f"{request.asker} asks: {request.prompt}")
    return out


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col
