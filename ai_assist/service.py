"""The AI pair-programmer's orchestrator: one virtual participant per room, answering
through Claude.

``ask`` snapshots the room synchronously (``context``) and queues the question; one
request runs per room, ``queue`` more wait, beyond that the asker gets a polite chat
reply and ``AIRefused`` (429). Each request passes the circuit breaker and the token
budgets (``budgets``), then streams Claude's answer (``prompt`` builds the call,
``reply`` consumes the stream) into a new chat entry written by the room's
``participant``; tool calls become edits or suggestions (``edits``).

Guard rails: a whole-request timeout, the SDK's retries with backoff on 429/529/connection
errors (``max_retries``), and a circuit breaker (``rooms.breaker``): after
``breaker_failures`` failed requests in a row, requests are answered "AI is unavailable
right now" without calling the API until ``breaker_cooldown`` has passed; then one
request probes, and its outcome closes the breaker or opens it again.

Classroom policy (``policy.ai_policy``, read from the room's server-owned ``class``
root when a question is asked and again when its answer starts; the stricter wins):
``off`` refuses (``AIRefused`` 403; an ``@ai`` chat question gets a one-line notice);
``hints`` sends no tools and the hints rules (``prompt.system_for``), and a tool call
the model makes anyway is dropped, never applied nor offered as a suggestion.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from ai_assist import context, edits
from ai_assist.budgets import Budgets, TokenBudget
from ai_assist.context import Ask
from ai_assist.edits import Suggestion
from ai_assist.participant import Participant
from ai_assist.policy import (
    FULL,
    HINTS,
    OFF,
    AIRefused,
    Policy,
    ai_policy,
    may_apply,
    may_ask,
    off_message,
    strictest,
)
from ai_assist.prompt import messages_for, system_for, tools_for
from ai_assist.reply import ReplyStream
from ai_assist.settings import AIObserver, AISettings
from rooms.authorship import Author
from rooms.breaker import BreakerOpen, CircuitBreaker
from rooms.peer import Peer
from rooms.registry import RoomRegistry
from rooms.roles import Role
from rooms.room import Room

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

log = structlog.get_logger("codementor.ai")
tracer = trace.get_tracer(__name__)

UNAVAILABLE = "AI is unavailable right now."
HINTS_ONLY = "(hints only: the AI does not change the code here)"
STOPPED = "(stopped)"
MENTION = re.compile(r"(?<![\w@])@ai\b", re.IGNORECASE)


class RoomAI:
    """The AI's work in one room: its participant, the question being answered and the
    ones waiting, the room's token budget and its open suggestions."""

    def __init__(self, room: Room, budget: TokenBudget) -> None:
        self.room = room
        self.member = Participant(room)
        self.queue: deque[Ask] = deque()
        self.current: Ask | None = None
        self.task: asyncio.Task[None] | None = None
        self.answering: asyncio.Task[None] | None = None  # the current request's answer
        self.stop_note = STOPPED
        self.budget = budget
        self.suggestions: dict[str, Suggestion] = {}

    def leave_if_idle(self, now: float, idle_leave: float) -> None:
        if self.current is None and not self.queue:
            self.member.leave_if_idle(now, idle_leave)


