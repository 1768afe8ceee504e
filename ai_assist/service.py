"""The AI pair-programmer: one virtual participant per room, answering through Claude.

Participant: each room the AI works in gets a replica ``Doc`` with its own client id.
Every write (the growing chat reply, edits, suggestions) is made in that replica in one
transaction with no ``await`` between reading positions and applying, and the resulting
update is applied to the room with ``Room.edit(origin="ai")``: stored, relayed and
published like a peer's update, attributed to the AI's client id. Its awareness entry
(``{user: {name, color}, cursor}``) is announced through ``Room.set_server_presence``;
the cursor is built from the AI's own item ids (pycrdt.md 1.4). It leaves (presence
removed, replica dropped) after ``idle_leave`` quiet seconds.

Requests: ``ask`` snapshots the room synchronously (code, anchors for every line start,
the asker's selection, language, last run, recent chat, mode) and queues the request;
one request runs per room, ``queue`` more wait, beyond that the asker gets a polite chat
reply (and ``AIBusy``). The reply streams into a new chat entry, one transaction per
``flush_interval``. Tool calls (``replace_range``, ``insert_text``) are applied at their
``content_block_stop``: in pair rooms with ``meta.ai_edits`` true as one ``"ai"``
transaction, otherwise stored as a suggestion chat entry (``kind: "suggestion"``) that a
person applies or dismisses (``resolve_suggestion``).

Guard rails: per-room and global hourly token budgets (checked before a request, charged
with the usage the API reports), a whole-request timeout, the SDK's retries with backoff
on 429/529/connection errors (``max_retries``), and a circuit breaker: after
``breaker_failures`` failed requests in a row, requests are answered "AI is unavailable
right now" without calling the API until ``breaker_cooldown`` has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from pycrdt import Array, Decoder, Doc, Map, Text

from ai_assist import anchors as anchors_mod
from ai_assist.anchors import Anchors
from crdt import failures, offsets, schema
from crdt.awareness import NULL_STATE, Entry, encode_update
from rooms.peer import Peer
from rooms.registry import RoomRegistry
from rooms.roles import Mode, Role
from rooms.room import Room

log = structlog.get_logger("codementor.ai")

AI_NAME = "CodeMentor AI"
AI_COLOR = "#8b5cf6"
AI_COLOR_LIGHT = "#8b5cf633"
PRESENCE_OWNER = "ai"
UNAVAILABLE = "AI is unavailable right now."
STOPPED = "(stopped)"
MENTION = re.compile(r"(?<![\w@])@ai\b", re.IGNORECASE)

SYSTEM = (
    "You are CodeMentor AI, a pair-programmer inside a shared, live code editor used by "
    "students and teachers. Answer briefly and concretely in plain text (your answer is "
    "shown in the room's chat while you type it). When a change to the code is needed, "
    "call a tool: replace_range or insert_text, with line numbers of the numbered document "
    "you were shown. Keep edits minimal."
)

TOOLS: list[dict[str, Any]] = [
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


@dataclass(frozen=True, slots=True)
class AISettings:
    api_key: str
    base_url: str | None = None
    model: str = "claude-sonnet-4-6"
    max_tokens: int = 2048
    timeout: float = 60.0  # a whole request, first byte to last
    max_retries: int = 2  # SDK retries (backoff) on 429, 529, 5xx and connection errors
    queue: int = 2  # requests waiting per room behind the one running
    room_tokens_per_hour: int = 200_000
    global_tokens_per_hour: int = 2_000_000
    breaker_failures: int = 3
    breaker_cooldown: float = 30.0
    flush_interval: float = 0.05  # one chat transaction per this long while streaming
    idle_leave: float = 60.0
    chat_context: int = 10  # recent chat messages sent along
    max_code_chars: int = 100_000


class AIObserver:
    """Hooks for metrics; ``server.metrics`` implements them with Prometheus."""

    def ai_request(self, outcome: str) -> None: ...

    def ai_first_token(self, seconds: float) -> None: ...

    def ai_tokens(self, kind: str, count: int) -> None: ...

    def ai_budget_used(self, tokens: int) -> None: ...


class ReplicaFailed(RuntimeError):
    """yrs failed in the AI's replica; the next write starts from a fresh one."""


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


