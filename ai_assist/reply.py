"""One answer on its way from Claude's stream into one chat entry.

Text is written at most once per ``flush_interval`` (one chat transaction each, so a
fast stream does not cost a transaction per token); a timer writes what is left when
the stream pauses. A finished tool call (``content_block_stop``) is handed over at once,
after the text before it is shown. Notes (tool results, errors, "stopped") are appended
when the answer ends. The usage the API reports is kept for the budgets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Callable
from typing import TYPE_CHECKING, Any

from ai_assist.budgets import Usage

if TYPE_CHECKING:
    from anthropic.lib.streaming import ParsedMessageStreamEvent

    StreamEvent = ParsedMessageStreamEvent[None]


class ReplyStream:
    def __init__(
        self,
        show: Callable[[str], None],
        on_tool: Callable[[str, dict[str, Any]], str],
        on_first_token: Callable[[float], None],
        flush_interval: float,
    ) -> None:
        """``show`` writes the text so far into the entry; ``on_tool`` uses a tool call
        and returns its note."""
        self._show = show
        self._on_tool = on_tool
        self._on_first_token = on_first_token
        self._interval = flush_interval
        self._loop = asyncio.get_running_loop()
        self._buffer: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._started = time.monotonic()
        self.shown = ""
        self.first_token: float | None = None
        self.usage = Usage()
        self.notes: list[str] = []

    async def consume(self, events: AsyncIterable[StreamEvent]) -> None:
        async for event in events:
            self.handle(event)

    def handle(self, event: StreamEvent) -> None:
        if event.type == "message_start":
            usage = event.message.usage
            self.usage.input = int(usage.input_tokens or 0)
            self.usage.cache_read = int(usage.cache_read_input_tokens or 0)
            self.usage.cache_write = int(usage.cache_creation_input_tokens or 0)
        elif event.type == "message_delta":
            self.usage.output = int(event.usage.output_tokens or 0)
        elif event.type == "text":
            self._text(event.text)
        elif event.type == "content_block_stop":
            block = event.content_block
            if block.type == "tool_use":
                self.flush()
                note = self._on_tool(block.name, dict(block.input))
                if note:
                    self.notes.append(note)

    def _text(self, text: str) -> None:
        if self.first_token is None:
            self.first_token = time.monotonic() - self._started
            self._on_first_token(self.first_token)
        self._buffer.append(text)
        now = time.monotonic()
        if now - self._last_flush >= self._interval:
            self._last_flush = now
            self.flush()
        elif self._timer is None:
            wait = self._interval - (now - self._last_flush)
            self._timer = self._loop.call_at(self._loop.time() + wait, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._buffer:
            self.shown += "".join(self._buffer)
            self._buffer.clear()
            self._show(self.shown)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def close(self) -> str:
        """Stop the timer; the whole answer: all the text, then the notes."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.shown += "".join(self._buffer)
        self._buffer.clear()
        if self.notes:
            self.shown = (self.shown + "\n\n" if self.shown else "") + "\n".join(self.notes)
        return self.shown
