"""Broadcast rooms: one teacher (owner) on stage, fifty students (viewers) in the audience.

Presence is routed: the teacher sees every student, a student sees only the
stage. So each student gets O(1) awareness frames however many students there
are, not one per classmate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from crdt import protocol, schema
from crdt.offsets import utf8_len
from rooms.roles import Role
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

STUDENTS = 50
TEACHER_CODE = "def greet(name):\n    return f'hello, {name}'\n"


def awareness_frames(client: YClient) -> int:
    """Awareness frames the client received, keep-alives (empty updates) excluded."""
    return sum(
        1
        for frame in client.received
        if frame[0] == protocol.MessageType.AWARENESS and frame != protocol.KEEPALIVE_FRAME
    )


async def join(server: ServerProcess, room: str, credential: str) -> YClient:
    client = await YClient(server.ws_url(room)).connect(f"token={credential}")
    await client.wait_synced()
    return client


async def create_broadcast_room(server: ServerProcess) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        created = await http.post(
            "/api/rooms", json={"mode": "broadcast", "language": "python", "title": "lecture"}
        )
    assert created.status_code == 201, created.text
    return created.json()["room"], created.json()["owner_token"]


async def test_fifty_students_see_only_the_teacher(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_SECRET=SECRET)
    room, owner_token = await create_broadcast_room(server)
    teacher = await join(server, room, owner_token)
    teacher_id = teacher.doc.client_id
    await teacher.set_awareness({"user": {"name": "teacher"}, "cursor": 0})
    awareness_in = 'codementor_frames_total{direction="in",type="awareness"}'
    await eventually(lambda: server.metric(awareness_in) >= 1)  # the room has the teacher's state

    students: list[YClient] = []
    for i in range(STUDENTS):
        student = await join(
            server, room, sign(room, Role.VIEWER, name=f"s{i}", sub=f"student-{i}")
        )
        # The join snapshot, which arrives before the sync reply, holds the stage only.
        assert student.awareness == {teacher_id: {"user": {"name": "teacher"}, "cursor": 0}}
        await student.set_awareness({"user": {"name": f"s{i}"}})
        students.append(student)

    def teacher_sees_everyone() -> bool:
        return all(
            teacher.awareness.get(s.doc.client_id) == {"user": {"name": f"s{i}"}}
            for i, s in enumerate(students)
        )

    await eventually(teacher_sees_everyone)
    assert len(teacher.awareness) == STUDENTS
    assert awareness_frames(teacher) >= STUDENTS

    # Every student's state has been relayed by now; a later teacher update that
    # reaches each student shows that none of those relays went to a student.
    await teacher.set_awareness({"user": {"name": "teacher"}, "cursor": 1})
    only_teacher: dict[int, Any] = {teacher_id: {"user": {"name": "teacher"}, "cursor": 1}}
    for student in students:
        await eventually(lambda student=student: student.awareness == only_teacher)

    # QueryAwareness answers with the stage only.
    for student in students:
        student.awareness.clear()
        await student.send_raw(bytes([protocol.MessageType.QUERY_AWARENESS]))
    for student in students:
        await eventually(lambda student=student: student.awareness == only_teacher)

    # Join snapshot + the teacher's update + the query's answer, whatever the class size.
    assert [awareness_frames(s) for s in students] == [3] * STUDENTS

    # A student leaves: the teacher sees the state removed; classmates are not told.
    leaving = students.pop()
    await leaving.close()
    await eventually(lambda: leaving.doc.client_id not in teacher.awareness)
    await teacher.set_awareness({"user": {"name": "teacher"}, "cursor": 2})
    only_teacher = {teacher_id: {"user": {"name": "teacher"}, "cursor": 2}}
    for student in students:
        await eventually(lambda student=student: student.awareness == only_teacher)
    assert [awareness_frames(s) for s in students] == [4] * (STUDENTS - 1)
    assert len(teacher.awareness) == STUDENTS - 1

    await asyncio.gather(*(s.close() for s in students))
    await teacher.close()


async def test_a_student_forks_the_lecture_into_an_own_pair_room(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_SECRET=SECRET)
    room, owner_token = await create_broadcast_room(server)
    teacher = await join(server, room, owner_token)
    schema.code(teacher.doc).insert(0, TEACHER_CODE)
    student_credential = sign(room, Role.VIEWER, name="s7", sub="student-7")
    student = await join(server, room, student_credential)
    await eventually(lambda: schema.code_text(student.doc) == TEACHER_CODE)

    auth = {"Authorization": f"Bearer {student_credential}"}
    async with httpx.AsyncClient(base_url=server.http_url, headers=auth, timeout=10) as http:
        forked = await http.post(f"/api/rooms/{room}/fork")
        assert forked.status_code == 201, forked.text
        body = forked.json()
        assert body["room"] != room
        details = await http.get(
            f"/api/rooms/{body['room']}",
            headers={"Authorization": f"Bearer {body['owner_token']}"},
        )
    assert details.status_code == 200, details.text
    assert details.json()["mode"] == "pair"

    own = await join(server, body["room"], body["owner_token"])
    assert schema.code_text(own.doc) == TEACHER_CODE
    text = schema.code(own.doc)
    text.insert(utf8_len(str(text)), "print(greet('me'))\n")
    # The edit is applied by the server: a second client of the fork gets it.
    partner = await join(server, body["room"], body["owner_token"])
    await eventually(lambda: schema.code_text(partner.doc) == TEACHER_CODE + "print(greet('me'))\n")
    assert own.denials == []
    # The lecture itself is untouched.
    assert schema.code_text(teacher.doc) == TEACHER_CODE
    for client in (partner, own, student, teacher):
        await client.close()
