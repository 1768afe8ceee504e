"""``/api/rooms/{room}/class``, ``/messages``, ``/questions``, ``/hand(s)``, ``/muted``
and taking a grant back: the two-way class (issue 21, design section A).

Everything the class keeps is a server edit (``Room.edit``) of a ``class`` root
(``rooms.classroom``): policies and hands in the class room's (hands there carry no
name in a broadcast class: students see counts and their own), and in the staff room
``{class}.staff`` the hands with names and questions, students' questions and who is
muted. Staff (the class room's owners and editors) read the staff room over a viewer
token this API hands them; only the server writes it. Who asks, raises or posts comes
from the verified token, and a shared join-link identity (one user id for everyone who
opened the link) may not: "join the class with your name first".

Timestamps: ``class`` entries in unix seconds; chat entries in milliseconds, as the
browser and the AI write the chat.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic import BaseModel, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rooms import class_live, classroom
from rooms.class_live import AiPolicy, ChatPolicy
from rooms.classroom import HAND, MUTED, QUESTION
from rooms.history import Who
from rooms.roles import Mode, Role
from rooms.room import Room
from rooms.store import RoomInfo
from server.api import Api, ApiError, Strict, _body
from server.auth import Identity, issue_token
from server.ratelimit import RateLimiter

MESSAGES_PER_MINUTE = 10  # per person and class: a question a few seconds is plenty
MESSAGE_CHARS = 2000
HAND_QUESTION_CHARS = 500
NOT_PERSONAL = "join the class with your name first"
KEY = re.compile(r"[0-9a-f]{16}")


# -- bodies (the OpenAPI document is built from these) -----------------------------


class ClassPolicyBody(Strict):
    chat: ChatPolicy | None = Field(
        default=None, description="open: students post to the chat; questions: to the staff; "
        "closed: students may not post"
    )  # fmt: skip
    ai: AiPolicy | None = Field(default=None, description="the AI for students")


class PostMessage(Strict):
    text: str = Field(description=f"trimmed, then 1-{MESSAGE_CHARS} characters")

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        text = value.strip()
        if not 1 <= len(text) <= MESSAGE_CHARS:
            raise ValueError(f"must be 1-{MESSAGE_CHARS} characters once trimmed")
        return text


class RaiseHand(Strict):
    question: str | None = Field(
        default=None,
        description=f"trimmed, at most {HAND_QUESTION_CHARS} characters; omitted on a "
        "re-raise: the question stays",
    )

    @field_validator("question")
    @classmethod
    def _question(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if len(text) > HAND_QUESTION_CHARS:
            raise ValueError(f"must be at most {HAND_QUESTION_CHARS} characters once trimmed")
        return text


class HandEntry(BaseModel):
    key: str
    user_id: str | None
    name: str
    question: str
    raised_at: float


class QuestionEntry(BaseModel):
    id: str
    key: str
    user_id: str
    name: str
    text: str
    ts: float


class MutedEntry(BaseModel):
    key: str
    user_id: str
    name: str
    ts: float


class OwnHand(BaseModel):
    raised_at: float
    question: str


class StaffClassView(BaseModel):
    chat: ChatPolicy
    ai: AiPolicy
    staff_room: str | None = Field(description="null in an exercise's student room")
    staff_token: str | None = Field(description="a viewer token for staff_room, the caller's")
    hands: list[HandEntry] = Field(description="oldest raised first")
    questions: list[QuestionEntry]
    muted: list[MutedEntry]


class StudentClassView(BaseModel):
    chat: ChatPolicy
    ai: AiPolicy
    hand_key: str | None = Field(description="the caller's person key (null: not personal)")
    hand: OwnHand | None


class MessagePosted(BaseModel):
    id: str
    to: str = Field(description="chat (everyone) or staff (a question for the teachers)")


class ChatEntry(BaseModel):
    id: str
    author: str
    author_id: str
    author_role: str
    text: str
    ts: float = Field(description="milliseconds")
    question: bool
    published_by: str
    published_by_id: str


class HandRaised(BaseModel):
    key: str
    raised_at: float
    question: str


class Lowered(BaseModel):
    lowered: int


class PeerRole(BaseModel):
    conn: str
    role: Role


class RoleReverted(BaseModel):
    changed: int
    peers: list[PeerRole]


# -- the API ---------------------------------------------------------------------------


def _who(identity: Identity) -> Who:
    return Who(identity.user_id, identity.name, identity.role.value)


def _is_staff(identity: Identity, name: str) -> bool:
    """Staff: the class room's owners and editors; in a student's room, its owners (the
    student is that room's editor)."""
    if class_live.is_student_room(name):
        return identity.role is Role.OWNER
    return identity.role.writes_everything


class ClassApi:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.message_limiter = RateLimiter(MESSAGES_PER_MINUTE)
        self._staff_rooms: set[str] = set()  # made (or found) on this instance

    def routes(self) -> list[Route]:
        h = self.api._handler
        base = "/api/rooms/{room}"
        return [
            Route(f"{base}/class", h(self.get_class), methods=["GET"]),
            Route(f"{base}/class", h(self.put_class), methods=["PUT"]),
            Route(f"{base}/messages", h(self.post_message), methods=["POST"]),
            Route(f"{base}/questions/{{id}}/publish", h(self.publish), methods=["POST"]),
            Route(f"{base}/questions/{{id}}", h(self.dismiss), methods=["DELETE"]),
            Route(f"{base}/hand", h(self.raise_hand), methods=["POST"]),
            Route(f"{base}/hand", h(self.lower_own), methods=["DELETE"]),
            Route(f"{base}/hands/{{key}}", h(self.lower_one), methods=["DELETE"]),
            Route(f"{base}/hands", h(self.lower_all), methods=["DELETE"]),
            Route(f"{base}/muted/{{key}}", h(self.mute), methods=["PUT"]),
            Route(f"{base}/muted/{{key}}", h(self.unmute), methods=["DELETE"]),
            Route(f"{base}/peers/{{user}}/role", h(self.revert_role), methods=["DELETE"]),
        ]

    # -- plumbing ------------------------------------------------------------------

    async def _class(
        self, request: Request, *, student_room: bool = False
    ) -> tuple[str, RoomInfo, Identity, Room]:
        """The path's room as a class: never the server's staff or exercise rooms, and
        an exercise's student room only where ``student_room`` (hands)."""
        name, info, identity = await self.api._room(request)
        if class_live.is_staff_room(name) or class_live.is_exercise_room(name):
            raise ApiError(409, "this room is the server's record of a class, not a class")
        if class_live.is_student_room(name) and not student_room:
            raise ApiError(409, "this is a student's exercise room: use the class room")
        return name, info, identity, await self.api.registry.loaded(name)

    def _staff_only(self, identity: Identity, name: str) -> None:
        if not _is_staff(identity, name):
            raise ApiError(403, "only the class's teacher and editors may do this")

    def _key(self, identity: Identity) -> str:
        if not identity.personal:
            raise ApiError(403, NOT_PERSONAL)
        return classroom.person_key(self.api.auth.secret, identity.user_id)

    async def _staff_room(self, name: str) -> Room:
        """The class's staff room, made the first time it is needed (a broadcast room:
        staff join it as viewers, only the server writes)."""
        staff = classroom.staff_room(name)
        if staff not in self._staff_rooms:
            now = time.time()
            info = RoomInfo(staff, Mode.BROADCAST.value, "python", f"{name} staff", now, now)
            await self.api.registry.create_room(info)  # False: it exists, fine
            self._staff_rooms.add(staff)
        return await self.api.registry.loaded(staff)

    def _staff_token(self, name: str, identity: Identity) -> str:
        now = int(time.time())
        ttl = self.api.settings.token_ttl_seconds
        expires = int(identity.expires) if identity.expires else now + ttl
        return issue_token(
            self.api.auth.secret,
            room=classroom.staff_room(name),
            role=Role.VIEWER,
            name=identity.name,
            user_id=identity.user_id,
            ttl=0,
            personal=True,
            lifetime=(now, max(expires, now + 60)),
        )

    # -- the class -----------------------------------------------------------------

    async def get_class(self, request: Request) -> Response:
        """Staff: the policies, the staff room and a viewer token to it, hands (oldest
        first), questions, who is muted. Anyone else: the policies and their own hand."""
        name, info, identity, room = await self._class(request, student_room=True)
        broadcast = info.mode == Mode.BROADCAST.value
        chat = class_live.chat_policy(room.doc, broadcast)
        ai = class_live.ai_policy(room.doc)
        if _is_staff(identity, name):
            return JSONResponse(
                (await self._staff_view(name, identity, room, broadcast, chat, ai)).model_dump()
            )
        key = (
            classroom.person_key(self.api.auth.secret, identity.user_id)
            if identity.personal
            else None
        )
        hand = await self._own_hand(name, room, broadcast, key) if key else None
        view = StudentClassView(chat=chat, ai=ai, hand_key=key, hand=hand)
        return JSONResponse(view.model_dump())

    async def _staff_view(
        self,
        name: str,
        identity: Identity,
        room: Room,
        broadcast: bool,
        chat: ChatPolicy,
        ai: AiPolicy,
    ) -> StaffClassView:
        if class_live.is_student_room(name):
            hands = classroom.entries(room.doc, HAND)
            return StaffClassView(
                chat=chat, ai=ai, staff_room=None, staff_token=None,
                hands=[_hand(h) for h in class_live.hands_in_order(hands)],
                questions=[], muted=[],
            )  # fmt: skip
        staff = await self._staff_room(name)
        hands = classroom.entries((staff if broadcast else room).doc, HAND)
        return StaffClassView(
            chat=chat,
            ai=ai,
            staff_room=classroom.staff_room(name),
            staff_token=self._staff_token(name, identity),
            hands=[_hand(h) for h in class_live.hands_in_order(hands)],
            questions=[QuestionEntry(**q) for q in class_live.questions_in_order(staff.doc)],
            muted=[MutedEntry(**m) for m in class_live.muted_in_order(staff.doc)],
        )

    async def _own_hand(self, name: str, room: Room, broadcast: bool, key: str) -> OwnHand | None:
        mine = classroom.get(room.doc, HAND, key)
        if mine is None:
            return None
        if broadcast:  # the question is in the staff room only
            staff = classroom.get((await self._staff_room(name)).doc, HAND, key) or {}
            mine = {**mine, "question": staff.get("question", "")}
        return OwnHand(raised_at=float(mine["raised_at"]), question=str(mine.get("question", "")))

    async def put_class(self, request: Request) -> Response:
        """Owner only: the chat policy and the AI policy for students."""
        name, _, identity, room = await self._class(request)
        if identity.role is not Role.OWNER:
            raise ApiError(403, "only the room's owner may change the class's policies")
        body = await _body(request, ClassPolicyBody)
        if body.chat is not None or body.ai is not None:
            room.edit(class_live.set_policies(body.chat, body.ai), who=_who(identity))
        return await self.get_class(request)

    # -- messages and questions ----------------------------------------------------

    async def post_message(self, request: Request) -> Response:
        """A student's message: to the chat (open), to the staff (questions), refused
        (closed, or muted). Owners, editors and reviewers post to the chat."""
        name, info, identity, room = await self._class(request)
        key = self._key(identity)
        body = await _body(request, PostMessage)
        student = identity.role is Role.VIEWER
        policy = class_live.chat_policy(room.doc, info.mode == Mode.BROADCAST.value)
        staff: Room | None = None
        if student:
            if policy == "closed":
                raise ApiError(403, "chat is closed")
            staff = await self._staff_room(name)
            if classroom.get(staff.doc, MUTED, key) is not None:
                raise ApiError(403, "you are muted")
        self.message_limiter.enforce(
            f"{name}:{identity.user_id}", f"at most {MESSAGES_PER_MINUTE} messages a minute"
        )
        if student and policy == "questions" and staff is not None:
            entry_id = class_live.new_id("q")
            question = {
                "id": entry_id, "key": key, "user_id": identity.user_id,
                "name": identity.name, "text": body.text, "ts": time.time(),
            }  # fmt: skip
            staff.edit(class_live.put_entry(QUESTION, entry_id, question), who=_who(identity))
            return JSONResponse(MessagePosted(id=entry_id, to="staff").model_dump(), 201)
        entry_id = class_live.new_id("m")
        entry = {
            "id": entry_id, "author": identity.name, "author_id": identity.user_id,
            "author_role": identity.role.value, "text": body.text, "ts": class_live.chat_ts(),
        }  # fmt: skip
        room.edit(class_live.chat_entry(entry), who=_who(identity))
        return JSONResponse(MessagePosted(id=entry_id, to="chat").model_dump(), 201)

    async def _question(self, request: Request) -> tuple[str, Identity, Room, Room, dict[str, Any]]:
        name, _, identity, room = await self._class(request)
        self._staff_only(identity, name)
        staff = await self._staff_room(name)
        question = classroom.get(staff.doc, QUESTION, request.path_params["id"])
        if question is None:
            raise ApiError(404, "unknown question")
        return name, identity, room, staff, question

    async def publish(self, request: Request) -> Response:
        """Staff: a student's question into the class chat, in the student's name and
        marked as published by the caller; it leaves the staff's inbox."""
        _, identity, room, staff, question = await self._question(request)
        entry = ChatEntry(
            id=class_live.new_id("m"),
            author=str(question.get("name", "")),
            author_id=str(question.get("user_id", "")),
            author_role=Role.VIEWER.value,
            text=str(question.get("text", "")),
            ts=class_live.chat_ts(),
            question=True,
            published_by=identity.name,
            published_by_id=identity.user_id,
        )
        room.edit(class_live.chat_entry(entry.model_dump()), who=_who(identity))
        staff.edit(class_live.put_entry(QUESTION, str(question["id"]), None), who=_who(identity))
        return JSONResponse(entry.model_dump())

    async def dismiss(self, request: Request) -> Response:
        """Staff: drop a question without publishing it."""
        _, identity, _, staff, question = await self._question(request)
        staff.edit(class_live.put_entry(QUESTION, str(question["id"]), None), who=_who(identity))
        return Response(status_code=204)

    # -- hands ---------------------------------------------------------------------

    async def raise_hand(self, request: Request) -> Response:
        """Raise (or re-raise: the question changes, the time stays) one's own hand."""
        name, info, identity, room = await self._class(request, student_room=True)
        key = self._key(identity)
        body = await _body(request, RaiseHand)
        broadcast = info.mode == Mode.BROADCAST.value
        staff = await self._staff_room(name) if broadcast else None
        if staff is not None and body.question and identity.role is Role.VIEWER:
            if classroom.get(staff.doc, MUTED, key) is not None:
                raise ApiError(403, "you are muted")
        mine = classroom.get(room.doc, HAND, key)
        staff_hand = classroom.get(staff.doc, HAND, key) if staff is not None else None
        raised_at = class_live.raised_at(mine, staff_hand, time.time())
        question = body.question
        if question is None:
            question = str((staff_hand or mine or {}).get("question", ""))
        who = _who(identity)
        if staff is not None:
            staff.edit(
                class_live.put_entry(
                    HAND, key,
                    {"key": key, "user_id": identity.user_id, "name": identity.name,
                     "question": question, "raised_at": raised_at},
                ),
                who=who,
            )  # fmt: skip
            room.edit(class_live.put_entry(HAND, key, {"raised_at": raised_at}), who=who)
        else:
            room.edit(
                class_live.put_entry(
                    HAND, key,
                    {"raised_at": raised_at, "name": identity.name, "question": question,
                     "user_id": identity.user_id},
                ),
                who=who,
            )  # fmt: skip
        raised = HandRaised(key=key, raised_at=raised_at, question=question)
        return JSONResponse(raised.model_dump())

    async def _lower(self, name: str, room: Room, info: RoomInfo, keys: list[str] | None,
                     identity: Identity) -> int:  # fmt: skip
        """Lower the hands of ``keys`` (None: every hand) in the class room and, in a
        broadcast class, the staff room; returns how many were raised."""
        staff = await self._staff_room(name) if info.mode == Mode.BROADCAST.value else None
        docs = [room] + ([staff] if staff is not None else [])
        raised = set().union(*(classroom.entries(r.doc, HAND) for r in docs))
        chosen = raised if keys is None else raised & set(keys)
        for target in docs:
            present = [k for k in chosen if classroom.get(target.doc, HAND, k) is not None]
            if present:
                target.edit(_remove(present), who=_who(identity))
        return len(chosen)

    async def lower_own(self, request: Request) -> Response:
        """Lower one's own hand (0 when it was not raised)."""
        name, info, identity, room = await self._class(request, student_room=True)
        key = self._key(identity)
        lowered = await self._lower(name, room, info, [key], identity)
        return JSONResponse(Lowered(lowered=lowered).model_dump())

    async def lower_one(self, request: Request) -> Response:
        """Staff: lower the hand of the person ``key``."""
        name, info, identity, room = await self._class(request, student_room=True)
        self._staff_only(identity, name)
        lowered = await self._lower(name, room, info, [request.path_params["key"]], identity)
        if not lowered:
            raise ApiError(404, "no hand raised with that key")
        return JSONResponse(Lowered(lowered=lowered).model_dump())

    async def lower_all(self, request: Request) -> Response:
        """Staff: lower every hand."""
        name, info, identity, room = await self._class(request, student_room=True)
        self._staff_only(identity, name)
        lowered = await self._lower(name, room, info, None, identity)
        return JSONResponse(Lowered(lowered=lowered).model_dump())

    # -- muting --------------------------------------------------------------------

    async def mute(self, request: Request) -> Response:
        """Staff: refuse the messages and questions of the person ``key`` (from their
        hand or question entry) from now on."""
        name, _, identity, room = await self._class(request)
        self._staff_only(identity, name)
        key = request.path_params["key"]
        staff = await self._staff_room(name)
        person = None
        if KEY.fullmatch(key):
            person = class_live.known_person(
                key,
                classroom.entries(staff.doc, MUTED),
                classroom.entries(staff.doc, HAND),
                classroom.entries(staff.doc, QUESTION),
                classroom.entries(room.doc, HAND),
            )
        if person is None:
            raise ApiError(404, "unknown person: no hand or question with that key")
        entry = MutedEntry(key=key, user_id=person["user_id"], name=person["name"], ts=time.time())
        current = classroom.get(staff.doc, MUTED, key)
        if current is not None:  # muting twice keeps the first time
            entry = MutedEntry(**current)
        else:
            staff.edit(class_live.put_entry(MUTED, key, entry.model_dump()), who=_who(identity))
        return JSONResponse(entry.model_dump())

    async def unmute(self, request: Request) -> Response:
        """Staff: let the person ``key`` post again."""
        name, _, identity, _ = await self._class(request)
        self._staff_only(identity, name)
        key = request.path_params["key"]
        staff = await self._staff_room(name)
        if classroom.get(staff.doc, MUTED, key) is None:
            raise ApiError(404, "that person is not muted")
        staff.edit(class_live.put_entry(MUTED, key, None), who=_who(identity))
        return Response(status_code=204)

    # -- grants --------------------------------------------------------------------

    async def revert_role(self, request: Request) -> Response:
        """Owner only: the connections of a user id (or one ``conn``) return to their
        token's role now: a grant taken back before its time."""
        name, _, identity = await self.api._room(request)
        if identity.role is not Role.OWNER:
            raise ApiError(403, "only the room's owner may do this")
        room = self.api.registry.rooms.get(name)
        reverted = room.revert_role(request.path_params["user"]) if room else []
        if not reverted:
            raise ApiError(404, "no such user connected to this room")
        result = RoleReverted(
            changed=len(reverted),
            peers=[PeerRole(conn=p.conn_id, role=p.role) for p in reverted],
        )
        return JSONResponse(result.model_dump(mode="json"))


def _hand(value: dict[str, Any]) -> HandEntry:
    return HandEntry(
        key=str(value["key"]),
        user_id=value.get("user_id") if isinstance(value.get("user_id"), str) else None,
        name=str(value.get("name", "")),
        question=str(value.get("question", "")),
        raised_at=float(value.get("raised_at", 0)),
    )


def _remove(keys: list[str]) -> Any:
    def change(doc: Any) -> None:
        for key in keys:
            classroom.put(doc, HAND, key, None)

    return change