class AIService:
    """What the server holds: questions in, answers streamed into the rooms."""

    def __init__(
        self,
        settings: AISettings,
        registry: RoomRegistry,
        observer: AIObserver | None = None,
        client: AsyncAnthropic | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.observer = observer or AIObserver()
        if client is None:
            from anthropic import AsyncAnthropic  # only when the AI is on: a large import

            client = AsyncAnthropic(
                api_key=settings.api_key,
                base_url=settings.base_url or None,
                timeout=settings.timeout,
                max_retries=settings.max_retries,
                default_headers={"x-app": "codementor"},
                # The SDK traces its calls itself (a span per call, retries and the stream
                # in it; the traceparent sent along). Given here, the option also keeps
                # ANTHROPIC_OPEN_TELEMETRY_* from putting the code and chat in the spans.
                open_telemetry={"traces": {"enabled": True, "content_mode": "metadata_only"}},
            )
        self.client = client
        self.rooms: dict[str, RoomAI] = {}
        self.budgets = Budgets(settings, self.observer)
        self.breaker = CircuitBreaker(
            "Claude",
            settings.breaker_failures,
            settings.breaker_cooldown,
            on_change=lambda state: self.observer.ai_breaker_changed(state.value),
        )
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
                state.leave_if_idle(now, self.settings.idle_leave)

    def on_room_loaded(self, room: Room) -> None:
        """Registry load hook: answer chat messages mentioning ``@ai``. (A rebuilt room
        document needs nothing here: ``Participant.me`` replaces a replica that followed
        the old one, and announces the old one's presence gone.)"""
        room.chat_hooks.append(self._chat_ask)

    def on_peer_left(self, room: Room, peer: Peer) -> None:
        """Registry leave hook: when the asker's last connection to the room is gone,
        its questions go too (queued ones dropped, the current answer stopped)."""
        state = self.rooms.get(room.name)
        user = peer.user_id
        if state is None or state.room is not room or not user:
            return
        if context.present(room, user):
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
        question = MENTION.sub("", text).strip() or "Please help with the code."
        loop = asyncio.get_running_loop()
        loop.call_soon(self._ask_quietly, room, question, peer.name, peer.user_id, peer.role)

    def _ask_quietly(
        self, room: Room, question: str, asker: str, asker_id: str, role: Role
    ) -> None:
        if self.registry.rooms.get(room.name) is not room:
            return
        try:
            self.ask(room, question, asker, asker_id=asker_id or None, role=role)
        except AIRefused as exc:
            if exc.status == 403:  # the AI is off here: say so once, in chat
                self.state(room).member.post(f"Sorry {asker}, {exc.message}.")

    # -- asking -------------------------------------------------------------------

    def state(self, room: Room) -> RoomAI:
        state = self.rooms.get(room.name)
        if state is None or state.room is not room:
            state = self.rooms[room.name] = RoomAI(room, self.budgets.for_room())
        return state

    def ask(
        self,
        room: Room,
        prompt: str,
        asker: str,
        selection: tuple[int, int] | None = None,
        asker_id: str | None = None,
        question_by: Author | None = None,
        path: str | None = None,
        role: Role = Role.OWNER,
    ) -> tuple[str, int]:
        """Queue a question. ``selection`` is (anchor, head) in UTF-16 units (browser
        indices). ``asker_id`` (a user id) ties the request to the asker's presence:
        it is kept only if that user is connected to the room here. ``question_by``:
        post the question in chat in that verified name first (asked through the REST
        API; an ``@ai`` message already is in chat). ``path``: the file the question is
        about (else the asker's open file, else the entry file). ``role``: the asker's
        verified role, for the classroom policy (``AIRefused`` 403 when the AI is off
        for it here). Returns (request id, requests ahead of it). Synchronous: the
        snapshot is the document now."""
        policy = ai_policy(room.doc, room.name, role)
        if policy == OFF:
            self.observer.ai_request("off")
            raise AIRefused(off_message(room.name), 403)
        state = self.state(room)
        busy = (1 if state.current is not None else 0) + len(state.queue)
        if self.budgets.queue_full(busy):
            state.member.post(
                f"Sorry {asker}, I am still working on earlier questions in this room. "
                "Please ask again in a moment."
            )
            self.observer.ai_request("busy")
            raise AIRefused("the AI is busy in this room: ask again in a moment", 429)
        request = context.capture(
            room, f"ask-{self._seq + 1}", prompt, asker, selection, asker_id,
            self.settings.chat_context, path, self.settings.max_code_chars,
        )  # fmt: skip
        self._seq += 1
        request.policy = policy
        request.role = role
        request.trace_context = otel_context.get_current()
        if question_by is not None:
            state.member.post_for(question_by, prompt)
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

    def resolve_suggestion(self, room: Room, entry_id: str, apply: bool, by: Author) -> str:
        """Apply or dismiss a suggestion entry; returns its new status. Raises AIRefused.
        One made before the room's policy became hints (or off) is not applied now."""
        policy = ai_policy(room.doc, room.name, Role(by.role)) if apply else FULL
        if policy != FULL:
            raise AIRefused(f"the AI may not change the code here (AI policy: {policy})", 403)
        state = self.state(room)
        return edits.resolve(
            state.member, state.suggestions, entry_id, apply, by, self.settings.limits
        )

    def undo_change(self, room: Room, entry_id: str, by: Author) -> None:
        """Revert the AI code change recorded on a chat entry. Raises AIRefused."""
        edits.undo(self.state(room).member, entry_id, by)

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
                state.member.last_active = time.monotonic()

    # -- one request --------------------------------------------------------------

    async def _answer(self, state: RoomAI, request: Ask) -> None:
        """One answer, under a span in the trace it was asked in (carried by the
        request: this task was started for the room's queue, maybe by another ask)."""
        attributes = {"codementor.room": request.room, "codementor.ai.request": request.id}
        with tracer.start_as_current_span(
            "ai.request", request.trace_context, attributes=attributes
        ):
            await self._answer_traced(state, request)

    async def _answer_traced(self, state: RoomAI, request: Ask) -> None:
        if self.registry.rooms.get(request.room) is not state.room:
            return
        # The policy may have changed while the question waited: the stricter holds.
        request.policy = strictest(
            (request.policy, ai_policy(state.room.doc, state.room.name, request.role))
        )
        if request.policy == OFF:
            state.member.post(f"Sorry {request.asker}, {off_message(request.room)}.")
            self.observer.ai_request("off")
            return
        try:
            probe = self.breaker.before_call()
        except BreakerOpen:
            state.member.post(UNAVAILABLE)
            self.observer.ai_request("unavailable")
            return
        try:
            refusal = self.budgets.refusal(state.budget)
            if refusal is not None:
                state.member.post(refusal)
                self.observer.ai_request("budget")
                return
            await self._stream(state, request)
        finally:
            if probe:
                self.breaker.release_probe()  # no answer either way (refused, cancelled)

    async def _stream(self, state: RoomAI, request: Ask) -> None:
        """Call Claude and stream its answer into a new chat entry; the breaker learns
        the outcome, the budgets the usage."""
        member = state.member
        entry_id = member.post("", pending=True, asker=request.asker)
        policy: Policy = request.policy

        def on_tool(name: str, args: dict[str, Any]) -> str:
            if policy == HINTS:  # no tools were given; a tool call anyway changes nothing
                return HINTS_ONLY
            return edits.use_tool(
                member, state.suggestions, request, name, args, entry_id, self.settings.limits
            )

        tools = tools_for(policy)
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        reply = ReplyStream(
            lambda text: member.update_entry(entry_id, text=text),
            on_tool,
            self.observer.ai_first_token,
            self.settings.flush_interval,
        )
        outcome = "ok"
        try:
            async with asyncio.timeout(self.settings.timeout):
                async with self.client.messages.stream(
                    model=self.settings.model,
                    max_tokens=self.settings.max_tokens,
                    system=system_for(policy),
                    messages=messages_for(request, self.settings.max_code_chars),
                    **extra,
                ) as stream:
                    await reply.consume(stream)
            self.breaker.success()
        except asyncio.CancelledError:
            outcome = "cancelled"
            reply.note(state.stop_note)
            raise
        except TimeoutError:
            outcome = "timeout"
            reply.note(f"(timed out) {UNAVAILABLE}")
            self.breaker.failure("timeout")
        except Exception as exc:
            outcome = "error"
            log.warning(
                "ai_api_error", room=request.room, request=request.id, error=type(exc).__name__
            )
            reply.note(UNAVAILABLE)
            self.breaker.failure(type(exc).__name__)
        finally:
            span = trace.get_current_span()  # the request's (``_answer``)
            span.set_attribute("codementor.ai.outcome", outcome)
            if outcome in ("timeout", "error"):
                span.set_status(Status(StatusCode.ERROR, outcome))
            text = reply.close()
            with contextlib.suppress(Exception):
                if self.registry.rooms.get(request.room) is state.room:
                    member.update_entry(entry_id, text=text, pending=False)
            self.budgets.charge(state.budget, reply.usage)
            if outcome != "cancelled":
                self.observer.ai_request(outcome)


__all__ = ["AISettings", "AIService", "AIObserver", "AIRefused", "may_ask", "may_apply"]
