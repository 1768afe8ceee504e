"""What Claude is sent: the system prompt, the two edit tools, and one user message
built from a question (``context.Ask``). The numbered document comes first and is
marked for prompt caching: it is the large part that follow-up questions share."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ai_assist.context import Ask
from rooms.roles import Mode

if TYPE_CHECKING:
    from anthropic.types import MessageParam, ToolParam

SYSTEM = (
    "You are CodeMentor AI, a pair-programmer inside a shared, live code editor used by "
    "students and teachers. Answer briefly and concretely in plain text (your answer is "
    "shown in the room's chat while you type it). When a change to the code is needed, "
    "call a tool: replace_range or insert_text, with line numbers of the numbered document "
    "you were shown. Keep edits minimal."
)

TOOLS: list[ToolParam] = [
    {
        "name": "replace_range",
        "description": "Replace lines start_line..end_line (1-based, inclusive) of the shared "
        "document with new_text (which should end with a newline).",
        "input_schema": {
            "type": "object",
            "properties": {
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
        "appends at the end).",
        "input_schema": {
            "type": "object",
            "properties": {"line": {"type": "integer"}, "text": {"type": "string"}},
            "required": ["line", "text"],
        },
    },
]


def messages_for(request: Ask, max_code_chars: int) -> list[MessageParam]:
    """The conversation: one user turn, the cached document and then the rest."""
    code = request.anchors.snapshot
    cut = len(code) > max_code_chars
    lines = code[:max_code_chars].split("\n")
    width = len(str(len(lines)))
    numbered = "\n".join(f"{i + 1:>{width}}| {line}" for i, line in enumerate(lines))
    document = (
        f"Language: {request.language}\n"
        f"The shared document, with line numbers{' (cut)' if cut else ''}:\n"
        f"<document>\n{numbered}\n</document>"
    )
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": document, "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "\n\n".join(_volatile(request))},
            ],
        }
    ]


def _volatile(request: Ask) -> list[str]:
    """The parts that change from one question to the next."""
    code = request.anchors.snapshot
    out = [f"Room mode: {request.mode.value}."]
    if request.mode is Mode.PAIR and request.ai_edits:
        out.append("Your edits are applied directly.")
    else:
        out.append("Your edits become suggestions a person applies or dismisses.")
    if request.selection is not None:
        a, b = request.selection
        line_a, col_a = _line_col(code, a)
        if a == b:
            out.append(f"{request.asker}'s cursor: line {line_a}, column {col_a}.")
        else:
            line_b, col_b = _line_col(code, b)
            out.append(
                f"{request.asker}'s selection: line {line_a} column {col_a} to line "
                f"{line_b} column {col_b}:\n<selection>\n{code[a:b]}\n</selection>"
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