class TokenBudget:
    """Tokens charged in a sliding hour."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._charges: deque[tuple[float, int]] = deque()

    def used(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        while self._charges and self._charges[0][0] < now - 3600:
            self._charges.popleft()
        return sum(c for _, c in self._charges)

    def exhausted(self) -> bool:
        return self.used() >= self.limit

    def charge(self, tokens: int) -> None:
        if tokens > 0:
            self._charges.append((time.monotonic(), tokens))


@dataclass(slots=True)
class Ask:
    id: str
    room: str
    prompt: str
    asker: str
    # The asker's user id when it was in the room (on this process) as it asked: its
    # request is cancelled once its last connection leaves. None: asked from outside.
    asker_id: str | None
    mode: Mode
    ai_edits: bool
    language: str
    anchors: Anchors
    selection: tuple[int, int] | None  # code points in the snapshot
    last_run: dict[str, Any] | None
    chat: list[tuple[str, str]]
    asked_at: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class Suggestion:
    anchors: Anchors
    start: int  # snapshot code points
    end: int
    new_text: str
    old_text: str


def _state_vector(doc: Doc[Any]) -> dict[int, int]:
    dec = Decoder(doc.get_state())
    out: dict[int, int] = {}
    for _ in range(dec.read_var_uint()):
        client = dec.read_var_uint()
        out[client] = dec.read_var_uint()
    return out


class Participant:
    """The AI in one room: a replica doc with its own client id, and its presence."""

    def __init__(self, room: Room) -> None:
        self.room = room
        # The room document it follows: a rebuilt one (``Room.rebuild_document``) needs
        # a new replica.
        self.source = room.doc
        self.doc: Doc[Any] = Doc(client_id=random.randint(1, 2**53 - 1))
        self.clock = 0
        self.cursor: dict[str, Any] | None = None
        self.broken = False
        self.sync()

    @property
    def client_id(self) -> int:
        return int(self.doc.client_id)

    def sync(self) -> None:
        self.doc.apply_update(self.room.doc.get_update(self.doc.get_state()))

    def write(self, change: Callable[[Doc[Any]], None]) -> None:
        """Catch up with the room, change the replica in one transaction, apply the
        difference to the room as one ``"ai"`` transaction. Synchronous throughout."""
        try:
            self.sync()
            before = self.doc.get_state()
            with self.doc.transaction(origin="ai"):
                change(self.doc)
            update = self.doc.get_update(before)
        except BaseException as exc:
            if not failures.is_yrs_failure(exc):
                raise
            # The replica may hold half of the change: never use it again.
            self.broken = True
            raise ReplicaFailed(failures.describe(exc)) from exc
        self.room.edit(lambda doc: doc.apply_update(update), origin="ai")

    def announce(self, cursor: dict[str, Any] | None) -> None:
        self.cursor = cursor
        self.clock += 1
        state = {
            # role "ai": clients badge it, and tell its edits apart by this client id.
            "user": {
                "name": AI_NAME,
                "color": AI_COLOR,
                "colorLight": AI_COLOR_LIGHT,
                "role": "ai",
                "uid": "codementor-ai",
            },
            "cursor": cursor,
        }
        entry = Entry(self.client_id, self.clock, json.dumps(state))
        self.room.set_server_presence(PRESENCE_OWNER, encode_update([entry]))

    def leave(self) -> None:
        self.clock += 1
        entry = Entry(self.client_id, self.clock, NULL_STATE)
        self.room.set_server_presence(PRESENCE_OWNER, encode_update([entry]))


def _find_entry(chat: Array[Any], entry_id: str) -> Map[Any] | None:
    for i in range(len(chat) - 1, -1, -1):
        item = chat[i]
        if isinstance(item, Map) and item.get("id") == entry_id:
            return item
    return None


class RoomAI:
    def __init__(self, service: AIService, room: Room) -> None:
        self.service = service
        self.room = room
        self.participant: Participant | None = None
        self.queue: deque[Ask] = deque()
        self.current: Ask | None = None
        self.task: asyncio.Task[None] | None = None
        self.answering: asyncio.Task[None] | None = None  # the current request's answer
        self.stop_note = STOPPED
        self.budget = TokenBudget(service.settings.room_tokens_per_hour)
        self.suggestions: dict[str, Suggestion] = {}
        self.last_active = time.monotonic()

    @property
    def me(self) -> Participant:
        current = self.participant
        if (
            current is None
            or current.room is not self.room
            or current.source is not self.room.doc
            or current.broken
        ):
            if current is not None and current.room is self.room:
                current.leave()  # its presence goes; the new replica has a new client id
            current = self.participant = Participant(self.room)
            current.announce(None)
        return current

    def post(self, text: str, **extra: Any) -> str:
        """A new chat entry by the AI; returns its id."""
        entry_id = f"ai{int(time.time() * 1000):x}{random.randrange(16**4):04x}"

        def change(doc: Doc[Any]) -> None:
            fields: dict[str, Any] = {
                "id": entry_id, "author": AI_NAME, "color": AI_COLOR, "text": text,
                "ts": float(int(time.time() * 1000)), "ai": True, **extra,
            }  # fmt: skip
            schema.chat(doc).append(Map(fields))

        self.me.write(change)
        self.last_active = time.monotonic()
        return entry_id

    def update_entry(self, entry_id: str, **values: Any) -> None:
        def change(doc: Doc[Any]) -> None:
            entry = _find_entry(schema.chat(doc), entry_id)
            if entry is not None:
                for key, value in values.items():
                    entry[key] = value

        self.me.write(change)
        self.last_active = time.monotonic()

    def leave_if_idle(self, now: float) -> None:
        if (
            self.participant is not None
            and self.current is None
            and not self.queue
            and now - self.last_active >= self.service.settings.idle_leave
        ):
            self.participant.leave()
            self.participant = None


class AIService:
    def __init__(
        self,
        settings: AISettings,
        registry: RoomRegistry,
        observer: AIObserver | None = None,
        client: Any = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.observer = observer or AIObserver()
        if client is None:
            from anthropic import AsyncAnthropic

            client = AsyncAnthropic(
                api_key=settings.api_key,
                base_url=settings.base_url or None,
                timeout=settings.timeout,
                max_retries=settings.max_retries,
                default_headers={"x-app": "codementor"},
            )
        self.client = client
        self.rooms: dict[str, RoomAI] = {}
        self.budget = TokenBudget(settings.global_tokens_per_hour)
        self.failures = 0
        self.open_until = 0.0
        self._sweeper: asyncio.Task[None] | None = None
        self._seq = 0

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="ai-sweeper")

    async def close(self) -> None:
        tasks = [t for t in (self._sweeper, *(r.task for r in self.rooms.values())) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.client.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.settings.idle_leave / 4))
            now = time.monotonic()
            for name, state in list(self.rooms.items()):
                if self.registry.rooms.get(name) is not state.room:
                    if state.task is None or state.task.done():
                        del self.rooms[name]  # the room was unloaded
                    continue
                state.leave_if_idle(now)

    def on_room_loaded(self, room: Room) -> None:
        """Registry load hook: answer chat messages mentioning ``@ai``. (A rebuilt room
        document needs nothing here: ``RoomAI.me`` replaces a replica that followed the
        old one, and announces the old one's presence gone.)"""
        room.chat_hooks.append(self._chat_ask)

    def on_peer_left(self, room: Room, peer: Peer) -> None:
        """Registry leave hook: when the asker's last connection to the room is gone,
        its questions go too (queued ones dropped, the current answer stopped)."""
        state = self.rooms.get(room.name)
        user = peer.user_id
        if state is None or state.room is not room or not user:
            return
        if _present(room, user):
            return  # another tab of the same person is still here
        for request in [r for r in state.queue if r.asker_id == user]:
            state.queue.remove(request)
            self.observer.ai_request("cancelled")
        current = state.current
        if current is not None and current.asker_id == user and state.answering is not None:
            state.stop_note = f"(stopped: {current.asker} left the room)"
            state.answering.cancel()

    def _chat_ask(self, room: Room, peer: Peer, text: str) -> None:
        """Room chat hook: ``peer`` (its verified identity, never the entry's fields)
        posted ``text``; an ``@ai`` mention from a role that may ask is a question.
        Only the instance the peer is connected to sees it, so only one answers."""
        if not MENTION.search(text) or not may_ask(room.mode, peer.role):
            return
        prompt = MENTION.sub("", text).strip() or "Please help with the code."
        loop = asyncio.get_running_loop()
        loop.call_soon(self._ask_quietly, room, prompt, peer.name, peer.user_id)

    def _ask_quietly(self, room: Room, prompt: str, asker: str, asker_id: str) -> None:
        if self.registry.rooms.get(room.name) is not room:
            return
        with contextlib.suppress(AIRefused):
            self.ask(room, prompt, asker, asker_id=asker_id or None)

    # -- asking -------------------------------------------------------------------

    def state(self, room: Room) -> RoomAI:
        state = self.rooms.get(room.name)
        if state is None or state.room is not room:
            state = self.rooms[room.name] = RoomAI(self, room)
        return state

    def ask(
        self,
        room: Room,
        prompt: str,
        asker: str,
        selection: tuple[int, int] | None = None,
        asker_id: str | None = None,
    ) -> tuple[str, int]:
        """Queue a question. ``selection`` is (anchor, head) in UTF-16 units (browser
        indices). ``asker_id`` (a user id) ties the request to the asker's presence:
        it is kept only if that user is connected to the room here. Returns (request
        id, requests ahead of it). Synchronous: the snapshot is the document now."""
        state = self.state(room)
        busy = (1 if state.current is not None else 0) + len(state.queue)
        if busy > self.settings.queue:
            state.post(
                f"Sorry {asker}, I am still working on earlier questions in this room. "
                "Please ask again in a moment."
            )
            self.observer.ai_request("busy")
            raise AIRefused("the AI is busy in this room: ask again in a moment", 429)
        doc = room.doc
        text = schema.code(doc)
        anchors = anchors_mod.capture(text)
        snapshot = anchors.snapshot
        sel: tuple[int, int] | None = None
        if selection is not None:
            try:
                a, b = (offsets.utf16_to_codepoint(snapshot, i) for i in selection)
            except offsets.OffsetError as exc:
                raise AIRefused(f"selection: {exc}", 422) from exc
            sel = (min(a, b), max(a, b))
        meta = schema.meta(doc)
        self._seq += 1
        request = Ask(
            id=f"ask-{self._seq}",
            room=room.name,
            prompt=prompt,
            asker=asker,
            asker_id=asker_id if asker_id and _present(room, asker_id) else None,
            mode=room.mode,
            ai_edits=meta.get("ai_edits") is True,
            language=str(meta.get("language") or "plain text"),
            anchors=anchors,
            selection=sel,
            last_run=_last_run(schema.runs(doc)),
            chat=_recent_chat(schema.chat(doc), self.settings.chat_context),
        )
        state.queue.append(request)
        if state.task is None or state.task.done():
            state.task = asyncio.create_task(self._work(state), name=f"ai:{room.name}")
        return request.id, busy

    def cancel(self, room: Room) -> bool:
        """Stop the running request of ``room`` (and drop the queued ones)."""
        state = self.rooms.get(room.name)
        if state is None or state.task is None or state.task.done():
            return False
        state.queue.clear()
        state.task.cancel()
        return True

    async def _work(self, state: RoomAI) -> None:
        """Answer the queue in order. Each answer is a task of its own, so one can be
        stopped (its asker left) while the rest of the queue goes on; cancelling this
        task stops everything."""
        while state.queue:
            request = state.current = state.queue.popleft()
            state.stop_note = STOPPED
            state.answering = asyncio.create_task(
                self._answer(state, request), name=f"ai-answer:{request.id}"
            )
            try:
                await state.answering
            except asyncio.CancelledError:
                self.observer.ai_request("cancelled")
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the whole room's work was stopped, not just this answer
            except Exception:
                log.exception("ai_request_failed", room=request.room, request=request.id)
            finally:
                state.current = None
                state.answering = None
                state.last_active = time.monotonic()

    def healthy(self) -> bool:
        return time.monotonic() >= self.open_until

    # -- one request --------------------------------------------------------------

    async def _answer(self, state: RoomAI, request: Ask) -> None:
        settings = self.settings
        if self.registry.rooms.get(request.room) is not state.room:
            return
        if not self.healthy():
            state.post(UNAVAILABLE)
            self.observer.ai_request("unavailable")
            return
        if state.budget.exhausted() or self.budget.exhausted():
            which = "this room's" if state.budget.exhausted() else "the server's"
            state.post(f"Sorry, {which} AI token budget for this hour is used up.")
            self.observer.ai_request("budget")
            return
        entry_id = state.post("", pending=True, asker=request.asker)
        buffer: list[str] = []
        shown = ""
        flush_handle: asyncio.TimerHandle | None = None
        notes: list[str] = []

        def flush() -> None:
            nonlocal shown, flush_handle
            if flush_handle is not None:
                flush_handle.cancel()
                flush_handle = None
            if buffer:
                shown += "".join(buffer)
                buffer.clear()
                state.update_entry(entry_id, text=shown)

        loop = asyncio.get_running_loop()
        last_flush = 0.0
        first_token: float | None = None
        usage = {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0}
        outcome = "ok"
        started = time.monotonic()
        try:
            async with asyncio.timeout(settings.timeout):
                async with self.client.messages.stream(**self._params(request)) as stream:
                    async for event in stream:
                        kind = event.type
                        if kind == "message_start":
                            u = event.message.usage
                            usage["input"] = int(u.input_tokens or 0)
                            usage["cache_read"] = int(u.cache_read_input_tokens or 0)
                            usage["cache_write"] = int(u.cache_creation_input_tokens or 0)
                        elif kind == "message_delta":
                            usage["output"] = int(event.usage.output_tokens or 0)
                        elif kind == "text":
                            if first_token is None:
                                first_token = time.monotonic() - started
                                self.observer.ai_first_token(first_token)
                            buffer.append(event.text)
                            now = time.monotonic()
                            if now - last_flush >= settings.flush_interval:
                                last_flush = now
                                flush()
                            elif flush_handle is None:
                                flush_handle = loop.call_at(
                                    loop.time() + settings.flush_interval - (now - last_flush),
                                    flush,
                                )
                        elif kind == "content_block_stop":
                            block = event.content_block
                            if getattr(block, "type", None) == "tool_use":
                                flush()
                                notes.append(
                                    self._tool(state, request, block.name, dict(block.input))
                                )
            self.failures = 0
        except asyncio.CancelledError:
            outcome = "cancelled"
            notes.append(state.stop_note)
            raise
        except TimeoutError:
            outcome = "timeout"
            notes.append(f"(timed out) {UNAVAILABLE}")
            self._failed()
        except Exception as exc:
            outcome = "error"
            log.warning(
                "ai_api_error", room=request.room, request=request.id, error=type(exc).__name__
            )
            notes.append(UNAVAILABLE)
            self._failed()
        finally:
            if flush_handle is not None:
                flush_handle.cancel()
            shown += "".join(buffer)
            if notes:
                shown = (shown + "\n\n" if shown else "") + "\n".join(notes)
            with contextlib.suppress(Exception):
                if self.registry.rooms.get(request.room) is state.room:
                    state.update_entry(entry_id, text=shown, pending=False)
            total = sum(usage.values())
            state.budget.charge(total)
            self.budget.charge(total)
            for key, count in usage.items():
                if count:
                    self.observer.ai_tokens(key, count)
            self.observer.ai_budget_used(self.budget.used())
            if outcome != "cancelled":
                self.observer.ai_request(outcome)

    def _failed(self) -> None:
        self.failures += 1
        if self.failures >= self.settings.breaker_failures:
            self.open_until = time.monotonic() + self.settings.breaker_cooldown
            self.failures = 0

    def _params(self, request: Ask) -> dict[str, Any]:
        code = request.anchors.snapshot
        cut = len(code) > self.settings.max_code_chars
        lines = code[: self.settings.max_code_chars].split("\n")
        width = len(str(len(lines)))
        numbered = "\n".join(f"{i + 1:>{width}}| {line}" for i, line in enumerate(lines))
        document = (
            f"Language: {request.language}\n"
            f"The shared document, with line numbers{' (cut)' if cut else ''}:\n"
            f"<document>\n{numbered}\n</document>"
        )
        volatile = [f"Room mode: {request.mode.value}."]
        if request.mode is Mode.PAIR and request.ai_edits:
            volatile.append("Your edits are applied directly.")
        else:
            volatile.append("Your edits become suggestions a person applies or dismisses.")
        if request.selection is not None:
            a, b = request.selection
            line_a, col_a = _line_col(code, a)
            if a == b:
                volatile.append(f"{request.asker}'s cursor: line {line_a}, column {col_a}.")
            else:
                line_b, col_b = _line_col(code, b)
                volatile.append(
                    f"{request.asker}'s selection: line {line_a} column {col_a} to line "
                    f"{line_b} column {col_b}:\n<selection>\n{code[a:b]}\n</selection>"
                )
        if request.last_run:
            volatile.append("Last run: " + json.dumps(request.last_run)[:4000])
        if request.chat:
            volatile.append(
                "Recent chat:\n" + "\n".join(f"{who}: {text[:500]}" for who, text in request.chat)
            )
        volatile.append(f"{request.asker} asks: {request.prompt}")
        return {
            "model": self.settings.model,
            "max_tokens": self.settings.max_tokens,
            "system": SYSTEM,
            "tools": TOOLS,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        # The document is the big, stable prefix: cached for follow-ups.
                        {"type": "text", "text": document, "cache_control": {"type": "ephemeral"}},
                        {"type": "text", "text": "\n\n".join(volatile)},
                    ],
                }
            ],
        }

    # -- tools --------------------------------------------------------------------

    def _tool(self, state: RoomAI, request: Ask, name: str, args: dict[str, Any]) -> str:
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
            self._apply(state, anchors, start, end, new_text)
            return f"(edited {where})"
        suggestion = Suggestion(anchors, start, end, new_text, anchors.snapshot[start:end])
        entry_id = state.post(
            f"Suggested edit ({where}):\n{new_text}",
            kind="suggestion",
            status="open",
            start_line=float(anchors.snapshot.count("\n", 0, start) + 1),
            old_text=suggestion.old_text,
            new_text=new_text,
        )
        state.suggestions[entry_id] = suggestion
        return f"(suggested an edit {where}: apply or dismiss it below)"

    def _apply(self, state: RoomAI, anchors: Anchors, start: int, end: int, new: str) -> None:
        """Resolve the snapshot range in the current text and replace it, in the AI's
        replica, in one transaction; then set the AI's cursor after the new text."""
        me = state.me
        cursor: dict[str, Any] = {}

        def change(doc: Doc[Any]) -> None:
            text = schema.code(doc)
            a = anchors.resolve(text, start)
            b = max(a, anchors.resolve(text, end, before=True)) if end != start else a
            current = str(text)
            ua, ub = offsets.codepoint_to_utf8(current, a), offsets.codepoint_to_utf8(current, b)
            if ub > ua:
                del text[ua:ub]
            if new:
                clock = _state_vector(doc).get(me.client_id, 0)
                text.insert(ua, new)
                last = clock + offsets.utf16_len(new) - 1
                pos = {"type": None, "tname": None, "item": {"client": me.client_id,
                       "clock": last}, "assoc": -1}  # fmt: skip
                cursor.update(anchor=pos, head=pos)

        me.write(change)
        state.last_active = time.monotonic()
        me.announce(cursor or None)

    def resolve_suggestion(self, room: Room, entry_id: str, apply: bool) -> str:
        """Apply or dismiss a suggestion entry; returns its new status. Raises AIRefused."""
        state = self.state(room)
        entry = _find_entry(schema.chat(room.doc), entry_id)
        # ``ai`` and ``kind`` are the AI's alone (a peer's are stripped: rooms.authorship).
        if entry is None or entry.get("kind") != "suggestion" or entry.get("ai") is not True:
            raise AIRefused("unknown suggestion", 404)
        if entry.get("status") != "open":
            raise AIRefused(f"the suggestion is already {entry.get('status')}", 409)
        if apply:
            suggestion = state.suggestions.get(entry_id)
            if suggestion is None:
                # Anchors live in memory; after a restart, find the original text instead.
                old, new = str(entry.get("old_text") or ""), str(entry.get("new_text") or "")
                current = schema.code_text(room.doc)
                if not old or current.count(old) != 1:
                    raise AIRefused("the code changed too much to apply this suggestion", 409)
                at = current.index(old)
                suggestion = Suggestion(anchors_mod.capture(schema.code(room.doc)), at,
                                        at + len(old), new, old)  # fmt: skip
            self._apply(
                state, suggestion.anchors, suggestion.start, suggestion.end, suggestion.new_text
            )
        status = "applied" if apply else "dismissed"
        state.update_entry(entry_id, status=status)
        state.suggestions.pop(entry_id, None)
        return status


def _present(room: Room, user_id: str) -> bool:
    return any(p.user_id == user_id for p in room.peers.values())


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _last_run(runs: Map[Any]) -> dict[str, Any] | None:
    best: dict[str, Any] | None = None
    for _, entry in runs.items():
        if isinstance(entry, Map):
            record = {k: v for k, v in entry.items() if isinstance(v, str | float | int | bool)}
            if best is None or float(record.get("ts", 0)) > float(best.get("ts", 0)):
                best = record
    if best is None:
        return None
    keep = ("status", "language", "stdout", "stderr", "compile_output", "message", "exit_code")
    return {k: best[k] for k in keep if k in best}


def _recent_chat(chat: Array[Any], count: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i in range(max(0, len(chat) - count), len(chat)):
        item = chat[i]
        if isinstance(item, Map):
            out.append((str(item.get("author") or "someone"), str(item.get("text") or "")))
    return out


__all__ = ["AISettings", "AIService", "AIObserver", "AIRefused", "Text", "may_ask", "may_apply"]
